// couponctl prune and publish --keep_versions as an operator runs them: the real couponctl
// binary on a real model store. Guards: the newest N are kept and the rest deleted; N below
// the minimum (and other bad values) is a usage error naming the flag; an empty store, an
// unknown path (not created) and N above the count; the --min_age hold; and the automatic
// policy of publish, checked before anything is published.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/model_store.h"
#include "tests/test_util/models.h"
#include "tests/test_util/process.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond {
namespace {

using ::coupond::testing::RunCommand;
using ::coupond::testing::TinyModel;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class CouponctlPruneTest : public ::testing::Test {
 protected:
  int Couponctl(std::vector<std::string> args, std::string* output) {
    args.insert(args.begin(), COUPONCTL_BINARY);
    return RunCommand(args, dir_.Sub("couponctl.out"), output, absl::Seconds(60));
  }
  // Publishes `n` versions (created at 1000 * v, so long superseded) and 3 records of one
  // campaign, in-process.
  void Fill(int n) {
    auto store = storage::ModelStore::OpenForWrite(store_);
    ASSERT_OK(store.status());
    for (int v = 1; v <= n; ++v) {
      storage::PublishOptions o;
      o.created_unix_seconds = 1000 * v;
      ASSERT_OK((*store)->Publish(TinyModel(10, 4, 4), o).status());
    }
    for (int r = 1; r <= 3; ++r) {
      ASSERT_OK((*store)->PublishCampaign("spring", absl::StrCat("r", r), 1000 * r).status());
    }
  }
  std::vector<uint64_t> Versions() {
    std::vector<uint64_t> out;
    auto store = storage::ModelStore::OpenForRead(store_);
    if (!store.ok()) return out;
    auto versions = (*store)->ListVersions();
    EXPECT_OK(versions.status());
    if (versions.ok()) {
      for (const auto& v : *versions) out.push_back(v.version);
    }
    return out;
  }
  size_t Records() {
    auto store = storage::ModelStore::OpenForRead(store_);
    if (!store.ok()) return 0;
    auto history = (*store)->CampaignHistory("spring");
    return history.ok() ? history->size() : 0;
  }

  coupond::testing::TempDir dir_;
  const std::string store_ = dir_.Sub("store");
};

TEST_F(CouponctlPruneTest, KeepsTheNewestNVersionsAndRecords) {
  Fill(6);
  std::string out;
  ASSERT_EQ(Couponctl({"prune", "--store", store_, "--keep", "3", "--min_age", "0s"}, &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("pruned 3 version(s) (1..3) and 0 campaign record(s)"));
  EXPECT_THAT(Versions(), ElementsAre(4, 5, 6));
  EXPECT_EQ(Records(), 3u);  // 3 records, 3 kept (--keep_campaign_records 0: as --keep)
  ASSERT_EQ(Couponctl({"prune", "--store", store_, "--keep", "2", "--keep_campaign_records",
                       "1", "--min_age", "0s"},
                      &out),
            0)
      << out;
  EXPECT_THAT(Versions(), ElementsAre(5, 6));
  EXPECT_EQ(Records(), 1u);
}

TEST_F(CouponctlPruneTest, BadValuesAreUsageErrorsNamingTheFlag) {
  Fill(3);
  std::string out;
  for (const char* keep : {"1", "0", "-3"}) {
    EXPECT_EQ(Couponctl({"prune", "--store", store_, "--keep", keep, "--min_age", "0s"}, &out), 2)
        << keep;
    EXPECT_THAT(out, HasSubstr(absl::StrCat("--keep: ", keep, " is below the minimum of 2")));
  }
  EXPECT_EQ(Couponctl({"prune", "--store", store_}, &out), 2);  // --keep is required
  EXPECT_THAT(out, HasSubstr("--keep: 0 is below the minimum of 2"));
  EXPECT_EQ(Couponctl({"prune", "--store", store_, "--keep", "2", "--keep_campaign_records", "-1"},
                      &out),
            2);
  EXPECT_THAT(out, HasSubstr("--keep_campaign_records: -1 is negative"));
  EXPECT_EQ(Couponctl({"prune", "--store", store_, "--keep", "2", "--min_age=-1s"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("--min_age: -1s is negative"));
  EXPECT_EQ(Couponctl({"prune", "--keep", "2"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("prune: --store is required"));
  EXPECT_THAT(Versions(), ElementsAre(1, 2, 3));  // nothing deleted by a refused call
}

TEST_F(CouponctlPruneTest, EmptyStoreUnknownPathAndKeepingMoreThanExist) {
  std::string out;
  // An unknown path is an error, and prune does not create a store there.
  EXPECT_EQ(Couponctl({"prune", "--store", dir_.Sub("nowhere"), "--keep", "2"}, &out), 1);
  EXPECT_THAT(out, HasSubstr("--store: no model store at"));
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("nowhere")));
  // An empty store: nothing to do.
  ASSERT_OK(storage::ModelStore::OpenForWrite(store_).status());
  ASSERT_EQ(Couponctl({"prune", "--store", store_, "--keep", "2"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("pruned no version and 0 campaign record(s)"));
  // More kept than exist: nothing deleted.
  Fill(3);
  ASSERT_EQ(Couponctl({"prune", "--store", store_, "--keep", "10", "--min_age", "0s"}, &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("pruned no version"));
  EXPECT_THAT(Versions(), ElementsAre(1, 2, 3));
  EXPECT_EQ(Records(), 3u);
}

TEST_F(CouponctlPruneTest, MinAgeHoldsBackWhatWasSupersededRecently) {
  // Versions created now: with the default --min_age (10 minutes) none may go yet.
  {
    auto store = storage::ModelStore::OpenForWrite(store_);
    ASSERT_OK(store.status());
    for (int v = 1; v <= 4; ++v) ASSERT_OK((*store)->Publish(TinyModel(10, 4, 4)).status());
  }
  std::string out;
  ASSERT_EQ(Couponctl({"prune", "--store", store_, "--keep", "2"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("pruned no version"));
  EXPECT_THAT(out, HasSubstr("2 more kept until superseded 600s ago (--min_age)"));
  EXPECT_THAT(Versions(), ElementsAre(1, 2, 3, 4));
}

TEST_F(CouponctlPruneTest, PublishWithKeepVersionsPrunesAfterPublishing) {
  std::string out;
  ASSERT_EQ(Couponctl({"generate", "--out", dir_.Sub("factors"), "--num_users", "20",
                       "--num_coupons", "5", "--dimension", "4"},
                      &out),
            0)
      << out;
  // A bad --keep_versions is refused before anything is published.
  EXPECT_EQ(Couponctl({"publish", "--store", store_, "--factors", dir_.Sub("factors"),
                       "--keep_versions", "1"},
                      &out),
            2);
  EXPECT_THAT(out, HasSubstr("--keep_versions: 1 is below the minimum of 2"));
  EXPECT_FALSE(std::filesystem::exists(store_));
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Couponctl({"publish", "--store", store_, "--factors", dir_.Sub("factors"),
                         "--keep_versions", "2", "--min_age", "0s"},
                        &out),
              0)
        << out;
  }
  EXPECT_THAT(out, HasSubstr("published version 3"));
  EXPECT_THAT(out, HasSubstr("pruned 1 version(s) (1..1)"));
  EXPECT_THAT(Versions(), ElementsAre(2, 3));
  // Without --keep_versions, publish prunes nothing.
  ASSERT_EQ(Couponctl({"publish", "--store", store_, "--factors", dir_.Sub("factors")}, &out), 0)
      << out;
  EXPECT_THAT(Versions(), ElementsAre(2, 3, 4));
}

}  // namespace
}  // namespace coupond
