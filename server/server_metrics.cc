#include "server/server_metrics.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <system_error>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/collector_metrics.h"
#include "common/status_macros.h"
#include "core/snapshot.h"
#include "edge/rpc_metrics.h"

namespace coupond::server {
namespace {

double UnixSeconds(absl::Time t) {
  return t == absl::InfinitePast() ? 0.0 : absl::ToDoubleSeconds(t - absl::UnixEpoch());
}

// Resident set size from /proc/self/statm; 0 when unreadable.
double ResidentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) : 0.0;
}

// Entries of /proc/self/fd, less the one the listing itself holds; 0 when unreadable.
double OpenFds() {
  std::error_code ec;
  std::filesystem::directory_iterator it("/proc/self/fd", ec);
  if (ec) return 0;
  double n = 0;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) return 0;
    ++n;
  }
  return n > 0 ? n - 1 : 0;
}

}  // namespace

absl::Status RegisterServerMetrics(edge::MetricsRegistry* registry, const ModelManager* models,
                                   const collector::DecisionLogger* decisions,
                                   const collector::CollectorStore* collector) {
  if (registry == nullptr || models == nullptr) {
    return absl::InvalidArgumentError("RegisterServerMetrics: registry and models are required");
  }
  auto current = [models]() -> double {
    const std::shared_ptr<const core::ModelSnapshot> m = models->Current();
    return m == nullptr ? 0.0 : static_cast<double>(m->info().version);
  };
  struct Gauge {
    edge::MetricsRegistry::CallbackType type;
    const char* name;
    const char* help;
    std::function<double()> value;
  };
  using Type = edge::MetricsRegistry::CallbackType;
  std::vector<Gauge> gauges = {
      {Type::kGauge, "coupond_model_version", "The model version being served (0: none yet).",
       current},
      {Type::kGauge, "coupond_snapshot_bytes",
       "Memory held by the served model snapshot's factors and biases, in bytes (0: none).",
       [models] {
         const std::shared_ptr<const core::ModelSnapshot> m = models->Current();
         return m == nullptr ? 0.0 : static_cast<double>(m->memory_bytes());
       }},
      {Type::kGauge, "coupond_live_snapshots",
       "Model snapshots alive in the process, all versions: above 1 while a swapped-out "
       "version still has readers (or during a load).",
       [] { return static_cast<double>(core::ModelSnapshot::LiveCount()); }},
      {Type::kCounter, "coupond_model_loads_total", "Model versions loaded and swapped in.",
       [models] { return static_cast<double>(models->LoadStatus().loads); }},
      {Type::kCounter, "coupond_model_rejected_versions_total",
       "Refused model loads (failed verification, or would not fit in memory: such a version is "
       "retried, and counted, at each poll); the served version is kept.",
       [models] { return static_cast<double>(models->LoadStatus().rejections); }},
      {Type::kGauge, "coupond_model_last_rejected_version",
       "The latest model version whose load failed (0: none); /healthz says why.",
       [models] { return static_cast<double>(models->LoadStatus().rejected_version); }},
      {Type::kGauge, "coupond_model_last_load_duration_seconds",
       "How long the latest successful load took (read, verify, swap), in seconds.",
       [models] { return absl::ToDoubleSeconds(models->LoadStatus().last_load_duration); }},
      {Type::kGauge, "coupond_model_last_load_timestamp_seconds",
       "Unix time of the latest successful load (0: none).",
       [models] { return UnixSeconds(models->LoadStatus().last_load_time); }},
      {Type::kGauge, "coupond_model_last_poll_timestamp_seconds",
       "Unix time of the latest poll of the model store (0: none).",
       [models] { return UnixSeconds(models->LoadStatus().last_poll_time); }},
      {Type::kGauge, "coupond_model_last_poll_ok",
       "1 when the latest poll of the model store succeeded (nothing newer, or loaded), 0 when "
       "it failed or none happened yet; /healthz shows the error.",
       [models] {
         const ModelLoadStatus state = models->LoadStatus();
         return state.last_poll_time != absl::InfinitePast() && state.last_poll_error.empty() ? 1.0
                                                                                            : 0.0;
       }},
      {Type::kGauge, "coupond_model_last_poll_duration_seconds",
       "How long the latest poll of the model store took (the model and the campaigns, a "
       "load included), in seconds.",
       [models] { return absl::ToDoubleSeconds(models->LoadStatus().last_poll_duration); }},
      {Type::kCounter, "coupond_model_store_opens_total",
       "Times the server opened the model store: once, then once per change it saw (a "
       "publish, a prune); a poll that finds nothing new does not open it.",
       [models] { return static_cast<double>(models->LoadStatus().source.opens); }},
      {Type::kGauge, "coupond_model_store_files",
       "Live table files of the model store as the server last opened it (each held open).",
       [models] { return static_cast<double>(models->LoadStatus().source.store_files); }},
      {Type::kGauge, "coupond_model_store_bytes",
       "Bytes of the model store's live table files as the server last opened it.",
       [models] { return static_cast<double>(models->LoadStatus().source.store_bytes); }},
      {Type::kGauge, "process_open_fds", "Open file descriptors of the process.", OpenFds},
      {Type::kGauge, "process_resident_memory_bytes", "Resident memory size in bytes.",
       ResidentBytes},
  };
  if (decisions != nullptr) {
    auto counter = [decisions](uint64_t collector::DecisionLogger::Counters::*field) {
      return [decisions, field] { return static_cast<double>(decisions->counters().*field); };
    };
    gauges.push_back({Type::kCounter, "coupond_decision_log_enqueued_total",
                      "Decision records accepted into the logger's queue.",
                      counter(&collector::DecisionLogger::Counters::enqueued)});
    gauges.push_back({Type::kCounter, "coupond_decision_log_written_total",
                      "Decision records acknowledged by the collector.",
                      counter(&collector::DecisionLogger::Counters::written)});
    gauges.push_back({Type::kCounter, "coupond_decision_log_truncated_total",
                      "Decision records too large for one batch, queued with their candidate "
                      "list truncated (delivered, not dropped).",
                      counter(&collector::DecisionLogger::Counters::truncated)});
    gauges.push_back({Type::kCounter, "coupond_decision_log_retries_total",
                      "Batch writes that failed with a transient error and were retried.",
                      counter(&collector::DecisionLogger::Counters::retries)});
    gauges.push_back({Type::kGauge, "coupond_decision_log_queued_bytes",
                      "Serialized bytes of the decision records waiting in the logger's queue "
                      "(bounded by --decision_queue_bytes).",
                      [decisions] { return static_cast<double>(decisions->counters().queued_bytes); }});
    gauges.push_back({Type::kGauge, "coupond_decision_log_max_queued_bytes",
                      "The most serialized bytes the logger's queue has held since the start "
                      "(never above --decision_queue_bytes).",
                      [decisions] { return static_cast<double>(decisions->counters().max_queued_bytes); }});
    gauges.push_back({Type::kCounter, "coupond_decision_log_write_failures_total",
                      "Batch writes to the collector that failed, transient (retried) or not "
                      "(the batch dropped, cause permanent_error).",
                      counter(&collector::DecisionLogger::Counters::write_failures)});
    gauges.push_back({Type::kGauge, "coupond_decision_log_queued",
                      "Decision records waiting in the logger's queue.",
                      [decisions] { return static_cast<double>(decisions->counters().queued); }});
  }
  // The served version as a label, to join the per-call series with (they have no version
  // label: it would add series at every reload). One series; "none" before the first model.
  COUPOND_RETURN_IF_ERROR(registry->AddCallback(
      Type::kGauge, "coupond_model_info",
      "Always 1; model_version is the version being served (\"none\" before the first model). "
      "Join per-call metrics on it: ... * on(instance) group_left(model_version) coupond_model_info.",
      {"model_version"}, [models] {
        const uint64_t version = models->current_version();
        return std::vector<edge::CallbackSample>{
            {{version == 0 ? std::string("none") : absl::StrCat(version)}, 1.0}};
      }));
  if (decisions != nullptr) {
    // One series per cause, present from the start (at 0) so that rate() sees the first drop.
    COUPOND_RETURN_IF_ERROR(registry->AddCallback(
        Type::kCounter, "coupond_decision_log_dropped_total",
        "Decision records dropped, by cause: queue_full_bytes (the queue at "
        "--decision_queue_bytes: collector slow or down), permanent_error (a batch the "
        "collector refused for good), oversize (too large even with its candidates truncated), "
        "shutdown (not delivered before the process stopped).",
        {"cause"}, [decisions] {
          const collector::DecisionLogger::Counters c = decisions->counters();
          return std::vector<edge::CallbackSample>{
              {{"queue_full_bytes"}, static_cast<double>(c.dropped_queue_full)},
              {{"permanent_error"}, static_cast<double>(c.dropped_permanent_error)},
              {{"oversize"}, static_cast<double>(c.dropped_oversize)},
              {{"shutdown"}, static_cast<double>(c.dropped_shutdown)}};
        }));
  }
  for (Gauge& g : gauges) {
    absl::Status s = g.type == Type::kGauge
                         ? registry->AddGauge(g.name, g.help, std::move(g.value))
                         : registry->AddCallbackCounter(g.name, g.help, std::move(g.value));
    if (!s.ok()) return s;
  }
  if (collector != nullptr) return collector::RegisterCollectorMetrics(registry, collector);
  return absl::OkStatus();
}

edge::HealthReport ServerHealth(const ModelManager& models, bool draining) {
  const std::shared_ptr<const core::ModelSnapshot> current = models.Current();
  const ModelLoadStatus state = models.LoadStatus();
  edge::HealthReport report;
  report.healthy = current != nullptr && !draining;
  report.text = absl::StrCat(
      "status=", report.healthy ? "SERVING" : "NOT_SERVING",
      "\nreason=", draining ? "draining" : (current == nullptr ? "no_model_loaded" : "ok"),
      "\nmodel_version=", current == nullptr ? 0 : current->info().version,
      "\nloads=", state.loads, "\nrejected_versions=", state.rejections,
      "\nlast_rejected_version=", state.rejected_version,
      "\nlast_rejection=", edge::LogfmtValue(std::string(state.rejection.message())),
      "\nlast_load_unix=", static_cast<int64_t>(UnixSeconds(state.last_load_time)),
      "\nlast_load_seconds=", absl::ToDoubleSeconds(state.last_load_duration),
      "\nlast_poll_unix=", static_cast<int64_t>(UnixSeconds(state.last_poll_time)),
      "\nlast_poll_error=", edge::LogfmtValue(state.last_poll_error), "\n");
  return report;
}

}  // namespace coupond::server
