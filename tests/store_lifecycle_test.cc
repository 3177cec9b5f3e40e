// Integration: a store that stops growing. The real coupond binary polls a real RocksDB store
// every 20 ms while this test publishes 500 model versions and 500 campaign records into it,
// pruning to the newest 5 versions (and 2 records) after each publish, as
// `couponctl publish --keep_versions 5` does. Through it all: coupond's open file
// descriptors and the store's size on disk stay flat, every Score call succeeds, the served
// version only moves forward and ends at the newest, and the time one poll takes (scraped
// from /metrics) does not grow with the number of versions ever published.

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "api/convert.h"
#include "client/coupond_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/model_store.h"
#include "tests/test_util/models.h"
#include "tests/test_util/process.h"
#include "tests/test_util/sanitizers.h"
#include "tests/test_util/scrape.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond {
namespace {

using ::coupond::testing::ChildProcess;
using ::coupond::testing::ReferenceLogit;
using ::coupond::testing::TempDir;
using ::coupond::testing::TinyModel;
using ::coupond::testing::WaitForPortFile;

// Open descriptors of process `pid` (entries of /proc/<pid>/fd); -1 when unreadable.
int OpenFdsOf(pid_t pid) {
  std::error_code ec;
  std::filesystem::directory_iterator it(absl::StrCat("/proc/", pid, "/fd"), ec);
  if (ec) return -1;
  int n = 0;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) return -1;
    ++n;
  }
  return n;
}

// Bytes of the regular files in the store directory: all of them (tables, MANIFEST, LOG
// files...), and the table files alone.
struct StoreBytes {
  uint64_t all = 0;
  uint64_t tables = 0;
};
StoreBytes StoreBytesOf(const std::string& dir) {
  StoreBytes bytes;
  std::error_code ec;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir, ec)) {
    std::error_code size_ec;
    if (entry.is_regular_file(size_ec)) {
      const uint64_t size = entry.file_size(size_ec);
      if (size_ec) continue;  // a file deleted while we walk is simply not counted
      bytes.all += size;
      if (entry.path().extension() == ".sst") bytes.tables += size;
    }
  }
  return bytes;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

