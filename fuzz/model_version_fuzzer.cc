// libFuzzer target over reading a model version from the store (storage::ModelStore).
//
// At start-up, ModelStore::Publish writes a small valid model (fuzz_model.h) into a real
// RocksDB store on tmpfs, and the fuzzer keeps the exact rows it wrote. For each input it
// takes one of those versions, damages its rows as the input says (bytes overwritten,
// values truncated or extended, rows dropped, duplicated or renamed, stray keys added,
// manifest lines changed or removed, non-finite floats planted), writes the result into
// the store as the only version present, and reads it back with ListVersions,
// LatestVersion, ReadVersion and LoadSnapshot, as a server's model source would.
//
// Contract checked: no crash, leak or hang, and every failure is a clean status (DataLoss,
// NotFound, FailedPrecondition) with a message. A version that reads back must build a
// snapshot that scores. Unless the input says otherwise, the manifest's checksum is
// recomputed over the damaged rows (as a writer with a bug would do), so that damage
// reaches the decoding and validation behind the checksum instead of stopping at it.
//
// Input (read front to back; missing bytes read as 0):
//   flags    bit 0-1 base version: 0, 1 the writer's format (3) with segments; 2 the same
//                    without segments; 3 format 1 (written before segments existed)
//            bit 2   keep the manifest's stale checksum (do not recompute it)
//            bit 3   a byte follows: ReadOptions::expected_dimension
//            bit 4   8 bytes follow: the version number to write the rows under
//   then operations until the input ends: op byte, row byte (row index modulo the row
//   count; the manifest is a row too), then the op's operands (see ApplyOp).

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "core/scorer.h"
#include "core/snapshot.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/fuzz_model.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "storage/keys.h"
#include "storage/model_store.h"
#include "xxhash.h"

namespace coupond::storage::internal {

// The seam declared in model_store.h: the fuzzer writes damaged versions straight into the
// open store's database, so that one store serves every input (opening RocksDB per input
// would cost more than everything else together).
struct ModelStorePeer {
  static rocksdb::DB* db(const ModelStore& store) { return store.db_.get(); }
};

}  // namespace coupond::storage::internal

namespace coupond::fuzz {
namespace {

namespace fs = std::filesystem;

// Inputs between two re-creations of the store: deleted rows pile up in RocksDB's memtable
// otherwise, and reads slow down as they skip them.
constexpr uint64_t kResetEvery = 128;
constexpr uint64_t kDefaultVersion = 7;

// One stored row of a version: the key after "v/<version>/" (e.g. "c/c00001", "~manifest").
struct Row {
  std::string suffix;
  std::string value;
};
using Rows = std::vector<Row>;

// Sequential reader over the fuzz input; reads past the end give zeros.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint16_t U16() {
    const uint16_t low = Byte();  // two statements: the order of reads must be defined
    return static_cast<uint16_t>(low | (Byte() << 8));
  }
  uint64_t U64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{Byte()} << (8 * i);
    return v;
  }
  // A length byte, then that many bytes (fewer at the end of the input).
  std::string Bytes() {
    const size_t n = std::min<size_t>(Byte(), size_ - std::min(pos_, size_));
    std::string out(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

std::string TempRoot() {
  if (const char* dir = std::getenv("COUPOND_FUZZ_TMPDIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  std::error_code ec;
  if (fs::is_directory("/dev/shm", ec) && access("/dev/shm", W_OK) == 0) return "/dev/shm";
  return fs::temp_directory_path(ec).string();
}

// The rows of `version` exactly as stored.
Rows ReadRawRows(const storage::ModelStore& store, uint64_t version) {
  const std::string prefix = storage::internal::VersionPrefix(version);
  std::unique_ptr<rocksdb::Iterator> it(
      storage::internal::ModelStorePeer::db(store)->NewIterator(rocksdb::ReadOptions()));
  Rows rows;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    rows.push_back({it->key().ToString().substr(prefix.size()), it->value().ToString()});
  }
  if (!it->status().ok()) Fail("reading the published rows");
  return rows;
}

Row* FindRow(Rows& rows, absl::string_view suffix) {
  for (Row& r : rows) {
    if (r.suffix == suffix) return &r;
  }
  return nullptr;
}

// Manifest lines as (key, value) pairs, in order; a line without '=' keeps the whole line
// as its key and an empty value marker.
struct ManifestLine {
  std::string key;
  std::string value;
  bool has_eq = true;
};

std::vector<ManifestLine> SplitManifest(absl::string_view text) {
  std::vector<ManifestLine> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      lines.push_back({std::string(line), "", false});
    } else {
      lines.push_back({std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)), true});
    }
  }
  return lines;
}

