// ModelManager over a real RocksDB store: first load, swaps to newer versions, readers
// keep their snapshot across a swap, and a damaged version is refused while the old one
// keeps serving.

#include "server/model_manager.h"

#include <atomic>
#include <fstream>

#include "absl/synchronization/notification.h"
#include "api/convert.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/keys.h"
#include "storage/model_store.h"
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

class ModelManagerTest : public ::testing::Test {
 protected:
  std::unique_ptr<ModelManager> NewManager(absl::Duration poll = absl::Seconds(60)) {
    ModelManagerOptions options;
    options.poll_interval = poll;
    auto m = ModelManager::Create(NewStoreModelSource(store_.path()), options);
    EXPECT_TRUE(m.ok()) << m.status();
    return *std::move(m);
  }
  uint64_t Publish(uint32_t users) {
    auto store = storage::ModelStore::OpenForWrite(store_.path());
    EXPECT_TRUE(store.ok()) << store.status();
    auto info = (*store)->Publish(TinyModel(users, 4, 3));
    EXPECT_TRUE(info.ok()) << info.status();
    return info->version;
  }
  // Deletes a user row of `version`, as a damaged disk would: its checksum no longer holds.
  void DamageVersion(uint64_t version) {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), store_.path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Delete({}, storage::internal::UserKey(version, "u1")).ok());
    ASSERT_TRUE(db->Close().ok());
  }
  TempDir store_;
};

