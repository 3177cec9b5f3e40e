#include "server/model_manager.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "api/convert.h"
#include "core/status_macros.h"
#include "spdlog/spdlog.h"
#include "storage/model_store.h"

namespace coupond::server {
namespace {

class StoreModelSource final : public ModelSource {
 public:
  StoreModelSource(std::string path, uint32_t expected_dimension)
      : path_(std::move(path)), expected_dimension_(expected_dimension) {}

  absl::StatusOr<core::ModelVersionInfo> Latest() override {
    COUPOND_ASSIGN_OR_RETURN(auto store, storage::ModelStore::OpenForRead(path_));
    return store->LatestVersion();
  }

  absl::StatusOr<std::shared_ptr<const core::ModelSnapshot>> Load(uint64_t version) override {
    COUPOND_ASSIGN_OR_RETURN(auto store, storage::ModelStore::OpenForRead(path_));
    storage::ReadOptions options;
    options.expected_dimension = expected_dimension_;
    return store->LoadSnapshot(version, options);
  }

  absl::StatusOr<std::vector<storage::CampaignRecord>> LatestCampaigns() override {
    COUPOND_ASSIGN_OR_RETURN(auto store, storage::ModelStore::OpenForRead(path_));
    return store->LatestCampaigns();
  }

  std::string Describe() const override { return absl::StrCat("model store '", path_, "'"); }

 private:
  const std::string path_;
  const uint32_t expected_dimension_;
};

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
  absl::Status model = PollModel();
  absl::Status campaigns = PollCampaigns();
  absl::Status result = model.ok() ? campaigns : model;
  absl::MutexLock lock(&reload_mu_);
  reload_.last_poll_time = absl::Now();
  reload_.last_poll_error = std::string(result.message());
  return result;
}

ModelManager::ReloadState ModelManager::reload_state() const {
  absl::MutexLock lock(&reload_mu_);
  return reload_;
}

absl::Status ModelManager::PollCampaigns() {
  absl::MutexLock lock(&poll_mu_);
  absl::StatusOr<std::vector<storage::CampaignRecord>> records = source_->LatestCampaigns();
  if (!records.ok()) {
    // A store without a model yet reads as NotFound here too; the model poll reports it.
    if (absl::IsNotFound(records.status())) return absl::OkStatus();
    return absl::Status(records.status().code(),
                        absl::StrCat("reading campaigns from ", source_->Describe(), ": ",
                                     records.status().message()));
  }
  const std::shared_ptr<const CampaignBook> current = Campaigns();
  bool changed = records->size() != current->size();
  auto next = std::make_shared<CampaignBook>();
  std::string errors;
  for (storage::CampaignRecord& record : *records) {
    auto old = current->find(record.campaign_id);
    if (old != current->end() && old->second->sequence == record.sequence) {
      next->emplace(record.campaign_id, old->second);
      continue;
    }
    auto failed = failed_campaigns_.find(record.campaign_id);
    const bool reported = failed != failed_campaigns_.end() && failed->second == record.sequence;
    absl::StatusOr<v1::StoredCampaign> stored =
        api::DecodeStoredCampaign(record.campaign_id, record.payload);
    if (!stored.ok()) {
      failed_campaigns_[record.campaign_id] = record.sequence;
      if (old != current->end()) next->emplace(record.campaign_id, old->second);
      if (!reported) {
        absl::StrAppend(&errors, errors.empty() ? "" : "; ", "rejected record ", record.sequence,
                        " of campaign '", record.campaign_id, "': ", stored.status().message());
      }
      continue;
    }
    auto loaded = std::make_shared<LoadedCampaign>();
    loaded->campaign_id = record.campaign_id;
    loaded->sequence = record.sequence;
    loaded->published_unix_seconds = record.published_unix_seconds;
    loaded->stored = *std::move(stored);
    spdlog::info("loaded campaign '{}' record {} ({} coupons, budget {}, budget price {:.6g}, "
                 "prices from model version {})",
                 loaded->campaign_id, loaded->sequence, loaded->stored.campaign().coupons_size(),
                 loaded->stored.campaign().budget(), loaded->stored.prices().budget_price(),
                 loaded->stored.prices().model_version());
    next->emplace(record.campaign_id, std::move(loaded));
    changed = true;
  }
  if (changed) campaigns_.store(std::move(next), std::memory_order_release);
  if (!errors.empty()) return absl::DataLossError(errors);
  return absl::OkStatus();
}

absl::Status ModelManager::PollModel() {
  absl::MutexLock lock(&poll_mu_);
  absl::StatusOr<core::ModelVersionInfo> latest = source_->Latest();
  if (!latest.ok()) return latest.status();
  const std::shared_ptr<const core::ModelSnapshot> current = Current();
  if (current != nullptr && latest->version <= current->info().version) {
    return absl::OkStatus();
  }
  if (latest->version == failed_version_) {
    return absl::OkStatus();  // already reported; wait for a newer version
  }

  const absl::Time start = absl::Now();
  absl::StatusOr<std::shared_ptr<const core::ModelSnapshot>> next = source_->Load(latest->version);
  if (!next.ok()) {
    failed_version_ = latest->version;
    absl::Status rejected(next.status().code(),
                          absl::StrCat("rejected model version ", latest->version, " from ",
                                       source_->Describe(), ": ", next.status().message()));
    {
      absl::MutexLock stats_lock(&reload_mu_);
      ++reload_.rejected_versions;
      reload_.last_rejected_version = latest->version;
      reload_.last_rejection = std::string(rejected.message());
    }
    return rejected;
  }
  const std::shared_ptr<const core::ModelSnapshot> loaded = *std::move(next);
  current_.store(loaded, std::memory_order_release);
  current_version_.store(loaded->info().version, std::memory_order_relaxed);
  const absl::Time loaded_at = absl::Now();
  {
    absl::MutexLock stats_lock(&reload_mu_);
    ++reload_.loads;
    reload_.last_load_duration = loaded_at - start;
    reload_.last_load_time = loaded_at;
  }
  spdlog::info("loaded model version {} ({} users, {} coupons, dimension {}, {:.1f} MiB) from {} "
               "in {:.1f} ms",
               loaded->info().version, loaded->num_users(), loaded->num_coupons(),
               loaded->dimension(), loaded->memory_bytes() / 1048576.0, source_->Describe(),
               absl::ToDoubleMilliseconds(loaded_at - start));
  if (on_load_) on_load_(*loaded);
  return absl::OkStatus();
}

void ModelManager::StartPolling(LoadCallback on_load) {
  on_load_ = std::move(on_load);
  poller_ = std::thread([this] { PollLoop(); });
}

void ModelManager::PollLoop() {
  std::string last_error;
  do {
    const absl::Status s = PollOnce();
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
  } while (!stop_.WaitForNotificationWithTimeout(options_.poll_interval));
}

}  // namespace coupond::server