std::string JoinManifest(const std::vector<ManifestLine>& lines) {
  std::string text;
  for (const ManifestLine& l : lines) {
    absl::StrAppend(&text, l.key, l.has_eq ? "=" : "", l.value, "\n");
  }
  return text;
}

// Sets every line of `key` to `value`, or appends one when there is none.
void SetManifestField(Row& manifest, absl::string_view key, absl::string_view value) {
  std::vector<ManifestLine> lines = SplitManifest(manifest.value);
  bool found = false;
  for (ManifestLine& l : lines) {
    if (l.key == key) {
      l.value = std::string(value);
      l.has_eq = true;
      found = true;
    }
  }
  if (!found) lines.push_back({std::string(key), std::string(value), true});
  manifest.value = JoinManifest(lines);
}

void RemoveManifestField(Row& manifest, absl::string_view key) {
  std::vector<ManifestLine> lines = SplitManifest(manifest.value);
  std::erase_if(lines, [key](const ManifestLine& l) { return l.key == key; });
  manifest.value = JoinManifest(lines);
}

constexpr const char* kManifestKeys[] = {
    "format",      "version",      "dimension",    "num_users", "num_coupons", "num_segments",
    "num_segment_features", "num_predicted_coupons", "global_bias", "created_unix_seconds",
    "checksum", "description",
    "meta.train.dimension", "meta.x"};
constexpr size_t kNumManifestKeys = sizeof(kManifestKeys) / sizeof(kManifestKeys[0]);

// Values that sit on the edges of what the reader accepts.
std::string InterestingNumber(uint8_t choice, uint64_t raw) {
  switch (choice % 10) {
    case 0: return "0";
    case 1: return "1";
    case 2: return "-1";
    case 3: return absl::StrCat(std::numeric_limits<uint64_t>::max());
    case 4: return absl::StrCat(std::numeric_limits<uint32_t>::max());
    case 5: return absl::StrCat(core::kMaxDimension + (raw & 1));
    case 6: return absl::StrCat(core::kMaxSegments + (raw & 1));
    case 7: return "nan";
    case 8: return absl::StrCat(raw % 64);
    default: return absl::StrCat(raw);
  }
}

float InterestingFloat(uint8_t choice) {
  switch (choice % 6) {
    case 0: return std::numeric_limits<float>::quiet_NaN();
    case 1: return std::numeric_limits<float>::infinity();
    case 2: return -std::numeric_limits<float>::infinity();
    case 3: return std::numeric_limits<float>::max();
    case 4: return std::numeric_limits<float>::denorm_min();
    default: return -0.0f;
  }
}

// Rows written outside the version's own prefix ("v/" + bytes): stray keys that the
// version listing must survive or refuse cleanly.
struct Damage {
  Rows rows;
  std::vector<Row> raw_keys;
  int ops = 0;
};

enum Op : uint8_t {
  kOverwrite,      // u16 offset, bytes: overwrite (and extend past the end)
  kTruncate,       // u16: new length (modulo length + 1)
  kExtend,         // bytes: appended
  kDrop,           // row removed
  kDuplicate,      // byte: a copy of the row under its key plus that byte
  kRename,         // bytes: the row's new key (within the version)
  kPlantFloat,     // u16 offset, byte: an IEEE special written at a float boundary
  kManifestSet,    // byte key choice, bytes: value
  kManifestNumber, // byte key choice, byte choice, u64: a number on an edge
  kManifestRemove, // byte key choice: the field's lines removed
  kRawKey,         // bytes: a row "v/<bytes>" outside any version's prefix layout
  kNumOps
};

