#include "storage/model_store.h"

#include <unistd.h>

#include <atomic>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <numeric>
#include "absl/strings/string_view.h"
#include <system_error>
#include <chrono>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/rocksdb_status.h"
#include "common/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/sst_file_writer.h"
#include "storage/keys.h"
#include "xxhash.h"

namespace coupond::storage {
namespace {

namespace fs = std::filesystem;
using internal::Append;
using internal::CouponKey;
using internal::CouponPrefix;
using internal::CouponValueBytes;
using internal::ManifestKey;
using internal::SegmentFeaturesKey;
using internal::SegmentKey;
using internal::SegmentPrefix;
using internal::SegmentValueBytes;
using internal::Take;
using internal::UserKey;
using internal::UserPrefix;
using internal::UserValueBytes;

// Format written. 2 added segments (s/ rows, the sf key, an i32 segment index at the end
// of every user row, num_segments= and num_segment_features= in the manifest); 3 added a u8
// at the end of every coupon row (1: factors predicted from attributes).
constexpr int kManifestFormat = 3;
// Oldest format read: a format-1 version has no segments and shorter user rows.
constexpr int kOldestReadableFormat = 1;
constexpr char kIngestDir[] = "ingest";

// Streaming XXH3-64 over (key, value) pairs, each length-prefixed so that no two different
// sequences of pairs hash the same bytes.
class RowHasher {
 public:
  RowHasher() : state_(XXH3_createState()) { XXH3_64bits_reset(state_); }
  ~RowHasher() { XXH3_freeState(state_); }
  RowHasher(const RowHasher&) = delete;
  RowHasher& operator=(const RowHasher&) = delete;

  void Add(absl::string_view key, absl::string_view value) {
    const uint64_t lengths[2] = {key.size(), value.size()};
    XXH3_64bits_update(state_, lengths, sizeof(lengths));
    XXH3_64bits_update(state_, key.data(), key.size());
    XXH3_64bits_update(state_, value.data(), value.size());
  }
  uint64_t Digest() const { return XXH3_64bits_digest(state_); }

