#include "storage/model_store.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <numeric>
#include <system_error>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/rocksdb_status.h"
#include "common/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/sst_file_writer.h"
#include "storage/keys.h"
#include "storage/version_codec.h"

namespace coupond::storage {
namespace {

namespace fs = std::filesystem;
using internal::CouponKey;
using internal::CouponPrefix;
using internal::CouponValueBytes;
using internal::DecodeCouponRow;
using internal::DecodeManifest;
using internal::DecodeSegmentFeatures;
using internal::DecodeSegmentRow;
using internal::DecodeUserRow;
using internal::EncodeCoupon;
using internal::EncodeManifest;
using internal::EncodeSegment;
using internal::EncodeSegmentFeatures;
using internal::EncodeUser;
using internal::ManifestKey;
using internal::RowHasher;
using internal::SegmentFeaturesKey;
using internal::SegmentKey;
using internal::SegmentPrefix;
using internal::UserKey;
using internal::UserPrefix;
using internal::UserValueBytes;
using internal::VersionDataLoss;

constexpr char kIngestDir[] = "ingest";

absl::string_view View(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

bool ParseVersionTag(absl::string_view tag, uint64_t* version) {
  return tag.size() == 20 && absl::SimpleAtoi(tag, version);
}

// The smallest key greater than every key that starts with `prefix`.
std::string PrefixUpperBound(std::string prefix) {
  prefix.back() = static_cast<char>(prefix.back() + 1);  // prefixes end in '/', never 0xff
  return prefix;
}

}  // namespace

ModelStore::ModelStore(std::string path, std::unique_ptr<rocksdb::DB> db, bool writable)
    : path_(std::move(path)), db_(std::move(db)), writable_(writable) {}

ModelStore::~ModelStore() {
  // Close() flushes nothing we depend on (versions arrive by ingestion, which is durable
  // before IngestExternalFile returns), so a failure here loses no data.
  if (db_ != nullptr) db_->Close().PermitUncheckedError();
}

absl::StatusOr<std::unique_ptr<ModelStore>> ModelStore::OpenForWrite(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("model store '", path, "': cannot create directory: ", ec.message()));
  }
  rocksdb::Options options;
  options.create_if_missing = true;
  // Versions never overlap (see model_store.h): nothing to compact, and no file deletion
  // that could race with a reader's open.
  options.disable_auto_compactions = true;
  // The store's files besides its tables stay bounded (docs/store-format.md), whatever the
  // history. Info LOG: every writer open starts a new one and keeps the old (default: 1,000
  // of them, one per couponctl run), and one writer's LOG grows a few hundred bytes per
  // publish or prune without limit: roll it at 256 KiB and keep 3.
  options.keep_log_file_num = kKeptLogFiles;
  options.max_log_file_size = kMaxLogFileBytes;
  // A MANIFEST grows by one record (~150 bytes) per publish and per prune while a writer
  // stays open (a pipeline, a test), and every reader open replays it whole, so reopening
  // would cost more with every publish: start a fresh one (RocksDB writes a compact summary
  // of the live files first) once it passes 64 KiB, not the default 1 GiB.
  options.max_manifest_file_size = kMaxManifestBytes;
  rocksdb::DB* raw = nullptr;
  COUPOND_RETURN_IF_ERROR(
      common::FromRocksDb(rocksdb::DB::Open(options, path, &raw), absl::StrCat("model store '", path,
                                                                         "': open for write")));
  // A publisher that died between writing and ingesting leaves its SST file behind.
  fs::remove_all(fs::path(path) / kIngestDir, ec);
  return std::unique_ptr<ModelStore>(
      new ModelStore(path, std::unique_ptr<rocksdb::DB>(raw), /*writable=*/true));
}

absl::StatusOr<std::unique_ptr<ModelStore>> ModelStore::OpenForRead(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(fs::path(path) / "CURRENT", ec)) {
    return absl::NotFoundError(absl::StrCat("model store '", path,
                                            "': no RocksDB database there (publish a model "
                                            "first: couponctl publish)"));
  }
  rocksdb::Options options;
  // Open every table file now: a file the writer deletes later (ModelStore::Prune) then
  // stays readable through its descriptor for as long as this store stays open.
  options.max_open_files = -1;
  rocksdb::DB* raw = nullptr;
  // A writer changing its MANIFEST while we read it can fail an open transiently; the store
  // itself is fine, so try again a few times before reporting.
  rocksdb::Status s;
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10 << attempt));
    s = rocksdb::DB::OpenForReadOnly(options, path, &raw);
    if (s.ok()) break;
  }
  COUPOND_RETURN_IF_ERROR(common::FromRocksDb(s, absl::StrCat("model store '", path, "': open for read")));
  return std::unique_ptr<ModelStore>(
      new ModelStore(path, std::unique_ptr<rocksdb::DB>(raw), /*writable=*/false));
}

