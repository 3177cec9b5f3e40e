#ifndef COUPOND_SERVER_MODEL_MANAGER_H_
#define COUPOND_SERVER_MODEL_MANAGER_H_

// Keeps the server's current model snapshot: finds the newest complete version in a model
// source, loads it off the request path, and publishes it with one atomic pointer swap.
// Requests take a shared_ptr to the snapshot for their whole duration, so a swap never
// disturbs a request in flight, and an old snapshot is freed once its last reader lets go:
// by the polling thread (within ~10 ms, at its low priority) when it runs, so no request
// thread pays for tearing down a model; otherwise by that last reader.
// The campaigns stored beside the model (with their prices) are polled on the same
// schedule and published the same way, as an immutable CampaignBook.
// Before loading a version it checks that the version fits in memory beside the served one
// (server/memory_check.h); a version that does not is refused and the served one stays.

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
#include "api/convert.h"
#include "core/scorer.h"
#include "core/snapshot.h"
#include "core/user_key.h"
#include "coupond/v1/coupon_scoring.pb.h"
#include "server/memory_check.h"
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

  // What the source holds open, for metrics. Default: nothing known (all zero).
  struct Stats {
    // Times the source opened its store (the first open, then one per change seen).
    uint64_t opens = 0;
    // Live table files of the store as last opened, and their bytes.
    uint64_t store_files = 0;
    uint64_t store_bytes = 0;
  };
  virtual Stats stats() const { return {}; }
};

// A stored campaign as the server serves it: parsed and checked once, at load.
struct LoadedCampaign {
  std::string campaign_id;
  uint64_t sequence = 0;
  int64_t published_unix_seconds = 0;
  v1::StoredCampaign stored;
  // The campaign's experiment and exploration, parsed once here rather than per Decide.
  api::DecisionPolicy policy;
  // The campaign's coupons looked up in the model version served when this book was built
  // (Score by campaign_id), or null when no version was served. After a model swap the book
  // is rebuilt at the same poll, so for an instant this may belong to the previous
  // version: readers compare candidates->model_version with their snapshot's.
  std::shared_ptr<const core::ResolvedCoupons> candidates;
};

// The stored campaign's coupon ids, in its order (the list ResolvedCoupons indexes).
std::vector<absl::string_view> CampaignCouponIds(const v1::Campaign& campaign);

// The loaded campaigns by id; immutable once published.
using CampaignBook = std::map<std::string, std::shared_ptr<const LoadedCampaign>, std::less<>>;

// A ModelSource over a RocksDB model store directory. Keeps one read-only handle open (it
// never holds RocksDB's lock, so couponctl can publish and prune beside it) and reopens it
// only when ModelStore::ChangeToken says the store changed: a poll that finds nothing new
// costs one small read and one stat, whatever the store's history. Versions published by
// another process after the server started are seen at the first poll after they commit.
// (Not a RocksDB secondary instance: every couponctl run reopens the writer and so starts a
// new MANIFEST, and a secondary's catch-up across such switches is fragile in RocksDB 7.8;
// see docs/store-format.md.)
std::unique_ptr<ModelSource> NewStoreModelSource(std::string store_path,
                                                 uint32_t expected_dimension = 0);

struct ModelManagerOptions {
  // How often the source is polled for a newer version. Default 5 s.
  absl::Duration poll_interval = absl::Seconds(5);
  // The memory check before each load (defaults: see MemoryCheckOptions).
  MemoryCheckOptions memory;
  // How much lower (in nice units) the loader runs: reading the store, verifying and
  // building a version (~0.05-0.1 s of CPU for a 40 MB model) and looking the campaigns'
  // coupons up. Done on a thread of that priority, so on a busy machine the work waits for
  // idle CPU instead of delaying request threads; the pointer swaps stay at the caller's
  // priority. 0: at the caller's priority, on its thread. Default 10.
  int poll_thread_nice = 10;
  // The operator's user id keyer (--user_id_key_file), or null (default) when ids are raw.
  // When set, the eligibility lists of every stored campaign are keyed at load (keys pass
  // through), so that they match the keyed ids Decide looks up; a record that still holds
  // raw ids (written without the secret) is served and logged as a warning.
  std::shared_ptr<const core::UserKeyer> user_keyer;
};

// What the manager has loaded and refused, for status reports (Admin.GetServerStatus,
// /metrics, /healthz).
struct ModelLoadStatus {
  // The served version (0: none yet), when its load finished and how long it took.
  uint64_t served_version = 0;
  absl::Time last_load_time = absl::InfinitePast();
  absl::Duration last_load_duration = absl::ZeroDuration();
  // Versions loaded and refused since the manager was created.
  uint64_t loads = 0;
  uint64_t rejections = 0;
  // The most recent refusal; rejected_version 0 and an OK status when there was none.
  // ResourceExhausted: it would not fit in memory; any other code: it failed to load or
  // verify.
  uint64_t rejected_version = 0;
  absl::Status rejection;
  absl::Time rejected_time = absl::InfinitePast();
  // The memory budget of the most recent load attempt (unset before the first).
  MemoryBudget memory;
  // The latest PollOnce: when, how long it took (model and campaigns, a load included),
  // and its error ("" when it succeeded); polls counts every PollOnce.
  absl::Time last_poll_time = absl::InfinitePast();
  absl::Duration last_poll_duration = absl::ZeroDuration();
  uint64_t polls = 0;
  std::string last_poll_error;
  // The source's open handle as of the latest poll (ModelSource::Stats).
  ModelSource::Stats source;
};