 private:
  XXH3_state_t* state_;
};

void AppendFloats(std::string* out, const float* values, size_t n) {
  out->append(reinterpret_cast<const char*>(values), sizeof(float) * n);
}

std::string EncodeUser(const core::ModelData& m, size_t row) {
  std::string v;
  v.reserve(UserValueBytes(m.dimension));
  Append(&v, m.user_bias[row]);
  AppendFloats(&v, m.user_factors.data() + row * m.dimension, m.dimension);
  Append(&v, m.user_segment.empty() ? int32_t{-1} : m.user_segment[row]);
  return v;
}

std::string EncodeSegment(const core::ModelData& m, size_t i) {
  const core::SegmentData& seg = m.segments[i];
  std::string v;
  v.reserve(SegmentValueBytes(seg.name.size(), m.dimension, seg.centroid.size()));
  Append(&v, static_cast<uint32_t>(seg.name.size()));
  v.append(seg.name);
  Append(&v, seg.prior_bias);
  AppendFloats(&v, seg.prior_factors.data(), seg.prior_factors.size());
  AppendFloats(&v, seg.centroid.data(), seg.centroid.size());
  Append(&v, seg.redemption_rate);
  Append(&v, seg.members);
  return v;
}

// u32 count, then per feature: u32 name length, name, f32 offset, f32 scale.
std::string EncodeSegmentFeatures(const core::ModelData& m) {
  std::string v;
  Append(&v, static_cast<uint32_t>(m.segment_features.size()));
  for (const core::SegmentFeature& f : m.segment_features) {
    Append(&v, static_cast<uint32_t>(f.name.size()));
    v.append(f.name);
    Append(&v, f.offset);
    Append(&v, f.scale);
  }
  return v;
}

std::string EncodeCoupon(const core::ModelData& m, size_t row) {
  std::string v;
  v.reserve(CouponValueBytes(m.dimension));
  Append(&v, m.coupon_bias[row]);
  v.append(reinterpret_cast<const char*>(m.coupon_factors.data() + row * m.dimension),
           sizeof(float) * m.dimension);
  const core::CouponAttributes& a = m.coupon_attributes[row];
  Append(&v, a.face_value);
  Append(&v, a.valid_from_unix_seconds);
  Append(&v, a.valid_until_unix_seconds);
  Append(&v, a.stock);
  Append(&v, m.coupon_predicted_from_attributes.empty()
                 ? uint8_t{0}
                 : m.coupon_predicted_from_attributes[row]);
  return v;
}

std::string EncodeManifest(const core::ModelVersionInfo& info) {
  std::string metadata;
  for (const auto& [key, value] : info.metadata) {
    absl::StrAppend(&metadata, "meta.", key, "=", absl::CEscape(value), "\n");
  }
  return metadata + absl::StrFormat(
      "format=%d\nversion=%d\ndimension=%d\nnum_users=%d\nnum_coupons=%d\n"
      "num_predicted_coupons=%d\nnum_segments=%d\nnum_segment_features=%d\n"
      "global_bias=%.17g\ncreated_unix_seconds=%d\nchecksum=%016x\ndescription=%s\n",
      kManifestFormat, info.version, info.dimension, info.num_users, info.num_coupons,
      info.num_predicted_coupons, info.num_segments, info.num_segment_features, info.global_bias,
      info.created_unix_seconds, info.checksum, absl::CEscape(info.description));
}

// Parses a manifest of format kOldestReadableFormat..kManifestFormat; `*format` (when not
// null) receives its format.
absl::StatusOr<core::ModelVersionInfo> DecodeManifest(uint64_t version, absl::string_view text,
                                                      int* format_out = nullptr) {
  auto bad = [version](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("manifest of version ", version, ": ", what));
  };
  core::ModelVersionInfo info;
  int fields = 0;          // the 9 fields of every format
  int segment_fields = 0;  // the 2 fields format 2 added
  int format = 0;
  bool format_ok = false;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) return bad(absl::StrCat("line without '=': ", line));
    const absl::string_view key = line.substr(0, eq);
    const absl::string_view value = line.substr(eq + 1);
    bool ok = true;
    if (key == "format") {
      ok = absl::SimpleAtoi(value, &format);
      if (ok && (format < kOldestReadableFormat || format > kManifestFormat)) {
        return bad(absl::StrCat("format ", format, " is not supported (this reader reads ",
                                kOldestReadableFormat, " to ", kManifestFormat, ")"));
      }
      format_ok = ok;
    } else if (key == "version") {
      ok = absl::SimpleAtoi(value, &info.version);
    } else if (key == "dimension") {
      ok = absl::SimpleAtoi(value, &info.dimension);
    } else if (key == "num_users") {
      ok = absl::SimpleAtoi(value, &info.num_users);
    } else if (key == "num_coupons") {
      ok = absl::SimpleAtoi(value, &info.num_coupons);
    } else if (key == "num_predicted_coupons") {
      // Optional (format 3 writers before it existed did not write it): not counted.
      if (!absl::SimpleAtoi(value, &info.num_predicted_coupons)) {
        return bad(absl::StrCat("bad value for '", key, "': ", value));
      }
      continue;
    } else if (key == "num_segments" || key == "num_segment_features") {
      ok = key == "num_segments" ? absl::SimpleAtoi(value, &info.num_segments)
                                 : absl::SimpleAtoi(value, &info.num_segment_features);
      if (!ok) return bad(absl::StrCat("bad value for '", key, "': ", value));
      ++segment_fields;
      continue;
    } else if (key == "global_bias") {
      ok = absl::SimpleAtod(value, &info.global_bias) && std::isfinite(info.global_bias);
    } else if (key == "created_unix_seconds") {
      ok = absl::SimpleAtoi(value, &info.created_unix_seconds);
    } else if (key == "checksum") {
      ok = absl::SimpleHexAtoi(value, &info.checksum);
    } else if (key == "description") {
      std::string error;
      ok = absl::CUnescape(value, &info.description, &error);
    } else if (absl::StartsWith(key, "meta.")) {
      std::string error, unescaped;
      if (!absl::CUnescape(value, &unescaped, &error)) {
        return bad(absl::StrCat("bad value for '", key, "'"));
      }
      info.metadata[std::string(key.substr(5))] = std::move(unescaped);
      continue;  // optional: not counted among the required fields
    } else {
      continue;  // Fields added by later writers are ignored by this reader.
    }
    if (!ok) return bad(absl::StrCat("bad value for '", key, "': ", value));
    ++fields;
  }
  if (!format_ok || fields != 9 || (format >= 2 && segment_fields != 2)) {
    return bad("missing fields (truncated manifest?)");
  }
  if (format < 2 && segment_fields != 0) {
    return bad("format 1 carries no segments, yet the manifest counts them");
  }
  if (info.num_segments > core::kMaxSegments ||
      info.num_segment_features > core::kMaxSegmentFeatures ||
      (info.num_segments == 0) != (info.num_segment_features == 0)) {
    return bad(absl::StrCat(info.num_segments, " segments over ", info.num_segment_features,
                            " segment features (both 0, or 1..", core::kMaxSegments, " and 1..",
                            core::kMaxSegmentFeatures, ")"));
  }
  if (info.version != version) {
    return bad(absl::StrCat("records version ", info.version, " under the key of ", version));
  }
  if (info.dimension < 1 || info.dimension > core::kMaxDimension) {
    return bad(absl::StrCat("dimension ", info.dimension, " is outside [1, ",
                            core::kMaxDimension, "]"));
  }
  if (format_out != nullptr) *format_out = format;
  return info;
}