void ApplyOp(Input& in, Damage& d) {
  const uint8_t op = in.Byte() % kNumOps;
  const uint8_t row_choice = in.Byte();
  ++d.ops;
  if (op == kRawKey) {
    d.raw_keys.push_back({in.Bytes(), in.Bytes()});
    return;
  }
  if (op == kManifestSet || op == kManifestNumber || op == kManifestRemove) {
    Row* manifest = FindRow(d.rows, "~manifest");
    const char* key = kManifestKeys[in.Byte() % kNumManifestKeys];
    if (op == kManifestSet) {
      const std::string value = in.Bytes();
      if (manifest != nullptr) SetManifestField(*manifest, key, value);
    } else if (op == kManifestNumber) {
      const uint8_t choice = in.Byte();
      const std::string value = InterestingNumber(choice, in.U64());
      if (manifest != nullptr) SetManifestField(*manifest, key, value);
    } else if (manifest != nullptr) {
      RemoveManifestField(*manifest, key);
    }
    return;
  }
  if (d.rows.empty()) return;
  const size_t index = row_choice % d.rows.size();
  Row& row = d.rows[index];
  switch (op) {
    case kOverwrite: {
      const size_t offset = in.U16() % (row.value.size() + 1);
      const std::string bytes = in.Bytes();
      if (row.value.size() < offset + bytes.size()) row.value.resize(offset + bytes.size());
      row.value.replace(offset, bytes.size(), bytes);
      break;
    }
    case kTruncate:
      row.value.resize(in.U16() % (row.value.size() + 1));
      break;
    case kExtend:
      row.value += in.Bytes();
      break;
    case kDrop:
      d.rows.erase(d.rows.begin() + static_cast<ptrdiff_t>(index));
      break;
    case kDuplicate: {
      Row copy = row;
      copy.suffix.push_back(static_cast<char>(in.Byte()));
      d.rows.push_back(std::move(copy));
      break;
    }
    case kRename:
      row.suffix = in.Bytes();
      break;
    case kPlantFloat: {
      const size_t offset = in.U16();
      const float f = InterestingFloat(in.Byte());
      if (row.value.size() >= sizeof(float)) {
        const size_t at = (offset % (row.value.size() - sizeof(float) + 1)) & ~size_t{3};
        std::memcpy(row.value.data() + at, &f, sizeof(f));
      }
      break;
    }
    default:
      break;
  }
}

// The checksum as the writer computes it: XXH3-64 over (u64 key length, u64 value length,
// key, value) of every data row the reader visits (c/, s/, sf, u/), in key order.
uint64_t Checksum(const std::map<std::string, std::string>& version_rows, uint64_t version) {
  const std::string prefix = storage::internal::VersionPrefix(version);
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  for (const auto& [key, value] : version_rows) {
    const absl::string_view suffix = absl::string_view(key).substr(prefix.size());
    if (!absl::StartsWith(suffix, "c/") && !absl::StartsWith(suffix, "s/") &&
        !absl::StartsWith(suffix, "u/") && suffix != "sf") {
      continue;
    }
    const uint64_t lengths[2] = {key.size(), value.size()};
    XXH3_64bits_update(state, lengths, sizeof(lengths));
    XXH3_64bits_update(state, key.data(), key.size());
    XXH3_64bits_update(state, value.data(), value.size());
  }
  const uint64_t digest = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return digest;
}

class Harness {
 public:
  Harness() : root_(absl::StrCat(TempRoot(), "/coupond-model-version-fuzzer-", getpid())) {
    RootForCleanup() = root_;
    RemoveRoot();
    std::atexit([] { RemoveRoot(); });
    // The bases, written by the real writer into a store of their own, then kept as rows.
    // That store stays open for the whole run: RocksDB runs one timer thread while any
    // database is open and ends it when the last one closes, so without it every reset of
    // the fuzzed store would start and end a thread, and LeakSanitizer, checking while a
    // thread exits, reports its thread-local bookkeeping (a 32-byte "leak" from
    // __cxa_thread_atexit_impl) now and then.
    bases_store_ = OpenStore(absl::StrCat(root_, "/bases"));
    storage::PublishOptions publish;
    publish.created_unix_seconds = kFuzzModelNow;
    publish.version = 1;
    bases_[0] = PublishAndKeep(FuzzModel(FuzzModelShape{6, 4, 4, 2}), publish);
    publish.version = 2;
    bases_[1] = PublishAndKeep(FuzzModel(FuzzModelShape{6, 4, 4, 0}), publish);
    bases_[2] = FormatOne(bases_[1]);
    OpenFresh();
  }

