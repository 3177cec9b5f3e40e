#include "storage/model_store.h"

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
#include "core/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/sst_file_writer.h"
#include "storage/keys.h"
#include "storage/rocksdb_status.h"
#include "xxhash.h"

namespace coupond::storage {
namespace {

namespace fs = std::filesystem;
using internal::CouponKey;
using internal::CouponPrefix;
using internal::CouponValueBytes;
using internal::ManifestKey;
using internal::UserKey;
using internal::UserPrefix;
using internal::UserValueBytes;

constexpr int kManifestFormat = 1;
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

template <typename T>
void Append(std::string* out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out->append(buf, sizeof(T));
}

template <typename T>
T Take(const char*& p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  p += sizeof(T);
  return v;
}

std::string EncodeUser(const core::ModelData& m, size_t row) {
  std::string v;
  v.reserve(UserValueBytes(m.dimension));
  Append(&v, m.user_bias[row]);
  v.append(reinterpret_cast<const char*>(m.user_factors.data() + row * m.dimension),
           sizeof(float) * m.dimension);
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
  return v;
}

std::string EncodeManifest(const core::ModelVersionInfo& info) {
  std::string metadata;
  for (const auto& [key, value] : info.metadata) {
    absl::StrAppend(&metadata, "meta.", key, "=", absl::CEscape(value), "\n");
  }
  return metadata + absl::StrFormat(
      "format=%d\nversion=%d\ndimension=%d\nnum_users=%d\nnum_coupons=%d\n"
      "global_bias=%.17g\ncreated_unix_seconds=%d\nchecksum=%016x\ndescription=%s\n",
      kManifestFormat, info.version, info.dimension, info.num_users, info.num_coupons,
      info.global_bias, info.created_unix_seconds, info.checksum,
      absl::CEscape(info.description));
}

absl::StatusOr<core::ModelVersionInfo> DecodeManifest(uint64_t version, absl::string_view text) {
  auto bad = [version](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("manifest of version ", version, ": ", what));
  };
  core::ModelVersionInfo info;
  int fields = 0;
  bool format_ok = false;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) return bad(absl::StrCat("line without '=': ", line));
    const absl::string_view key = line.substr(0, eq);
    const absl::string_view value = line.substr(eq + 1);
    bool ok = true;
    if (key == "format") {
      int format = 0;
      ok = absl::SimpleAtoi(value, &format);
      if (ok && format != kManifestFormat) {
        return bad(absl::StrCat("format ", format, " is not supported (expected ",
                                kManifestFormat, ")"));
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
  if (!format_ok || fields != 9) return bad("missing fields (truncated manifest?)");
  if (info.version != version) {
    return bad(absl::StrCat("records version ", info.version, " under the key of ", version));
  }
  if (info.dimension < 1 || info.dimension > core::kMaxDimension) {
    return bad(absl::StrCat("dimension ", info.dimension, " is outside [1, ",
                            core::kMaxDimension, "]"));
  }
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
      FromRocksDb(rocksdb::DB::Open(options, path, &raw), absl::StrCat("model store '", path,
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
  COUPOND_RETURN_IF_ERROR(FromRocksDb(s, absl::StrCat("model store '", path, "': open for read")));
  return std::unique_ptr<ModelStore>(
      new ModelStore(path, std::unique_ptr<rocksdb::DB>(raw), /*writable=*/false));
}

absl::StatusOr<core::ModelVersionInfo> ModelStore::Publish(const core::ModelData& model,
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
  info.global_bias = model.global_bias;
  info.created_unix_seconds =
      options.created_unix_seconds != 0 ? options.created_unix_seconds : std::time(nullptr);
  info.description = model.description;
  info.metadata = model.metadata;

  // SstFileWriter needs keys in ascending order: coupons ("c/") then users ("u/"), each by
  // id; the manifest ("~manifest") sorts after every data key of the version.
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
  const std::string sst = (dir / absl::StrCat("version-", info.version, ".sst")).string();

  absl::Status status = [&]() -> absl::Status {
    const rocksdb::EnvOptions env_options;
    const rocksdb::Options sst_options;
    rocksdb::SstFileWriter writer(env_options, sst_options);
    COUPOND_RETURN_IF_ERROR(FromRocksDb(writer.Open(sst), "SstFileWriter::Open " + sst));
    RowHasher hasher;
    for (uint32_t row : sorted_rows(model.coupon_ids)) {
      const std::string key = CouponKey(info.version, model.coupon_ids[row]);
      const std::string value = EncodeCoupon(model, row);
      hasher.Add(key, value);
      COUPOND_RETURN_IF_ERROR(FromRocksDb(writer.Put(key, value), "SstFileWriter::Put"));
    }
    for (uint32_t row : sorted_rows(model.user_ids)) {
      const std::string key = UserKey(info.version, model.user_ids[row]);
      const std::string value = EncodeUser(model, row);
      hasher.Add(key, value);
      COUPOND_RETURN_IF_ERROR(FromRocksDb(writer.Put(key, value), "SstFileWriter::Put"));
    }
    info.checksum = hasher.Digest();
    COUPOND_RETURN_IF_ERROR(FromRocksDb(
        writer.Put(ManifestKey(info.version), EncodeManifest(info)), "SstFileWriter::Put"));
    COUPOND_RETURN_IF_ERROR(FromRocksDb(writer.Finish(), "SstFileWriter::Finish"));

    rocksdb::IngestExternalFileOptions ingest;
    ingest.move_files = true;  // hard-link instead of copying; same filesystem by design
    return FromRocksDb(db_->IngestExternalFile({sst}, ingest),
                       absl::StrCat("ingesting version ", info.version));
  }();
  fs::remove(sst, ec);  // already moved on success; a partial file on failure
  if (!status.ok()) return status;
  return info;
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
      COUPOND_RETURN_IF_ERROR(FromRocksDb(s, absl::StrCat("reading manifest of version ", version)));
    }
    // A range without a manifest cannot come from Publish (one atomic file per version);
    // it is left out of the list, and ReadVersion reports it as missing.
    it->Seek(PrefixUpperBound(internal::VersionPrefix(version)));
  }
  COUPOND_RETURN_IF_ERROR(FromRocksDb(it->status(), "listing versions"));
  return versions;
}

absl::StatusOr<core::ModelVersionInfo> ModelStore::LatestVersion() const {
  COUPOND_ASSIGN_OR_RETURN(std::vector<core::ModelVersionInfo> versions, ListVersions());
  if (versions.empty()) {
    return absl::NotFoundError(absl::StrCat("model store '", path_, "' holds no version"));
  }
  return std::move(versions.back());
}

absl::StatusOr<core::ModelVersionInfo> ModelStore::ReadManifest(uint64_t version) const {
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), ManifestKey(version), &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(
        absl::StrCat("model store '", path_, "': no version ", version));
  }
  COUPOND_RETURN_IF_ERROR(FromRocksDb(s, absl::StrCat("reading manifest of version ", version)));
  return DecodeManifest(version, value);
}

