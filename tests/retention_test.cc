// Retention of the model store (ModelStore::Prune) against a real RocksDB directory: what is
// kept, what is refused, that the table files and their disk space really go, and that a
// reader already open keeps reading what was deleted under it.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/model_store.h"
#include "tests/test_util/models.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::storage {
namespace {

using ::coupond::testing::StatusIs;
using ::coupond::testing::TempDir;
using ::coupond::testing::TinyModel;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Bytes of every regular file under `dir` (what the store costs on disk, LOG files and
// MANIFEST included, not only the live table files RocksDB reports).
uint64_t DirectoryBytes(const std::string& dir) {
  uint64_t bytes = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) bytes += entry.file_size();
  }
  return bytes;
}

uint64_t TableFiles(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".sst") ++n;
  }
  return n;
}

// Publishes versions 1..n, version v created at 1000 * v.
void PublishVersions(ModelStore* store, int n) {
  for (int v = 1; v <= n; ++v) {
    PublishOptions options;
    options.created_unix_seconds = 1000 * v;
    core::ModelData model = TinyModel(50, 10, 4);
    model.description = absl::StrCat("version ", v);
    ASSERT_OK(store->Publish(model, options).status());
  }
}

std::vector<uint64_t> StoredVersions(const ModelStore& store) {
  std::vector<uint64_t> out;
  auto versions = store.ListVersions();
  EXPECT_OK(versions.status());
  if (versions.ok()) {
    for (const auto& v : *versions) out.push_back(v.version);
  }
  return out;
}

PruneOptions Keep(uint32_t versions, uint32_t records = 1) {
  PruneOptions o;
  o.keep_versions = versions;
  o.keep_campaign_records = records;
  o.min_superseded_age_seconds = 0;
  o.now_unix_seconds = 1'000'000;
  return o;
}

TEST(RetentionTest, KeepsTheNewestVersionsAndRecordsAndFreesTheirDisk) {
  TempDir dir;
  auto store = ModelStore::OpenForWrite(dir.path());
  ASSERT_OK(store.status());
  PublishVersions(store->get(), 8);
  for (int i = 1; i <= 4; ++i) {
    ASSERT_OK((*store)->PublishCampaign("spring", absl::StrCat("prices ", i), 1000 * i).status());
  }
  ASSERT_OK((*store)->PublishCampaign("lonely", "only record", 1000).status());
  const uint64_t sst_before = TableFiles(dir.path());
  const uint64_t disk_before = DirectoryBytes(dir.path());
  EXPECT_EQ(sst_before, 8u + 5u);  // one table file per version and per record

  auto result = (*store)->Prune(Keep(3, 2));
  ASSERT_OK(result.status());
  EXPECT_THAT(result->deleted_versions, ElementsAre(1, 2, 3, 4, 5));
  EXPECT_EQ(result->kept_versions, 3u);
  EXPECT_EQ(result->deleted_campaign_records, 2u);
  EXPECT_EQ(result->held_by_age, 0u);
  EXPECT_EQ(result->files_before, 13u);
  EXPECT_EQ(result->files_after, 6u);  // 3 versions, 2 + 1 records
  EXPECT_LT(result->bytes_after, result->bytes_before);

  // The files are gone from the directory, not only from RocksDB's view.
  EXPECT_EQ(TableFiles(dir.path()), 6u);
  EXPECT_LT(DirectoryBytes(dir.path()), disk_before);

  EXPECT_THAT(StoredVersions(**store), ElementsAre(6, 7, 8));
  EXPECT_THAT((*store)->ReadVersion(5).status(), StatusIs(absl::StatusCode::kNotFound));
  auto newest = (*store)->ReadVersion(8);
  ASSERT_OK(newest.status());
  EXPECT_EQ(newest->description, "version 8");
  auto history = (*store)->CampaignHistory("spring");
  ASSERT_OK(history.status());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].sequence, 3u);
  EXPECT_EQ((*history)[1].payload, "prices 4");
  auto lonely = (*store)->CampaignHistory("lonely");
  ASSERT_OK(lonely.status());
  EXPECT_EQ(lonely->size(), 1u);

  // Numbering goes on from the newest version, which is never deleted.
  auto next = (*store)->Publish(TinyModel(5, 3, 4));
  ASSERT_OK(next.status());
  EXPECT_EQ(next->version, 9u);
  auto next_record = (*store)->PublishCampaign("spring", "prices 5", 5000);
  ASSERT_OK(next_record.status());
  EXPECT_EQ(next_record->sequence, 5u);

  // Pruning again with nothing over the limit deletes nothing.
  auto again = (*store)->Prune(Keep(4, 3));
  ASSERT_OK(again.status());
  EXPECT_TRUE(again->deleted_versions.empty());
  EXPECT_EQ(again->deleted_campaign_records, 0u);
}