// The outcome of ModelManager::ReloadNow.
struct ReloadResult {
  // The version served before and after (0: none).
  uint64_t previous_version = 0;
  uint64_t served_version = 0;
  // Not OK when the source's newest version was refused (the previous one keeps serving):
  // why it was.
  absl::Status rejection;
  // What PollCampaigns reported.
  absl::Status campaigns;
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

  // The snapshot to answer with, or null before the first successful load. Thread-safe.
  // Not lock-free: libstdc++ 12's std::atomic<std::shared_ptr> guards the pointer with a
  // spin lock held for the copy of the pointer and its reference count, so readers and
  // the swap wait only for each other's few instructions (never for a load).
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

  // An operator's "poll now": like PollOnce, but a version refused earlier is tried again
  // (a memory refusal may not repeat; a damaged version will, and is reported again).
  // An error only when the source cannot be read (NotFound: it holds no version); a
  // refused version is reported in ReloadResult::rejection.
  absl::StatusOr<ReloadResult> ReloadNow();

  // A copy of the load history. Never waits for a load in progress.
  ModelLoadStatus LoadStatus() const;

  // Reloads the campaigns when any record changed, and looks their coupons up again when
  // the served model version changed. A record that fails to parse or check is left out
  // (its previously loaded record, if any, is kept) and reported in the returned error;
  // the others are loaded.
  absl::Status PollCampaigns();

  // Starts polling every poll_interval on a background thread, beginning now.
  // `on_load` may be empty. REQUIRES: called at most once.
  void StartPolling(LoadCallback on_load);
  // Stops the polling thread and waits for it; idempotent. Current() stays valid.
  void StopPolling();

 private:
  ModelManager(std::unique_ptr<ModelSource> source, const ModelManagerOptions& options);
  // Loads the newest version if it is newer. `retry_rejected`: try a version that failed
  // verification before again. Sets *rejected when the newest version was refused (the
  // returned status says why); otherwise a non-OK status is an error reading the source.
  absl::Status PollModel(bool retry_rejected, bool* rejected);
  // PollModel (no retry) then PollCampaigns, recorded as the latest poll in LoadStatus().
  absl::Status Poll(bool* rejected);
  // Reads the campaigns and builds the next book (null when nothing changed). Runs on the
  // low-priority loader thread while the caller, holding poll_mu_, waits for it.
  absl::Status NextCampaignBook(std::shared_ptr<const CampaignBook>* next);
  // Records and (once per version and reason) logs a refusal.
  void RecordRejection(uint64_t version, const absl::Status& why);
  void PollLoop();
  // Frees the retired snapshots no reader holds any more (on a low-priority thread).
  // Returns true when it freed one.
  bool ReleaseRetired();
  // How often the poller looks for retired snapshots to free while some are held.
  static constexpr absl::Duration kRetiredCheckInterval = absl::Milliseconds(10);

  const ModelManagerOptions options_;
  absl::Mutex poll_mu_;  // one load at a time
  std::unique_ptr<ModelSource> source_ ABSL_GUARDED_BY(poll_mu_);
  uint64_t failed_version_ ABSL_GUARDED_BY(poll_mu_) = 0;
  LoadCallback on_load_;  // set before the thread starts, then only read by it
  std::atomic<std::shared_ptr<const core::ModelSnapshot>> current_;
  std::atomic<uint64_t> current_version_{0};
  std::atomic<std::shared_ptr<const CampaignBook>> campaigns_;
  // Once polling started, swapped-out snapshots wait here for their last reader and are
  // freed by the poller (without a poller, by their last reader).
  std::atomic<bool> polling_{false};
  absl::Mutex retired_mu_;
  std::vector<std::shared_ptr<const core::ModelSnapshot>> retired_ ABSL_GUARDED_BY(retired_mu_);
  std::atomic<size_t> retired_count_{0};
  // (campaign id, sequence) pairs that failed to load, so each is reported once.
  std::map<std::string, uint64_t> failed_campaigns_ ABSL_GUARDED_BY(poll_mu_);
  mutable absl::Mutex status_mu_;  // never held while loading
  ModelLoadStatus status_ ABSL_GUARDED_BY(status_mu_);
  absl::Mutex stop_mu_;  // serialises StopPolling callers
  absl::Notification stop_;
  std::thread poller_;
};

}  // namespace coupond::server

#endif  // COUPOND_SERVER_MODEL_MANAGER_H_
