#ifndef COUPOND_PIPELINE_NEIGHBOUR_FEATURES_H_
#define COUPOND_PIPELINE_NEIGHBOUR_FEATURES_H_

// Step 2b of the offline job (pipeline/train_job.h, where the file comment says why): coupon
// features that are long lists (dunnhumby's product lists) become one "like=<id>" feature
// naming the most similar coupon seen in training.

#include <cstdint>
#include <string>

#include "absl/types/span.h"
#include "learn/training_data.h"
#include "pipeline/train_job.h"

namespace coupond::pipeline {

// Replaces the coupon features named by `prefixes` by one "like=<id>" feature per coupon
// that has any, the neighbour being chosen among coupons with an example in `train` (highest
// Jaccard overlap of the lists; ties: the lowest coupon index; a coupon seen in `train` is
// its own neighbour; a cold coupon sharing no value gets no "like=" feature). Other features
// are kept. Adds to counts->neighbour_* (the other fields are not touched).
// REQUIRES: every index in `train` is valid.
void ReplaceListsByNeighbours(learn::TrainingData* data, absl::Span<const uint32_t> train,
                              absl::Span<const std::string> prefixes, PipelineResult* counts);

}  // namespace coupond::pipeline

#endif  // COUPOND_PIPELINE_NEIGHBOUR_FEATURES_H_