TEST(StoreLifecycleTest, FiveHundredVersionsWithRetentionKeepFdsDiskAndPollTimeFlat) {
  // 500 as the issue asks; 150 under the sanitizers, where each poll is several times slower
  // (what they check, the memory safety of the poll and the prune, needs no more).
  constexpr uint64_t kVersions = ::coupond::testing::kSanitizedBuild ? 150 : 500;
  constexpr uint32_t kKeep = 5;
  TempDir dir;
  const std::string store_path = dir.Sub("store");
  const core::ModelData base = TinyModel(40, 12, 8);
  // Version v has global bias base + 0.01 v, so a response proves which model made it.
  auto version_model = [&](uint64_t v) {
    core::ModelData m = base;
    m.global_bias = base.global_bias + 0.01 * static_cast<double>(v);
    return m;
  };
  v1::Campaign campaign;
  campaign.set_campaign_id("spring");
  campaign.set_budget(100);
  for (const char* id : {"c1", "c2", "c3"}) campaign.add_coupons()->set_coupon_id(id);
  auto record = [&](uint64_t v) {
    v1::CampaignPrices prices;
    prices.set_model_version(v);
    prices.set_budget_price(0.001 * static_cast<double>(v % 7));
    return api::EncodeStoredCampaign(campaign, prices);
  };

  auto writer = storage::ModelStore::OpenForWrite(store_path);
  ASSERT_OK(writer.status());
  ASSERT_OK((*writer)->Publish(version_model(1)).status());

  ChildProcess server({COUPOND_SERVER_BINARY, "--store=" + store_path, "--listen=127.0.0.1:0",
                       "--port_file=" + dir.Sub("port"), "--metrics_listen=127.0.0.1:0",
                       "--metrics_port_file=" + dir.Sub("metrics_port"), "--poll_interval=20ms",
                       "--shutdown_grace=2s", "--log_level=warn"});
  ASSERT_TRUE(server.spawned()) << "cannot start " << COUPOND_SERVER_BINARY;
  const int port = WaitForPortFile(dir.Sub("port"), absl::Seconds(30));
  ASSERT_GT(port, 0) << "coupond did not report its port";
  const int metrics_port = WaitForPortFile(dir.Sub("metrics_port"), absl::Seconds(30));
  ASSERT_GT(metrics_port, 0) << "coupond did not report its metrics port";
  client::ClientOptions options;
  options.target = absl::StrCat("127.0.0.1:", port);
  ASSERT_OK_AND_ASSIGN(auto client, client::CoupondClient::Create(options));
  ASSERT_OK(client->WaitUntilServing(absl::Seconds(30)));

  std::atomic<bool> stop{false};
  std::atomic<int> calls{0}, failures{0}, wrong{0};
  std::thread traffic([&] {
    uint64_t last_version = 0;
    while (!stop.load()) {
      v1::ScoreRequest request;
      request.set_user_id("u3");
      request.add_coupon_ids("c2");
      absl::StatusOr<v1::ScoreResponse> r = client->Score(request);
      ++calls;
      if (!r.ok()) {
        ++failures;
        continue;
      }
      const uint64_t v = r->model_version();
      if (v < last_version || r->scores_size() != 1) {
        ++wrong;
        continue;
      }
      last_version = v;
      const double expected = ReferenceLogit(base, 3, 2) + 0.01 * static_cast<double>(v);
      if (std::abs(r->scores(0).logit() - expected) > 1e-4) ++wrong;
    }
  });

  std::vector<double> fds, tables, other, poll_seconds;
  double last_poll_time = -1;
  storage::PruneOptions prune;
  prune.keep_versions = kKeep;
  prune.keep_campaign_records = 2;
  prune.min_superseded_age_seconds = 0;  // versions come every few ms here
  for (uint64_t v = 2; v <= kVersions; ++v) {
    // Every 100 versions the publisher reopens the store, as each couponctl run does
    // (a new MANIFEST each time), so the server also sees MANIFEST switches.
    if (v % 100 == 0) {
      writer->reset();
      writer = storage::ModelStore::OpenForWrite(store_path);
      if (!writer.ok()) {
        ADD_FAILURE() << writer.status();
        break;
      }
    }
    absl::Status s = (*writer)->Publish(version_model(v)).status();
    absl::StatusOr<std::string> payload = record(v);
    if (s.ok()) s = payload.status();
    if (s.ok()) s = (*writer)->PublishCampaign("spring", *payload).status();
    if (s.ok()) s = (*writer)->Prune(prune).status();
    if (!s.ok()) {
      ADD_FAILURE() << "version " << v << ": " << s;
      break;
    }
    fds.push_back(OpenFdsOf(server.pid()));
    const StoreBytes bytes = StoreBytesOf(store_path);
    tables.push_back(static_cast<double>(bytes.tables));
    other.push_back(static_cast<double>(bytes.all - bytes.tables));
    // One sample per poll: publishes come faster than polls, and a gauge read twice between
    // two polls would count that poll twice. Every 4th version the publisher waits for a
    // poll (up to 2 s), so that the server polls all along the history however fast the
    // machine publishes (500 rounds took 3 s on a quiet one, about 25 polls).
    testing::Scrape scrape = testing::ScrapeMetricsAt(metrics_port);
    double poll_time = testing::Value(scrape, "coupond_model_last_poll_timestamp_seconds");
    for (const absl::Time deadline = absl::Now() + absl::Seconds(2);
         v % 4 == 0 && poll_time == last_poll_time && absl::Now() < deadline;) {
      absl::SleepFor(absl::Milliseconds(5));
      scrape = testing::ScrapeMetricsAt(metrics_port);
      poll_time = testing::Value(scrape, "coupond_model_last_poll_timestamp_seconds");
    }
    if (poll_time != last_poll_time) {
      last_poll_time = poll_time;
      poll_seconds.push_back(testing::Value(scrape, "coupond_model_last_poll_duration_seconds"));
    }
  }
  // The server catches up with the newest version.
  uint64_t served = 0;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(30);
       served != kVersions && absl::Now() < deadline;) {
    auto info = client->GetModelInfo();
    if (info.ok()) served = info->model().version();
    if (served != kVersions) absl::SleepFor(absl::Milliseconds(20));
  }
  stop = true;
  traffic.join();
  EXPECT_EQ(served, kVersions);
  EXPECT_GT(calls.load(), 100);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(wrong.load(), 0);

  ASSERT_GE(fds.size(), 110u);  // first 50 and last 50 apart
  const std::vector<double> first_fds(fds.begin(), fds.begin() + 50);
  const std::vector<double> last_fds(fds.end() - 50, fds.end());
  const double fds_first_max = *std::max_element(first_fds.begin(), first_fds.end());
  const double fds_last_max = *std::max_element(last_fds.begin(), last_fds.end());
  // One table file per version and per record kept, held open by the server: a handful,
  // whatever the history (before retention it was one more per publish).
  EXPECT_LE(fds_last_max, fds_first_max + 4)
      << "open fds grew: first 50 max " << fds_first_max << ", last 50 max " << fds_last_max;
  // The kept tables' bytes stay flat; the rest (MANIFEST, LOG files, OPTIONS) stays under
  // the writer's limits (storage/model_store.h), reached over the run as LOG files roll.
  const double tables_first_max = *std::max_element(tables.begin() + 10, tables.begin() + 60);
  const double tables_last_max = *std::max_element(tables.end() - 50, tables.end());
  EXPECT_LE(tables_last_max, 1.5 * tables_first_max)
      << "table files grew: " << tables_first_max << " -> " << tables_last_max << " bytes";
  const double other_max = *std::max_element(other.begin(), other.end());
  const double other_bound = (storage::kKeptLogFiles + 1) * storage::kMaxLogFileBytes +
                             2 * storage::kMaxManifestBytes + (64 << 10);  // + OPTIONS files
  EXPECT_LE(other_max, other_bound) << "the store's other files grew past their limits";
  // The first and the last quarter of the polls seen (the 50 and 50 when 200 are).
  // Not under the sanitizers: their slowdown leaves too few polls, and times that say
  // nothing about the Release binary.
  const size_t quarter = std::min<size_t>(50, poll_seconds.size() / 4);
  if (::coupond::testing::kSanitizedBuild) {
    std::printf("%zu polls seen; poll times are not compared under the sanitizers\n",
                poll_seconds.size());
    EXPECT_EQ(server.StopWith(SIGTERM, absl::Seconds(10)), 0);
    return;
  }
  ASSERT_GE(quarter, 10u) << "too few polls seen (" << poll_seconds.size() << ") to compare";
  const std::vector<double> first_polls(poll_seconds.begin(), poll_seconds.begin() + quarter);
  const std::vector<double> last_polls(poll_seconds.end() - quarter, poll_seconds.end());
  // Compared: the fastest poll of each quarter. A poll's wall time includes waiting for a
  // core, and next to the other tests of a loaded CI run the medians moved with the load
  // (ratios of 1.3 to 8 with nothing changed in the store: two CPU-bound tests beside this
  // one on 2 cores). Waiting only adds time, so the fastest poll of a quarter is its cost
  // with the least interference, while what history without retention does to a poll
  // (9-14x, bench/RESULTS-store.md) raises every poll, the fastest included.
  const double first = *std::min_element(first_polls.begin(), first_polls.end());
  const double last = *std::min_element(last_polls.begin(), last_polls.end());
  std::printf("open fds: first 50 max %.0f, last 50 max %.0f; table bytes: first max %.0f, "
              "last max %.0f; other files: max %.0f (bound %.0f); %zu polls seen; poll median: "
              "first %zu %.3f ms, last %zu %.3f ms; fastest: %.3f ms, %.3f ms (ratio %.2f)\n",
              fds_first_max, fds_last_max, tables_first_max, tables_last_max, other_max,
              other_bound, poll_seconds.size(), quarter, 1e3 * Median(first_polls), quarter,
              1e3 * Median(last_polls), 1e3 * first, 1e3 * last, first > 0 ? last / first : 0.0);
  EXPECT_GT(first, 0);
  // The 1.5x is shown by bench/store_poll_bench (medians and the ratio, measured
  // quietly: bench/RESULTS-store.md). Here the bound only has to catch what history without
  // retention does to a poll, not scheduling noise.
  EXPECT_LE(last, 3.0 * first) << "poll time grew with the store's history";
  EXPECT_EQ(server.StopWith(SIGTERM, absl::Seconds(10)), 0);
}

}  // namespace
}  // namespace coupond