TEST(RetentionTest, RefusesToKeepFewerThanTheMinimumNamingTheField) {
  TempDir dir;
  auto store = ModelStore::OpenForWrite(dir.path());
  ASSERT_OK(store.status());
  PublishVersions(store->get(), 3);
  for (uint32_t keep : {0u, 1u}) {
    EXPECT_THAT((*store)->Prune(Keep(keep)).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("keep_versions")))
        << keep;
  }
  EXPECT_THAT((*store)->Prune(Keep(2, 0)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("keep_campaign_records")));
  PruneOptions negative = Keep(2);
  negative.min_superseded_age_seconds = -1;
  EXPECT_THAT((*store)->Prune(negative).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("min_superseded_age")));
  // Nothing was deleted by the refused calls.
  EXPECT_THAT(StoredVersions(**store), ElementsAre(1, 2, 3));
  // The minimum itself is allowed.
  auto two = (*store)->Prune(Keep(kMinKeepVersions));
  ASSERT_OK(two.status());
  EXPECT_THAT(StoredVersions(**store), ElementsAre(2, 3));
}

TEST(RetentionTest, EmptyStoreAndKeepingMoreThanExistDeleteNothing) {
  TempDir dir;
  auto store = ModelStore::OpenForWrite(dir.path());
  ASSERT_OK(store.status());
  auto empty = (*store)->Prune(Keep(2));
  ASSERT_OK(empty.status());
  EXPECT_TRUE(empty->deleted_versions.empty());
  EXPECT_EQ(empty->kept_versions, 0u);
  EXPECT_EQ(empty->files_after, 0u);

  PublishVersions(store->get(), 3);
  auto more = (*store)->Prune(Keep(1000, 1000));
  ASSERT_OK(more.status());
  EXPECT_TRUE(more->deleted_versions.empty());
  EXPECT_EQ(more->kept_versions, 3u);
  EXPECT_EQ(more->files_after, more->files_before);
  EXPECT_THAT(StoredVersions(**store), ElementsAre(1, 2, 3));
}

TEST(RetentionTest, KeepsWhatWasSupersededTooRecently) {
  TempDir dir;
  auto store = ModelStore::OpenForWrite(dir.path());
  ASSERT_OK(store.status());
  PublishVersions(store->get(), 5);  // created at 1000, 2000, ..., 5000
  ASSERT_OK((*store)->PublishCampaign("c", "r1", 1000).status());
  ASSERT_OK((*store)->PublishCampaign("c", "r2", 3000).status());
  ASSERT_OK((*store)->PublishCampaign("c", "r3", 5000).status());
  PruneOptions o = Keep(2);
  o.now_unix_seconds = 3400;
  o.min_superseded_age_seconds = 600;  // superseded at or before 2800
  auto result = (*store)->Prune(o);
  ASSERT_OK(result.status());
  // Version 1 was superseded by version 2 (created 2000): old enough. Version 2 was
  // superseded by version 3 (3000): too recent, so it and everything newer stay.
  EXPECT_THAT(result->deleted_versions, ElementsAre(1));
  EXPECT_THAT(StoredVersions(**store), ElementsAre(2, 3, 4, 5));
  // Records 1 and 2 are beyond keep_campaign_records 1, but record 1 was superseded by
  // record 2 at 3000: too recent, so both stay.
  EXPECT_EQ(result->deleted_campaign_records, 0u);
  EXPECT_EQ(result->held_by_age, 2u + 2u);  // versions 2, 3; records 1, 2
  o.now_unix_seconds = 100'000;
  auto later = (*store)->Prune(o);
  ASSERT_OK(later.status());
  EXPECT_THAT(later->deleted_versions, ElementsAre(2, 3));
  EXPECT_EQ(later->deleted_campaign_records, 2u);
}

