#include "server/model_manager.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "api/convert.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "storage/model_store.h"

namespace coupond::server {
namespace {

class StoreModelSource final : public ModelSource {
 public:
  StoreModelSource(std::string path, uint32_t expected_dimension)
      : path_(std::move(path)), expected_dimension_(expected_dimension) {}

  absl::StatusOr<core::ModelVersionInfo> Latest() override {
    COUPOND_ASSIGN_OR_RETURN(const storage::ModelStore* store, Fresh());
    return store->LatestVersion();
  }

  absl::StatusOr<std::shared_ptr<const core::ModelSnapshot>> Load(uint64_t version) override {
    // The handle Latest() just refreshed: the version it named is in it, and stays
    // readable even if a prune deletes its file meanwhile (the reader holds the file open).
    if (store_ == nullptr) COUPOND_RETURN_IF_ERROR(Fresh().status());
    storage::ReadOptions options;
    options.expected_dimension = expected_dimension_;
    return store_->LoadSnapshot(version, options);
  }

  absl::StatusOr<std::vector<storage::CampaignRecord>> LatestCampaigns() override {
    COUPOND_ASSIGN_OR_RETURN(const storage::ModelStore* store, Fresh());
    return store->LatestCampaigns();
  }

  std::string Describe() const override { return absl::StrCat("model store '", path_, "'"); }

  Stats stats() const override { return stats_; }

 private:
  // The open store, reopened first when the store changed since it was opened. The token
  // is read before the open, so a change racing with the open costs one spare reopen at
  // the next call, never a missed change.
  //
  // A writer that publishes and prunes while the open reads the MANIFEST can delete a table
  // file the MANIFEST just named ("Can't access 000088.sst"): the store changed under the
  // open, which the token then shows, so the open is tried again (kOpenAttempts in all)
  // instead of failing the poll. Seen with 500 publish-and-prune rounds in 3 s.
  absl::StatusOr<const storage::ModelStore*> Fresh() {
    constexpr int kOpenAttempts = 5;
    for (int attempt = 1;; ++attempt) {
      absl::StatusOr<std::string> token = storage::ModelStore::ChangeToken(path_);
      // No store (any more): a handle already open stays (its versions stay readable) and
      // the error is reported; without one, OpenForRead below says why in its own words.
      if (!token.ok() && store_ != nullptr) return token.status();
      if (store_ != nullptr && token.ok() && *token == token_) return store_.get();
      absl::StatusOr<std::unique_ptr<storage::ModelStore>> reopened =
          storage::ModelStore::OpenForRead(path_);
      if (!reopened.ok()) {
        absl::StatusOr<std::string> after = storage::ModelStore::ChangeToken(path_);
        if (attempt < kOpenAttempts && token.ok() && after.ok() && *after != *token) continue;
        return reopened.status();
      }
      store_ = *std::move(reopened);  // closes the previous handle and its files
      // A store that appeared after the token was read gets one spare reopen next time.
      token_ = token.ok() ? *std::move(token) : std::string();
      const storage::StoreFiles files = store_->LiveFiles();
      ++stats_.opens;
      stats_.store_files = files.files;
      stats_.store_bytes = files.bytes;
      return store_.get();
    }
  }