absl::StatusOr<core::ModelData> ModelStore::ReadVersion(uint64_t version,
                                                        const ReadOptions& options) const {
  // One RocksDB snapshot for all rows of the version.
  rocksdb::ManagedSnapshot snapshot(db_.get());
  COUPOND_ASSIGN_OR_RETURN(const core::ModelVersionInfo info, ReadManifest(version));
  if (options.expected_dimension != 0 && info.dimension != options.expected_dimension) {
    return absl::FailedPreconditionError(
        absl::StrCat("version ", version, " has dimension ", info.dimension,
                     ", the reader requires ", options.expected_dimension));
  }
  auto loss = [version](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("version ", version, ": ", what));
  };

  const uint32_t d = info.dimension;
  core::ModelData m;
  m.dimension = d;
  m.global_bias = info.global_bias;
  m.description = info.description;
  m.metadata = info.metadata;
  // Counts come from a manifest that may be damaged: grow on demand beyond a modest reserve.
  constexpr uint64_t kMaxReserve = 1 << 20;
  m.coupon_ids.reserve(std::min(info.num_coupons, kMaxReserve));
  m.user_ids.reserve(std::min(info.num_users, kMaxReserve));
  RowHasher hasher;

  // Visits every row under `prefix`, checking the value size, and hands the id and value on.
  auto scan = [&](const std::string& prefix, size_t value_bytes, uint64_t expected_rows,
                  const char* kind, auto&& decode) -> absl::Status {
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot.snapshot();
    ro.verify_checksums = true;
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
      if (value.size() != value_bytes) {
        return loss(absl::StrCat(kind, " '", id, "': value is ", value.size(),
                                 " bytes, expected ", value_bytes, " for dimension ", d,
                                 " (truncated, or written with another dimension)"));
      }
      hasher.Add(key, value);
      COUPOND_RETURN_IF_ERROR(decode(id, value.data()));
    }
    COUPOND_RETURN_IF_ERROR(FromRocksDb(it->status(), absl::StrCat("reading ", kind, " rows")));
    if (rows != expected_rows) {
      return loss(absl::StrCat("has ", rows, " ", kind, " rows, the manifest says ",
                               expected_rows, " (incomplete version)"));
    }
    return absl::OkStatus();
  };

  COUPOND_RETURN_IF_ERROR(scan(
      CouponPrefix(version), CouponValueBytes(d), info.num_coupons, "coupon",
      [&](absl::string_view id, const char* p) -> absl::Status {
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
        return absl::OkStatus();
      }));
  COUPOND_RETURN_IF_ERROR(scan(
      UserPrefix(version), UserValueBytes(d), info.num_users, "user",
      [&](absl::string_view id, const char* p) -> absl::Status {
        const size_t base = m.user_factors.size();
        m.user_ids.emplace_back(id);
        m.user_bias.push_back(Take<float>(p));
        m.user_factors.resize(base + d);
        std::memcpy(m.user_factors.data() + base, p, sizeof(float) * d);
        if (!std::isfinite(m.user_bias.back()) || !AllFinite(m.user_factors.data() + base, d)) {
          return loss(absl::StrCat("user '", id, "': non-finite number"));
        }
        return absl::OkStatus();
      }));

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
