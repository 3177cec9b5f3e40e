#ifndef COUPOND_PIPELINE_BASELINES_H_
#define COUPOND_PIPELINE_BASELINES_H_

// Reference models fitted in the same run as the trained model, so that its test metrics
// are read beside something simple (a model that does not beat these is not worth serving):
//
//   coupon popularity   p = the coupon's smoothed redemption rate in training,
//                        (positives_c + s * g) / (exposures_c + s), g = the global training
//                        rate, s = BaselineOptions::prior_strength; a coupon without training
//                        exposures gets g.
//   user propensity     the same per user.
//   logistic            p = sigmoid(w0 + w1 * logit(coupon rate) + w2 * logit(user rate)),
//                        fitted on the training examples by Newton's method (3 parameters,
//                        exact Hessian, a tiny L2 on w1 and w2 for a well-posed solve).
//
// The fourth baseline, a logistic regression on one-hot user and coupon attributes with its
// L2 chosen on the validation period (and publishable), is pipeline/feature_logistic.h.
//
// Only the training examples are read; evaluation examples may include users and coupons
// unseen there. Deterministic; single-threaded; O(examples) per Newton iteration.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "learn/training_data.h"

namespace coupond::pipeline {

struct BaselineOptions {
  // Pseudo-exposures at the global rate in each smoothed rate. >= 0. Default 10.
  double prior_strength = 10.0;
  // Newton iterations of the logistic baseline (stops earlier when the step is below
  // 1e-10). >= 1. Default 50.
  int max_newton_iterations = 50;
  // L2 penalty on the two slopes of the logistic baseline (not the intercept). >= 0.
  // Default 1e-6 (times the number of training examples).
  double l2 = 1e-6;
};

enum class BaselineKind { kCouponPopularity, kUserPropensity, kLogistic };
// "coupon popularity", "user propensity", "logistic (coupon + user rates)".
const char* BaselineName(BaselineKind kind);
inline constexpr std::array<BaselineKind, 3> kAllBaselines = {
    BaselineKind::kCouponPopularity, BaselineKind::kUserPropensity, BaselineKind::kLogistic};

struct Baselines {
  double global_rate = 0.0;         // positives / examples of the training set
  std::vector<double> coupon_rate;  // per coupon of the data (global_rate when unseen)
  std::vector<double> user_rate;    // per user of the data (global_rate when unseen)
  // Logistic baseline: intercept, coupon-rate logit slope, user-rate logit slope.
  std::array<double, 3> weights = {0.0, 0.0, 0.0};
  int newton_iterations = 0;        // iterations the fit ran

  // p of data.examples[i] for each i in `examples`, under the baseline `kind`.
  // REQUIRES: the data the baselines were fitted on (same users and coupons).
  std::vector<float> Predict(BaselineKind kind, const learn::TrainingData& data,
                             absl::Span<const uint32_t> examples) const;
};

// Fits the three baselines on data.examples[i], i in `train_examples`. InvalidArgument for
// an empty training set, an index out of range, a training set of one class (the logistic
// fit has no finite optimum) or bad options.
absl::StatusOr<Baselines> FitBaselines(const learn::TrainingData& data,
                                       absl::Span<const uint32_t> train_examples,
                                       const BaselineOptions& options = {});

}  // namespace coupond::pipeline

#endif  // COUPOND_PIPELINE_BASELINES_H_
