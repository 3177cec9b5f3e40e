#ifndef COUPOND_SERVER_SERVER_METRICS_H_
#define COUPOND_SERVER_SERVER_METRICS_H_

// What coupond exports besides the per-call metrics of edge/rpc_metrics.h: the model and
// its reloads, the decision logger and the embedded collector, all read by callback at
// scrape time; and the /healthz report. Names and labels are listed in docs/metrics.md.

#include "absl/status/status.h"
#include "collector/collector_store.h"
#include "collector/decision_logger.h"
#include "edge/metrics.h"
#include "edge/metrics_http.h"
#include "server/model_manager.h"

namespace coupond::server {

// Registers coupond's model, reload, decision-log and collector metrics (all read by
// callback at scrape time). `models` is required; `decisions` and `collector` may be null
// (their metrics are then left out). All three must outlive the registry's last Render.
absl::Status RegisterServerMetrics(edge::MetricsRegistry* registry, const ModelManager* models,
                                   const collector::DecisionLogger* decisions,
                                   const collector::CollectorStore* collector);

// /healthz for coupond: healthy when a model is loaded and the server is not draining.
// The text is key=value lines (values logfmt-quoted where needed):
//   status=SERVING|NOT_SERVING, reason=ok|no_model_loaded|draining, model_version,
//   loads, rejected_versions, last_rejected_version, last_rejection, last_load_unix,
//   last_load_seconds, last_poll_unix, last_poll_error.
// The poll error is that of the latest poll only (a rejected version is reported by one
// poll, then skipped until a newer one appears); last_rejection stays.
edge::HealthReport ServerHealth(const ModelManager& models, bool draining);

}  // namespace coupond::server

#endif  // COUPOND_SERVER_SERVER_METRICS_H_
