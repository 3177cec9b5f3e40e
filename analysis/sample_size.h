#ifndef COUPOND_ANALYSIS_SAMPLE_SIZE_H_
#define COUPOND_ANALYSIS_SAMPLE_SIZE_H_

// How many units each arm of an experiment needs to detect a given effect: the standard
// closed-form sample sizes for a two-sided two-proportion z test and a two-sample test of
// means (normal approximation), with a Bonferroni split of alpha over the
// treatment-vs-control comparisons of a multi-arm experiment.
//
// Pure functions; thread-safe.

#include <cstdint>

#include "absl/status/statusor.h"

namespace coupond::analysis {

struct ProportionSampleSizeOptions {
  // Conversion rate of the control arm, p0. REQUIRED, 0 < p0 < 1.
  double baseline_rate = 0.0;
  // The effect to detect: exactly one of the two is non-zero. p1 = p0 + absolute_lift, or
  // p1 = p0 * (1 + relative_lift); p1 must stay in (0, 1).
  double absolute_lift = 0.0;
  double relative_lift = 0.0;
  // Two-sided significance level of the whole experiment. Default 0.05.
  double alpha = 0.05;
  // Probability of detecting the effect. Default 0.8.
  double power = 0.8;
  // Arms including the control, >= 2. With k arms alpha is split over the k - 1
  // treatment-vs-control comparisons (Bonferroni: alpha / (k - 1) each). Default 2.
  int arms = 2;
};

struct MeanSampleSizeOptions {
  // Standard deviation of the outcome in each arm (assumed equal). REQUIRED, > 0.
  double sd = 0.0;
  // Difference of means to detect. REQUIRED, != 0.
  double delta = 0.0;
  double alpha = 0.05;  // as above
  double power = 0.8;
  int arms = 2;
};

struct SampleSize {
  int64_t per_arm = 0;                // ceil(exact)
  double exact = 0.0;                 // the formula's value before rounding up
  int64_t total = 0;                  // per_arm * arms
  int comparisons = 1;                // arms - 1
  double alpha_per_comparison = 0.0;  // alpha / comparisons
  double z_alpha = 0.0;               // z_{1 - alpha_per_comparison / 2}
  double z_beta = 0.0;                // z_{power}
  double p0 = 0.0, p1 = 0.0;          // proportions only
};

// n per arm = [z_a sqrt(2 pbar (1 - pbar)) + z_b sqrt(p0 q0 + p1 q1)]^2 / (p1 - p0)^2 with
// pbar = (p0 + p1) / 2 (the variance under H0 pooled, under H1 not; Fleiss, Levin and Paik,
// "Statistical Methods for Rates and Proportions", without continuity correction). For
// p0 = 0.10, p1 = 0.12, alpha 0.05, power 0.8: 3840.8 -> 3841.
// InvalidArgument naming the option when an input is out of range.
absl::StatusOr<SampleSize> ProportionSampleSize(const ProportionSampleSizeOptions& options);

// n per arm = 2 sd^2 (z_a + z_b)^2 / delta^2 (normal approximation; a t-based answer is one
// or two units larger for small n). For sd = 1, delta = 0.5: 62.8 -> 63.
absl::StatusOr<SampleSize> MeanSampleSize(const MeanSampleSizeOptions& options);

}  // namespace coupond::analysis

#endif  // COUPOND_ANALYSIS_SAMPLE_SIZE_H_
