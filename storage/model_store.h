#ifndef COUPOND_STORAGE_MODEL_STORE_H_
#define COUPOND_STORAGE_MODEL_STORE_H_

// The model store: a RocksDB database holding numbered model versions.
//
// Layout (all keys in the default column family, bytewise order; <v> is the version as 20
// zero-padded decimal digits, so versions sort numerically):
//   v/<v>/c/<coupon_id>  coupon row: f32 bias, f32 x dim factors, f64 face value,
//                        i64 valid_from, i64 valid_until, i64 stock, u8 predicted from
//                        attributes (0 or 1; coupon cold start)
//   v/<v>/s/<i>          segment i (6 zero-padded digits, 0..num_segments-1): u32 name
//                        length, name, f32 prior bias, f32 x dim prior factors,
//                        f32 x num_segment_features centroid, f64 redemption rate, u64 members
//   v/<v>/sf             segment features (present when num_segments > 0): u32 count, then
//                        per feature u32 name length, name, f32 offset, f32 scale
//   v/<v>/u/<user_id>    user row: f32 bias, f32 x dim factors, i32 segment index (-1: none)
//   v/<v>/~manifest      manifest: "key=value" lines (format, version, dimension, counts of
//                        users, coupons, segments and segment features, global bias,
//                        creation time, checksum, description, meta.*)
//   p/<campaign>/<seq>   a stored campaign (<seq>: 20 zero-padded digits, 1 upwards per
//                        campaign): u32 record format, i64 published time, u64 XXH3-64 of
//                        the payload, payload. The payload is opaque to the store (the
//                        server stores a serialized coupond.v1.StoredCampaign: the
//                        campaign, its prices and its experiment).
// Numbers are little-endian. Within a version keys sort c/ < s/ < sf < u/ < ~manifest.
//
// Formats: the writer writes format 3. Older formats are still read:
//   format 2 (before coupon cold start): coupon rows without the trailing u8; it reads back
//            with every coupon trained (an empty coupon_predicted_from_attributes);
//   format 1 (before segments): as format 2, and no s/ rows, no sf key, no segment counts
//            in its manifest, user rows without the segment index; it reads back as a model
//            without segments.
// A version is written as one SST file (SstFileWriter) and added with IngestExternalFile,
// so its rows and manifest become visible together or not at all: a reader never sees a
// manifest whose rows are missing, whatever the writer's fate.
//
// Every version occupies its own key range, so each ingested file lands in the bottommost
// level without overlapping any other file, and no compaction is ever needed: the writer
// runs with automatic compactions off. That matters because readers (servers) open the
// store read-only beside the writer, and a compaction deleting a file while a reader opens
// the database makes that open fail.
//
// Campaigns change far more often than models (a pacing controller updates a campaign's
// prices every few minutes) and independently of them, so they live beside the versions,
// not inside one: each update is one more record, ingested as its own one-key SST file in
// its own key range like a version, so it too lands in the bottommost level and needs no
// compaction. Readers take the newest record of each campaign; older records stay as an
// audit trail of the prices that were served.
//
// Retention (ModelStore::Prune): every version and every campaign record is one table file,
// so deleting old ones is deleting whole files (DeleteFilesInRange over their key ranges;
// see docs/store-format.md for the rule that keeps what servers may still need). Readers
// open table files when they open the store (max_open_files = -1), so a file deleted under
// an open reader stays readable through its descriptor until that reader closes.
//
// The checksum is XXH3-64 over every data key and value of the version in key order; a read
// recomputes it. Reads verify everything a manifest promises (counts, dimension, value
// sizes, finite numbers, segment indices in range, checksum) and return DataLoss naming
// the first violation.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/model.h"
#include "core/snapshot.h"

namespace rocksdb {
class DB;
}

namespace coupond::storage {

namespace internal {
// Reaches an open store's database. Declared for fuzz/model_version_fuzzer.cc, which writes
// damaged versions into one open store instead of opening RocksDB per input; not for
// production code.
struct ModelStorePeer;
}  // namespace internal

struct PublishOptions {
  // Version number to publish as. 0 (default): one more than the newest version present.
  // A non-zero version must be greater than every version present.
  uint64_t version = 0;
  // Recorded as the manifest's creation time. 0 (default): the current time.
  int64_t created_unix_seconds = 0;
};

// A version written to the store's staging area but not yet visible (ModelStore::Stage).
// Move-only: Commit consumes it; destroying it uncommitted, or a Commit that fails,
// deletes the staged file.
class StagedVersion {
 public:
  StagedVersion(StagedVersion&& other) noexcept;
  StagedVersion& operator=(StagedVersion&& other) noexcept;
  ~StagedVersion();
  const core::ModelVersionInfo& info() const { return info_; }

