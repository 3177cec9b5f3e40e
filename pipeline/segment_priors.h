#ifndef COUPOND_PIPELINE_SEGMENT_PRIORS_H_
#define COUPOND_PIPELINE_SEGMENT_PRIORS_H_

// Step 7's segments (pipeline/train_job.h): the user segments of a model as published, with
// per segment the prior that user cold start serves to a new member, calibrated in
// probability space.

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/model.h"
#include "learn/training_data.h"
#include "pipeline/profiles.h"

namespace coupond::pipeline {

// How a segment prior's bias is set (AttachSegments), chosen per run on the validation
// period (ChoosePriorBias):
//   kCalibrated  calibrated in probability space to the members' (shrunk) training
//                redemption rate (CalibratedPriorBias);
//   kMean        the mean of the members' trained biases, like the prior's factors.
enum class PriorBias { kCalibrated, kMean };
const char* PriorBiasName(PriorBias rule);  // "calibrated", "mean"

// Puts `seg` (computed over the users of `data`) into `m`, materialised over the same users
// in the same order: the centroids with the encoding of their space, each user's segment,
// and per segment the prior cold start uses: the mean factors of its members that have a
// training exposure (in `train`; all members when none has), and a bias by `rule`: with
// kCalibrated, such that the prior's mean probability over the members' training exposures
// (examples `train` of `data`) is their (shrunk) redemption rate there (CalibratedPriorBias;
// the mean bias when the segment has no training exposures or the period no positive); with
// kMean, the mean of those members' biases.
// Sets m->metadata["segments.k"] and ["segments.prior_bias"] (PriorBiasName). Internal when
// the segmentation does not match the model's users; InvalidArgument when its attribute
// weight cannot be stored; then the errors of core::ValidateModelData on the result.
absl::Status AttachSegments(const Segmentation& seg, const learn::TrainingData& data,
                            absl::Span<const uint32_t> train, core::ModelData* m,
                            PriorBias rule = PriorBias::kCalibrated);

// The segment user cold start would place each user of `data` in if the user were new to
// `m`: by the user's attributes alone (core::NearestSegment; a user feature "name=value" is
// the attribute {name, value}), not by the behaviour that placed the user in training. -1
// for a user none of whose attributes is a segment column: such a user gets the population
// prior, whatever the segments' biases. One entry per user of `data`. Errors: those of
// core::ModelSnapshot::Create on `m`.
absl::StatusOr<std::vector<int32_t>> PlaceAsNewUsers(const core::ModelData& m,
                                                     const learn::TrainingData& data);

// Mean log loss (natural log, probabilities clamped to [1e-7, 1 - 1e-7]) of `examples` of
// `data`, each scored with the prior of its user's segment in `segment_of_user` (one entry
// per user; e.g. PlaceAsNewUsers) instead of the user's own bias and factors:
// sigmoid(global + prior_bias + coupon_bias + <prior_factors, coupon_factors>), as the
// server scores a new user there. Examples whose user has no segment (-1) or whose coupon is
// out of range are skipped; NaN when none is left. The number scored goes to `*scored` when
// given.
double PriorLogLoss(const core::ModelData& m, absl::Span<const int32_t> segment_of_user,
                    const learn::TrainingData& data, absl::Span<const uint32_t> examples,
                    int64_t* scored = nullptr);

struct PriorBiasChoice {
  PriorBias rule = PriorBias::kCalibrated;
  double calibrated_log_loss = 0, mean_log_loss = 0;  // PriorLogLoss on the validation period
  int64_t examples = 0;  // validation examples scored (their users placed by attributes)
};

// Chooses the prior bias rule on the validation period, as every other choice of the
// pipeline is made: `fit_model` (trained on the `fit` examples of `data` and materialised
// over its users) gets `seg`'s segments under each rule (priors from the fit period); every
// `validation` example whose user would be placed in a segment as a new user
// (PlaceAsNewUsers) is scored with that segment's prior (PriorLogLoss), and the rule with
// the lower log loss wins; a tie, or a validation period where no example could be scored,
// keeps kCalibrated. `seg` must be fitted on the fit period only (as of the
// validation cutoff) for the choice to see nothing of the validation period but its labels.
// Errors: those of AttachSegments and PlaceAsNewUsers.
absl::StatusOr<PriorBiasChoice> ChoosePriorBias(const Segmentation& seg,
                                                const learn::TrainingData& data,
                                                absl::Span<const uint32_t> fit,
                                                absl::Span<const uint32_t> validation,
                                                const core::ModelData& fit_model);

// The bias that calibrates a cold-start prior in probability space. A segment's prior is the
// mean of its members' biases and factors, a mean in logit space; when the members' logits
// spread (redemptions concentrate in few users), sigmoid of that mean is far below the
// members' redemption rate. Returns b_s such that, over the `exposures` ((user row, coupon
// row) pairs, e.g. the members' logged exposures; only the coupon is read),
//   mean sigmoid(b + b_s + b_c + <prior_factors, y_c>) = target_rate,
// found by bisection (|error| < 1e-9 in b_s). nullopt when `exposures` is empty or
// target_rate is not in (0, 1). REQUIRES: coupon rows in range;
// prior_factors.size() == model.dimension.
std::optional<float> CalibratedPriorBias(const core::ModelData& model,
                                         absl::Span<const float> prior_factors,
                                         absl::Span<const std::pair<uint32_t, uint32_t>> exposures,
                                         double target_rate);

}  // namespace coupond::pipeline

#endif  // COUPOND_PIPELINE_SEGMENT_PRIORS_H_
