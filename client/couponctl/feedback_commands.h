#ifndef COUPOND_CLIENT_COUPONCTL_FEEDBACK_COMMANDS_H_
#define COUPOND_CLIENT_COUPONCTL_FEEDBACK_COMMANDS_H_

// couponctl's feedback-loop commands: report-outcome and collector-stats (talk to a
// collector), export (collector database -> decision log + the pipeline's canonical logs),
// pace (observed spend -> a new budget price, published beside the model). Each returns the
// process exit status: 0 success, 1 failure (reason on stderr), 2 usage error.

#include <cstdint>
#include <string>

#include "client/coupond_client.h"

namespace coupond::couponctl {

struct ReportOutcomeFlags {
  client::ClientOptions collector;
  std::string decision_id;
  bool redeemed = false;
  double order_value = 0;
  int64_t unix_seconds = 0;
};

struct ExportFlags {
  std::string collector_db;
  std::string decisions_out;  // decision log CSV (analysis/decision_log.h), for couponctl ope
  std::string logs_out;       // directory: exposures.csv + redemptions.csv (pipeline/logs.h)
};

struct PaceFlags {
  std::string store;         // the model store holding the campaign (and its coupons' face values)
  std::string campaign_id;
  std::string collector_db;  // where the campaign's decisions and outcomes are
  int64_t start = 0;         // campaign schedule, Unix seconds: spend is planned evenly over it
  int64_t end = 0;
  int64_t now = 0;           // 0: the current time
  double gain = 1.0;
  bool dry_run = false;
};

int ReportOutcome(const ReportOutcomeFlags& flags);
int CollectorStats(const client::ClientOptions& collector);
int Export(const ExportFlags& flags);
int Pace(const PaceFlags& flags);

}  // namespace coupond::couponctl

#endif  // COUPOND_CLIENT_COUPONCTL_FEEDBACK_COMMANDS_H_