 private:
  friend class ModelStore;
  StagedVersion(core::ModelVersionInfo info, std::string file)
      : info_(std::move(info)), file_(std::move(file)) {}
  core::ModelVersionInfo info_;
  std::string file_;  // empty once committed or moved from
};

// One stored record of a campaign.
struct CampaignRecord {
  // 1..128 bytes of [A-Za-z0-9._-] (no '/', so a campaign's key range is unambiguous).
  std::string campaign_id;
  // 1 for the first record of a campaign, then one more for each update.
  uint64_t sequence = 0;
  // When the record was published, seconds since the Unix epoch.
  int64_t published_unix_seconds = 0;
  // What the caller stored; verified against its checksum on every read.
  std::string payload;
};

// The longest campaign id, in bytes.
inline constexpr size_t kMaxCampaignIdBytes = 128;

// OK when `campaign_id` can name a stored campaign: 1..128 bytes of [A-Za-z0-9._-];
// InvalidArgument naming campaign_id otherwise.
absl::Status ValidateCampaignId(absl::string_view campaign_id);

// Limits of the store's files besides its tables, set by the writer (OpenForWrite): info LOG
// files kept (the current one included) and the size at which it starts a new one, and the
// size at which it starts a new MANIFEST. With retention, the store's size on disk is then
// bounded by its kept tables plus about (kKeptLogFiles + 1) * kMaxLogFileBytes +
// 2 * kMaxManifestBytes.
inline constexpr size_t kKeptLogFiles = 3;
inline constexpr size_t kMaxLogFileBytes = size_t{256} << 10;
inline constexpr uint64_t kMaxManifestBytes = uint64_t{64} << 10;

// The fewest versions Prune keeps: the newest, which servers load, and the one before it,
// which a server that refused the newest (failed verification, or too big for its memory)
// goes on serving and which an operator rolls back to.
inline constexpr uint32_t kMinKeepVersions = 2;

struct PruneOptions {
  // Versions to keep, newest first. At least kMinKeepVersions; Prune refuses fewer
  // (InvalidArgument naming keep_versions). Default 5.
  uint32_t keep_versions = 5;
  // Records to keep per campaign, newest first (servers read only the newest; older ones
  // are the audit trail of prices served). At least 1 (InvalidArgument naming
  // keep_campaign_records otherwise). Default 5.
  uint32_t keep_campaign_records = 5;
  // A version (campaign record) is deleted only when the next newer version (record of the
  // same campaign) was created (published) at least this long ago, so that every server
  // polling more often than this has already seen the newer one. Must exceed the servers'
  // --poll_interval; negative is refused (InvalidArgument naming min_superseded_age).
  // Default 10 minutes.
  int64_t min_superseded_age_seconds = 600;
  // "Now" for the age rule, seconds since the Unix epoch; 0 (default): the current time.
  int64_t now_unix_seconds = 0;
};

struct PruneResult {
  // The versions deleted, oldest first, and the versions still stored.
  std::vector<uint64_t> deleted_versions;
  uint64_t kept_versions = 0;
  // Campaign records deleted, over every campaign.
  uint64_t deleted_campaign_records = 0;
  // Versions and records that the count rule would delete but the age rule kept.
  uint64_t held_by_age = 0;
  // The store's live table files before and after, and their bytes.
  uint64_t files_before = 0;
  uint64_t files_after = 0;
  uint64_t bytes_before = 0;
  uint64_t bytes_after = 0;
};

// The store's live table files.
struct StoreFiles {
  uint64_t files = 0;
  uint64_t bytes = 0;
};

struct ReadOptions {
  // When non-zero, a version of another dimension is rejected (FailedPrecondition).
  // Default 0: any dimension.
  uint32_t expected_dimension = 0;
};

// Thread-compatible: one ModelStore per thread, or external synchronisation. Any number of
// read-only stores (in this or other processes) may be open beside one writable store.
class ModelStore {
 public:
  // Opens (creating if missing) the store at `path` for publishing. Takes RocksDB's lock:
  // only one writable store per path at a time.
  static absl::StatusOr<std::unique_ptr<ModelStore>> OpenForWrite(const std::string& path);
  // Opens the store at `path` read-only; it sees the versions complete at the time of the
  // call. NotFound if there is no store at `path`.
  static absl::StatusOr<std::unique_ptr<ModelStore>> OpenForRead(const std::string& path);

