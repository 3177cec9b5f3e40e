#ifndef COUPOND_CLI_PIPELINE_COMMANDS_H_
#define COUPOND_CLI_PIPELINE_COMMANDS_H_

// couponctl's offline pipeline commands (pipeline/train_job.h): ingest, train, evaluate,
// pipeline, simulate. Each returns the process exit status: 0 success, 1 failure (the
// reason on stderr), 2 usage error. Progress of long runs (stage, epoch, loss, validation
// AUC) goes to stderr; results to stdout.

#include <cstdint>
#include <string>
#include <vector>

#include "cli/store_commands.h"
#include "pipeline/simulate.h"

namespace coupond::couponctl {

struct PipelineFlags {
  std::string logs;        // directory with exposures.csv, redemptions.csv[, users.csv, coupons.csv]
  std::string dunnhumby;   // or: directory of the dunnhumby coupon tables
  bool dunnhumby_products = true;  // dunnhumby: product lists (-> neighbour features)
  // Step 2b (pipeline/train_job.h): long product lists become one like=<coupon> feature.
  // false keeps every product as a feature (PipelineOptions::neighbour_list_prefixes empty).
  bool like_neighbours = true;
  // Step 4b: "auto" (chosen on the validation period), "calibrated" or "mean".
  std::string prior_bias = "auto";
  // Step 4's grid (pipeline::HyperparameterGrid); an empty list keeps the default. Values as
  // given on the command line, checked by MakeOptions.
  std::vector<std::string> grid_dimensions, grid_l2, grid_learning_rates;
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
  // train, pipeline with --store: retention.keep (--keep_versions) > 0 prunes the store to
  // that many versions after publishing (cli/store_commands.h). Default 0: no pruning.
  RetentionFlags retention;

  // --logs only (pipeline::IngestOptions); with --dunnhumby they must keep their defaults.
  // What the time columns hold: "day_number" (default), "iso_date" or "unix_seconds"
  // (pipeline::ParseTimeFormat; both count days from 1970-01-01).
  std::string time_format = "day_number";
  int redemption_window_days = 30;  // >= 0. Default 30.
  // users.csv/coupons.csv columns of ';'-joined values. Default {"products"}; a listed
  // "products" column also gets the like= neighbour feature (pipeline/train_job.h step 2b).
  std::vector<std::string> multi_value_columns = {"products"};

  // Period shares (pipeline::PipelineOptions), each in (0, 1). Defaults 0.2 and 0.2.
  double test_fraction = 0.2;
  double validation_fraction = 0.2;
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
