#ifndef COUPOND_PIPELINE_SEGMENT_PRIORS_H_
#define COUPOND_PIPELINE_SEGMENT_PRIORS_H_

// Step 7's segments (pipeline/train_job.h): the user segments of a model as published, with
// per segment the prior that user cold start serves to a new member, calibrated in
// probability space.

#include <cstdint>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/model.h"
#include "learn/training_data.h"
#include "pipeline/profiles.h"

namespace coupond::pipeline {

// Puts `seg` (computed over the users of `data`) into `m`, materialised over the same users
// in the same order: the centroids with the encoding of their space, each user's segment,
// and per segment the prior cold start uses: the mean factors of its members that have a
// training exposure (in `train`; all members when none has), and a bias
// calibrated so that the prior's mean probability over the members' training exposures
// (examples `train` of `data`) is their (shrunk) redemption rate there (CalibratedPriorBias;
// the mean bias when the segment has no training exposures or the period no positive).
// Sets m->metadata["segments.k"]. Internal when the segmentation does not match the model's
// users; InvalidArgument when its attribute weight cannot be stored; then the errors of
// core::ValidateModelData on the result.
absl::Status AttachSegments(const Segmentation& seg, const learn::TrainingData& data,
                            absl::Span<const uint32_t> train, core::ModelData* m);

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