  ~ModelStore();
  ModelStore(const ModelStore&) = delete;
  ModelStore& operator=(const ModelStore&) = delete;

  // Validates `model` (core::ValidateModelData) and writes it as a new version, visible
  // atomically. Returns the manifest as written. Requires a store opened for write.
  absl::StatusOr<core::ModelVersionInfo> Publish(const core::ModelData& model,
                                                 const PublishOptions& options = {});

  // Publish in two steps: Stage does all the work (validation, encoding, checksum, writing
  // the version's table file) without changing what readers see; Commit makes it visible
  // atomically, in a few milliseconds (a file link and a manifest update). Lets a pipeline
  // prepare a version ahead of the moment it goes live. Versions staged ahead need
  // explicit, increasing `options.version`s; Commit refuses (FailedPrecondition) a version
  // no longer newer than every stored one. Requires a store opened for write.
  absl::StatusOr<StagedVersion> Stage(const core::ModelData& model,
                                      const PublishOptions& options = {});
  absl::StatusOr<core::ModelVersionInfo> Commit(StagedVersion staged);

  // Manifests of every complete version, oldest first. Unparsable manifests are DataLoss.
  absl::StatusOr<std::vector<core::ModelVersionInfo>> ListVersions() const;
  // The newest version's manifest; NotFound when the store holds none.
  absl::StatusOr<core::ModelVersionInfo> LatestVersion() const;

  // Reads and verifies one version. NotFound if it does not exist; DataLoss if its rows
  // disagree with its manifest in any way (see the file comment).
  absl::StatusOr<core::ModelData> ReadVersion(uint64_t version,
                                              const ReadOptions& options = {}) const;
  // Reads a version and builds the immutable snapshot the server serves.
  absl::StatusOr<std::shared_ptr<const core::ModelSnapshot>> LoadSnapshot(
      uint64_t version, const ReadOptions& options = {}) const;

  // Stores `payload` as the newest record of `campaign_id` (sequence one more than the
  // newest present), visible atomically. InvalidArgument for a malformed id or a payload
  // over 64 MiB. `published_unix_seconds` 0: the current time. Requires a store opened for
  // write. Returns the record as written.
  absl::StatusOr<CampaignRecord> PublishCampaign(absl::string_view campaign_id,
                                                 absl::string_view payload,
                                                 int64_t published_unix_seconds = 0);
  // The newest record of every stored campaign, by campaign id. DataLoss for a record that
  // fails verification (malformed key or value, checksum mismatch).
  absl::StatusOr<std::vector<CampaignRecord>> LatestCampaigns() const;
  // Every record of one campaign, oldest first; empty when the campaign is not stored.
  absl::StatusOr<std::vector<CampaignRecord>> CampaignHistory(absl::string_view campaign_id) const;

  // Deletes the versions and campaign records the retention rule allows (PruneOptions),
  // and their table files, so the disk space comes back at once. Readers already open keep
  // reading deleted files through their descriptors; the newest version and the newest
  // record of each campaign are never deleted. Requires a store opened for write.
  absl::StatusOr<PruneResult> Prune(const PruneOptions& options);

  // The live table files and their total size (RocksDB's metadata, no directory scan).
  StoreFiles LiveFiles() const;

  // A token that changes whenever what a reader opening the store would see changes: the
  // name of the MANIFEST that CURRENT points to, and that file's size and modification
  // time (every ingest and every deletion appends to it; a writer that opens the store
  // starts a new one). Costs one small read and one stat. NotFound without a store at
  // `path`. A reader takes the token before opening, so a change during its open shows up
  // as a changed token at the next check (one spare reopen), never as a missed one.
  static absl::StatusOr<std::string> ChangeToken(const std::string& path);

  const std::string& path() const { return path_; }

 private:
  friend struct internal::ModelStorePeer;

  ModelStore(std::string path, std::unique_ptr<rocksdb::DB> db, bool writable);

  // Writes `rows` (sorted by key) into one SST file named `file_name` and ingests it.
  absl::Status IngestRows(const std::string& file_name,
                          const std::vector<std::pair<std::string, std::string>>& rows);

  // The manifest of `version`; `*format` (when not null) receives its format.
  absl::StatusOr<core::ModelVersionInfo> ReadManifest(uint64_t version,
                                                      int* format = nullptr) const;

  std::string path_;
  std::unique_ptr<rocksdb::DB> db_;
  bool writable_;
};

}  // namespace coupond::storage

#endif  // COUPOND_STORAGE_MODEL_STORE_H_
