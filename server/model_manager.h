#ifndef COUPOND_SERVER_MODEL_MANAGER_H_
#define COUPOND_SERVER_MODEL_MANAGER_H_

// Keeps the server's current model snapshot: finds the newest complete version in a model
// source, loads it off the request path, and publishes it with one atomic pointer swap.
// Requests take a shared_ptr to the snapshot for their whole duration, so a swap never
// disturbs a request in flight, and an old snapshot is freed when its last reader lets go.
// The campaigns stored beside the model (with their prices) are polled on the same
// schedule and published the same way, as an immutable CampaignBook.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "core/snapshot.h"
#include "coupond/v1/coupon_scoring.pb.h"
#include "storage/model_store.h"

namespace coupond::server {

// Where model versions come from. Implementations must be safe to call from the manager's
// polling thread (one call at a time).
class ModelSource {
 public:
  virtual ~ModelSource() = default;
  // Manifest of the newest complete version; NotFound when there is none yet.
  virtual absl::StatusOr<core::ModelVersionInfo> Latest() = 0;
  // Loads and verifies one version.
  virtual absl::StatusOr<std::shared_ptr<const core::ModelSnapshot>> Load(uint64_t version) = 0;
  // The newest record of every stored campaign. Default: none (a source without campaigns).
  virtual absl::StatusOr<std::vector<storage::CampaignRecord>> LatestCampaigns() {
    return std::vector<storage::CampaignRecord>{};
  }
  // For log lines, e.g. the store's path.
  virtual std::string Describe() const = 0;
};

// A stored campaign as the server serves it: parsed and checked once, at load.
struct LoadedCampaign {
  std::string campaign_id;
  uint64_t sequence = 0;
  int64_t published_unix_seconds = 0;
  v1::StoredCampaign stored;
};

// The loaded campaigns by id; immutable once published.
using CampaignBook = std::map<std::string, std::shared_ptr<const LoadedCampaign>, std::less<>>;

// A ModelSource over a RocksDB model store directory. Opens the store read-only for each
// call, so it sees versions published by another process (couponctl publish) after it
// started, and never holds RocksDB's lock.
std::unique_ptr<ModelSource> NewStoreModelSource(std::string store_path,
                                                 uint32_t expected_dimension = 0);

struct ModelManagerOptions {
  // How often the source is polled for a newer version. Default 5 s.
  absl::Duration poll_interval = absl::Seconds(5);
};

// Thread-safe.
class ModelManager {
 public:
  // Called on the polling thread after each successful load, with the new snapshot.
  using LoadCallback = std::function<void(const core::ModelSnapshot&)>;

  static absl::StatusOr<std::unique_ptr<ModelManager>> Create(std::unique_ptr<ModelSource> source,
                                                              const ModelManagerOptions& options);
  // Stops the polling thread (if started); waits for a load in progress to finish.
  ~ModelManager();

  // The snapshot to answer with, or null before the first successful load. Lock-free for
  // readers apart from the shared_ptr control block.
  std::shared_ptr<const core::ModelSnapshot> Current() const {
    return current_.load(std::memory_order_acquire);
  }

  // Current()'s version, 0 before the first load: one relaxed atomic read, without the
  // shared_ptr's reference count, for per-call bookkeeping (metrics). Set just after the
  // swap, so it may name the previous version for an instant.
  uint64_t current_version() const { return current_version_.load(std::memory_order_relaxed); }

  // The campaigns to decide with (never null; empty before the first poll).
  std::shared_ptr<const CampaignBook> Campaigns() const {
    return campaigns_.load(std::memory_order_acquire);
  }

  // Loads the source's newest version if it is newer than the current one, then the
  // campaigns. OK when nothing newer exists or the newer version was loaded; the load error
  // otherwise (the current snapshot is kept). A version that failed once is not retried
  // until a newer one appears.
  absl::Status PollOnce();

  // Reloads the campaigns when any record changed. A record that fails to parse or check
  // is left out (its previously loaded record, if any, is kept) and reported in the
  // returned error; the others are loaded.
  absl::Status PollCampaigns();

  // How reloading has gone so far, for metrics and health reports.
  struct ReloadState {
    uint64_t loads = 0;              // versions loaded and swapped in
    uint64_t rejected_versions = 0;  // versions whose load failed (each counted once)
    uint64_t last_rejected_version = 0;  // 0: none
    std::string last_rejection;          // why it was rejected
    absl::Duration last_load_duration;  // of the latest successful load; 0 before one
    absl::Time last_load_time = absl::InfinitePast();
    absl::Time last_poll_time = absl::InfinitePast();  // of the latest PollOnce
    std::string last_poll_error;  // of the latest PollOnce; "" when it succeeded
  };
  // Never waits for a load in progress.
  ReloadState reload_state() const;

  // Starts polling every poll_interval on a background thread, beginning now.
  // `on_load` may be empty. REQUIRES: called at most once.
  void StartPolling(LoadCallback on_load);
  // Stops the polling thread and waits for it; idempotent. Current() stays valid.
  void StopPolling();

 private:
  ModelManager(std::unique_ptr<ModelSource> source, const ModelManagerOptions& options);
  absl::Status PollModel();
  void PollLoop();

  const ModelManagerOptions options_;
  absl::Mutex poll_mu_;  // one load at a time
  std::unique_ptr<ModelSource> source_ ABSL_GUARDED_BY(poll_mu_);
  uint64_t failed_version_ ABSL_GUARDED_BY(poll_mu_) = 0;
  LoadCallback on_load_;  // set before the thread starts, then only read by it
  std::atomic<std::shared_ptr<const core::ModelSnapshot>> current_;
  std::atomic<uint64_t> current_version_{0};
  std::atomic<std::shared_ptr<const CampaignBook>> campaigns_;
  // (campaign id, sequence) pairs that failed to load, so each is reported once.
  std::map<std::string, uint64_t> failed_campaigns_ ABSL_GUARDED_BY(poll_mu_);
  mutable absl::Mutex reload_mu_;  // apart from poll_mu_, which a load holds for seconds
  ReloadState reload_ ABSL_GUARDED_BY(reload_mu_);
  absl::Mutex stop_mu_;  // serialises StopPolling callers
  absl::Notification stop_;
  std::thread poller_;
};

}  // namespace coupond::server

#endif  // COUPOND_SERVER_MODEL_MANAGER_H_
