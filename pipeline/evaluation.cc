#include "pipeline/evaluation.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "absl/container/flat_hash_map.h"
#include "common/status_macros.h"

namespace coupond::pipeline {

std::vector<float> PredictWithModel(const core::ModelData& model, const learn::TrainingData& data,
                                    absl::Span<const uint32_t> examples) {
  absl::flat_hash_map<std::string, uint32_t> user_row, coupon_row;
  for (uint32_t u = 0; u < model.user_ids.size(); ++u) user_row[model.user_ids[u]] = u;
  for (uint32_t c = 0; c < model.coupon_ids.size(); ++c) coupon_row[model.coupon_ids[c]] = c;
  // Data index -> model row (or -1), once per entity.
  std::vector<int64_t> um(data.user_ids.size(), -1), cm(data.coupon_ids.size(), -1);
  for (size_t u = 0; u < data.user_ids.size(); ++u) {
    auto it = user_row.find(data.user_ids[u]);
    if (it != user_row.end()) um[u] = it->second;
  }
  for (size_t c = 0; c < data.coupon_ids.size(); ++c) {
    auto it = coupon_row.find(data.coupon_ids[c]);
    if (it != coupon_row.end()) cm[c] = it->second;
  }
  const size_t d = model.dimension;
  std::vector<float> p;
  p.reserve(examples.size());
  for (uint32_t i : examples) {
    const learn::Example& e = data.examples[i];
    double z = model.global_bias;
    const int64_t u = um[e.user];
    const int64_t c = cm[e.coupon];
    if (u >= 0) z += model.user_bias[u];
    if (c >= 0) z += model.coupon_bias[c];
    if (u >= 0 && c >= 0) {
      for (size_t k = 0; k < d; ++k) {
        z += double{model.user_factors[u * d + k]} * double{model.coupon_factors[c * d + k]};
      }
    }
    p.push_back(static_cast<float>(1.0 / (1.0 + std::exp(-z))));
  }
  return p;
}

absl::StatusOr<Evaluation> Evaluate(const std::string& name, absl::Span<const float> predictions,
                                    const learn::TrainingData& data,
                                    absl::Span<const uint32_t> examples, int calibration_bins) {
  std::vector<float> labels;
  labels.reserve(examples.size());
  for (uint32_t i : examples) labels.push_back(data.examples[i].label);
  Evaluation e;
  e.name = name;
  COUPOND_ASSIGN_OR_RETURN(e.auc, learn::RocAuc(predictions, labels));
  COUPOND_ASSIGN_OR_RETURN(e.log_loss, learn::LogLoss(predictions, labels));
  COUPOND_ASSIGN_OR_RETURN(e.calibration,
                           learn::Calibration(predictions, labels, calibration_bins));
  std::vector<uint32_t> order(predictions.size());
  for (uint32_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return predictions[a] < predictions[b]; });
  const size_t n = order.size();
  const size_t bins = std::min<size_t>(static_cast<size_t>(calibration_bins), n);
  for (size_t b = 0; b < bins; ++b) {
    const size_t lo = b * n / bins, hi = (b + 1) * n / bins;
    learn::CalibrationBin bin;
    bin.lower = predictions[order[lo]];
    bin.upper = predictions[order[hi - 1]];
    bin.count = hi - lo;
    double sp = 0, sy = 0;
    for (size_t k = lo; k < hi; ++k) {
      sp += predictions[order[k]];
      sy += labels[order[k]];
    }
    bin.mean_predicted = sp / static_cast<double>(bin.count);
    bin.observed_rate = sy / static_cast<double>(bin.count);
    e.quantile_bins.push_back(bin);
  }
  return e;
}

}  // namespace coupond::pipeline
