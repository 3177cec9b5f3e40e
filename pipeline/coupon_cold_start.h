#ifndef COUPOND_PIPELINE_COUPON_COLD_START_H_
#define COUPOND_PIPELINE_COUPON_COLD_START_H_

// Coupon cold start, at training time: a coupon with no training example gets a bias and
// factor vector PREDICTED from its attributes (coupons.csv columns; dunnhumby's campaign type
// and the "like=<id>" neighbour feature step 2b of the pipeline builds from product lists),
// by a ridge regression fitted on the coupons that do have training data:
//
//   rows     coupons with at least one training example ("warm");
//   columns  one-hot coupon features carried by at least one warm coupon;
//   targets  each warm coupon's trained (b_c, y_c) in the materialised model, centred on their
//            mean (the intercept, not penalised);
//   fit      W = argmin ||X W - (Y - mean)||^2 + l2 ||W||^2 (d + 1 target columns), solved
//            exactly: sparse Cholesky (Eigen SimplicialLDLT) of X^T X + l2 I;
//   predict  (b_c, y_c) = mean + x_c W for every coupon without training examples that
//            carries at least one column; ModelData::coupon_predicted_from_attributes marks it.
//
// Why a regression on top of the trainer's own feature embeddings (which already give an
// unseen coupon a vector: the sum of its features' embeddings): the trainer splits a warm
// coupon's vector between its id embedding and its features' embeddings, and a new coupon
// inherits only the feature part. A "like=X" feature is carried by X alone among warm coupons,
// so the regression hands the new coupon (shrunk) X's WHOLE trained vector, id part included,
// which is what "it resembles X" means. The measured effect on dunnhumby is in
// docs/cold-start.md.
//
// Cold coupons without any column keep their materialised vector (the global prior when they
// have no known feature either) and are not marked. Deterministic; single-threaded.

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/model.h"
#include "learn/training_data.h"

namespace coupond::pipeline {

struct CouponColdStartOptions {
  // Ridge penalty on the feature weights (not on the intercept). Finite, > 0. Default 1:
  // a coupon with one "like=" neighbour inherits half of that neighbour's deviation from the
  // mean, as shrinkage towards the mean for a single observation should.
  double l2 = 1.0;
};

struct CouponColdStartReport {
  int64_t warm_coupons = 0;       // regression rows
  int64_t columns = 0;            // regression columns (features of warm coupons)
  int64_t predicted_coupons = 0;  // cold coupons given predicted vectors
  int64_t cold_without_columns = 0;  // cold coupons left as they were
  // Root mean squared residual of the fit over warm coupons and the d + 1 targets, and the
  // root mean square of the centred targets (what a mean-only predictor leaves).
  double fit_rmse = 0.0;
  double target_rms = 0.0;
};

// Predicts the vectors of `model`'s cold coupons (no example in `train`) from
// data.coupon_features, and sets model->coupon_predicted_from_attributes (one per coupon).
// REQUIRES: `model` materialised over `data`'s coupons in data order (same ids).
// InvalidArgument for bad options, a model that does not match the data, or an index out of
// range; FailedPrecondition when the regression's system cannot be factorised (not expected
// with l2 > 0). With no warm coupon or no cold coupon it changes nothing.
absl::StatusOr<CouponColdStartReport> PredictColdCoupons(const learn::TrainingData& data,
                                                         absl::Span<const uint32_t> train,
                                                         const CouponColdStartOptions& options,
                                                         core::ModelData* model);

}  // namespace coupond::pipeline

#endif  // COUPOND_PIPELINE_COUPON_COLD_START_H_
