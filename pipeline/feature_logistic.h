#ifndef COUPOND_PIPELINE_FEATURE_LOGISTIC_H_
#define COUPOND_PIPELINE_FEATURE_LOGISTIC_H_

// The feature-logistic baseline: a logistic regression on one-hot user and coupon
// attributes (the categorical features the pipeline builds for the LMF model,
// TrainingData::user_features and coupon_features), with L2:
//
//   p(u, c) = sigmoid(w0 + sum_{f in features(u)} a_f + sum_{g in features(c)} b_g)
//
// fitted by minimising  mean log loss + l2 / 2 * (|a|^2 + |b|^2)  (the intercept w0 is not
// penalised) over the training examples. Why it exists: a model that does not beat a plain
// attribute regression on the same campaigns is not worth serving (issue 14), and this is
// the regression a new user would try first.
//
// It is an LMF with feature biases only (no factors), so it can be SERVED: FeatureLogistic-
// AsModel materialises it as core::ModelData with user_bias[u] = sum of a over u's
// attributes, coupon_bias[c] = sum of b over c's attributes, global_bias = w0, and zero
// factors of dimension 1. A user or coupon unknown to the served model gets bias 0 there,
// as for an LMF.
//
// The L2 is chosen on a VALIDATION period (SelectFeatureLogisticL2): each grid value is
// fitted on the fit examples and scored on the validation examples; the lowest validation
// log loss wins. No test example is read.
//
// Solver: truncated Newton (Jacobi-preconditioned conjugate gradients on the exact Hessian,
// applied as Hessian-vector products in O(examples + attribute entries), never formed) with
// a backtracking line search. Single-threaded, sequential sums: deterministic. Features no
// training example carries get weight 0 (the L2 optimum).

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/model.h"
#include "learn/training_data.h"

namespace coupond::pipeline {

struct FeatureLogisticOptions {
  // L2 values tried on the validation period, each finite and > 0 (> 0 keeps the problem
  // strictly convex although one-hot columns are collinear with the intercept). Per example
  // (the loss is a mean). Non-empty. Default {1e-6, 1e-5, 1e-4, 1e-3, 1e-2}.
  std::vector<double> l2_grid = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2};
  // Newton iterations per fit (stops earlier when the gradient's largest component is below
  // `gradient_tolerance`). >= 1. Default 50.
  int max_newton_iterations = 50;
  // Conjugate-gradient iterations per Newton step. >= 1. Default 200.
  int max_cg_iterations = 200;
  // Stop when max |gradient| < this. > 0. Default 1e-9.
  double gradient_tolerance = 1e-9;
};

struct FeatureLogisticModel {
  double intercept = 0.0;
  std::vector<double> user_weights;    // one per data.user_features.names
  std::vector<double> coupon_weights;  // one per data.coupon_features.names
  double l2 = 0.0;
  int newton_iterations = 0;
  int active_features = 0;  // features at least one training example carries

  // p of data.examples[i] for each i in `examples`. REQUIRES: the data it was fitted on
  // (same feature tables).
  std::vector<float> Predict(const learn::TrainingData& data,
                             absl::Span<const uint32_t> examples) const;
};

// Fits on data.examples[i], i in `train`, with L2 `l2`. InvalidArgument for an empty
// training set, an index out of range, one class only (no finite optimum for w0), an l2
// that is not finite and > 0, feature tables without one row per user/coupon, or bad options.
absl::StatusOr<FeatureLogisticModel> FitFeatureLogistic(const learn::TrainingData& data,
                                                        absl::Span<const uint32_t> train,
                                                        double l2,
                                                        const FeatureLogisticOptions& options = {});

struct FeatureLogisticGridPoint {
  double l2 = 0.0;
  double validation_log_loss = 0.0;
  double validation_auc = 0.0;
  int newton_iterations = 0;
};

struct FeatureLogisticSelection {
  std::vector<FeatureLogisticGridPoint> grid;  // options.l2_grid order
  size_t chosen = 0;                           // lowest validation log loss (first on ties)
};

// Fits each options.l2_grid value on `fit` and scores it on `validation`. Errors: those of
// FitFeatureLogistic; InvalidArgument for an empty grid or validation set, FailedPrecondition
// when the validation examples have one class (no AUC).
absl::StatusOr<FeatureLogisticSelection> SelectFeatureLogisticL2(
    const learn::TrainingData& data, absl::Span<const uint32_t> fit,
    absl::Span<const uint32_t> validation, const FeatureLogisticOptions& options = {});

// The fitted regression as a servable model over every user and coupon of `data` (see the
// file comment): dimension 1, zero factors, coupon_attributes from data. REQUIRES: the data
// it was fitted on. InvalidArgument when a bias is out of core::kMaxModelMagnitude.
absl::StatusOr<core::ModelData> FeatureLogisticAsModel(const FeatureLogisticModel& model,
                                                       const learn::TrainingData& data);

}  // namespace coupond::pipeline

#endif  // COUPOND_PIPELINE_FEATURE_LOGISTIC_H_
