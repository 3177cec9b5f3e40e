#ifndef COUPOND_CLI_PIPELINE_COMMANDS_H_
#define COUPOND_CLI_PIPELINE_COMMANDS_H_

// couponctl's offline pipeline commands (pipeline/train_job.h): ingest, train, evaluate,
// pipeline, simulate. Each returns the process exit status: 0 success, 1 failure (the
// reason on stderr), 2 usage error. Progress of long runs (stage, epoch, loss, validation
// AUC) goes to stderr; results to stdout.

#include <cstdint>
#include <string>

#include "pipeline/simulate.h"

namespace coupond::couponctl {

struct PipelineFlags {
  std::string logs;        // directory with exposures.csv, redemptions.csv[, users.csv, coupons.csv]
  std::string dunnhumby;   // or: directory of the dunnhumby coupon tables
  bool dunnhumby_products = true;  // dunnhumby: product lists (-> neighbour features)
  std::string quarantine;  // ingest: write quarantined rows here
  std::string store;       // publish into / evaluate from this model store
  std::string report;      // pipeline: write the report here (.md, or .html)
  std::string truth;       // factor files of the true model ("": <logs>/truth when present)
  uint64_t version = 0;    // evaluate: the version (0: newest)
  uint64_t seed = 42;
  int threads = 0;         // 0: every core; results do not depend on it
  // 0: choose hyperparameters on the validation period (default); k >= 2: by k-fold
  // cross-validation over the training period, folds by (user, coupon) pair.
  int cv_folds = 0;
  std::string user_id_key_file;  // key user ids (core/user_key.h) before training/evaluating
};

struct SimulateFlags {
  std::string out;
  pipeline::SimulationOptions options;
};

int Ingest(const PipelineFlags& flags);
int Train(const PipelineFlags& flags);
int EvaluateModel(const PipelineFlags& flags);
int Pipeline(const PipelineFlags& flags);
int Simulate(const SimulateFlags& flags);

}  // namespace coupond::couponctl

#endif  // COUPOND_CLI_PIPELINE_COMMANDS_H_
