// Retention of the model store: ModelStore::Prune, and what readers need to notice changes
// cheaply (LiveFiles, ChangeToken). See model_store.h and docs/store-format.md.

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/rocksdb_status.h"
#include "common/status_macros.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/metadata.h"
#include "rocksdb/options.h"
#include "storage/keys.h"
#include "storage/model_store.h"

namespace coupond::storage {
namespace {

// A key range [begin, end) whose table files Prune deletes.
struct DoomedRange {
  std::string begin;
  std::string end;
};

// True when some key of the store lies in [range.begin, range.end).
absl::StatusOr<bool> RangeHasKeys(rocksdb::DB* db, const DoomedRange& range) {
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper(range.end);
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  it->Seek(range.begin);
  const bool found = it->Valid();
  COUPOND_RETURN_IF_ERROR(common::FromRocksDb(it->status(), "checking a pruned range"));
  return found;
}

}  // namespace

StoreFiles ModelStore::LiveFiles() const {
  std::vector<rocksdb::LiveFileMetaData> files;
  db_->GetLiveFilesMetaData(&files);
  StoreFiles out;
  out.files = files.size();
  for (const rocksdb::LiveFileMetaData& f : files) out.bytes += f.size;
  return out;
}

absl::StatusOr<std::string> ModelStore::ChangeToken(const std::string& path) {
  std::ifstream current(path + "/CURRENT");
  std::string manifest;
  if (!current || !std::getline(current, manifest)) {
    return absl::NotFoundError(
        absl::StrCat("model store '", path, "': no RocksDB database there (no CURRENT file)"));
  }
  absl::StripAsciiWhitespace(&manifest);
  struct stat st {};
  if (::stat((path + "/" + manifest).c_str(), &st) != 0) {
    // The writer switched MANIFESTs between our read of CURRENT and the stat: a change.
    return absl::StrCat(manifest, " missing: ", std::strerror(errno));
  }
  return absl::StrCat(manifest, " ", static_cast<int64_t>(st.st_size), " ",
                      static_cast<int64_t>(st.st_mtim.tv_sec), ".",
                      static_cast<int64_t>(st.st_mtim.tv_nsec));
}

absl::StatusOr<PruneResult> ModelStore::Prune(const PruneOptions& options) {
  if (!writable_) {
    return absl::FailedPreconditionError(
        absl::StrCat("model store '", path_, "' is open read-only"));
  }
  if (options.keep_versions < kMinKeepVersions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "keep_versions: ", options.keep_versions, " is below the minimum of ", kMinKeepVersions,
        " (the newest version and the one before it, which servers that refused the newest "
        "still serve, are never deleted)"));
  }
  if (options.keep_campaign_records < 1) {
    return absl::InvalidArgumentError(
        "keep_campaign_records: 0 would delete the record servers read; keep at least 1");
  }
  if (options.min_superseded_age_seconds < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "min_superseded_age: ", options.min_superseded_age_seconds, " s is negative"));
  }
  const int64_t now =
      options.now_unix_seconds != 0 ? options.now_unix_seconds : std::time(nullptr);
  // Deletable only when what superseded it is at least this old (created at or before).
  const int64_t superseded_by = now - options.min_superseded_age_seconds;

  PruneResult result;
  std::vector<DoomedRange> ranges;

  // Versions: the oldest ones beyond keep_versions, stopping at the first whose successor
  // is too young, so what is deleted is one contiguous range below the oldest kept version.
  COUPOND_ASSIGN_OR_RETURN(std::vector<core::ModelVersionInfo> versions, ListVersions());
  const size_t over = versions.size() > options.keep_versions
                          ? versions.size() - options.keep_versions
                          : 0;
  size_t first_kept = 0;
  while (first_kept < over && versions[first_kept + 1].created_unix_seconds <= superseded_by) {
    result.deleted_versions.push_back(versions[first_kept].version);
    ++first_kept;
  }
  result.held_by_age += over - first_kept;
  result.kept_versions = versions.size() - first_kept;
  if (first_kept > 0) {
    ranges.push_back({std::string(internal::kVersionsPrefix),
                      internal::VersionPrefix(versions[first_kept].version)});
  }

  // Campaign records: per campaign, the same rule over its records.
  COUPOND_ASSIGN_OR_RETURN(std::vector<CampaignRecord> latest, LatestCampaigns());
  for (const CampaignRecord& newest : latest) {
    COUPOND_ASSIGN_OR_RETURN(std::vector<CampaignRecord> history,
                             CampaignHistory(newest.campaign_id));
    const size_t extra = history.size() > options.keep_campaign_records
                             ? history.size() - options.keep_campaign_records
                             : 0;
    size_t kept = 0;
    while (kept < extra && history[kept + 1].published_unix_seconds <= superseded_by) ++kept;
    result.held_by_age += extra - kept;
    result.deleted_campaign_records += kept;
    if (kept > 0) {
      ranges.push_back({internal::CampaignPrefix(newest.campaign_id),
                        internal::CampaignKey(newest.campaign_id, history[kept].sequence)});
    }
  }

  const StoreFiles before = LiveFiles();
  result.files_before = before.files;
  result.bytes_before = before.bytes;
  if (!ranges.empty()) {
    // Each version and each record is one table file inside its own key range (ingested
    // into the bottommost level, never compacted with another), so deleting the files that
    // lie inside the ranges deletes exactly those rows, and RocksDB unlinks the files at
    // once: the disk space comes back without a compaction.
    std::vector<rocksdb::Slice> bounds;
    bounds.reserve(2 * ranges.size());
    for (const DoomedRange& r : ranges) {
      bounds.emplace_back(r.begin);
      bounds.emplace_back(r.end);
    }
    std::vector<rocksdb::RangePtr> range_ptrs;
    for (size_t i = 0; i < ranges.size(); ++i) {
      range_ptrs.emplace_back(&bounds[2 * i], &bounds[2 * i + 1]);
    }
    COUPOND_RETURN_IF_ERROR(common::FromRocksDb(
        rocksdb::DeleteFilesInRanges(db_.get(), db_->DefaultColumnFamily(), range_ptrs.data(),
                                     range_ptrs.size(), /*include_end=*/false),
        absl::StrCat("model store '", path_, "': deleting table files of pruned ranges")));
    // A file that also holds keys outside a range is not deleted (a store written by some
    // other tool, or rows that reached a flushed memtable): delete what is left with a
    // range tombstone and compact the range, which rewrites those files without the rows.
    for (const DoomedRange& r : ranges) {
      COUPOND_ASSIGN_OR_RETURN(const bool left, RangeHasKeys(db_.get(), r));
      if (!left) continue;
      const std::string context = absl::StrCat("model store '", path_, "': pruning range");
      rocksdb::WriteOptions wo;
      wo.sync = true;
      COUPOND_RETURN_IF_ERROR(common::FromRocksDb(
          db_->DeleteRange(wo, db_->DefaultColumnFamily(), r.begin, r.end), context));
      COUPOND_RETURN_IF_ERROR(
          common::FromRocksDb(db_->Flush(rocksdb::FlushOptions()), context));
      rocksdb::CompactRangeOptions compact;
      compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
      const rocksdb::Slice begin(r.begin), end(r.end);
      COUPOND_RETURN_IF_ERROR(common::FromRocksDb(
          db_->CompactRange(compact, db_->DefaultColumnFamily(), &begin, &end), context));
      COUPOND_ASSIGN_OR_RETURN(const bool still, RangeHasKeys(db_.get(), r));
      if (still) {
        return absl::InternalError(absl::StrCat(context, " '", r.begin,
                                                "': rows remain after a range deletion"));
      }
    }
  }
  const StoreFiles after = LiveFiles();
  result.files_after = after.files;
  result.bytes_after = after.bytes;
  return result;
}

}  // namespace coupond::storage