StagedVersion::StagedVersion(StagedVersion&& other) noexcept
    : info_(std::move(other.info_)), file_(std::exchange(other.file_, std::string())) {}

StagedVersion& StagedVersion::operator=(StagedVersion&& other) noexcept {
  if (this != &other) {
    std::error_code ignored;
    if (!file_.empty()) fs::remove(file_, ignored);
    info_ = std::move(other.info_);
    file_ = std::exchange(other.file_, std::string());
  }
  return *this;
}

StagedVersion::~StagedVersion() {
  std::error_code ignored;
  if (!file_.empty()) fs::remove(file_, ignored);
}

absl::StatusOr<core::ModelVersionInfo> ModelStore::Publish(const core::ModelData& model,
                                                           const PublishOptions& options) {
  COUPOND_ASSIGN_OR_RETURN(StagedVersion staged, Stage(model, options));
  return Commit(std::move(staged));
}

absl::StatusOr<core::ModelVersionInfo> ModelStore::Commit(StagedVersion staged) {
  if (!writable_) {
    return absl::FailedPreconditionError(
        absl::StrCat("model store '", path_, "' is open read-only"));
  }
  if (staged.file_.empty()) {
    return absl::FailedPreconditionError("Commit: the staged version was already committed");
  }
  COUPOND_ASSIGN_OR_RETURN(std::vector<core::ModelVersionInfo> versions, ListVersions());
  if (!versions.empty() && versions.back().version >= staged.info_.version) {
    return absl::FailedPreconditionError(
        absl::StrCat("staged version ", staged.info_.version,
                     " is not newer than the newest stored version ", versions.back().version));
  }
  rocksdb::IngestExternalFileOptions ingest;
  ingest.move_files = true;  // hard-link instead of copying; same filesystem by design
  COUPOND_RETURN_IF_ERROR(
      common::FromRocksDb(db_->IngestExternalFile({staged.file_}, ingest),
                  absl::StrCat("ingesting version ", staged.info_.version)));
  std::error_code ignored;
  fs::remove(staged.file_, ignored);  // the store holds its own link now
  staged.file_.clear();
  return staged.info_;
}

