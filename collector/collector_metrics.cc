#include "collector/collector_metrics.h"

#include <vector>

namespace coupond::collector {

absl::Status RegisterCollectorMetrics(edge::MetricsRegistry* registry, const CollectorStore* collector) {
  using Type = edge::MetricsRegistry::CallbackType;
  struct Stat {
    Type type;
    const char* name;
    const char* help;
    uint64_t (v1::GetCollectorStatsResponse::*get)() const;
  };
  static const Stat kStats[] = {
      {Type::kCounter, "coupond_collector_decisions_total",
       "Decision records stored (kept across restarts).",
       &v1::GetCollectorStatsResponse::decisions},
      {Type::kCounter, "coupond_collector_outcomes_total",
       "Outcomes attached to a stored decision.", &v1::GetCollectorStatsResponse::outcomes},
      {Type::kGauge, "coupond_collector_unmatched_outcomes",
       "Outcomes whose decision is (still) unknown.",
       &v1::GetCollectorStatsResponse::unmatched_outcomes},
      {Type::kCounter, "coupond_collector_duplicate_outcomes_total",
       "Retried outcome reports that changed nothing.",
       &v1::GetCollectorStatsResponse::duplicate_outcomes},
      {Type::kCounter, "coupond_collector_duplicate_decisions_total",
       "Re-sent decision records that changed nothing.",
       &v1::GetCollectorStatsResponse::duplicate_decisions},
      {Type::kCounter, "coupond_collector_conflicting_outcomes_total",
       "Conflicting outcome reports refused with ALREADY_EXISTS.",
       &v1::GetCollectorStatsResponse::conflicting_outcomes},
  };
  for (const Stat& stat : kStats) {
    auto get = stat.get;
    absl::Status s = registry->AddCallback(stat.type, stat.name, stat.help, {}, [collector, get] {
      return std::vector<edge::CallbackSample>{
          edge::CallbackSample{{}, static_cast<double>((collector->Stats().*get)())}};
    });
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace coupond::collector