absl::string_view View(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

bool ParseVersionTag(absl::string_view tag, uint64_t* version) {
  return tag.size() == 20 && absl::SimpleAtoi(tag, version);
}

// The smallest key greater than every key that starts with `prefix`.
std::string PrefixUpperBound(std::string prefix) {
  prefix.back() = static_cast<char>(prefix.back() + 1);  // prefixes end in '/', never 0xff
  return prefix;
}

bool AllFinite(const float* values, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(values[i])) return false;
  }
  return true;
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
  // Open every table file now: a file the writer removes later (it never compacts, but a
  // future clean-up of old versions will) then stays readable through its descriptor.
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
  core::ModelVersionInfo info;
  info.version = options.version == 0 ? newest + 1 : options.version;
  if (info.version <= newest) {
    return absl::FailedPreconditionError(absl::StrCat(
        "version ", info.version, " is not newer than the newest stored version ", newest));
  }
  info.dimension = model.dimension;
  info.num_users = model.num_users();
  info.num_coupons = model.num_coupons();
  info.num_segments = model.num_segments();
  info.num_segment_features = static_cast<uint32_t>(model.segment_features.size());
  info.num_predicted_coupons = static_cast<uint64_t>(
      std::count(model.coupon_predicted_from_attributes.begin(),
                 model.coupon_predicted_from_attributes.end(), uint8_t{1}));
  info.global_bias = model.global_bias;
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
  auto loss = [version](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("version ", version, ": ", what));
  };

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
  const bool coupon_rows_have_flag = format >= 3;
  bool any_predicted_coupon = false;
  COUPOND_RETURN_IF_ERROR(scan(
      CouponPrefix(version), CouponValueBytes(d, format), info.num_coupons, "coupon",
      [&](absl::string_view id, absl::string_view value) -> absl::Status {
        const char* p = value.data();
        const size_t base = m.coupon_factors.size();
        m.coupon_ids.emplace_back(id);
        m.coupon_bias.push_back(Take<float>(p));
        m.coupon_factors.resize(base + d);
        std::memcpy(m.coupon_factors.data() + base, p, sizeof(float) * d);
        p += sizeof(float) * d;
        core::CouponAttributes a;
        a.face_value = Take<double>(p);
        a.valid_from_unix_seconds = Take<int64_t>(p);
        a.valid_until_unix_seconds = Take<int64_t>(p);
        a.stock = Take<int64_t>(p);
        m.coupon_attributes.push_back(a);
        if (!std::isfinite(m.coupon_bias.back()) ||
            !AllFinite(m.coupon_factors.data() + base, d) || !std::isfinite(a.face_value)) {
          return loss(absl::StrCat("coupon '", id, "': non-finite number"));
        }
        if (coupon_rows_have_flag) {
          const uint8_t predicted = Take<uint8_t>(p);
          if (predicted > 1) {
            return loss(absl::StrCat("coupon '", id, "': predicted-from-attributes flag ",
                                     static_cast<int>(predicted), " is not 0 or 1"));
          }
          any_predicted_coupon = any_predicted_coupon || predicted == 1;
          m.coupon_predicted_from_attributes.push_back(predicted);
        }
        return absl::OkStatus();
      }));
  // As user_segment below: no predicted coupon reads back as an empty vector, the form
  // ModelData documents as equivalent, so that a model without cold coupons round-trips.
  if (!any_predicted_coupon) std::vector<uint8_t>().swap(m.coupon_predicted_from_attributes);

  // Segments (none in format 1; the scan still refuses stray rows there).
  m.segments.reserve(std::min<uint64_t>(info.num_segments, kMaxReserve));
  COUPOND_RETURN_IF_ERROR(scan(
      SegmentPrefix(version), /*value_bytes=*/0, info.num_segments, "segment",
      [&](absl::string_view id, absl::string_view value) -> absl::Status {
        const size_t index = m.segments.size();
        if (id != absl::StrFormat("%06d", index)) {
          return loss(absl::StrCat("segment row '", absl::CHexEscape(id), "' where segment ",
                                   index, " belongs (rows must be numbered 0..",
                                   info.num_segments, "-1)"));
        }
        uint32_t name_bytes = 0;
        if (value.size() >= sizeof(name_bytes)) {
          std::memcpy(&name_bytes, value.data(), sizeof(name_bytes));
        }
        if (value.size() < sizeof(name_bytes) || name_bytes > core::kMaxIdBytes ||
            value.size() != SegmentValueBytes(name_bytes, d, num_features)) {
          return loss(absl::StrCat("segment ", index, ": value is ", value.size(),
                                   " bytes, which does not fit dimension ", d, " and ",
                                   num_features, " segment features (truncated?)"));
        }
        const char* p = value.data() + sizeof(name_bytes);
        core::SegmentData seg;
        seg.name.assign(p, name_bytes);
        p += name_bytes;
        seg.prior_bias = Take<float>(p);
        seg.prior_factors.resize(d);
        std::memcpy(seg.prior_factors.data(), p, sizeof(float) * d);
        p += sizeof(float) * d;
        seg.centroid.resize(num_features);
        std::memcpy(seg.centroid.data(), p, sizeof(float) * num_features);
        p += sizeof(float) * num_features;
        seg.redemption_rate = Take<double>(p);
        seg.members = Take<uint64_t>(p);
        if (!std::isfinite(seg.prior_bias) || !AllFinite(seg.prior_factors.data(), d) ||
            !AllFinite(seg.centroid.data(), num_features) ||
            !(seg.redemption_rate >= 0.0 && seg.redemption_rate <= 1.0)) {
          return loss(absl::StrCat("segment ", index, " '", seg.name,
                                   "': non-finite number or redemption rate outside [0, 1]"));
        }
        m.segments.push_back(std::move(seg));
        return absl::OkStatus();
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
      // Bounds-checked reader over `value`.
      absl::string_view rest = value;
      auto take = [&rest](void* out, size_t n) {
        if (rest.size() < n) return false;
        std::memcpy(out, rest.data(), n);
        rest.remove_prefix(n);
        return true;
      };
      auto damaged = [&](absl::string_view what) {
        return loss(absl::StrCat("segment features: ", what));
      };
      uint32_t count = 0;
      if (!take(&count, sizeof(count))) return damaged("truncated");
      if (count != num_features) {
        return damaged(absl::StrCat(count, " features, the manifest says ", num_features));
      }
      m.segment_features.reserve(num_features);
      for (size_t j = 0; j < num_features; ++j) {
        uint32_t name_bytes = 0;
        if (!take(&name_bytes, sizeof(name_bytes)) || name_bytes > core::kMaxIdBytes ||
            rest.size() < name_bytes) {
          return damaged(absl::StrCat("feature ", j, ": truncated or bad name length"));
        }
        core::SegmentFeature f;
        f.name.assign(rest.data(), name_bytes);
        rest.remove_prefix(name_bytes);
        if (!take(&f.offset, sizeof(f.offset)) || !take(&f.scale, sizeof(f.scale))) {
          return damaged(absl::StrCat("feature ", j, " '", f.name, "': truncated"));
        }
        if (!std::isfinite(f.offset) || !std::isfinite(f.scale) || f.scale == 0.0f) {
          return damaged(absl::StrCat("feature ", j, " '", f.name,
                                      "': non-finite offset or scale, or scale 0"));
        }
        m.segment_features.push_back(std::move(f));
      }
      if (!rest.empty()) {
        return damaged(absl::StrCat(rest.size(), " bytes after the last feature"));
      }
    }
  }

  const bool user_rows_have_segment = format >= 2;
  bool any_user_segment = false;
  COUPOND_RETURN_IF_ERROR(scan(
      UserPrefix(version), UserValueBytes(d, format), info.num_users, "user",
      [&](absl::string_view id, absl::string_view value) -> absl::Status {
        const char* p = value.data();
        const size_t base = m.user_factors.size();
        m.user_ids.emplace_back(id);
        m.user_bias.push_back(Take<float>(p));
        m.user_factors.resize(base + d);
        std::memcpy(m.user_factors.data() + base, p, sizeof(float) * d);
        p += sizeof(float) * d;
        if (!std::isfinite(m.user_bias.back()) || !AllFinite(m.user_factors.data() + base, d)) {
          return loss(absl::StrCat("user '", id, "': non-finite number"));
        }
        if (user_rows_have_segment) {
          const int32_t segment = Take<int32_t>(p);
          if (segment < -1 ||
              (segment >= 0 && static_cast<uint64_t>(segment) >= info.num_segments)) {
            return loss(absl::StrCat("user '", id, "': segment index ", segment,
                                     " is not -1 or below the manifest's ", info.num_segments,
                                     " segments"));
          }
          any_user_segment = any_user_segment || segment >= 0;
          m.user_segment.push_back(segment);
        }
        return absl::OkStatus();
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