TEST(RetentionTest, AnOpenReaderKeepsReadingADeletedVersion) {
  TempDir dir;
  {
    auto writer = ModelStore::OpenForWrite(dir.path());
    ASSERT_OK(writer.status());
    PublishVersions(writer->get(), 4);
  }
  auto reader = ModelStore::OpenForRead(dir.path());
  ASSERT_OK(reader.status());
  auto token = ModelStore::ChangeToken(dir.path());
  ASSERT_OK(token.status());
  {
    auto writer = ModelStore::OpenForWrite(dir.path());
    ASSERT_OK(writer.status());
    auto result = (*writer)->Prune(Keep(2));
    ASSERT_OK(result.status());
    EXPECT_THAT(result->deleted_versions, ElementsAre(1, 2));
  }
  // The reader opened every table file when it opened the store: deleted since, version 1
  // is still readable through it, checksum and all.
  auto old = (*reader)->ReadVersion(1);
  ASSERT_OK(old.status());
  EXPECT_EQ(old->description, "version 1");
  // The change is visible in the token, and a new reader no longer sees the version.
  auto changed = ModelStore::ChangeToken(dir.path());
  ASSERT_OK(changed.status());
  EXPECT_NE(*changed, *token);
  auto fresh = ModelStore::OpenForRead(dir.path());
  ASSERT_OK(fresh.status());
  EXPECT_THAT((*fresh)->ReadVersion(1).status(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(StoredVersions(**fresh), ElementsAre(3, 4));
}

TEST(RetentionTest, ChangeTokenMovesOnEveryWriteAndNotOnReads) {
  TempDir dir;
  EXPECT_THAT(ModelStore::ChangeToken(dir.Sub("missing")).status(),
              StatusIs(absl::StatusCode::kNotFound));
  auto store = ModelStore::OpenForWrite(dir.path());
  ASSERT_OK(store.status());
  auto t0 = ModelStore::ChangeToken(dir.path());
  ASSERT_OK(t0.status());
  ASSERT_OK((*store)->Publish(TinyModel(5, 3, 4)).status());
  auto t1 = ModelStore::ChangeToken(dir.path());
  ASSERT_OK(t1.status());
  EXPECT_NE(*t1, *t0);
  {
    auto reader = ModelStore::OpenForRead(dir.path());
    ASSERT_OK(reader.status());
    ASSERT_OK((*reader)->ReadVersion(1).status());
  }
  auto t2 = ModelStore::ChangeToken(dir.path());
  ASSERT_OK(t2.status());
  EXPECT_EQ(*t2, *t1);
  ASSERT_OK((*store)->PublishCampaign("c", "r1").status());
  auto t3 = ModelStore::ChangeToken(dir.path());
  ASSERT_OK(t3.status());
  EXPECT_NE(*t3, *t2);
}

TEST(RetentionTest, ATableFileStraddlingAPrunedRangeIsRewrittenWithoutItsRows) {
  TempDir dir;
  {
    auto writer = ModelStore::OpenForWrite(dir.path());
    ASSERT_OK(writer.status());
    PublishVersions(writer->get(), 3);
  }
  // A stray row inside version 1's range and one outside every range, written by another
  // tool: the next open flushes them into one table file that straddles the pruned range,
  // so deleting whole files cannot remove the stray row.
  const std::string stray = "v/00000000000000000001/zz-stray";
  {
    rocksdb::DB* raw = nullptr;
    rocksdb::Options options;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir.path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), stray, "x").ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "x/outside", "kept").ok());
    ASSERT_TRUE(db->Flush(rocksdb::FlushOptions()).ok());
    ASSERT_TRUE(db->Close().ok());
  }
  auto writer = ModelStore::OpenForWrite(dir.path());
  ASSERT_OK(writer.status());
  auto result = (*writer)->Prune(Keep(2));
  ASSERT_OK(result.status());
  EXPECT_THAT(result->deleted_versions, ElementsAre(1));
  EXPECT_THAT(StoredVersions(**writer), ElementsAre(2, 3));
  writer->reset();
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::OpenForReadOnly(rocksdb::Options(), dir.path(), &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value;
  EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), stray, &value).IsNotFound());
  ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), "x/outside", &value).ok());
  EXPECT_EQ(value, "kept");
}

TEST(RetentionTest, ReadOnlyStoreCannotPrune) {
  TempDir dir;
  {
    auto writer = ModelStore::OpenForWrite(dir.path());
    ASSERT_OK(writer.status());
    PublishVersions(writer->get(), 3);
  }
  auto reader = ModelStore::OpenForRead(dir.path());
  ASSERT_OK(reader.status());
  EXPECT_THAT((*reader)->Prune(Keep(2)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace coupond::storage