absl::StatusOr<StagedVersion> ModelStore::Stage(const core::ModelData& model,
                                                const PublishOptions& options) {
  if (!writable_) {
    return absl::FailedPreconditionError(
        absl::StrCat("model store '", path_, "' is open read-only"));
  }
  COUPOND_RETURN_IF_ERROR(core::ValidateModelData(model));

  uint64_t newest = 0;
  {
    COUPOND_ASSIGN_OR_RETURN(std::vector<core::ModelVersionInfo> versions, ListVersions());
    if (!versions.empty()) newest = versions.back().version;
  }
  core::ModelVersionInfo info =
      core::DescribeModel(model, options.version == 0 ? newest + 1 : options.version);
  if (info.version <= newest) {
    return absl::FailedPreconditionError(absl::StrCat(
        "version ", info.version, " is not newer than the newest stored version ", newest));
  }
  info.created_unix_seconds =
      options.created_unix_seconds != 0 ? options.created_unix_seconds : std::time(nullptr);
  info.description = model.description;
  info.metadata = model.metadata;

  // SstFileWriter needs keys in ascending order: coupons ("c/", by id), segments ("s/", by
  // zero-padded index), segment features ("sf"), users ("u/", by id); the manifest
  // ("~manifest") sorts after every data key of the version. SstFileWriter::Put refuses a
  // key out of order, so a mistake here fails the publish rather than the reads.
  auto sorted_rows = [](const std::vector<std::string>& ids) {
    std::vector<uint32_t> order(ids.size());
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(),
              [&ids](uint32_t a, uint32_t b) { return ids[a] < ids[b]; });
    return order;
  };

  std::error_code ec;
  const fs::path dir = fs::path(path_) / kIngestDir;
  fs::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", dir.string(), ": ",
                                                     ec.message()));
  // Unique per stage, so two staged copies of one version never share (and delete) a file.
  static std::atomic<uint64_t> staged_count{0};
  const std::string sst =
      (dir / absl::StrCat("version-", info.version, "-", getpid(), "-", staged_count++, ".sst"))
          .string();

  absl::Status status = [&]() -> absl::Status {
    const rocksdb::EnvOptions env_options;
    const rocksdb::Options sst_options;
    rocksdb::SstFileWriter writer(env_options, sst_options);
    COUPOND_RETURN_IF_ERROR(common::FromRocksDb(writer.Open(sst), "SstFileWriter::Open " + sst));
    RowHasher hasher;
    for (uint32_t row : sorted_rows(model.coupon_ids)) {
      const std::string key = CouponKey(info.version, model.coupon_ids[row]);
      const std::string value = EncodeCoupon(model, row);
      hasher.Add(key, value);
      COUPOND_RETURN_IF_ERROR(common::FromRocksDb(writer.Put(key, value), "SstFileWriter::Put"));
    }
    for (size_t i = 0; i < model.segments.size(); ++i) {
      const std::string key = SegmentKey(info.version, i);
      const std::string value = EncodeSegment(model, i);
      hasher.Add(key, value);
      COUPOND_RETURN_IF_ERROR(common::FromRocksDb(writer.Put(key, value), "SstFileWriter::Put"));
    }
    if (!model.segment_features.empty()) {
      const std::string key = SegmentFeaturesKey(info.version);
      const std::string value = EncodeSegmentFeatures(model);
      hasher.Add(key, value);
      COUPOND_RETURN_IF_ERROR(common::FromRocksDb(writer.Put(key, value), "SstFileWriter::Put"));
    }
    for (uint32_t row : sorted_rows(model.user_ids)) {
      const std::string key = UserKey(info.version, model.user_ids[row]);
      const std::string value = EncodeUser(model, row);
      hasher.Add(key, value);
      COUPOND_RETURN_IF_ERROR(common::FromRocksDb(writer.Put(key, value), "SstFileWriter::Put"));
    }
    info.checksum = hasher.Digest();
    COUPOND_RETURN_IF_ERROR(common::FromRocksDb(
        writer.Put(ManifestKey(info.version), EncodeManifest(info)), "SstFileWriter::Put"));
    return common::FromRocksDb(writer.Finish(), "SstFileWriter::Finish");
  }();
  if (!status.ok()) {
    fs::remove(sst, ec);  // a partial file
    return status;
  }
  return StagedVersion(std::move(info), sst);
}

absl::StatusOr<std::vector<core::ModelVersionInfo>> ModelStore::ListVersions() const {
  // Hop from version to version: seek to the next "v/<tag>/", read its manifest, then seek
  // past that version's range. Cost: a few seeks per version, independent of its size.
  std::vector<core::ModelVersionInfo> versions;
  rocksdb::ReadOptions ro;
  const std::string upper = PrefixUpperBound(std::string(internal::kVersionsPrefix));
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  const size_t prefix = internal::kVersionsPrefix.size();
  for (it->Seek(rocksdb::Slice(internal::kVersionsPrefix.data(), prefix)); it->Valid();) {
    const absl::string_view key = View(it->key());
    uint64_t version = 0;
    if (key.size() < prefix + 21 || key[prefix + 20] != '/' ||
        !ParseVersionTag(key.substr(prefix, 20), &version)) {
      return absl::DataLossError(absl::StrCat("model store '", path_, "': malformed key '",
                                              absl::CHexEscape(key.substr(0, 64)), "'"));
    }
    std::string manifest;
    const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), ManifestKey(version), &manifest);
    if (s.ok()) {
      COUPOND_ASSIGN_OR_RETURN(core::ModelVersionInfo info, DecodeManifest(version, manifest));
      versions.push_back(std::move(info));
    } else if (!s.IsNotFound()) {
      COUPOND_RETURN_IF_ERROR(common::FromRocksDb(s, absl::StrCat("reading manifest of version ", version)));
    }
    // A range without a manifest cannot come from Publish (one atomic file per version);
    // it is left out of the list, and ReadVersion reports it as missing.
    it->Seek(PrefixUpperBound(internal::VersionPrefix(version)));
  }
  COUPOND_RETURN_IF_ERROR(common::FromRocksDb(it->status(), "listing versions"));
  return versions;
}