  void Run(const uint8_t* data, size_t size) {
    if (++inputs_ % kResetEvery == 0) OpenFresh();
    Input in(data, size);
    const uint8_t flags = in.Byte();
    const int base = (flags & 3) == 3 ? 2 : (flags & 3) == 2 ? 1 : 0;
    const bool recompute_checksum = (flags & 4) == 0;
    storage::ReadOptions read_options;
    if (flags & 8) read_options.expected_dimension = in.Byte();
    const uint64_t version = (flags & 16) ? in.U64() : kDefaultVersion;

    Damage d;
    d.rows = bases_[base];
    if (version != kDefaultVersion) {
      if (Row* manifest = FindRow(d.rows, "~manifest")) {
        SetManifestField(*manifest, "version", absl::StrCat(version));
      }
    }
    while (!in.empty()) ApplyOp(in, d);

    // Later rows under the same key win, as they would in one RocksDB write batch.
    const std::string prefix = storage::internal::VersionPrefix(version);
    std::map<std::string, std::string> stored;
    for (const Row& r : d.rows) stored[prefix + r.suffix] = r.value;
    if (recompute_checksum) {
      auto manifest = stored.find(storage::internal::ManifestKey(version));
      if (manifest != stored.end()) {
        std::vector<ManifestLine> lines = SplitManifest(manifest->second);
        const std::string sum = absl::StrFormat("%016x", Checksum(stored, version));
        for (ManifestLine& l : lines) {
          if (l.key == "checksum") l.value = sum;
        }
        manifest->second = JoinManifest(lines);
      }
    }
    for (const Row& r : d.raw_keys) stored[absl::StrCat("v/", r.suffix)] = r.value;

    // The store holds this version (and any stray keys) and nothing else. Point deletes of
    // the previous input's keys rather than one DeleteRange: RocksDB rebuilds its cache of
    // range tombstones on every DeleteRange, which made each input cost O(inputs so far).
    rocksdb::WriteBatch batch;
    for (const std::string& key : written_) Ok(batch.Delete(key), "WriteBatch::Delete");
    written_.clear();
    for (const auto& [key, value] : stored) {
      Ok(batch.Put(key, value), "WriteBatch::Put");
      written_.push_back(key);
    }
    rocksdb::WriteOptions write_options;
    write_options.disableWAL = true;  // nothing here needs to survive a crash
    Ok(storage::internal::ModelStorePeer::db(*store_)->Write(write_options, &batch),
       "DB::Write");

    Read(version, read_options, d.ops == 0 && recompute_checksum);
  }

 private:
  static void Ok(const rocksdb::Status& s, const char* what) {
    if (!s.ok()) Fail(what, absl::InternalError(s.ToString()));
  }

  static std::string& RootForCleanup() {
    static std::string* root = new std::string;
    return *root;
  }
  static void RemoveRoot() {
    std::error_code ec;
    if (!RootForCleanup().empty()) fs::remove_all(RootForCleanup(), ec);
  }

  static std::unique_ptr<storage::ModelStore> OpenStore(const std::string& path) {
    absl::StatusOr<std::unique_ptr<storage::ModelStore>> store =
        storage::ModelStore::OpenForWrite(path);
    if (!store.ok()) Fail("ModelStore::OpenForWrite", store.status());
    return *std::move(store);
  }

  // A new, empty store for the inputs to write into.
  void OpenFresh() {
    store_.reset();
    written_.clear();
    const std::string path = absl::StrCat(root_, "/store");
    std::error_code ec;
    fs::remove_all(path, ec);
    store_ = OpenStore(path);
  }

  Rows PublishAndKeep(const core::ModelData& model, const storage::PublishOptions& options) {
    absl::StatusOr<core::ModelVersionInfo> info = bases_store_->Publish(model, options);
    if (!info.ok()) Fail("ModelStore::Publish", info.status());
    Rows rows = ReadRawRows(*bases_store_, info->version);
    // Rewritten under kDefaultVersion, the version every input starts from.
    for (Row& r : rows) {
      if (r.suffix == "~manifest") SetManifestField(r, "version", absl::StrCat(kDefaultVersion));
    }
    std::map<std::string, std::string> stored;
    const std::string prefix = storage::internal::VersionPrefix(kDefaultVersion);
    for (const Row& r : rows) stored[prefix + r.suffix] = r.value;
    Row* manifest = FindRow(rows, "~manifest");
    if (manifest == nullptr) Fail("published version without a manifest");
    SetManifestField(*manifest, "checksum",
                     absl::StrFormat("%016x", Checksum(stored, kDefaultVersion)));
    return rows;
  }

