#ifndef COUPOND_PIPELINE_EVALUATION_H_
#define COUPOND_PIPELINE_EVALUATION_H_

// Step 6 of the offline job (pipeline/train_job.h): a model's predictions on held-out
// examples, made as the server makes them, and their figures (AUC, log loss, calibration).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/model.h"
#include "learn/metrics.h"
#include "learn/training_data.h"

namespace coupond::pipeline {

// A model's figures on the test period.
struct Evaluation {
  std::string name;  // "model", a baseline's name, "truth"
  double auc = 0.0;
  double log_loss = 0.0;
  learn::CalibrationReport calibration;  // equal-width bins (PipelineOptions::calibration_bins)
  // Equal-COUNT bins (by sorted prediction; same number of bins): with rare events nearly
  // every prediction falls in the first equal-width bin, so these are what the report's
  // reliability diagram plots.
  std::vector<learn::CalibrationBin> quantile_bins;
};

// p(u, c) of data.examples[i], i in `examples`, under a SERVED model (matched by id, as the
// server does): an unknown user gets the population prior (bias and factors 0), an unknown
// coupon the global bias plus the user's bias only.
std::vector<float> PredictWithModel(const core::ModelData& model, const learn::TrainingData& data,
                                    absl::Span<const uint32_t> examples);

// Evaluates `predictions` against the labels of `examples`. FailedPrecondition when the
// examples have one class.
absl::StatusOr<Evaluation> Evaluate(const std::string& name, absl::Span<const float> predictions,
                                    const learn::TrainingData& data,
                                    absl::Span<const uint32_t> examples, int calibration_bins);

}  // namespace coupond::pipeline

#endif  // COUPOND_PIPELINE_EVALUATION_H_
