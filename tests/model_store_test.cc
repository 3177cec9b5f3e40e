// The RocksDB model store against a real RocksDB directory: round trips, atomic
// visibility of versions, and every kind of damaged version the reader must refuse.

#include "storage/model_store.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <filesystem>
#include <limits>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/keys.h"
#include "tests/test_util/models.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

// The format-1 test writes a version by hand, checksum included; inlined so that the test
// needs no link to libxxhash of its own.
#define XXH_INLINE_ALL
#include "xxhash.h"

namespace coupond::storage {
namespace {

using ::coupond::testing::StatusIs;
using ::coupond::testing::TempDir;
using ::coupond::testing::TinyModel;
using ::testing::HasSubstr;

void ExpectSameModel(const core::ModelData& a, const core::ModelData& b) {
  // The store returns rows sorted by id; TinyModel ids ("u0", "u1", ...) are compared as sets.
  ASSERT_EQ(a.dimension, b.dimension);
  EXPECT_EQ(a.global_bias, b.global_bias);
  EXPECT_EQ(a.description, b.description);
  ASSERT_EQ(a.num_users(), b.num_users());
  ASSERT_EQ(a.num_coupons(), b.num_coupons());
  const uint32_t d = a.dimension;
  for (size_t i = 0; i < a.num_users(); ++i) {
    const auto it = std::find(b.user_ids.begin(), b.user_ids.end(), a.user_ids[i]);
    ASSERT_NE(it, b.user_ids.end()) << a.user_ids[i];
    const size_t j = it - b.user_ids.begin();
    EXPECT_EQ(a.user_bias[i], b.user_bias[j]);
    EXPECT_TRUE(std::equal(a.user_factors.begin() + i * d, a.user_factors.begin() + (i + 1) * d,
                           b.user_factors.begin() + j * d));
  }
  for (size_t i = 0; i < a.num_coupons(); ++i) {
    const auto it = std::find(b.coupon_ids.begin(), b.coupon_ids.end(), a.coupon_ids[i]);
    ASSERT_NE(it, b.coupon_ids.end()) << a.coupon_ids[i];
    const size_t j = it - b.coupon_ids.begin();
    EXPECT_EQ(a.coupon_bias[i], b.coupon_bias[j]);
    EXPECT_EQ(a.coupon_attributes[i], b.coupon_attributes[j]);
    EXPECT_TRUE(std::equal(a.coupon_factors.begin() + i * d,
                           a.coupon_factors.begin() + (i + 1) * d,
                           b.coupon_factors.begin() + j * d));
  }
}

// TinyModel plus three segments over two features; users cycle through segments 0, 1, 2
// and none (-1).
core::ModelData SegmentedModel(uint32_t users, uint32_t coupons, uint32_t dim) {
  core::ModelData m = TinyModel(users, coupons, dim);
  m.segment_features = {{"log_exposures", 1.25f, 0.5f}, {"age=25-34", 0.0f, 2.0f}};
  for (int i = 0; i < 3; ++i) {
    core::SegmentData seg;
    seg.name = absl::StrCat("segment-", i);
    seg.centroid = {0.5f * static_cast<float>(i) - 0.3f, 0.25f * static_cast<float>(i)};
    seg.prior_bias = 0.1f * static_cast<float>(i) - 0.05f;
    for (uint32_t k = 0; k < dim; ++k) {
      seg.prior_factors.push_back(std::sin(0.7f * static_cast<float>(i * dim + k + 1)));
    }
    seg.redemption_rate = 0.01 * (i + 1);
    seg.members = 100 + static_cast<uint64_t>(i);
    m.segments.push_back(std::move(seg));
  }
  for (uint32_t u = 0; u < users; ++u) {
    m.user_segment.push_back(u % 4 == 3 ? -1 : static_cast<int32_t>(u % 4));
  }
  return m;
}

// The segment of user `id` in `m` (-1 when it has none).
int32_t SegmentOf(const core::ModelData& m, const std::string& id) {
  const auto it = std::find(m.user_ids.begin(), m.user_ids.end(), id);
  if (it == m.user_ids.end() || m.user_segment.empty()) return -1;
  return m.user_segment[it - m.user_ids.begin()];
}

class ModelStoreTest : public ::testing::Test {
 protected:
  std::string path() const { return dir_.Sub("store"); }

  // Publishes `model` and returns its version.
  uint64_t PublishModel(const core::ModelData& model) {
    auto store = ModelStore::OpenForWrite(path());
    EXPECT_TRUE(store.ok()) << store.status();
    auto info = (*store)->Publish(model);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->version : 0;
  }

