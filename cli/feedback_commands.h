#ifndef COUPOND_CLI_FEEDBACK_COMMANDS_H_
#define COUPOND_CLI_FEEDBACK_COMMANDS_H_

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
  // Append to the logs already in logs_out (in their own column order) instead of
  // replacing them: today's rows join the running history the nightly pipeline reads.
  bool append = false;
  // Day numbers count from this Unix time (0: the Unix epoch), to line up with a history
  // whose days are numbered from its own origin.
  int64_t days_from = 0;
};

// Synthetic platform only: drives Decide for users of the true model and reports each
// decision's outcome, drawn from the TRUE redemption probability.
struct SimulateTrafficFlags {
  client::ClientOptions server;     // coupond
  client::ClientOptions collector;  // where outcomes go
  std::string campaign_id;
  std::string truth;                // factor files of the true model
  int decisions = 1000;
  uint64_t seed = 42;
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
int SimulateTraffic(const SimulateTrafficFlags& flags);

}  // namespace coupond::couponctl

#endif  // COUPOND_CLI_FEEDBACK_COMMANDS_H_
