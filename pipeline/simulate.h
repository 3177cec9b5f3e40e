#ifndef COUPOND_PIPELINE_SIMULATE_H_
#define COUPOND_PIPELINE_SIMULATE_H_

// Behaviour logs simulated from a synthetic platform's ground truth (learn/synthetic.h), in
// the canonical CSV format (pipeline/logs.h), so that the whole offline pipeline can run on
// a fresh machine and its model be compared with the TRUE probabilities.
//
// Simulation: one campaign per simulated day d = 0 .. days-1 (campaign id "day-<d>").
// Each day, each user is active with probability `active_fraction` and is then shown
// `coupons_per_exposure` distinct coupons drawn uniformly from the platform's coupons;
// each exposure is redeemed with the TRUE probability
//   p(u, c) = sigmoid(b + b_u + b_c + x_u . y_c),
// on a day d + Uniform{0..max_redemption_delay_days}.
//
// Side attributes derived from the truth, so that features help:
//   users.csv    user_id, segment: the sign pattern of the user's first
//                `attribute_bits` true factor components (e.g. "s101"), and a bias tier;
//   coupons.csv  coupon_id, face_value, stock, category: the sign pattern of the coupon's
//                first attribute_bits factor components.
// With `dirty_rows` > 0, that many deliberately bad rows are appended to exposures.csv and
// redemptions.csv (missing ids, unparsable days, redemptions never exposed), to exercise the
// quarantine.
//
// Files written into `out_dir` (created if missing): exposures.csv, redemptions.csv,
// users.csv, coupons.csv, and truth/ (factor files of the platform, pipeline/factor_files.h),
// which PipelineOptions::truth_factors reads to evaluate the truth beside the model.
// Deterministic for a seed (splitmix64, no std distributions).

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/model.h"
#include "learn/synthetic.h"
#include "pipeline/logs.h"

namespace coupond::pipeline {

struct SimulationOptions {
  // The truth. Defaults of SyntheticPlatformOptions except: 2,000 users, 100 coupons,
  // dimension 4, interaction stddev 1.5 (a learnable, but not trivial, signal), no
  // out-of-stock coupons.
  learn::SyntheticPlatformOptions platform = DefaultPlatform();
  int days = 30;                      // campaigns (one per day). >= 2. Default 30.
  double active_fraction = 0.5;       // users shown coupons each day, in (0, 1]. Default 0.5.
  int coupons_per_exposure = 8;       // distinct coupons per active user-day. Default 8.
  int max_redemption_delay_days = 3;  // >= 0. Default 3.
  int attribute_bits = 4;             // factor components in the attributes, 1..8,
                                      // <= dimension. Default 4.
  int dirty_rows = 0;                 // bad rows appended to exposures/redemptions. Default 0.
  uint64_t seed = 7;                  // exposures and labels. Default 7.

  static learn::SyntheticPlatformOptions DefaultPlatform() {
    learn::SyntheticPlatformOptions p;
    p.num_users = 2000;
    p.num_coupons = 100;
    p.dimension = 4;
    p.interaction_stddev = 1.5;
    p.out_of_stock_fraction = 0.0;
    return p;
  }
};

struct SimulationResult {
  LogPaths paths;            // the four files
  std::string truth_dir;     // factor files of the truth
  int64_t exposures = 0;     // clean exposure rows written
  int64_t redemptions = 0;   // clean redemption rows written
  double mean_true_p = 0.0;  // over the exposures
};

// Simulates and writes the logs. InvalidArgument naming the field for bad options;
// Internal/Unavailable when a file cannot be written.
absl::StatusOr<SimulationResult> SimulateLogs(const SimulationOptions& options,
                                              const std::string& out_dir);

}  // namespace coupond::pipeline

#endif  // COUPOND_PIPELINE_SIMULATE_H_