  // Opens the store's RocksDB directly, as a damaged disk or a buggy writer would.
  void Tamper(const std::function<void(rocksdb::DB*)>& damage) {
    rocksdb::DB* raw = nullptr;
    rocksdb::Options options;
    ASSERT_TRUE(rocksdb::DB::Open(options, path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    damage(db.get());
    ASSERT_TRUE(db->Close().ok());
  }

  absl::StatusOr<core::ModelData> Read(uint64_t version, ReadOptions options = {}) {
    auto store = ModelStore::OpenForRead(path());
    if (!store.ok()) return store.status();
    return (*store)->ReadVersion(version, options);
  }

  TempDir dir_;
};

TEST_F(ModelStoreTest, RoundTripsAVersion) {
  const core::ModelData model = coupond::testing::TinyModel(50, 20, 7);
  const uint64_t v = PublishModel(model);
  EXPECT_EQ(v, 1u);
  ASSERT_OK_AND_ASSIGN(core::ModelData back, Read(v));
  ExpectSameModel(model, back);

  ASSERT_OK_AND_ASSIGN(auto store, ModelStore::OpenForRead(path()));
  ASSERT_OK_AND_ASSIGN(core::ModelVersionInfo info, store->LatestVersion());
  EXPECT_EQ(info.version, 1u);
  EXPECT_EQ(info.dimension, 7u);
  EXPECT_EQ(info.num_users, 50u);
  EXPECT_EQ(info.num_coupons, 20u);
  EXPECT_EQ(info.description, "tiny test model");
  EXPECT_NE(info.checksum, 0u);
  EXPECT_GT(info.created_unix_seconds, 0);
}

TEST_F(ModelStoreTest, RoundTripsMetadataWithAwkwardValues) {
  core::ModelData model = TinyModel(2, 2, 2);
  model.metadata["train.data_xxh3"] = "0123456789abcdef";
  model.metadata["eval.note"] = "line one\nline=two \"quoted\"";
  const uint64_t v = PublishModel(model);
  ASSERT_OK_AND_ASSIGN(core::ModelData back, Read(v));
  EXPECT_EQ(back.metadata, model.metadata);
  ASSERT_OK_AND_ASSIGN(auto store, ModelStore::OpenForRead(path()));
  ASSERT_OK_AND_ASSIGN(core::ModelVersionInfo info, store->LatestVersion());
  EXPECT_EQ(info.metadata, model.metadata);
}

TEST_F(ModelStoreTest, KeepsOlderVersionsAndNumbersUpwards) {
  PublishModel(TinyModel(3, 3, 2));
  PublishModel(TinyModel(4, 3, 5));
  ASSERT_OK_AND_ASSIGN(auto store, ModelStore::OpenForRead(path()));
  ASSERT_OK_AND_ASSIGN(auto versions, store->ListVersions());
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0].version, 1u);
  EXPECT_EQ(versions[1].version, 2u);
  EXPECT_EQ(versions[1].dimension, 5u);
  ASSERT_OK_AND_ASSIGN(core::ModelData v1, store->ReadVersion(1));
  ExpectSameModel(TinyModel(3, 3, 2), v1);
}

TEST_F(ModelStoreTest, ExplicitVersionMustBeNewer) {
  ASSERT_OK_AND_ASSIGN(auto store, ModelStore::OpenForWrite(path()));
  PublishOptions options;
  options.version = 10;
  ASSERT_OK_AND_ASSIGN(auto info, store->Publish(TinyModel(1, 1, 1), options));
  EXPECT_EQ(info.version, 10u);
  EXPECT_THAT(store->Publish(TinyModel(1, 1, 1), options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not newer")));
  ASSERT_OK_AND_ASSIGN(info, store->Publish(TinyModel(1, 1, 1)));
  EXPECT_EQ(info.version, 11u);
}

// Stage does the work without changing what readers see; Commit makes the version visible.
// Versions staged ahead commit in order; a staged version dropped uncommitted leaves no file.
TEST_F(ModelStoreTest, StagedVersionsBecomeVisibleOnlyWhenCommitted) {
  ASSERT_OK_AND_ASSIGN(auto store, ModelStore::OpenForWrite(path()));
  ASSERT_OK(store->Publish(TinyModel(2, 2, 2)).status());
  PublishOptions options;
  options.version = 2;
  ASSERT_OK_AND_ASSIGN(StagedVersion second, store->Stage(TinyModel(3, 2, 2), options));
  options.version = 3;
  ASSERT_OK_AND_ASSIGN(StagedVersion third, store->Stage(TinyModel(4, 2, 2), options));
  EXPECT_EQ(second.info().version, 2u);
  EXPECT_EQ(third.info().num_users, 4u);
  auto latest = [&] {
    auto reader = ModelStore::OpenForRead(path());
    EXPECT_TRUE(reader.ok()) << reader.status();
    auto info = (*reader)->LatestVersion();
    return info.ok() ? info->version : 0;
  };
  EXPECT_EQ(latest(), 1u);  // staged, not visible
  ASSERT_OK_AND_ASSIGN(core::ModelVersionInfo committed, store->Commit(std::move(second)));
  EXPECT_EQ(committed.version, 2u);
  EXPECT_EQ(latest(), 2u);
  ASSERT_OK_AND_ASSIGN(core::ModelData back, Read(2));
  ExpectSameModel(TinyModel(3, 2, 2), back);

  // A version published meanwhile makes the staged one stale: refused, nothing changes.
  options.version = 7;
  ASSERT_OK(store->Publish(TinyModel(1, 2, 2), options).status());
  EXPECT_THAT(store->Commit(std::move(third)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not newer")));
  EXPECT_EQ(latest(), 7u);

  // Dropped uncommitted (including the refused one above): the staging area is empty.
  options.version = 8;
  { ASSERT_OK(store->Stage(TinyModel(1, 2, 2), options).status()); }
  std::error_code ec;
  size_t staged_files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(path(), ec)) {
    staged_files += entry.path().filename().string().rfind("version-", 0) == 0;
  }
  EXPECT_EQ(staged_files, 0u);
  EXPECT_EQ(latest(), 7u);
}

TEST_F(ModelStoreTest, RefusesToPublishInvalidModelAndWritesNothing) {
  core::ModelData bad = TinyModel(2, 2, 3);
  bad.user_factors[0] = std::numeric_limits<float>::quiet_NaN();
  ASSERT_OK_AND_ASSIGN(auto store, ModelStore::OpenForWrite(path()));
  EXPECT_THAT(store->Publish(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("non-finite")));
  ASSERT_OK_AND_ASSIGN(auto versions, store->ListVersions());
  EXPECT_TRUE(versions.empty());
}

TEST_F(ModelStoreTest, ReadOnlyStoreCannotPublish) {
  PublishModel(TinyModel(1, 1, 1));
  ASSERT_OK_AND_ASSIGN(auto store, ModelStore::OpenForRead(path()));
  EXPECT_THAT(store->Publish(TinyModel(1, 1, 1)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("read-only")));
}

TEST_F(ModelStoreTest, MissingStoreAndMissingVersionAreNotFound) {
  EXPECT_THAT(ModelStore::OpenForRead(dir_.Sub("nothing-here")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no RocksDB database")));
  PublishModel(TinyModel(1, 1, 1));
  EXPECT_THAT(Read(2), StatusIs(absl::StatusCode::kNotFound, HasSubstr("no version 2")));
  // An empty store has no latest version.
  TempDir other;
  ASSERT_OK(ModelStore::OpenForWrite(other.path()).status());
  ASSERT_OK_AND_ASSIGN(auto empty, ModelStore::OpenForRead(other.path()));
  EXPECT_THAT(empty->LatestVersion(), StatusIs(absl::StatusCode::kNotFound));
}

// A reader reopening the store while versions are being published must only ever see
// complete versions: each listed version reads back and verifies.
TEST_F(ModelStoreTest, VersionsBecomeVisibleAtomically) {
  PublishModel(TinyModel(1, 1, 1));  // the store exists before the reader starts
  std::atomic<bool> done{false};
  std::atomic<int> checks{0};
  std::atomic<int> failures{0};
  absl::Mutex mu;
  std::string first_failure;
  auto fail = [&](const absl::Status& s) {
    ++failures;
    absl::MutexLock lock(&mu);
    if (first_failure.empty()) first_failure = s.ToString();
  };
  std::thread reader([&] {
    while (!done.load()) {
      auto store = ModelStore::OpenForRead(path());
      if (!store.ok()) {
        fail(store.status());
        continue;
      }
      auto latest = (*store)->LatestVersion();
      if (!latest.ok()) {
        fail(latest.status());
        continue;
      }
      auto data = (*store)->ReadVersion(latest->version);
      if (!data.ok()) {
        fail(data.status());
      } else if (data->num_users() != latest->num_users) {
        fail(absl::InternalError("row count differs from the manifest"));
      }
      ++checks;
    }
  });
  {
    ASSERT_OK_AND_ASSIGN(auto store, ModelStore::OpenForWrite(path()));
    for (uint32_t i = 0; i < 15; ++i) {
      ASSERT_OK(store->Publish(TinyModel(200 + 50 * i, 30, 8)).status());
    }
  }
  done = true;
  reader.join();
  EXPECT_EQ(failures.load(), 0) << "first failure: " << first_failure;
  EXPECT_GT(checks.load(), 0);
}

TEST_F(ModelStoreTest, StaleIngestFileOfACrashedPublisherIsInvisibleAndCleaned) {
  PublishModel(TinyModel(2, 2, 2));
  // A publisher that died after writing its SST file but before ingesting it.
  const std::filesystem::path stale = std::filesystem::path(path()) / "ingest" / "version-2.sst";
  std::filesystem::create_directories(stale.parent_path());
  { std::ofstream(stale) << "half-written"; }
  ASSERT_OK_AND_ASSIGN(auto reader, ModelStore::OpenForRead(path()));
  ASSERT_OK_AND_ASSIGN(auto latest, reader->LatestVersion());
  EXPECT_EQ(latest.version, 1u);
  reader.reset();
  ASSERT_OK_AND_ASSIGN(auto writer, ModelStore::OpenForWrite(path()));
  EXPECT_FALSE(std::filesystem::exists(stale));
  ASSERT_OK_AND_ASSIGN(auto info, writer->Publish(TinyModel(2, 2, 2)));
  EXPECT_EQ(info.version, 2u);
}

// --- damaged versions: each must be a clear DataLoss (or NotFound), never a crash ---

TEST_F(ModelStoreTest, TruncatedRowIsDataLoss) {
  const uint64_t v = PublishModel(TinyModel(3, 3, 4));
  Tamper([&](rocksdb::DB* db) {
    std::string value;
    ASSERT_TRUE(db->Get({}, internal::UserKey(v, "u1"), &value).ok());
    value.resize(value.size() - 3);
    ASSERT_TRUE(db->Put({}, internal::UserKey(v, "u1"), value).ok());
  });
  // Format 3 (as 2): bias, 4 factors, segment index.
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss,
                                HasSubstr("user 'u1': value is 21 bytes, expected 24")));
}

TEST_F(ModelStoreTest, MissingRowIsDataLoss) {
  const uint64_t v = PublishModel(TinyModel(3, 3, 4));
  Tamper([&](rocksdb::DB* db) {
    ASSERT_TRUE(db->Delete({}, internal::CouponKey(v, "c2")).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss,
                                HasSubstr("has 2 coupon rows, the manifest says 3")));
}

TEST_F(ModelStoreTest, ExtraRowIsDataLoss) {
  const uint64_t v = PublishModel(TinyModel(3, 3, 4));
  Tamper([&](rocksdb::DB* db) {
    std::string value;
    ASSERT_TRUE(db->Get({}, internal::UserKey(v, "u0"), &value).ok());
    ASSERT_TRUE(db->Put({}, internal::UserKey(v, "u9"), value).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("more user rows")));
}

TEST_F(ModelStoreTest, RowOfAnotherDimensionIsDataLoss) {
  const uint64_t v = PublishModel(TinyModel(3, 3, 4));
  Tamper([&](rocksdb::DB* db) {
    std::string value;
    ASSERT_TRUE(db->Get({}, internal::CouponKey(v, "c0"), &value).ok());
    value.insert(4, std::string(sizeof(float), '\0'));  // one factor too many
    ASSERT_TRUE(db->Put({}, internal::CouponKey(v, "c0"), value).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss,
                                HasSubstr("written with another dimension")));
}

TEST_F(ModelStoreTest, ManifestOfAnotherDimensionIsDataLoss) {
  const uint64_t v = PublishModel(TinyModel(3, 3, 4));
  Tamper([&](rocksdb::DB* db) {
    std::string manifest;
    ASSERT_TRUE(db->Get({}, internal::ManifestKey(v), &manifest).ok());
    const size_t at = manifest.find("dimension=4");
    ASSERT_NE(at, std::string::npos);
    manifest.replace(at, 11, "dimension=5");
    ASSERT_TRUE(db->Put({}, internal::ManifestKey(v), manifest).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("expected")));
}

TEST_F(ModelStoreTest, ReaderCanRequireADimension) {
  const uint64_t v = PublishModel(TinyModel(3, 3, 4));
  ReadOptions options;
  options.expected_dimension = 8;
  EXPECT_THAT(Read(v, options), StatusIs(absl::StatusCode::kFailedPrecondition,
                                         HasSubstr("has dimension 4, the reader requires 8")));
  options.expected_dimension = 4;
  EXPECT_OK(Read(v, options).status());
}

TEST_F(ModelStoreTest, NonFiniteNumberIsDataLoss) {
  const uint64_t v = PublishModel(TinyModel(3, 3, 4));
  Tamper([&](rocksdb::DB* db) {
    std::string value;
    ASSERT_TRUE(db->Get({}, internal::UserKey(v, "u2"), &value).ok());
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(value.data() + 8, &nan, sizeof(nan));
    ASSERT_TRUE(db->Put({}, internal::UserKey(v, "u2"), value).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss,
                                HasSubstr("user 'u2': non-finite number")));
}

TEST_F(ModelStoreTest, FlippedBitIsCaughtByTheChecksum) {
  const uint64_t v = PublishModel(TinyModel(3, 3, 4));
  Tamper([&](rocksdb::DB* db) {
    std::string value;
    ASSERT_TRUE(db->Get({}, internal::CouponKey(v, "c1"), &value).ok());
    value[6] ^= 0x01;  // a finite factor stays finite, but changes
    ASSERT_TRUE(db->Put({}, internal::CouponKey(v, "c1"), value).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
}

TEST_F(ModelStoreTest, GarbledManifestIsDataLoss) {
  const uint64_t v = PublishModel(TinyModel(3, 3, 4));
  Tamper([&](rocksdb::DB* db) {
    ASSERT_TRUE(db->Put({}, internal::ManifestKey(v), "format=1\nversion=1\n").ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("missing fields")));
  Tamper([&](rocksdb::DB* db) {
    ASSERT_TRUE(db->Put({}, internal::ManifestKey(v), std::string("\xff\x00\x01", 3)).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(ModelStoreTest, DamagedAttributesAreDataLoss) {
  const uint64_t v = PublishModel(TinyModel(1, 2, 2));
  Tamper([&](rocksdb::DB* db) {
    std::string value;
    ASSERT_TRUE(db->Get({}, internal::CouponKey(v, "c0"), &value).ok());
    const int64_t stock = -7;
    std::memcpy(value.data() + value.size() - sizeof(int64_t), &stock, sizeof(stock));
    ASSERT_TRUE(db->Put({}, internal::CouponKey(v, "c0"), value).ok());
  });
  // The checksum catches it first; either way the version is refused.
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(ModelStoreTest, LoadSnapshotServesTheStoredNumbers) {
  const core::ModelData model = TinyModel(4, 6, 3);
  const uint64_t v = PublishModel(model);
  ASSERT_OK_AND_ASSIGN(auto store, ModelStore::OpenForRead(path()));
  ASSERT_OK_AND_ASSIGN(auto snapshot, store->LoadSnapshot(v));
  EXPECT_EQ(snapshot->info().version, v);
  const std::optional<uint32_t> row = snapshot->FindUser("u3");
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(snapshot->user_bias(*row), model.user_bias[3]);
}

// --- segments (format 2) ---

TEST_F(ModelStoreTest, RoundTripsSegmentsAndUserSegments) {
  const core::ModelData model = SegmentedModel(30, 5, 4);
  ASSERT_OK(core::ValidateModelData(model));
  const uint64_t v = PublishModel(model);
  ASSERT_OK_AND_ASSIGN(core::ModelData back, Read(v));
  ExpectSameModel(model, back);
  EXPECT_EQ(back.segments, model.segments);
  EXPECT_EQ(back.segment_features, model.segment_features);
  ASSERT_EQ(back.user_segment.size(), back.num_users());
  for (const std::string& id : model.user_ids) {
    EXPECT_EQ(SegmentOf(back, id), SegmentOf(model, id)) << id;
  }

  ASSERT_OK_AND_ASSIGN(auto store, ModelStore::OpenForRead(path()));
  ASSERT_OK_AND_ASSIGN(core::ModelVersionInfo info, store->LatestVersion());
  EXPECT_EQ(info.num_segments, 3u);
  EXPECT_EQ(info.num_segment_features, 2u);
  ASSERT_OK_AND_ASSIGN(auto snapshot, store->LoadSnapshot(v));
  EXPECT_EQ(snapshot->info().num_segments, 3u);
  ASSERT_EQ(snapshot->num_segments(), 3u);
  EXPECT_EQ(snapshot->segment(2), model.segments[2]);
  EXPECT_EQ(snapshot->segment_features(), model.segment_features);
  EXPECT_EQ(snapshot->user_segment(*snapshot->FindUser("u1")), 1);
  EXPECT_EQ(snapshot->user_segment(*snapshot->FindUser("u3")), -1);
}

TEST_F(ModelStoreTest, ModelWithoutSegmentsReadsBackWithout) {
  core::ModelData model = TinyModel(4, 2, 3);
  model.user_segment = {-1, -1, -1, -1};  // equivalent to empty
  const uint64_t v = PublishModel(model);
  ASSERT_OK_AND_ASSIGN(core::ModelData back, Read(v));
  EXPECT_TRUE(back.segments.empty());
  EXPECT_TRUE(back.segment_features.empty());
  EXPECT_TRUE(back.user_segment.empty());
  ASSERT_OK_AND_ASSIGN(auto store, ModelStore::OpenForRead(path()));
  ASSERT_OK_AND_ASSIGN(auto snapshot, store->LoadSnapshot(v));
  EXPECT_EQ(snapshot->num_segments(), 0u);
  EXPECT_EQ(snapshot->user_segment(0), -1);
  Tamper([&](rocksdb::DB* db) {
    std::string manifest;
    ASSERT_TRUE(db->Get({}, internal::ManifestKey(v), &manifest).ok());
    EXPECT_THAT(manifest, HasSubstr("format=3\n"));
    EXPECT_THAT(manifest, HasSubstr("num_segments=0\nnum_segment_features=0\n"));
  });
}

// A version written by the format-1 writer (before segments): no s/ rows, no sf key, no
// segment counts in the manifest, user rows without the segment index. Written here key by
// key, as that writer did, checksum included.
TEST_F(ModelStoreTest, ReadsFormat1VersionsWrittenBeforeSegments) {
  const core::ModelData model = TinyModel(3, 2, 2);
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    XXH3_state_t* state = XXH3_createState();
    XXH3_64bits_reset(state);
    auto put = [&](const std::string& key, const std::string& value) {
      const uint64_t lengths[2] = {key.size(), value.size()};
      XXH3_64bits_update(state, lengths, sizeof(lengths));
      XXH3_64bits_update(state, key.data(), key.size());
      XXH3_64bits_update(state, value.data(), value.size());
      ASSERT_TRUE(db->Put({}, key, value).ok());
    };
    auto bytes = [](const void* p, size_t n) {
      return std::string(static_cast<const char*>(p), n);
    };
    for (uint32_t c = 0; c < 2; ++c) {  // "c0" < "c1": already in key order
      const core::CouponAttributes& a = model.coupon_attributes[c];
      put(internal::CouponKey(1, model.coupon_ids[c]),
          bytes(&model.coupon_bias[c], 4) + bytes(&model.coupon_factors[c * 2], 8) +
              bytes(&a.face_value, 8) + bytes(&a.valid_from_unix_seconds, 8) +
              bytes(&a.valid_until_unix_seconds, 8) + bytes(&a.stock, 8));
    }
    for (uint32_t u = 0; u < 3; ++u) {
      const std::string value =
          bytes(&model.user_bias[u], 4) + bytes(&model.user_factors[u * 2], 8);
      ASSERT_EQ(value.size(), internal::UserValueBytes(2, /*format=*/1));
      put(internal::UserKey(1, model.user_ids[u]), value);
    }
    const uint64_t checksum = XXH3_64bits_digest(state);
    XXH3_freeState(state);
    ASSERT_TRUE(db->Put({}, internal::ManifestKey(1),
                        absl::StrFormat("format=1\nversion=1\ndimension=2\nnum_users=3\n"
                                        "num_coupons=2\nglobal_bias=%.17g\n"
                                        "created_unix_seconds=1700000000\nchecksum=%016x\n"
                                        "description=%s\n",
                                        model.global_bias, checksum, model.description))
                    .ok());
    ASSERT_TRUE(db->Close().ok());
  }
  ASSERT_OK_AND_ASSIGN(core::ModelData back, Read(1));
  ExpectSameModel(model, back);
  EXPECT_TRUE(back.segments.empty());
  EXPECT_TRUE(back.user_segment.empty());
  {
    ASSERT_OK_AND_ASSIGN(auto store, ModelStore::OpenForRead(path()));
    ASSERT_OK_AND_ASSIGN(auto snapshot, store->LoadSnapshot(1));
    EXPECT_EQ(snapshot->info().num_segments, 0u);
    EXPECT_EQ(snapshot->user_segment(0), -1);
  }
  // The writer adds a format-3 version beside it; both read.
  const uint64_t v2 = PublishModel(SegmentedModel(5, 2, 2));
  EXPECT_EQ(v2, 2u);
  EXPECT_OK(Read(1).status());
  ASSERT_OK_AND_ASSIGN(core::ModelData second, Read(2));
  EXPECT_EQ(second.segments.size(), 3u);
}

TEST_F(ModelStoreTest, FormatFromTheFutureIsDataLoss) {
  const uint64_t v = PublishModel(TinyModel(1, 1, 1));
  Tamper([&](rocksdb::DB* db) {
    std::string manifest;
    ASSERT_TRUE(db->Get({}, internal::ManifestKey(v), &manifest).ok());
    const size_t at = manifest.find("format=3");
    ASSERT_NE(at, std::string::npos);
    manifest.replace(at, 8, "format=4");
    ASSERT_TRUE(db->Put({}, internal::ManifestKey(v), manifest).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss,
                                HasSubstr("format 4 is not supported (this reader reads 1 to 3)")));
}

TEST_F(ModelStoreTest, TruncatedSegmentRowIsDataLoss) {
  const uint64_t v = PublishModel(SegmentedModel(4, 2, 3));
  Tamper([&](rocksdb::DB* db) {
    std::string value;
    ASSERT_TRUE(db->Get({}, internal::SegmentKey(v, 1), &value).ok());
    ASSERT_EQ(value.size(), internal::SegmentValueBytes(9, 3, 2));
    value.resize(value.size() - 8);  // members lost
    ASSERT_TRUE(db->Put({}, internal::SegmentKey(v, 1), value).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss,
                                HasSubstr("segment 1: value is 45 bytes, which does not fit "
                                          "dimension 3 and 2 segment features")));
}

TEST_F(ModelStoreTest, MissingOrExtraSegmentRowIsDataLoss) {
  const uint64_t v = PublishModel(SegmentedModel(4, 2, 3));
  std::string row2;
  Tamper([&](rocksdb::DB* db) {
    ASSERT_TRUE(db->Get({}, internal::SegmentKey(v, 2), &row2).ok());
    ASSERT_TRUE(db->Delete({}, internal::SegmentKey(v, 2)).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss,
                                HasSubstr("has 2 segment rows, the manifest says 3")));
  Tamper([&](rocksdb::DB* db) {
    ASSERT_TRUE(db->Put({}, internal::SegmentKey(v, 2), row2).ok());
    ASSERT_TRUE(db->Put({}, internal::SegmentKey(v, 3), row2).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss,
                                HasSubstr("more segment rows than the manifest's 3")));
  // A row out of its numbering (segment 2 stored as 7).
  Tamper([&](rocksdb::DB* db) {
    ASSERT_TRUE(db->Delete({}, internal::SegmentKey(v, 3)).ok());
    ASSERT_TRUE(db->Delete({}, internal::SegmentKey(v, 2)).ok());
    ASSERT_TRUE(db->Put({}, internal::SegmentKey(v, 7), row2).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss,
                                HasSubstr("segment row '000007' where segment 2 belongs")));
}

TEST_F(ModelStoreTest, UserSegmentOutOfRangeIsDataLoss) {
  const uint64_t v = PublishModel(SegmentedModel(4, 2, 3));
  Tamper([&](rocksdb::DB* db) {
    std::string value;
    ASSERT_TRUE(db->Get({}, internal::UserKey(v, "u2"), &value).ok());
    const int32_t segment = 3;  // 3 segments: 0..2
    std::memcpy(value.data() + value.size() - sizeof(segment), &segment, sizeof(segment));
    ASSERT_TRUE(db->Put({}, internal::UserKey(v, "u2"), value).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss,
                                HasSubstr("user 'u2': segment index 3 is not -1 or below the "
                                          "manifest's 3 segments")));
}

TEST_F(ModelStoreTest, NonFiniteSegmentNumberIsDataLoss) {
  const uint64_t v = PublishModel(SegmentedModel(4, 2, 3));
  Tamper([&](rocksdb::DB* db) {
    std::string value;
    ASSERT_TRUE(db->Get({}, internal::SegmentKey(v, 0), &value).ok());
    const float inf = std::numeric_limits<float>::infinity();
    // u32 name length, "segment-0", prior bias, then the first prior factor.
    std::memcpy(value.data() + 4 + 9 + 4, &inf, sizeof(inf));
    ASSERT_TRUE(db->Put({}, internal::SegmentKey(v, 0), value).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss,
                                HasSubstr("segment 0 'segment-0': non-finite number")));
}

TEST_F(ModelStoreTest, DamagedSegmentFeaturesAreDataLoss) {
  const uint64_t v = PublishModel(SegmentedModel(4, 2, 3));
  std::string features;
  Tamper([&](rocksdb::DB* db) {
    ASSERT_TRUE(db->Get({}, internal::SegmentFeaturesKey(v), &features).ok());
    ASSERT_TRUE(db->Delete({}, internal::SegmentFeaturesKey(v)).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss,
                                HasSubstr("segment features missing (the manifest says 2)")));
  Tamper([&](rocksdb::DB* db) {
    ASSERT_TRUE(db->Put({}, internal::SegmentFeaturesKey(v),
                        features.substr(0, features.size() - 2)).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss,
                                HasSubstr("segment features: feature 1 'age=25-34': truncated")));
  Tamper([&](rocksdb::DB* db) {
    std::string wrong_count = features;
    const uint32_t count = 5;
    std::memcpy(wrong_count.data(), &count, sizeof(count));
    ASSERT_TRUE(db->Put({}, internal::SegmentFeaturesKey(v), wrong_count).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss,
                                HasSubstr("segment features: 5 features, the manifest says 2")));
  // Present in a version without segments.
  const uint64_t plain = PublishModel(TinyModel(2, 2, 3));
  Tamper([&](rocksdb::DB* db) {
    ASSERT_TRUE(db->Put({}, internal::SegmentFeaturesKey(plain), features).ok());
  });
  EXPECT_THAT(Read(plain), StatusIs(absl::StatusCode::kDataLoss,
                                    HasSubstr("segment features present, but the manifest says "
                                              "there are none")));
}

TEST_F(ModelStoreTest, FlippedSegmentBitIsCaughtByTheChecksum) {
  const uint64_t v = PublishModel(SegmentedModel(4, 2, 3));
  Tamper([&](rocksdb::DB* db) {
    std::string value;
    ASSERT_TRUE(db->Get({}, internal::SegmentKey(v, 1), &value).ok());
    value[4 + 9 + 4 + 1] ^= 0x01;  // inside the first prior factor: stays finite
    ASSERT_TRUE(db->Put({}, internal::SegmentKey(v, 1), value).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
}

TEST_F(ModelStoreTest, SegmentCountsInTheManifestMustAgree) {
  const uint64_t v = PublishModel(SegmentedModel(4, 2, 3));
  Tamper([&](rocksdb::DB* db) {
    std::string manifest;
    ASSERT_TRUE(db->Get({}, internal::ManifestKey(v), &manifest).ok());
    const size_t at = manifest.find("num_segment_features=2");
    ASSERT_NE(at, std::string::npos);
    manifest.replace(at, 22, "num_segment_features=0");
    ASSERT_TRUE(db->Put({}, internal::ManifestKey(v), manifest).ok());
  });
  EXPECT_THAT(Read(v), StatusIs(absl::StatusCode::kDataLoss,
                                HasSubstr("3 segments over 0 segment features")));
}

// --- coupon cold start (format 3) ---

// TinyModel whose odd coupons had their factors predicted from attributes.
core::ModelData ModelWithPredictedCoupons(uint32_t users, uint32_t coupons, uint32_t dim) {
  core::ModelData m = SegmentedModel(users, coupons, dim);
  for (uint32_t c = 0; c < coupons; ++c) m.coupon_predicted_from_attributes.push_back(c % 2);
  return m;
}

// The flag of coupon `id` in `m` (0 when the vector is empty).
int FlagOf(const core::ModelData& m, const std::string& id) {
  const auto it = std::find(m.coupon_ids.begin(), m.coupon_ids.end(), id);
  if (it == m.coupon_ids.end() || m.coupon_predicted_from_attributes.empty()) return 0;
  return m.coupon_predicted_from_attributes[it - m.coupon_ids.begin()];
}

TEST_F(ModelStoreTest, RoundTripsThePredictedFromAttributesFlagPerCoupon) {
  const core::ModelData model = ModelWithPredictedCoupons(4, 12, 3);
  ASSERT_OK(core::ValidateModelData(model));
  const uint64_t v = PublishModel(model);
  ASSERT_OK_AND_ASSIGN(core::ModelData back, Read(v));
  ExpectSameModel(model, back);
  ASSERT_EQ(back.coupon_predicted_from_attributes.size(), 12u);
  int predicted = 0;
  for (const std::string& id : model.coupon_ids) {
    EXPECT_EQ(FlagOf(back, id), FlagOf(model, id)) << id;
    predicted += FlagOf(back, id);
  }
  EXPECT_EQ(predicted, 6);
  ASSERT_OK_AND_ASSIGN(auto store, ModelStore::OpenForRead(path()));
  ASSERT_OK_AND_ASSIGN(auto snapshot, store->LoadSnapshot(v));
  EXPECT_FALSE(snapshot->coupon_predicted_from_attributes(*snapshot->FindCoupon("c0")));
  EXPECT_TRUE(snapshot->coupon_predicted_from_attributes(*snapshot->FindCoupon("c11")));
}

TEST_F(ModelStoreTest, ModelWithoutPredictedCouponsReadsBackWithAnEmptyFlagVector) {
  core::ModelData model = TinyModel(2, 3, 2);
  model.coupon_predicted_from_attributes = {0, 0, 0};  // equivalent to empty
  const uint64_t v = PublishModel(model);
  ASSERT_OK_AND_ASSIGN(core::ModelData back, Read(v));
  EXPECT_TRUE(back.coupon_predicted_from_attributes.empty());
  ASSERT_OK_AND_ASSIGN(auto store, ModelStore::OpenForRead(path()));
  ASSERT_OK_AND_ASSIGN(auto snapshot, store->LoadSnapshot(v));
  EXPECT_FALSE(snapshot->coupon_predicted_from_attributes(0));
}

TEST_F(ModelStoreTest, RefusesAFlagVectorOfTheWrongSizeOrValue) {
  auto store = ModelStore::OpenForWrite(path());
  ASSERT_OK(store.status());
  core::ModelData model = TinyModel(2, 3, 2);
  model.coupon_predicted_from_attributes = {0, 1};
  EXPECT_THAT((*store)->Publish(model),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("coupon_predicted_from_attributes")));
  model.coupon_predicted_from_attributes = {0, 2, 0};
  EXPECT_THAT((*store)->Publish(model),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("coupon_predicted_from_attributes: 2 for 'c1'")));
}

// Writes `m` as version `version` in the layout of `format` (2 or 3) key by key, as those
// writers did, checksum included; `flag_of` gives format 3's coupon flag byte (so that a
// test can store a value the writer never would).
void WriteByHand(rocksdb::DB* db, const core::ModelData& m, uint64_t version, int format,
                 const std::function<uint8_t(size_t)>& flag_of) {
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  std::vector<std::pair<std::string, std::string>> rows;
  auto bytes = [](const void* p, size_t n) { return std::string(static_cast<const char*>(p), n); };
  const uint32_t d = m.dimension;
  for (size_t c = 0; c < m.num_coupons(); ++c) {
    const core::CouponAttributes& a = m.coupon_attributes[c];
    std::string value = bytes(&m.coupon_bias[c], 4) + bytes(&m.coupon_factors[c * d], 4 * d) +
                        bytes(&a.face_value, 8) + bytes(&a.valid_from_unix_seconds, 8) +
                        bytes(&a.valid_until_unix_seconds, 8) + bytes(&a.stock, 8);
    if (format >= 3) value += static_cast<char>(flag_of(c));
    rows.emplace_back(internal::CouponKey(version, m.coupon_ids[c]), value);
  }
  for (size_t i = 0; i < m.num_segments(); ++i) {
    const core::SegmentData& s = m.segments[i];
    const uint32_t name_bytes = static_cast<uint32_t>(s.name.size());
    rows.emplace_back(internal::SegmentKey(version, i),
                      bytes(&name_bytes, 4) + s.name + bytes(&s.prior_bias, 4) +
                          bytes(s.prior_factors.data(), 4 * d) +
                          bytes(s.centroid.data(), 4 * s.centroid.size()) +
                          bytes(&s.redemption_rate, 8) + bytes(&s.members, 8));
  }
  if (!m.segment_features.empty()) {
    const uint32_t count = static_cast<uint32_t>(m.segment_features.size());
    std::string value = bytes(&count, 4);
    for (const core::SegmentFeature& f : m.segment_features) {
      const uint32_t name_bytes = static_cast<uint32_t>(f.name.size());
      value += bytes(&name_bytes, 4) + f.name + bytes(&f.offset, 4) + bytes(&f.scale, 4);
    }
    rows.emplace_back(internal::SegmentFeaturesKey(version), value);
  }
  for (size_t u = 0; u < m.num_users(); ++u) {
    const int32_t segment = m.user_segment.empty() ? -1 : m.user_segment[u];
    rows.emplace_back(internal::UserKey(version, m.user_ids[u]),
                      bytes(&m.user_bias[u], 4) + bytes(&m.user_factors[u * d], 4 * d) +
                          bytes(&segment, 4));
  }
  std::sort(rows.begin(), rows.end());  // the checksum is over key order
  for (const auto& [key, value] : rows) {
    const uint64_t lengths[2] = {key.size(), value.size()};
    XXH3_64bits_update(state, lengths, sizeof(lengths));
    XXH3_64bits_update(state, key.data(), key.size());
    XXH3_64bits_update(state, value.data(), value.size());
    ASSERT_TRUE(db->Put({}, key, value).ok());
  }
  const uint64_t checksum = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  ASSERT_TRUE(db->Put({}, internal::ManifestKey(version),
                      absl::StrFormat("format=%d\nversion=%d\ndimension=%d\nnum_users=%d\n"
                                      "num_coupons=%d\nnum_segments=%d\n"
                                      "num_segment_features=%d\nglobal_bias=%.17g\n"
                                      "created_unix_seconds=1700000000\nchecksum=%016x\n"
                                      "description=%s\n",
                                      format, version, d, m.num_users(), m.num_coupons(),
                                      m.num_segments(), m.segment_features.size(),
                                      m.global_bias, checksum, m.description))
                  .ok());
}

// A version written by the format-2 writer (segments, no coupon cold start): coupon rows
// without the flag byte. It reads back with every coupon trained.
TEST_F(ModelStoreTest, ReadsFormat2VersionsWrittenBeforeCouponColdStart) {
  const core::ModelData model = SegmentedModel(5, 3, 2);
  ASSERT_OK(ModelStore::OpenForWrite(path()).status());  // creates the store
  Tamper([&](rocksdb::DB* db) { WriteByHand(db, model, 1, 2, nullptr); });
  ASSERT_OK_AND_ASSIGN(core::ModelData back, Read(1));
  ExpectSameModel(model, back);
  EXPECT_EQ(back.segments, model.segments);
  EXPECT_TRUE(back.coupon_predicted_from_attributes.empty());
  {
    ASSERT_OK_AND_ASSIGN(auto store, ModelStore::OpenForRead(path()));
    ASSERT_OK_AND_ASSIGN(auto snapshot, store->LoadSnapshot(1));
    EXPECT_FALSE(snapshot->coupon_predicted_from_attributes(0));
  }
  // The writer adds a format-3 version beside it; both read.
  EXPECT_EQ(PublishModel(ModelWithPredictedCoupons(5, 3, 2)), 2u);
  EXPECT_OK(Read(1).status());
  ASSERT_OK_AND_ASSIGN(core::ModelData second, Read(2));
  EXPECT_EQ(FlagOf(second, "c1"), 1);
}

// The writer's coupon rows are byte for byte the documented format-3 layout.
TEST_F(ModelStoreTest, Format3CouponRowsAreAsDocumented) {
  const core::ModelData model = ModelWithPredictedCoupons(4, 5, 3);
  const uint64_t v = PublishModel(model);
  Tamper([&](rocksdb::DB* db) {
    WriteByHand(db, model, v + 1, 3,
                [&](size_t c) { return model.coupon_predicted_from_attributes[c]; });
    for (const std::string& id : model.coupon_ids) {
      std::string written, by_hand;
      ASSERT_TRUE(db->Get({}, internal::CouponKey(v, id), &written).ok());
      ASSERT_TRUE(db->Get({}, internal::CouponKey(v + 1, id), &by_hand).ok());
      EXPECT_EQ(written, by_hand) << id;
      EXPECT_EQ(written.size(), internal::CouponValueBytes(3, /*format=*/3));
    }
  });
  ASSERT_OK_AND_ASSIGN(core::ModelData back, Read(v + 1));
  ExpectSameModel(model, back);
  EXPECT_EQ(FlagOf(back, "c3"), 1);
  EXPECT_EQ(FlagOf(back, "c2"), 0);
}

TEST_F(ModelStoreTest, CouponFlagOtherThan0Or1IsDataLoss) {
  const core::ModelData model = TinyModel(2, 3, 2);
  ASSERT_OK(ModelStore::OpenForWrite(path()).status());  // creates the store
  Tamper([&](rocksdb::DB* db) {
    WriteByHand(db, model, 1, 3, [](size_t c) { return c == 1 ? uint8_t{2} : uint8_t{0}; });
  });
  EXPECT_THAT(Read(1), StatusIs(absl::StatusCode::kDataLoss,
                                HasSubstr("coupon 'c1': predicted-from-attributes flag 2")));
}

// A format-3 manifest over rows written without the flag byte (format 2's), and the
// reverse: the row size disagrees with the manifest's format.
TEST_F(ModelStoreTest, CouponRowsOfAnotherFormatAreDataLoss) {
  const core::ModelData model = TinyModel(2, 3, 2);
  ASSERT_OK(ModelStore::OpenForWrite(path()).status());  // creates the store
  Tamper([&](rocksdb::DB* db) {
    WriteByHand(db, model, 1, 2, nullptr);
    std::string manifest;
    ASSERT_TRUE(db->Get({}, internal::ManifestKey(1), &manifest).ok());
    manifest.replace(manifest.find("format=2"), 8, "format=3");
    ASSERT_TRUE(db->Put({}, internal::ManifestKey(1), manifest).ok());
    WriteByHand(db, model, 2, 3, [](size_t) { return uint8_t{0}; });
    ASSERT_TRUE(db->Get({}, internal::ManifestKey(2), &manifest).ok());
    manifest.replace(manifest.find("format=3"), 8, "format=2");
    ASSERT_TRUE(db->Put({}, internal::ManifestKey(2), manifest).ok());
  });
  // 4 + 8 + 32 bytes; format 3 expects one more.
  EXPECT_THAT(Read(1), StatusIs(absl::StatusCode::kDataLoss,
                                HasSubstr("coupon 'c0': value is 44 bytes, expected 45")));
  EXPECT_THAT(Read(2), StatusIs(absl::StatusCode::kDataLoss,
                                HasSubstr("coupon 'c0': value is 45 bytes, expected 44")));
}

}  // namespace
}  // namespace coupond::storage