  // Format 1 as model_store.h describes it: no segment rows or counts, user rows without
  // the trailing i32 segment index, coupon rows without format 3's trailing u8 cold-start
  // flag. REQUIRES: `rows` has no segments.
  static Rows FormatOne(Rows rows) {
    std::map<std::string, std::string> stored;
    const std::string prefix = storage::internal::VersionPrefix(kDefaultVersion);
    for (Row& r : rows) {
      if (absl::StartsWith(r.suffix, "u/")) r.value.resize(r.value.size() - sizeof(int32_t));
      if (absl::StartsWith(r.suffix, "c/")) r.value.resize(r.value.size() - sizeof(uint8_t));
      stored[prefix + r.suffix] = r.value;
    }
    Row* manifest = FindRow(rows, "~manifest");
    SetManifestField(*manifest, "format", "1");
    RemoveManifestField(*manifest, "num_segments");
    RemoveManifestField(*manifest, "num_segment_features");
    RemoveManifestField(*manifest, "num_predicted_coupons");
    SetManifestField(*manifest, "checksum",
                     absl::StrFormat("%016x", Checksum(stored, kDefaultVersion)));
    return rows;
  }

  void Read(uint64_t version, const storage::ReadOptions& options, bool undamaged) {
    using absl::StatusCode;
    const storage::ModelStore& store = *store_;
    absl::StatusOr<std::vector<core::ModelVersionInfo>> versions = store.ListVersions();
    CheckStatusIn(versions.status(), {StatusCode::kDataLoss}, "ListVersions");
    absl::StatusOr<core::ModelVersionInfo> latest = store.LatestVersion();
    CheckStatusIn(latest.status(), {StatusCode::kDataLoss, StatusCode::kNotFound},
                  "LatestVersion");

    absl::StatusOr<core::ModelData> data = store.ReadVersion(version, options);
    CheckStatusIn(data.status(),
                  {StatusCode::kDataLoss, StatusCode::kNotFound, StatusCode::kFailedPrecondition},
                  "ReadVersion");
    absl::StatusOr<std::shared_ptr<const core::ModelSnapshot>> snapshot =
        store.LoadSnapshot(version, options);
    CheckStatusIn(snapshot.status(),
                  {StatusCode::kDataLoss, StatusCode::kNotFound, StatusCode::kFailedPrecondition},
                  "LoadSnapshot");
    Check(data.ok() == snapshot.ok(), "ReadVersion and LoadSnapshot disagree");
    if (undamaged && options.expected_dimension == 0) {
      Check(data.ok(), "an undamaged version does not read back");
    }
    if (!snapshot.ok()) return;

    // What reads back is servable: scores are probabilities for a known and a new user.
    const core::ModelSnapshot& model = **snapshot;
    Check(model.info().version == version, "snapshot of another version");
    for (const std::string& user : {model.num_users() > 0 ? model.user_id(0) : std::string("x"),
                                    std::string("not-a-user-of-this-model")}) {
      core::ScoreQuery query;
      query.user_id = user;
      query.as_of_unix_seconds = kFuzzModelNow;
      const core::ScoreResult result = core::ScoreCoupons(model, query);
      for (const core::ScoredCoupon& s : result.scores) {
        Check(s.coupon_row < model.num_coupons(), "score for a coupon row out of range");
        Check(s.probability >= 0.0 && s.probability <= 1.0, "probability outside [0, 1]");
      }
    }
  }

  const std::string root_;                           // both stores live under it
  std::unique_ptr<storage::ModelStore> bases_store_;  // open for the whole run (see above)
  std::unique_ptr<storage::ModelStore> store_;        // the fuzzed store, re-created
  Rows bases_[3];
  uint64_t inputs_ = 0;
  std::vector<std::string> written_;  // keys the previous input wrote
};

}  // namespace
}  // namespace coupond::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Never destroyed: libFuzzer exits from inside its loop; the atexit hook removes the
  // store's directory.
  static coupond::fuzz::Harness* const harness = new coupond::fuzz::Harness;
  harness->Run(data, size);
  return 0;
}
