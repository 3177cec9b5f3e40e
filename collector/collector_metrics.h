#ifndef COUPOND_COLLECTOR_COLLECTOR_METRICS_H_
#define COUPOND_COLLECTOR_COLLECTOR_METRICS_H_

// The collector store's counters as Prometheus metrics (coupond_collector_*), read by
// callback at scrape time: used by coupond with an embedded collector and by collectord.

#include "absl/status/status.h"
#include "collector/collector_store.h"
#include "edge/metrics.h"

namespace coupond::collector {

// `collector` must outlive the registry's last Render. Fails only when a name is taken.
absl::Status RegisterCollectorMetrics(edge::MetricsRegistry* registry,
                                      const CollectorStore* collector);

}  // namespace coupond::collector

#endif  // COUPOND_COLLECTOR_COLLECTOR_METRICS_H_