  const std::string path_;
  const uint32_t expected_dimension_;
  std::unique_ptr<storage::ModelStore> store_;
  std::string token_;
  Stats stats_;
};

// Adds `increment` to the calling thread's nice value (Linux schedules threads by their own
// nice value; setpriority sets an absolute one). Lowering a priority needs no privilege.
void LowerThreadPriority(int increment) {
  const id_t self = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  const int current = getpriority(PRIO_PROCESS, self);
  if ((current == -1 && errno != 0) ||
      setpriority(PRIO_PROCESS, self, std::clamp(current + increment, -20, 19)) != 0) {
    static std::once_flag warned;
    std::call_once(warned, [] {
      spdlog::warn("cannot lower the model loader's priority ({}); loads run at the request "
                   "threads' priority", std::strerror(errno));
    });
  }
}

// Runs `work` on a thread of its own whose nice value is `nice` higher, and waits for it:
// reading and building a version then takes CPU only when request threads leave some. The
// result is published (the pointer swaps) by the caller, at the caller's priority: a
// low-priority thread must not hold what request threads wait on (the atomic shared_ptr's
// lock), or they would wait for it to be scheduled.
template <typename F>
std::invoke_result_t<F&> RunNiced(int nice, F&& work) {
  if (nice == 0) return work();
  std::optional<std::invoke_result_t<F&>> result;
  std::thread worker([&] {
    LowerThreadPriority(nice);
    result.emplace(work());
  });
  worker.join();
  return *std::move(result);
}

}  // namespace

std::unique_ptr<ModelSource> NewStoreModelSource(std::string store_path,
                                                 uint32_t expected_dimension) {
  return std::make_unique<StoreModelSource>(std::move(store_path), expected_dimension);
}

ModelManager::ModelManager(std::unique_ptr<ModelSource> source,
                           const ModelManagerOptions& options)
    : options_(options),
      source_(std::move(source)),
      campaigns_(std::make_shared<const CampaignBook>()) {}

absl::StatusOr<std::unique_ptr<ModelManager>> ModelManager::Create(
    std::unique_ptr<ModelSource> source, const ModelManagerOptions& options) {
  if (source == nullptr) return absl::InvalidArgumentError("ModelManager: source is null");
  if (options.poll_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ModelManager: poll_interval must be positive");
  }
  return std::unique_ptr<ModelManager>(new ModelManager(std::move(source), options));
}

ModelManager::~ModelManager() { StopPolling(); }

void ModelManager::StopPolling() {
  absl::MutexLock lock(&stop_mu_);
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (poller_.joinable()) poller_.join();
}

absl::Status ModelManager::PollOnce() {
  bool rejected = false;
  return Poll(&rejected);
}

absl::Status ModelManager::Poll(bool* rejected) {
  const absl::Time start = absl::Now();
  absl::Status model = PollModel(/*retry_rejected=*/false, rejected);
  absl::Status campaigns = PollCampaigns();
  absl::Status result = model.ok() ? campaigns : model;
  const absl::Time end = absl::Now();
  ModelSource::Stats source;
  {
    absl::MutexLock lock(&poll_mu_);
    source = source_->stats();
  }
  absl::MutexLock lock(&status_mu_);
  status_.last_poll_time = end;
  status_.last_poll_duration = end - start;
  ++status_.polls;
  status_.last_poll_error = std::string(result.message());
  status_.source = source;
  return result;
}

absl::StatusOr<ReloadResult> ModelManager::ReloadNow() {
  ReloadResult result;
  if (const auto current = Current()) result.previous_version = current->info().version;
  bool rejected = false;
  absl::Status model = PollModel(/*retry_rejected=*/true, &rejected);
  result.campaigns = PollCampaigns();
  if (const auto current = Current()) result.served_version = current->info().version;
  if (rejected) {
    result.rejection = std::move(model);
  } else if (!model.ok()) {
    return model;
  }
  return result;
}

ModelLoadStatus ModelManager::LoadStatus() const {
  absl::MutexLock lock(&status_mu_);
  return status_;
}

void ModelManager::RecordRejection(uint64_t version, const absl::Status& why) {
  bool repeated = false;
  {
    absl::MutexLock lock(&status_mu_);
    repeated = status_.rejected_version == version && status_.rejection.code() == why.code();
    ++status_.rejections;
    status_.rejected_version = version;
    status_.rejection = why;
    status_.rejected_time = absl::Now();
  }
  // A memory refusal is retried every poll; say it once per version, not every interval.
  if (!repeated) {
    const std::shared_ptr<const core::ModelSnapshot> current = Current();
    spdlog::error("{}; {}", std::string(why.message()),
                  current == nullptr
                      ? std::string("no version served yet")
                      : absl::StrCat("still serving version ", current->info().version));
  }
}

std::vector<absl::string_view> CampaignCouponIds(const v1::Campaign& campaign) {
  std::vector<absl::string_view> ids;
  ids.reserve(static_cast<size_t>(campaign.coupons_size()));
  for (const v1::CampaignCoupon& coupon : campaign.coupons()) ids.push_back(coupon.coupon_id());
  return ids;
}

absl::Status ModelManager::PollCampaigns() {
  absl::MutexLock lock(&poll_mu_);
  std::shared_ptr<const CampaignBook> next;
  const absl::Status status = RunNiced(options_.poll_thread_nice, [&] {
    return NextCampaignBook(&next);
  });
  if (next != nullptr) campaigns_.store(std::move(next), std::memory_order_release);
  return status;
}

absl::Status ModelManager::NextCampaignBook(std::shared_ptr<const CampaignBook>* out) {
  absl::StatusOr<std::vector<storage::CampaignRecord>> records = source_->LatestCampaigns();
  if (!records.ok()) {
    // A store without a model yet reads as NotFound here too; the model poll reports it.
    if (absl::IsNotFound(records.status())) return absl::OkStatus();
    return absl::Status(records.status().code(),
                        absl::StrCat("reading campaigns from ", source_->Describe(), ": ",
                                     records.status().message()));
  }
  const std::shared_ptr<const CampaignBook> current = Campaigns();
  const std::shared_ptr<const core::ModelSnapshot> model = Current();
  // The campaign's coupons in `model`'s rows, looked up once here instead of per request.
  auto resolve = [&model](const LoadedCampaign& campaign) {
    std::shared_ptr<const core::ResolvedCoupons> resolved;
    if (model != nullptr) {
      resolved = std::make_shared<const core::ResolvedCoupons>(
          core::ResolveCoupons(*model, CampaignCouponIds(campaign.stored.campaign()),
                               core::ResolvedLayout::kContiguousCopy));
    }
    return resolved;
  };
  const auto resolved_for_model = [&model](const LoadedCampaign& campaign) {
    return model == nullptr
               ? campaign.candidates == nullptr
               : campaign.candidates != nullptr &&
                     campaign.candidates->model_version == model->info().version;
  };
  bool changed = records->size() != current->size();
  auto next = std::make_shared<CampaignBook>();
  std::string errors;
  // An entry whose record is unchanged is kept as is, or copied with its coupons looked up
  // again when the model version changed.
  auto keep = [&](const std::shared_ptr<const LoadedCampaign>& old) {
    if (resolved_for_model(*old)) {
      next->emplace(old->campaign_id, old);
      return;
    }
    auto copy = std::make_shared<LoadedCampaign>(*old);
    copy->candidates = resolve(*copy);
    next->emplace(copy->campaign_id, std::move(copy));
    changed = true;
  };
  for (storage::CampaignRecord& record : *records) {
    auto old = current->find(record.campaign_id);
    if (old != current->end() && old->second->sequence == record.sequence) {
      keep(old->second);
      continue;
    }
    auto failed = failed_campaigns_.find(record.campaign_id);
    const bool reported = failed != failed_campaigns_.end() && failed->second == record.sequence;
    absl::StatusOr<v1::StoredCampaign> stored =
        api::DecodeStoredCampaign(record.campaign_id, record.payload);
    if (stored.ok() && options_.user_keyer != nullptr) {
      const absl::StatusOr<size_t> raw =
          api::KeyEligibleUserIds(*options_.user_keyer, stored->mutable_campaign());
      if (!raw.ok()) {
        stored = raw.status();
      } else if (*raw > 0) {
        spdlog::warn("campaign '{}' record {} holds {} raw user ids in its eligibility lists "
                     "(keyed for serving; publish it again with --user_id_key_file so that "
                     "none is at rest)",
                     record.campaign_id, record.sequence, *raw);
      }
    }
    absl::StatusOr<api::DecisionPolicy> policy =
        stored.ok() ? api::DecisionPolicyFromProto(stored->campaign())
                    : absl::StatusOr<api::DecisionPolicy>(stored.status());
    if (!policy.ok()) {
      failed_campaigns_[record.campaign_id] = record.sequence;
      if (old != current->end()) keep(old->second);
      if (!reported) {
        absl::StrAppend(&errors, errors.empty() ? "" : "; ", "rejected record ", record.sequence,
                        " of campaign '", record.campaign_id, "': ", policy.status().message());
      }
      continue;
    }
    auto loaded = std::make_shared<LoadedCampaign>();
    loaded->campaign_id = record.campaign_id;
    loaded->sequence = record.sequence;
    loaded->published_unix_seconds = record.published_unix_seconds;
    loaded->stored = *std::move(stored);
    loaded->policy = *std::move(policy);
    loaded->candidates = resolve(*loaded);
    spdlog::info("loaded campaign '{}' record {} ({} coupons, budget {}, budget price {:.6g}, "
                 "prices from model version {})",
                 loaded->campaign_id, loaded->sequence, loaded->stored.campaign().coupons_size(),
                 loaded->stored.campaign().budget(), loaded->stored.prices().budget_price(),
                 loaded->stored.prices().model_version());
    next->emplace(record.campaign_id, std::move(loaded));
    changed = true;
  }
  if (changed) *out = std::move(next);
  if (!errors.empty()) return absl::DataLossError(errors);
  return absl::OkStatus();
}

absl::Status ModelManager::PollModel(bool retry_rejected, bool* rejected) {
  *rejected = false;
  absl::MutexLock lock(&poll_mu_);
  absl::StatusOr<core::ModelVersionInfo> latest =
      RunNiced(options_.poll_thread_nice, [this] { return source_->Latest(); });
  if (!latest.ok()) return latest.status();
  const std::shared_ptr<const core::ModelSnapshot> current = Current();
  if (current != nullptr && latest->version <= current->info().version) {
    return absl::OkStatus();
  }
  if (latest->version == failed_version_ && !retry_rejected) {
    return absl::OkStatus();  // already reported; wait for a newer version
  }

  // Both snapshots live at once until the swap (and while requests hold the old one).
  const uint64_t held = current == nullptr ? 0 : current->memory_bytes();
  const uint64_t estimate = core::ModelSnapshot::EstimateMemoryBytes(*latest);
  MemoryBudget budget = ResolveMemoryBudget(options_.memory, held);
  {
    absl::MutexLock status_lock(&status_mu_);
    status_.memory = budget;
  }
  if (absl::Status fits = CheckNextSnapshotFits(latest->version, estimate, held, budget);
      !fits.ok()) {
    *rejected = true;
    absl::Status why(fits.code(), absl::StrCat("refused model version ", latest->version,
                                               " from ", source_->Describe(), ": ",
                                               fits.message()));
    RecordRejection(latest->version, why);
    return why;
  }

  const absl::Time start = absl::Now();
  absl::StatusOr<std::shared_ptr<const core::ModelSnapshot>> next = RunNiced(
      options_.poll_thread_nice, [this, &latest] { return source_->Load(latest->version); });
  if (!next.ok()) {
    failed_version_ = latest->version;
    *rejected = true;
    absl::Status why(next.status().code(),
                     absl::StrCat("rejected model version ", latest->version, " from ",
                                  source_->Describe(), ": ", next.status().message()));
    RecordRejection(latest->version, why);
    return why;
  }
  const std::shared_ptr<const core::ModelSnapshot> loaded = *std::move(next);
  std::shared_ptr<const core::ModelSnapshot> previous =
      current_.exchange(loaded, std::memory_order_acq_rel);
  current_version_.store(loaded->info().version, std::memory_order_relaxed);
  if (previous != nullptr && polling_.load(std::memory_order_acquire)) {
    // Freed by the poller once its last reader lets go, rather than by that reader: tearing
    // down tens of MB is not work for a request thread.
    absl::MutexLock retired_lock(&retired_mu_);
    retired_.push_back(std::move(previous));
    retired_count_.store(retired_.size(), std::memory_order_relaxed);
  }
  const absl::Time end = absl::Now();
  {
    absl::MutexLock status_lock(&status_mu_);
    status_.served_version = loaded->info().version;
    status_.last_load_time = end;
    status_.last_load_duration = end - start;
    ++status_.loads;
  }
  spdlog::info("loaded model version {} ({} users, {} coupons, dimension {}, {:.1f} MiB, "
               "estimated {:.1f} MiB; memory limit {:.1f} MiB: {}) from {} in {:.1f} ms",
               loaded->info().version, loaded->num_users(), loaded->num_coupons(),
               loaded->dimension(), loaded->memory_bytes() / 1048576.0, estimate / 1048576.0,
               budget.limit_bytes / 1048576.0, budget.source, source_->Describe(),
               absl::ToDoubleMilliseconds(end - start));
  if (on_load_) on_load_(*loaded);
  return absl::OkStatus();
}

void ModelManager::StartPolling(LoadCallback on_load) {
  on_load_ = std::move(on_load);
  polling_.store(true, std::memory_order_release);
  poller_ = std::thread([this] { PollLoop(); });
}

void ModelManager::PollLoop() {
  std::string last_error;
  absl::Time next_poll = absl::Now();
  do {
    ReleaseRetired();
    if (absl::Now() < next_poll) continue;  // woke up only to release a retired snapshot
    next_poll = absl::Now() + options_.poll_interval;
    bool rejected = false;
    const absl::Status polled = Poll(&rejected);
    // A refused version was logged where it was refused (once per version and reason).
    const absl::Status s = rejected ? absl::OkStatus() : polled;
    // Log each distinct problem once, not every poll interval.
    if (!s.ok() && std::string(s.message()) != last_error) {
      last_error = std::string(s.message());
      if (absl::IsNotFound(s)) {
        spdlog::warn("no model to serve yet: {}", last_error);
      } else {
        spdlog::error("{}", last_error);
      }
    } else if (s.ok()) {
      last_error.clear();
    }
  } while (!stop_.WaitForNotificationWithTimeout(
      std::max(absl::ZeroDuration(),
               retired_count_.load(std::memory_order_relaxed) > 0
                   ? std::min(kRetiredCheckInterval, next_poll - absl::Now())
                   : next_poll - absl::Now())));
  ReleaseRetired();
}

bool ModelManager::ReleaseRetired() {
  std::vector<std::shared_ptr<const core::ModelSnapshot>> unused;
  {
    absl::MutexLock lock(&retired_mu_);
    // use_count() == 1: only this list holds it, and nothing can take a new reference to a
    // snapshot that current_ no longer points to.
    auto in_use = std::partition(
        retired_.begin(), retired_.end(),
        [](const std::shared_ptr<const core::ModelSnapshot>& s) { return s.use_count() > 1; });
    unused.assign(std::make_move_iterator(in_use), std::make_move_iterator(retired_.end()));
    retired_.erase(in_use, retired_.end());
    retired_count_.store(retired_.size(), std::memory_order_relaxed);
  }
  if (!unused.empty()) {
    RunNiced(options_.poll_thread_nice, [&unused] {
      unused.clear();
      return 0;
    });
  }
  return !unused.empty();
}

}  // namespace coupond::server
