#ifndef COUPOND_LEARN_SYNTHETIC_H_
#define COUPOND_LEARN_SYNTHETIC_H_

// A synthetic coupon platform with known ground truth: users and coupons with true latent
// preferences, drawn from a seeded generator. It gives the demo a model to serve on a
// fresh machine, and later serves as the simulator against which trained models and
// assignment policies are measured (their redemption probabilities are known exactly).

#include <cstdint>

#include "absl/status/statusor.h"
#include "core/model.h"

namespace coupond::learn {

struct SyntheticPlatformOptions {
  // Number of users, ids "u0000001" upwards. Default 10,000.
  uint32_t num_users = 10000;
  // Number of coupons, ids "c00001" upwards. Default 200.
  uint32_t num_coupons = 200;
  // Latent dimension. Default 16.
  uint32_t dimension = 16;
  // Seed of the generator; equal options give bit-identical platforms. Default 42.
  uint64_t seed = 42;
  // Logit of the base redemption rate. Default -3.0 (about 4.7%).
  double global_bias = -3.0;
  // Standard deviations of the user and coupon biases. Default 0.5 each.
  double user_bias_stddev = 0.5;
  double coupon_bias_stddev = 0.5;
  // Standard deviation of the interaction term <x_u, y_c>. Default 1.0. Each factor
  // component is drawn with stddev (interaction_stddev)^(1/2) / d^(1/4), which gives it.
  double interaction_stddev = 1.0;
  // Coupons' validity windows are placed around this time (seconds since the Unix epoch).
  // Default 0: windows are open-ended, so every coupon with stock is active at any time.
  int64_t now_unix_seconds = 0;
  // Fraction of coupons whose window has already ended at now_unix_seconds (only when
  // now_unix_seconds > 0). Default 0.1.
  double expired_fraction = 0.1;
  // Fraction of coupons with stock 0 (never active). Default 0.05.
  double out_of_stock_fraction = 0.05;
};

// Draws a platform. InvalidArgument if a count or the dimension is out of range, or a
// standard deviation or fraction is negative or non-finite.
absl::StatusOr<core::ModelData> GenerateSyntheticPlatform(const SyntheticPlatformOptions& options);

}  // namespace coupond::learn

#endif  // COUPOND_LEARN_SYNTHETIC_H_
