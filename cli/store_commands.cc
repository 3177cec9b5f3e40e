#include "cli/store_commands.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cli/cli_util.h"

namespace coupond::couponctl {

absl::StatusOr<storage::PruneOptions> MakePruneOptions(const RetentionFlags& flags,
                                                       const char* keep_flag) {
  if (flags.keep < storage::kMinKeepVersions) {
    return absl::InvalidArgumentError(absl::StrCat(
        keep_flag, ": ", flags.keep, " is below the minimum of ", storage::kMinKeepVersions,
        " (the newest version and the one before it are never deleted: servers that refused "
        "the newest still serve the one before)"));
  }
  if (flags.keep_campaign_records < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--keep_campaign_records: ", flags.keep_campaign_records,
        " is negative (0: as many records per campaign as versions kept)"));
  }
  if (flags.min_age < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--min_age: ", absl::FormatDuration(flags.min_age), " is negative"));
  }
  storage::PruneOptions options;
  // Beyond 2^32 versions, keeping them all is keeping "more than exist".
  constexpr int64_t kMostKept = std::numeric_limits<uint32_t>::max();
  options.keep_versions = static_cast<uint32_t>(std::min(flags.keep, kMostKept));
  const int64_t records =
      flags.keep_campaign_records == 0 ? flags.keep : flags.keep_campaign_records;
  options.keep_campaign_records = static_cast<uint32_t>(std::min(records, kMostKept));
  options.min_superseded_age_seconds = absl::ToInt64Seconds(flags.min_age);
  return options;
}

absl::Status PruneAndReport(storage::ModelStore* store, const storage::PruneOptions& options) {
  absl::StatusOr<storage::PruneResult> r = store->Prune(options);
  if (!r.ok()) return r.status();
  std::string versions = "no version";
  if (!r->deleted_versions.empty()) {
    versions = absl::StrCat(r->deleted_versions.size(), " version(s) (",
                            r->deleted_versions.front(), "..", r->deleted_versions.back(), ")");
  }
  std::printf("pruned %s and %llu campaign record(s) from %s; %llu version(s) kept; table "
              "files %llu -> %llu, %llu -> %llu bytes",
              versions.c_str(), static_cast<unsigned long long>(r->deleted_campaign_records),
              store->path().c_str(), static_cast<unsigned long long>(r->kept_versions),
              static_cast<unsigned long long>(r->files_before),
              static_cast<unsigned long long>(r->files_after),
              static_cast<unsigned long long>(r->bytes_before),
              static_cast<unsigned long long>(r->bytes_after));
  if (r->held_by_age > 0) {
    std::printf("; %llu more kept until superseded %llds ago (--min_age)",
                static_cast<unsigned long long>(r->held_by_age),
                static_cast<long long>(options.min_superseded_age_seconds));
  }
  std::printf("\n");
  return absl::OkStatus();
}

absl::Status PruneStoreAt(const std::string& path, const storage::PruneOptions& options) {
  // OpenForWrite would create an empty store at a mistyped path: check first.
  if (absl::StatusOr<std::string> token = storage::ModelStore::ChangeToken(path); !token.ok()) {
    return absl::NotFoundError(absl::StrCat("--store: no model store at '", path, "'"));
  }
  absl::StatusOr<std::unique_ptr<storage::ModelStore>> store =
      storage::ModelStore::OpenForWrite(path);
  if (!store.ok()) return store.status();
  return PruneAndReport(store->get(), options);
}

int Prune(const std::string& store, const RetentionFlags& flags) {
  if (store.empty()) return Usage("prune: --store is required");
  absl::StatusOr<storage::PruneOptions> options = MakePruneOptions(flags, "--keep");
  if (!options.ok()) return Usage(std::string(options.status().message()).c_str());
  if (absl::Status s = PruneStoreAt(store, *options); !s.ok()) return Fail(s);
  return 0;
}

}  // namespace coupond::couponctl