absl::StatusOr<core::ModelVersionInfo> ModelStore::LatestVersion() const {
  COUPOND_ASSIGN_OR_RETURN(std::vector<core::ModelVersionInfo> versions, ListVersions());
  if (versions.empty()) {
    return absl::NotFoundError(absl::StrCat("model store '", path_, "' holds no version"));
  }
  return std::move(versions.back());
}

absl::StatusOr<core::ModelVersionInfo> ModelStore::ReadManifest(uint64_t version,
                                                                int* format) const {
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), ManifestKey(version), &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(
        absl::StrCat("model store '", path_, "': no version ", version));
  }
  COUPOND_RETURN_IF_ERROR(common::FromRocksDb(s, absl::StrCat("reading manifest of version ", version)));
  return DecodeManifest(version, value, format);
}

absl::StatusOr<core::ModelData> ModelStore::ReadVersion(uint64_t version,
                                                        const ReadOptions& options) const {
  // One RocksDB snapshot for all rows of the version.
  rocksdb::ManagedSnapshot snapshot(db_.get());
  int format = 0;
  COUPOND_ASSIGN_OR_RETURN(const core::ModelVersionInfo info, ReadManifest(version, &format));
  if (options.expected_dimension != 0 && info.dimension != options.expected_dimension) {
    return absl::FailedPreconditionError(
        absl::StrCat("version ", version, " has dimension ", info.dimension,
                     ", the reader requires ", options.expected_dimension));
  }
  auto loss = [version](absl::string_view what) { return VersionDataLoss(version, what); };

  const uint32_t d = info.dimension;
  const size_t num_features = info.num_segment_features;
  core::ModelData m;
  m.dimension = d;
  m.global_bias = info.global_bias;
  m.description = info.description;
  m.metadata = info.metadata;
  // Counts come from a manifest that may be damaged: grow on demand beyond a modest reserve.
  // Up to it, every array is sized exactly: the snapshot keeps these arrays, and a vector
  // grown by doubling holds up to twice what it needs (which would also make the server's
  // memory check, core::ModelSnapshot::EstimateMemoryBytes, an underestimate).
  constexpr uint64_t kMaxReserve = 1 << 20;
  constexpr uint64_t kMaxReserveFloats = uint64_t{64} << 20;  // 256 MiB per factor array
  const size_t coupons_reserved = std::min(info.num_coupons, kMaxReserve);
  const size_t users_reserved = std::min(info.num_users, kMaxReserve);
  m.coupon_ids.reserve(coupons_reserved);
  m.coupon_bias.reserve(coupons_reserved);
  m.coupon_factors.reserve(std::min<uint64_t>(coupons_reserved * d, kMaxReserveFloats));
  m.coupon_attributes.reserve(coupons_reserved);
  if (format >= 3) m.coupon_predicted_from_attributes.reserve(coupons_reserved);
  m.user_ids.reserve(users_reserved);
  m.user_bias.reserve(users_reserved);
  m.user_factors.reserve(std::min<uint64_t>(users_reserved * d, kMaxReserveFloats));
  if (format >= 2) m.user_segment.reserve(users_reserved);
  RowHasher hasher;

  rocksdb::ReadOptions snapshot_ro;
  snapshot_ro.snapshot = snapshot.snapshot();
  snapshot_ro.verify_checksums = true;

  // Visits every row under `prefix`, checking the value size (unless `value_bytes` is 0:
  // rows of variable size, which `decode` checks), and hands the id and value on.
  auto scan = [&](const std::string& prefix, size_t value_bytes, uint64_t expected_rows,
                  const char* kind, auto&& decode) -> absl::Status {
    rocksdb::ReadOptions ro = snapshot_ro;
    const std::string upper = PrefixUpperBound(prefix);
    rocksdb::Slice upper_slice(upper);
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    uint64_t rows = 0;
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      const absl::string_view key = View(it->key());
      const absl::string_view value = View(it->value());
      const absl::string_view id = key.substr(prefix.size());
      if (++rows > expected_rows) {
        return loss(absl::StrCat("more ", kind, " rows than the manifest's ", expected_rows));
      }
      if (value_bytes != 0 && value.size() != value_bytes) {
        return loss(absl::StrCat(kind, " '", id, "': value is ", value.size(),
                                 " bytes, expected ", value_bytes, " for dimension ", d,
                                 " (truncated, or written with another dimension)"));
      }
      hasher.Add(key, value);
      COUPOND_RETURN_IF_ERROR(decode(id, value));
    }
    COUPOND_RETURN_IF_ERROR(common::FromRocksDb(it->status(), absl::StrCat("reading ", kind, " rows")));
    if (rows != expected_rows) {
      return loss(absl::StrCat("has ", rows, " ", kind, " rows, the manifest says ",
                               expected_rows, " (incomplete version)"));
    }
    return absl::OkStatus();
  };

  // Rows in key order (the checksum's order): c/, s/, sf, u/.
  bool any_predicted_coupon = false;
  COUPOND_RETURN_IF_ERROR(scan(
      CouponPrefix(version), CouponValueBytes(d, format), info.num_coupons, "coupon",
      [&](absl::string_view id, absl::string_view value) {
        return DecodeCouponRow(info, format, id, value, &m, &any_predicted_coupon);
      }));
  // As user_segment below: no predicted coupon reads back as an empty vector, the form
  // ModelData documents as equivalent, so that a model without cold coupons round-trips.
  if (!any_predicted_coupon) std::vector<uint8_t>().swap(m.coupon_predicted_from_attributes);

  // Segments (none in format 1; the scan still refuses stray rows there).
  m.segments.reserve(std::min<uint64_t>(info.num_segments, kMaxReserve));
  COUPOND_RETURN_IF_ERROR(scan(SegmentPrefix(version), /*value_bytes=*/0, info.num_segments,
                               "segment", [&](absl::string_view id, absl::string_view value) {
                                 return DecodeSegmentRow(info, id, value, &m);
                               }));

  {
    std::string value;
    const rocksdb::Status s = db_->Get(snapshot_ro, SegmentFeaturesKey(version), &value);
    if (s.IsNotFound()) {
      if (num_features != 0) {
        return loss(absl::StrCat("segment features missing (the manifest says ", num_features,
                                 ")"));
      }
    } else {
      COUPOND_RETURN_IF_ERROR(common::FromRocksDb(s, "reading segment features"));
      if (num_features == 0) {
        return loss("segment features present, but the manifest says there are none");
      }
      hasher.Add(SegmentFeaturesKey(version), value);
      COUPOND_RETURN_IF_ERROR(DecodeSegmentFeatures(info, value, &m));
    }
  }

  bool any_user_segment = false;
  COUPOND_RETURN_IF_ERROR(scan(
      UserPrefix(version), UserValueBytes(d, format), info.num_users, "user",
      [&](absl::string_view id, absl::string_view value) {
        return DecodeUserRow(info, format, id, value, &m, &any_user_segment);
      }));
  // A version in which no user has a segment reads back as an empty user_segment (the
  // form ModelData documents as equivalent), so that a model without segments round-trips.
  if (!any_user_segment) {
    m.user_segment.clear();
    m.user_segment.shrink_to_fit();
  }
  // Beyond the reserve (over 2^20 rows, or 256 MiB of factors) the arrays grew by
  // doubling: give the excess back. A no-op for arrays sized exactly.
  m.user_ids.shrink_to_fit();
  m.user_bias.shrink_to_fit();
  m.user_factors.shrink_to_fit();
  m.user_segment.shrink_to_fit();
  m.coupon_ids.shrink_to_fit();
  m.coupon_bias.shrink_to_fit();
  m.coupon_factors.shrink_to_fit();
  m.coupon_attributes.shrink_to_fit();

  if (hasher.Digest() != info.checksum) {
    return loss(absl::StrFormat("checksum %016x of the stored rows does not match the "
                                "manifest's %016x",
                                hasher.Digest(), info.checksum));
  }
  if (absl::Status s = core::ValidateModelData(m); !s.ok()) {
    return loss(s.message());
  }
  return m;
}

absl::StatusOr<std::shared_ptr<const core::ModelSnapshot>> ModelStore::LoadSnapshot(
    uint64_t version, const ReadOptions& options) const {
  COUPOND_ASSIGN_OR_RETURN(core::ModelVersionInfo info, ReadManifest(version));
  COUPOND_ASSIGN_OR_RETURN(core::ModelData data, ReadVersion(version, options));
  return core::ModelSnapshot::Create(std::move(data), std::move(info));
}

}  // namespace coupond::storage
