#ifndef COUPOND_CLI_STORE_COMMANDS_H_
#define COUPOND_CLI_STORE_COMMANDS_H_

// couponctl's model store retention: `prune`, and the automatic policy (--keep_versions) of
// the commands that publish (publish, train, pipeline). The rule that keeps what servers may
// still need is the store's (storage::PruneOptions, docs/store-format.md); these commands
// only check the flags, naming them, and print what was deleted.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "storage/model_store.h"

namespace coupond::couponctl {

struct RetentionFlags {
  // Versions to keep, newest first: prune's --keep (required), or publish/train/pipeline's
  // --keep_versions (0, the default there: no automatic pruning). At least 2.
  int64_t keep = 0;
  // --keep_campaign_records: records kept per campaign, newest first. 0 (default): as many
  // as versions kept.
  int64_t keep_campaign_records = 0;
  // --min_age: delete nothing superseded more recently than this. Default 10 minutes; must
  // exceed the servers' --poll_interval.
  absl::Duration min_age = absl::Minutes(10);
};

// The store's prune options from the flags; InvalidArgument naming `keep_flag` (e.g.
// "--keep") or the other flag when one is out of range.
absl::StatusOr<storage::PruneOptions> MakePruneOptions(const RetentionFlags& flags,
                                                       const char* keep_flag);

// Prunes an open store and prints what went (one line on stdout).
absl::Status PruneAndReport(storage::ModelStore* store, const storage::PruneOptions& options);

// Opens the store at `path` for writing (NotFound, creating nothing, when there is none)
// and prunes it; for commands that published through a store they no longer hold.
absl::Status PruneStoreAt(const std::string& path, const storage::PruneOptions& options);

// couponctl prune --store DIR --keep N [--keep_campaign_records M] [--min_age D].
int Prune(const std::string& store, const RetentionFlags& flags);

}  // namespace coupond::couponctl

#endif  // COUPOND_CLI_STORE_COMMANDS_H_
