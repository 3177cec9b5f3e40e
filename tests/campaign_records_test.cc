// Campaign records in the model store, against a real RocksDB directory: sequences, the
// newest record per campaign, visibility to a reader opened beside the writer, their
// independence from model versions, and damaged records.

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/keys.h"
#include "storage/model_store.h"
#include "tests/test_util/models.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::storage {
namespace {

using ::coupond::testing::IsOk;
using ::coupond::testing::StatusIs;
using ::coupond::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(CampaignRecordsTest, SequencesCountUpPerCampaignAndLatestTakesTheNewest) {
  TempDir dir;
  auto store = ModelStore::OpenForWrite(dir.path());
  ASSERT_THAT(store.status(), IsOk());
  auto a1 = (*store)->PublishCampaign("spring-sale", "prices v1", 1000);
  auto b1 = (*store)->PublishCampaign("spring.sale_2", "other", 1001);
  auto a2 = (*store)->PublishCampaign("spring-sale", "prices v2", 1002);
  ASSERT_THAT(a1.status(), IsOk());
  ASSERT_THAT(b1.status(), IsOk());
  ASSERT_THAT(a2.status(), IsOk());
  EXPECT_EQ(a1->sequence, 1u);
  EXPECT_EQ(b1->sequence, 1u);
  EXPECT_EQ(a2->sequence, 2u);

  auto latest = (*store)->LatestCampaigns();
  ASSERT_THAT(latest.status(), IsOk());
  ASSERT_EQ(latest->size(), 2u);
  // '-' sorts before '.', so "spring-sale" comes first.
  EXPECT_EQ((*latest)[0].campaign_id, "spring-sale");
  EXPECT_EQ((*latest)[0].sequence, 2u);
  EXPECT_EQ((*latest)[0].payload, "prices v2");
  EXPECT_EQ((*latest)[0].published_unix_seconds, 1002);
  EXPECT_EQ((*latest)[1].campaign_id, "spring.sale_2");
  EXPECT_EQ((*latest)[1].payload, "other");

  auto history = (*store)->CampaignHistory("spring-sale");
  ASSERT_THAT(history.status(), IsOk());
  EXPECT_THAT(*history, ElementsAre(Field(&CampaignRecord::payload, "prices v1"),
                                    Field(&CampaignRecord::payload, "prices v2")));
  auto none = (*store)->CampaignHistory("unknown");
  ASSERT_THAT(none.status(), IsOk());
  EXPECT_THAT(*none, IsEmpty());
}

TEST(CampaignRecordsTest, IdsThatArePrefixesOfEachOtherStayApart) {
  TempDir dir;
  auto store = ModelStore::OpenForWrite(dir.path());
  ASSERT_THAT(store.status(), IsOk());
  for (const char* id : {"a", "a.b", "a-b", "ab", "a0"}) {
    ASSERT_THAT((*store)->PublishCampaign(id, id).status(), IsOk());
  }
  ASSERT_THAT((*store)->PublishCampaign("a", "a again").status(), IsOk());
  auto latest = (*store)->LatestCampaigns();
  ASSERT_THAT(latest.status(), IsOk());
  std::vector<std::string> seen;
  for (const CampaignRecord& r : *latest) seen.push_back(r.campaign_id + "=" + r.payload);
  EXPECT_THAT(seen, ElementsAre("a-b=a-b", "a.b=a.b", "a=a again", "a0=a0", "ab=ab"));
  auto history = (*store)->CampaignHistory("a");
  ASSERT_THAT(history.status(), IsOk());
  EXPECT_EQ(history->size(), 2u);
}

TEST(CampaignRecordsTest, PayloadsAreBinarySafeAndEmptyIsAllowed) {
  TempDir dir;
  auto store = ModelStore::OpenForWrite(dir.path());
  ASSERT_THAT(store.status(), IsOk());
  const std::string binary("\0\xff\x01/p/", 6);
  ASSERT_THAT((*store)->PublishCampaign("bin", binary).status(), IsOk());
  ASSERT_THAT((*store)->PublishCampaign("empty", "").status(), IsOk());
  auto latest = (*store)->LatestCampaigns();
  ASSERT_THAT(latest.status(), IsOk());
  ASSERT_EQ(latest->size(), 2u);
  EXPECT_EQ((*latest)[0].payload, binary);
  EXPECT_EQ((*latest)[1].payload, "");
}

TEST(CampaignRecordsTest, BadIdsAndReadOnlyStoresAreRefused) {
  TempDir dir;
  auto store = ModelStore::OpenForWrite(dir.path());
  ASSERT_THAT(store.status(), IsOk());
  EXPECT_THAT((*store)->PublishCampaign("", "x").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("campaign_id")));
  EXPECT_THAT((*store)->PublishCampaign("a/b", "x").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("campaign_id")));
  EXPECT_THAT((*store)->PublishCampaign("caf\xc3\xa9", "x").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("campaign_id")));
  EXPECT_THAT((*store)->PublishCampaign(std::string(129, 'x'), "x").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("got 129")));
  EXPECT_THAT((*store)->PublishCampaign(std::string(128, 'x'), "x").status(), IsOk());
  ASSERT_THAT((*store)->PublishCampaign("ok", "x").status(), IsOk());
  store->reset();

  auto reader = ModelStore::OpenForRead(dir.path());
  ASSERT_THAT(reader.status(), IsOk());
  EXPECT_THAT((*reader)->PublishCampaign("ok", "y").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(CampaignRecordsTest, CampaignsAndModelVersionsDoNotDisturbEachOther) {
  TempDir dir;
  auto store = ModelStore::OpenForWrite(dir.path());
  ASSERT_THAT(store.status(), IsOk());
  ASSERT_THAT((*store)->PublishCampaign("c", "before").status(), IsOk());
  auto v1 = (*store)->Publish(coupond::testing::TinyModel(4, 3, 2));
  ASSERT_THAT(v1.status(), IsOk());
  ASSERT_THAT((*store)->PublishCampaign("c", "after").status(), IsOk());
  auto v2 = (*store)->Publish(coupond::testing::TinyModel(4, 3, 2));
  ASSERT_THAT(v2.status(), IsOk());

  auto versions = (*store)->ListVersions();
  ASSERT_THAT(versions.status(), IsOk());
  ASSERT_EQ(versions->size(), 2u);
  EXPECT_THAT((*store)->ReadVersion(v2->version).status(), IsOk());
  auto latest = (*store)->LatestCampaigns();
  ASSERT_THAT(latest.status(), IsOk());
  ASSERT_EQ(latest->size(), 1u);
  EXPECT_EQ((*latest)[0].payload, "after");
}

TEST(CampaignRecordsTest, AReaderOpenedBesideTheWriterSeesEachUpdateWhole) {
  TempDir dir;
  auto writer = ModelStore::OpenForWrite(dir.path());
  ASSERT_THAT(writer.status(), IsOk());
  for (int i = 1; i <= 20; ++i) {
    const std::string payload(1000 + i, static_cast<char>('a' + i % 26));
    ASSERT_THAT((*writer)->PublishCampaign("live", payload).status(), IsOk());
    auto reader = ModelStore::OpenForRead(dir.path());
    ASSERT_THAT(reader.status(), IsOk());
    auto latest = (*reader)->LatestCampaigns();
    ASSERT_THAT(latest.status(), IsOk());
    ASSERT_EQ(latest->size(), 1u);
    EXPECT_EQ((*latest)[0].sequence, static_cast<uint64_t>(i));
    EXPECT_EQ((*latest)[0].payload, payload);
  }
}

TEST(CampaignRecordsTest, DamagedRecordsAreDataLossNamingTheRecord) {
  TempDir dir;
  {
    auto store = ModelStore::OpenForWrite(dir.path());
    ASSERT_THAT(store.status(), IsOk());
    ASSERT_THAT((*store)->PublishCampaign("c", "payload").status(), IsOk());
  }
  auto damage = [&](const std::string& key, const std::string& value) {
    rocksdb::DB* raw = nullptr;
    rocksdb::Options options;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir.path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), key, value).ok());
  };
  const std::string key = internal::CampaignKey("c", 1);
  std::string good;
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::OpenForReadOnly(rocksdb::Options(), dir.path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), key, &good).ok());
  }
  std::string flipped = good;
  flipped.back() ^= 1;  // payload byte: checksum mismatch
  damage(key, flipped);
  auto reader = ModelStore::OpenForRead(dir.path());
  ASSERT_THAT(reader.status(), IsOk());
  EXPECT_THAT((*reader)->LatestCampaigns().status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
  reader->reset();

  damage(key, good.substr(0, 5));  // shorter than the header
  reader = ModelStore::OpenForRead(dir.path());
  ASSERT_THAT(reader.status(), IsOk());
  EXPECT_THAT((*reader)->LatestCampaigns().status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("header")));
  reader->reset();

  damage(key, good);
  damage("p/c/123", good);  // sequence not 20 digits
  reader = ModelStore::OpenForRead(dir.path());
  ASSERT_THAT(reader.status(), IsOk());
  EXPECT_THAT((*reader)->CampaignHistory("c").status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("malformed key")));
}

}  // namespace
}  // namespace coupond::storage
