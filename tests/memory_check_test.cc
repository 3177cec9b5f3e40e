// The memory check before a model load: the system files' parsers, where the budget comes
// from, the fit decision at its boundary, and the manifest-only estimate against the real
// size of a built snapshot.

#include "server/memory_check.h"

#include <fstream>

#include "core/snapshot.h"
#include "storage/model_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/models.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::server {
namespace {

using ::coupond::testing::StatusIs;
using ::coupond::testing::TempDir;
using ::coupond::testing::TinyModel;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr uint64_t kMiB = 1 << 20;

MATCHER_P(IsOkAndHolds, value, "is OK and holds " + ::testing::PrintToString(value)) {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  *result_listener << "holds " << *arg;
  return *arg == static_cast<uint64_t>(value);
}

TEST(ParseCgroupMemoryLimitTest, ReadsBytesAndNoLimit) {
  EXPECT_THAT(ParseCgroupMemoryLimit("1073741824\n"), IsOkAndHolds(uint64_t{1} << 30));
  EXPECT_THAT(ParseCgroupMemoryLimit("max\n"), IsOkAndHolds(UINT64_MAX));
  // cgroup v1's "unlimited" (LONG_MAX rounded down to a page) is no limit either.
  EXPECT_THAT(ParseCgroupMemoryLimit("9223372036854771712\n"), IsOkAndHolds(UINT64_MAX));
  EXPECT_THAT(ParseCgroupMemoryLimit("0"), IsOkAndHolds(0u));
  for (const char* bad : {"", "\n", "-5", "12 MB", "lots", "99999999999999999999999"}) {
    EXPECT_THAT(ParseCgroupMemoryLimit(bad), StatusIs(absl::StatusCode::kInvalidArgument))
        << "'" << bad << "'";
  }
}

TEST(ParseMemAvailableTest, ReadsTheMemAvailableLineInBytes) {
  const std::string meminfo =
      "MemTotal:       16384000 kB\n"
      "MemFree:          512000 kB\n"
      "MemAvailable:    8192000 kB\n"
      "Buffers:          100000 kB\n";
  EXPECT_THAT(ParseMemAvailable(meminfo), IsOkAndHolds(uint64_t{8192000} * 1024));
  EXPECT_THAT(ParseMemAvailable("MemTotal: 1 kB\nMemFree: 1 kB\n"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("MemAvailable")));
  EXPECT_THAT(ParseMemAvailable("MemAvailable: 100 MB\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseMemAvailable("MemAvailable: many kB\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // So large that it would overflow once turned into bytes.
  EXPECT_THAT(ParseMemAvailable("MemAvailable: 18446744073709551615 kB\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseMemAvailable(""), StatusIs(absl::StatusCode::kNotFound));
}

class ResolveMemoryBudgetTest : public ::testing::Test {
 protected:
  ResolveMemoryBudgetTest() {
    options_.cgroup_v2_memory_max = dir_.Sub("memory.max");
    options_.cgroup_v1_memory_limit = dir_.Sub("memory.limit_in_bytes");
    options_.meminfo = dir_.Sub("meminfo");
    options_.safety_margin_bytes = 100 * kMiB;
  }
  void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }
  void WriteMemAvailable(uint64_t bytes) {
    Write(options_.meminfo,
          "MemTotal: 99999999 kB\nMemAvailable: " + std::to_string(bytes >> 10) + " kB\n");
  }

  TempDir dir_;
  MemoryCheckOptions options_;
};

TEST_F(ResolveMemoryBudgetTest, AnExplicitLimitIsUsedAsGiven) {
  Write(options_.cgroup_v2_memory_max, "1000\n");
  options_.limit_bytes = 12345;
  const MemoryBudget budget = ResolveMemoryBudget(options_, /*held_bytes=*/999);
  EXPECT_EQ(budget.limit_bytes, 12345u);  // no margin, no system figure
  EXPECT_EQ(budget.source, "--memory_limit_bytes");
}

TEST_F(ResolveMemoryBudgetTest, TheCgroupLimitMinusTheMarginWhenItIsTheSmaller) {
  Write(options_.cgroup_v2_memory_max, std::to_string(1024 * kMiB) + "\n");
  WriteMemAvailable(8192 * kMiB);
  const MemoryBudget budget = ResolveMemoryBudget(options_, 300 * kMiB);
  EXPECT_EQ(budget.limit_bytes, 924 * kMiB);
  EXPECT_THAT(budget.source, AllOf(HasSubstr("cgroup limit 1024.0 MiB"), HasSubstr("memory.max"),
                                   HasSubstr("margin 100.0 MiB")));
}

TEST_F(ResolveMemoryBudgetTest, CgroupV1IsReadWhenV2IsAbsent) {
  Write(options_.cgroup_v1_memory_limit, std::to_string(512 * kMiB));
  const MemoryBudget budget = ResolveMemoryBudget(options_, 0);
  EXPECT_EQ(budget.limit_bytes, 412 * kMiB);
  EXPECT_THAT(budget.source, HasSubstr("memory.limit_in_bytes"));
}

TEST_F(ResolveMemoryBudgetTest, MemAvailablePlusTheServedSnapshotWithoutACgroupLimit) {
  Write(options_.cgroup_v2_memory_max, "max\n");
  WriteMemAvailable(2048 * kMiB);
  // The served snapshot is not in MemAvailable (it is already allocated): added back.
  const MemoryBudget budget = ResolveMemoryBudget(options_, 300 * kMiB);
  EXPECT_EQ(budget.limit_bytes, (2048 + 300 - 100) * kMiB);
  EXPECT_THAT(budget.source, HasSubstr("MemAvailable 2048.0 MiB + served snapshot 300.0 MiB"));
}

TEST_F(ResolveMemoryBudgetTest, MemAvailableWinsWhenTheMachineHasLessThanTheCgroupAllows) {
  Write(options_.cgroup_v2_memory_max, std::to_string(8192 * kMiB));
  WriteMemAvailable(1024 * kMiB);
  const MemoryBudget budget = ResolveMemoryBudget(options_, 0);
  EXPECT_EQ(budget.limit_bytes, 924 * kMiB);
  EXPECT_THAT(budget.source, HasSubstr("MemAvailable"));
}

TEST_F(ResolveMemoryBudgetTest, AMarginLargerThanTheLimitLeavesNothing) {
  Write(options_.cgroup_v2_memory_max, std::to_string(50 * kMiB));
  EXPECT_EQ(ResolveMemoryBudget(options_, 0).limit_bytes, 0u);
}

TEST_F(ResolveMemoryBudgetTest, NothingReadableTurnsTheCheckOffAndSaysSo) {
  const MemoryBudget none = ResolveMemoryBudget(options_, 0);
  EXPECT_EQ(none.limit_bytes, UINT64_MAX);
  EXPECT_THAT(none.source, HasSubstr("memory check off"));
  EXPECT_OK(CheckNextSnapshotFits(7, UINT64_MAX / 2, UINT64_MAX / 2, none));
  // Garbage in the files is the same as no files.
  Write(options_.cgroup_v2_memory_max, "garbage");
  Write(options_.meminfo, "nothing useful\n");
  EXPECT_EQ(ResolveMemoryBudget(options_, 0).limit_bytes, UINT64_MAX);
}

TEST(CheckNextSnapshotFitsTest, FitsUpToTheLimitExactlyAndNotOneByteMore) {
  MemoryBudget budget;
  budget.limit_bytes = 1000;
  budget.source = "--memory_limit_bytes";
  EXPECT_OK(CheckNextSnapshotFits(2, 600, 400, budget));
  EXPECT_OK(CheckNextSnapshotFits(1, 1000, 0, budget));
  EXPECT_THAT(
      CheckNextSnapshotFits(2, 601, 400, budget),
      StatusIs(absl::StatusCode::kResourceExhausted,
               AllOf(HasSubstr("model version 2 needs about"), HasSubstr("601 bytes"),
                     HasSubstr("memory limit"), HasSubstr("1000 bytes; --memory_limit_bytes"))));
  // No overflow on huge figures: the next version alone is over the limit.
  EXPECT_THAT(CheckNextSnapshotFits(3, UINT64_MAX - 10, 20, budget),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(CheckNextSnapshotFits(3, 10, UINT64_MAX - 5, budget),
              StatusIs(absl::StatusCode::kResourceExhausted));
  budget.limit_bytes = 0;
  EXPECT_THAT(CheckNextSnapshotFits(1, 1, 0, budget),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_OK(CheckNextSnapshotFits(1, 0, 0, budget));
}

core::ModelVersionInfo InfoOf(const core::ModelData& m) { return core::DescribeModel(m, 1); }

// Vectors built by push_back hold spare capacity that memory_bytes() counts; the store's
// reader sizes them exactly. Trim them so the comparison is with what a loaded version holds.
void ShrinkToFit(core::ModelData& m) {
  m.user_ids.shrink_to_fit();
  m.user_bias.shrink_to_fit();
  m.user_factors.shrink_to_fit();
  m.coupon_ids.shrink_to_fit();
  m.coupon_bias.shrink_to_fit();
  m.coupon_attributes.shrink_to_fit();
  m.user_segment.shrink_to_fit();
}

TEST(EstimateMemoryBytesTest, EqualsTheBuiltSnapshotsSizeForShortIds) {
  // Sizes around the hash tables' and factor panels' steps (64-row panels; 7/8 load).
  for (auto [users, coupons, dim] :
       {std::tuple{1u, 1u, 1u}, std::tuple{40u, 30u, 24u}, std::tuple{64u, 64u, 8u},
        std::tuple{65u, 65u, 3u}, std::tuple{1000u, 130u, 7u}, std::tuple{4096u, 2u, 64u}}) {
    core::ModelData m = TinyModel(users, coupons, dim);
    ShrinkToFit(m);
    const core::ModelVersionInfo info = InfoOf(m);
    auto snapshot = core::ModelSnapshot::Create(std::move(m), info);
    ASSERT_OK(snapshot.status());
    EXPECT_EQ(core::ModelSnapshot::EstimateMemoryBytes(info), (*snapshot)->memory_bytes())
        << users << " users, " << coupons << " coupons, d " << dim;
  }
}

TEST(EstimateMemoryBytesTest, CountsSegmentsAndUnderestimatesOnlyByLongIds) {
  core::ModelData m = TinyModel(300, 20, 5);
  m.segment_features = {{"recency", 0.0f, 1.0f}, {"rate", 0.0f, 2.0f}};
  for (int s = 0; s < 3; ++s) {
    core::SegmentData seg;
    seg.name = "segment-" + std::to_string(s);
    seg.centroid = {0.1f * s, 0.2f};
    seg.prior_factors.assign(5, 0.01f * s);
    seg.members = 100;
    m.segments.push_back(seg);
  }
  for (int u = 0; u < 300; ++u) m.user_segment.push_back(u % 3);
  ShrinkToFit(m);
  core::ModelVersionInfo info = InfoOf(m);
  core::ModelData long_ids = m;
  auto snapshot = core::ModelSnapshot::Create(std::move(m), info);
  ASSERT_OK(snapshot.status());
  EXPECT_EQ(core::ModelSnapshot::EstimateMemoryBytes(info), (*snapshot)->memory_bytes());

  // Ids longer than the inline buffer: the estimate is short by about their length.
  for (std::string& id : long_ids.user_ids) id = "customer-with-a-long-id-" + id;
  auto long_snapshot = core::ModelSnapshot::Create(std::move(long_ids), info);
  ASSERT_OK(long_snapshot.status());
  const size_t estimate = core::ModelSnapshot::EstimateMemoryBytes(info);
  EXPECT_LT(estimate, (*long_snapshot)->memory_bytes());
  EXPECT_GT(estimate, (*long_snapshot)->memory_bytes() * 3 / 4);
}

// What the server really loads: a version read back from a model store. The reader sizes
// its arrays exactly, so the estimate holds for it too (it once grew them by doubling, and
// a loaded version took up to 40% more than its estimate).
TEST(EstimateMemoryBytesTest, MatchesTheSizeOfAVersionLoadedFromAStore) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForWrite(dir.path()));
  for (auto [users, coupons, dim] : {std::tuple{3000u, 70u, 12u}, std::tuple{20000u, 300u, 32u}}) {
    ASSERT_OK_AND_ASSIGN(core::ModelVersionInfo info,
                         store->Publish(TinyModel(users, coupons, dim)));
    ASSERT_OK_AND_ASSIGN(auto snapshot, store->LoadSnapshot(info.version));
    // Exact but for the cold-start flags: one byte per coupon, counted whether or not the
    // version has predicted coupons (the manifest does not say).
    const size_t estimate = core::ModelSnapshot::EstimateMemoryBytes(info);
    EXPECT_GE(estimate, snapshot->memory_bytes()) << users << " users, " << coupons << " coupons, d " << dim;
    EXPECT_LE(estimate, snapshot->memory_bytes() + coupons) << users << " users, " << coupons << " coupons, d " << dim;
  }
}

}  // namespace
}  // namespace coupond::server