TEST_F(ModelManagerTest, NothingToServeBeforeTheFirstVersion) {
  auto manager = NewManager();
  EXPECT_EQ(manager->Current(), nullptr);
  EXPECT_THAT(manager->PollOnce(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(manager->Current(), nullptr);
}

TEST_F(ModelManagerTest, LoadsNewestAndSwapsWithoutDisturbingReaders) {
  auto manager = NewManager();
  Publish(2);
  ASSERT_OK(manager->PollOnce());
  std::shared_ptr<const core::ModelSnapshot> in_flight = manager->Current();
  ASSERT_NE(in_flight, nullptr);
  EXPECT_EQ(in_flight->info().version, 1u);

  Publish(3);
  ASSERT_OK(manager->PollOnce());
  EXPECT_EQ(manager->Current()->info().version, 2u);
  // The request that started on version 1 still holds it, intact.
  EXPECT_EQ(in_flight->info().version, 1u);
  EXPECT_EQ(in_flight->num_users(), 2u);
  // And it is freed when that reader lets go.
  std::weak_ptr<const core::ModelSnapshot> old = in_flight;
  in_flight.reset();
  EXPECT_TRUE(old.expired());

  ASSERT_OK(manager->PollOnce());  // nothing newer: no reload
  EXPECT_EQ(manager->Current()->info().version, 2u);
}

TEST_F(ModelManagerTest, DamagedVersionIsRefusedAndTheOldOneKeepsServing) {
  auto manager = NewManager();
  Publish(2);
  ASSERT_OK(manager->PollOnce());
  const uint64_t bad = Publish(3);
  DamageVersion(bad);
  EXPECT_THAT(manager->PollOnce(), StatusIs(absl::StatusCode::kDataLoss,
                                            HasSubstr("rejected model version 2")));
  EXPECT_EQ(manager->Current()->info().version, 1u);
  EXPECT_OK(manager->PollOnce());  // the same bad version is not retried every poll
  Publish(4);
  ASSERT_OK(manager->PollOnce());
  EXPECT_EQ(manager->Current()->info().version, 3u);
}

// The store source keeps one handle and reopens it only when the store changed: idle polls
// open nothing, a publish or a prune causes one reopen, and the open table files follow
// what retention left.
TEST_F(ModelManagerTest, TheStoreIsReopenedOnlyWhenItChanged) {
  auto manager = NewManager();
  Publish(2);
  Publish(3);
  ASSERT_OK(manager->PollOnce());
  EXPECT_EQ(manager->LoadStatus().source.opens, 1u);
  EXPECT_EQ(manager->LoadStatus().source.store_files, 2u);
  for (int i = 0; i < 5; ++i) ASSERT_OK(manager->PollOnce());
  EXPECT_EQ(manager->LoadStatus().source.opens, 1u);
  EXPECT_EQ(manager->LoadStatus().polls, 6u);

  Publish(4);
  Publish(5);
  ASSERT_OK(manager->PollOnce());
  EXPECT_EQ(manager->Current()->info().version, 4u);
  EXPECT_EQ(manager->LoadStatus().source.opens, 2u);
  EXPECT_EQ(manager->LoadStatus().source.store_files, 4u);
  {
    auto store = storage::ModelStore::OpenForWrite(store_.path());
    ASSERT_OK(store.status());
    storage::PruneOptions prune;
    prune.keep_versions = 2;
    prune.min_superseded_age_seconds = 0;
    ASSERT_OK((*store)->Prune(prune).status());
  }
  ASSERT_OK(manager->PollOnce());
  EXPECT_EQ(manager->Current()->info().version, 4u);  // unchanged by the prune
  EXPECT_EQ(manager->LoadStatus().source.opens, 3u);
  EXPECT_EQ(manager->LoadStatus().source.store_files, 2u);
  ASSERT_OK(manager->PollOnce());
  EXPECT_EQ(manager->LoadStatus().source.opens, 3u);
  EXPECT_GT(manager->LoadStatus().last_poll_duration, absl::ZeroDuration());
}

TEST_F(ModelManagerTest, PollingThreadPicksUpAVersionPublishedLater) {
  auto manager = NewManager(absl::Milliseconds(20));
  absl::Notification loaded;
  manager->StartPolling([&](const core::ModelSnapshot& s) {
    if (s.info().version == 1 && !loaded.HasBeenNotified()) loaded.Notify();
  });
  Publish(5);
  ASSERT_TRUE(loaded.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(manager->Current()->num_users(), 5u);
  manager->StopPolling();
  manager->StopPolling();  // idempotent
}

// With the poller running, a swapped-out snapshot outlives the swap while a reader holds
// it, and the poller frees it soon after that reader lets go.
TEST_F(ModelManagerTest, ThePollerFreesASwappedOutSnapshotAfterItsLastReader) {
  Publish(2);
  auto manager = NewManager(absl::Milliseconds(20));
  absl::Notification first;
  std::atomic<uint64_t> newest{0};
  manager->StartPolling([&](const core::ModelSnapshot& s) {
    newest = s.info().version;
    if (!first.HasBeenNotified()) first.Notify();
  });
  ASSERT_TRUE(first.WaitForNotificationWithTimeout(absl::Seconds(30)));
  std::shared_ptr<const core::ModelSnapshot> reader = manager->Current();
  std::weak_ptr<const core::ModelSnapshot> old = reader;
  Publish(3);
  for (const absl::Time until = absl::Now() + absl::Seconds(30);
       newest.load() != 2 && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(manager->Current()->info().version, 2u);
  // Several of the poller's checks (each records its time in LoadStatus), then the old
  // snapshot must still be alive: the reader holds it.
  for (int poll = 0; poll < 3; ++poll) {
    const absl::Time seen = manager->LoadStatus().last_poll_time;
    const absl::Time until = absl::Now() + absl::Seconds(30);
    while (manager->LoadStatus().last_poll_time == seen && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    ASSERT_NE(manager->LoadStatus().last_poll_time, seen) << "the poller stopped polling";
  }
  ASSERT_FALSE(old.expired());  // the reader still holds it
  EXPECT_EQ(reader->num_users(), 2u);
  reader.reset();
  for (const absl::Time until = absl::Now() + absl::Seconds(30);
       !old.expired() && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_TRUE(old.expired());
  EXPECT_EQ(core::ModelSnapshot::LiveCount(), 1);
  manager->StopPolling();
}

TEST(ModelManagerCreateTest, RejectsBadOptions) {
  ModelManagerOptions options;
  options.poll_interval = absl::ZeroDuration();
  EXPECT_THAT(ModelManager::Create(NewStoreModelSource("/nonexistent"), options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("poll_interval")));
  EXPECT_THAT(ModelManager::Create(nullptr, ModelManagerOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace coupond::server

namespace coupond::server {
namespace {

// Campaign records: loaded once per record, a record that fails its checks is reported
// once and skipped while the campaign's previous record stays in use, and a later good
// record replaces it.
TEST_F(ModelManagerTest, LoadsStoredCampaignsAndKeepsTheLastGoodRecordOfEach) {
  Publish(2);
  auto manager = NewManager();
  ASSERT_OK(manager->PollOnce());
  EXPECT_TRUE(manager->Campaigns()->empty());

  v1::Campaign campaign;
  campaign.set_campaign_id("spring");
  campaign.set_budget(10);
  campaign.add_coupons()->set_coupon_id("c0");
  auto publish_campaign = [&](const std::string& payload) {
    auto store = storage::ModelStore::OpenForWrite(store_.path());
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_OK((*store)->PublishCampaign("spring", payload).status());
  };
  v1::CampaignPrices prices;
  prices.set_budget_price(0.5);
  auto good = api::EncodeStoredCampaign(campaign, prices);
  ASSERT_OK(good.status());
  publish_campaign(*good);
  ASSERT_OK(manager->PollOnce());
  std::shared_ptr<const CampaignBook> book = manager->Campaigns();
  ASSERT_EQ(book->size(), 1u);
  const std::shared_ptr<const LoadedCampaign> first = book->at("spring");
  EXPECT_EQ(first->sequence, 1u);
  EXPECT_EQ(first->stored.prices().budget_price(), 0.5);

  // Nothing new: the same book object stays.
  ASSERT_OK(manager->PollOnce());
  EXPECT_EQ(manager->Campaigns(), book);

  publish_campaign("not a StoredCampaign \xff\xff");
  EXPECT_THAT(manager->PollCampaigns(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("rejected record 2 of campaign 'spring'")));
  EXPECT_EQ(manager->Campaigns()->at("spring"), first);
  ASSERT_OK(manager->PollCampaigns());  // reported once
  EXPECT_EQ(manager->Campaigns()->at("spring"), first);

  prices.set_budget_price(0.75);
  auto better = api::EncodeStoredCampaign(campaign, prices);
  ASSERT_OK(better.status());
  publish_campaign(*better);
  ASSERT_OK(manager->PollCampaigns());
  EXPECT_EQ(manager->Campaigns()->at("spring")->sequence, 3u);
  EXPECT_EQ(manager->Campaigns()->at("spring")->stored.prices().budget_price(), 0.75);
  // A reader holding the old record keeps it valid.
  EXPECT_EQ(first->stored.prices().budget_price(), 0.5);
}

// Each campaign's coupons are looked up in the served version when its record is loaded,
// and again (the same record, a new book entry) when a newer version is swapped in.
TEST_F(ModelManagerTest, LooksTheCampaignsCouponsUpAgainInEachNewVersion) {
  Publish(2);
  auto manager = NewManager();
  v1::Campaign campaign;
  campaign.set_campaign_id("spring");
  campaign.set_budget(10);
  for (const char* id : {"c3", "c-none", "c0"}) campaign.add_coupons()->set_coupon_id(id);
  auto payload = api::EncodeStoredCampaign(campaign, v1::CampaignPrices());
  ASSERT_OK(payload.status());
  {
    auto store = storage::ModelStore::OpenForWrite(store_.path());
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_OK((*store)->PublishCampaign("spring", *payload).status());
  }
  ASSERT_OK(manager->PollOnce());
  const std::shared_ptr<const LoadedCampaign> v1_entry = manager->Campaigns()->at("spring");
  ASSERT_NE(v1_entry->candidates, nullptr);
  EXPECT_EQ(v1_entry->candidates->model_version, 1u);
  EXPECT_THAT(v1_entry->candidates->rows, ::testing::ElementsAre(3u, 0u));
  EXPECT_THAT(v1_entry->candidates->positions, ::testing::ElementsAre(0u, 2u));
  EXPECT_THAT(v1_entry->candidates->unknown, ::testing::ElementsAre(1u));
  ASSERT_OK(manager->PollOnce());
  EXPECT_EQ(manager->Campaigns()->at("spring"), v1_entry);  // nothing changed

  Publish(3);
  ASSERT_OK(manager->PollOnce());
  ASSERT_EQ(manager->Current()->info().version, 2u);
  const std::shared_ptr<const LoadedCampaign> v2_entry = manager->Campaigns()->at("spring");
  EXPECT_NE(v2_entry, v1_entry);
  EXPECT_EQ(v2_entry->sequence, 1u);
  ASSERT_NE(v2_entry->candidates, nullptr);
  EXPECT_EQ(v2_entry->candidates->model_version, 2u);
  EXPECT_EQ(v1_entry->candidates->model_version, 1u);  // a reader's entry is untouched
}

}  // namespace
}  // namespace coupond::server

namespace coupond::server {
namespace {

// The memory check before a load, with the system's figures read from files the test
// controls: a version that does not fit beside the served one is refused while the served
// one stays; unlike a damaged version it is tried again on every poll, and loads once the
// memory is there.
class ModelManagerMemoryTest : public ModelManagerTest {
 protected:
  std::unique_ptr<ModelManager> NewMemoryManager() {
    ModelManagerOptions options;
    options.poll_interval = absl::Seconds(60);
    options.memory.cgroup_v2_memory_max = dir_.Sub("memory.max");
    options.memory.cgroup_v1_memory_limit = dir_.Sub("memory.limit_in_bytes");
    options.memory.meminfo = dir_.Sub("meminfo");
    options.memory.safety_margin_bytes = 0;
    auto m = ModelManager::Create(NewStoreModelSource(store_.path()), options);
    EXPECT_TRUE(m.ok()) << m.status();
    return *std::move(m);
  }
  // MemAvailable is in kB: round up so that `bytes` is available.
  void SetMemAvailable(uint64_t bytes) {
    std::ofstream(dir_.Sub("meminfo"), std::ios::trunc)
        << "MemTotal: 99999999 kB\nMemAvailable: " << (bytes + 1023) / 1024 << " kB\n";
  }
  uint64_t EstimateOfLatest() {
    auto store = storage::ModelStore::OpenForRead(store_.path());
    EXPECT_TRUE(store.ok()) << store.status();
    auto info = (*store)->LatestVersion();
    EXPECT_TRUE(info.ok()) << info.status();
    return core::ModelSnapshot::EstimateMemoryBytes(*info);
  }
  coupond::testing::TempDir dir_;
};

TEST_F(ModelManagerMemoryTest, AVersionThatDoesNotFitIsRefusedAndTriedAgainLater) {
  auto manager = NewMemoryManager();
  Publish(200);
  SetMemAvailable(EstimateOfLatest());  // exactly enough for the first version
  ASSERT_OK(manager->PollOnce());
  ASSERT_NE(manager->Current(), nullptr);
  const uint64_t held = manager->Current()->memory_bytes();
  ModelLoadStatus status = manager->LoadStatus();
  EXPECT_EQ(status.served_version, 1u);
  EXPECT_EQ(status.loads, 1u);
  EXPECT_EQ(status.rejected_version, 0u);
  EXPECT_GT(status.last_load_time, absl::Now() - absl::Minutes(1));
  EXPECT_THAT(status.memory.source, HasSubstr("MemAvailable"));

  // Version 2 is larger; MemAvailable (which does not count version 1, already loaded)
  // is one KiB short of it.
  Publish(400);
  const uint64_t next = EstimateOfLatest();
  SetMemAvailable(next - 2048);
  EXPECT_THAT(manager->PollOnce(),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("refused model version 2"), HasSubstr("memory limit"))));
  EXPECT_EQ(manager->Current()->info().version, 1u);
  status = manager->LoadStatus();
  EXPECT_EQ(status.rejected_version, 2u);
  EXPECT_EQ(status.rejections, 1u);
  EXPECT_EQ(status.rejection.code(), absl::StatusCode::kResourceExhausted);
  // The budget counted the served snapshot back in.
  EXPECT_EQ(status.memory.limit_bytes, held + (next - 2048 + 1023) / 1024 * 1024);

  // Refused again on the next poll (not remembered as broken), and by an explicit reload.
  EXPECT_THAT(manager->PollOnce(), StatusIs(absl::StatusCode::kResourceExhausted));
  ASSERT_OK_AND_ASSIGN(ReloadResult reload, manager->ReloadNow());
  EXPECT_THAT(reload.rejection, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(reload.previous_version, 1u);
  EXPECT_EQ(reload.served_version, 1u);
  EXPECT_EQ(manager->LoadStatus().rejections, 3u);

  // Memory freed elsewhere: the same version now loads on an ordinary poll.
  SetMemAvailable(next);
  ASSERT_OK(manager->PollOnce());
  EXPECT_EQ(manager->Current()->info().version, 2u);
  status = manager->LoadStatus();
  EXPECT_EQ(status.served_version, 2u);
  EXPECT_EQ(status.loads, 2u);
  EXPECT_EQ(status.rejected_version, 2u);  // history: the last refusal stays visible
}

TEST_F(ModelManagerMemoryTest, TheFirstVersionIsRefusedTooWhenItAloneDoesNotFit) {
  auto manager = NewMemoryManager();
  std::ofstream(dir_.Sub("memory.max")) << "1000\n";  // a 1000-byte cgroup
  Publish(50);
  EXPECT_THAT(manager->PollOnce(),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("refused model version 1"), HasSubstr("cgroup limit"))));
  EXPECT_EQ(manager->Current(), nullptr);
  EXPECT_EQ(manager->LoadStatus().served_version, 0u);
}

TEST_F(ModelManagerTest, ReloadNowRetriesADamagedVersionAndReportsItAgain) {
  auto manager = NewManager();
  EXPECT_THAT(manager->ReloadNow(), StatusIs(absl::StatusCode::kNotFound));  // no version yet
  Publish(2);
  ASSERT_OK_AND_ASSIGN(ReloadResult first, manager->ReloadNow());
  EXPECT_EQ(first.previous_version, 0u);
  EXPECT_EQ(first.served_version, 1u);
  EXPECT_OK(first.rejection);
  ASSERT_OK_AND_ASSIGN(ReloadResult again, manager->ReloadNow());
  EXPECT_EQ(again.previous_version, 1u);
  EXPECT_EQ(again.served_version, 1u);

  const uint64_t bad = Publish(3);
  DamageVersion(bad);
  EXPECT_THAT(manager->PollOnce(), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_OK(manager->PollOnce());  // the poll loop does not retry it...
  ASSERT_OK_AND_ASSIGN(ReloadResult retried, manager->ReloadNow());  // ...an operator does
  EXPECT_THAT(retried.rejection,
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("rejected model version 2")));
  EXPECT_EQ(retried.served_version, 1u);
  const ModelLoadStatus status = manager->LoadStatus();
  EXPECT_EQ(status.rejected_version, 2u);
  EXPECT_EQ(status.rejections, 2u);
  EXPECT_EQ(status.rejection.code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace coupond::server
