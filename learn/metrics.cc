#include "learn/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace coupond::learn {
namespace {

absl::Status CheckInputs(absl::Span<const float> predictions, absl::Span<const float> labels) {
  if (predictions.size() != labels.size()) {
    return absl::InvalidArgumentError(absl::StrCat("predictions and labels: sizes ",
                                                   predictions.size(), " and ", labels.size(),
                                                   " differ"));
  }
  if (predictions.empty()) return absl::InvalidArgumentError("predictions: empty");
  for (size_t i = 0; i < predictions.size(); ++i) {
    const float p = predictions[i];
    if (!(p >= 0.0f && p <= 1.0f)) {  // NaN fails both comparisons
      return absl::InvalidArgumentError(
          absl::StrCat("predictions[", i, "]: ", p, " is not a probability in [0, 1]"));
    }
    if (labels[i] != 0.0f && labels[i] != 1.0f) {
      return absl::InvalidArgumentError(
          absl::StrCat("labels[", i, "]: ", labels[i], " is not 0 or 1"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<double> RocAuc(absl::Span<const float> predictions, absl::Span<const float> labels) {
  COUPOND_RETURN_IF_ERROR(CheckInputs(predictions, labels));
  const size_t n = predictions.size();
  // (prediction, is positive) pairs sorted by prediction: sorting the pairs themselves, not
  // indices into the predictions, keeps the sort's reads sequential (2-3x faster on the
  // pipeline's validation sets, which it ranks after every epoch). Within a run of tied
  // predictions the order does not matter: ties share their average rank.
  std::vector<std::pair<float, bool>> ranked(n);
  for (size_t i = 0; i < n; ++i) ranked[i] = {predictions[i], labels[i] == 1.0f};
  std::sort(ranked.begin(), ranked.end(),
            [](const std::pair<float, bool>& a, const std::pair<float, bool>& b) {
              return a.first < b.first;
            });
  // Sum of the (1-based, tie-averaged) ranks of the positives.
  double positive_rank_sum = 0.0;
  size_t positives = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    size_t tied_positives = 0;
    while (j < n && ranked[j].first == ranked[i].first) {
      tied_positives += ranked[j].second ? 1 : 0;
      ++j;
    }
    // Ranks i+1 .. j share the average (i + 1 + j) / 2.
    positive_rank_sum += static_cast<double>(tied_positives) * (static_cast<double>(i + 1 + j) / 2);
    positives += tied_positives;
    i = j;
  }
  const size_t negatives = n - positives;
  if (positives == 0 || negatives == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "AUC is undefined: all ", n, " labels are ", positives == 0 ? "negative" : "positive"));
  }
  const double np = static_cast<double>(positives);
  const double u = positive_rank_sum - np * (np + 1) / 2;
  return u / (np * static_cast<double>(negatives));
}

absl::StatusOr<double> LogLoss(absl::Span<const float> predictions, absl::Span<const float> labels,
                               double epsilon) {
  if (!(epsilon > 0.0 && epsilon < 0.5)) {
    return absl::InvalidArgumentError(absl::StrCat("epsilon: ", epsilon, " is not in (0, 0.5)"));
  }
  COUPOND_RETURN_IF_ERROR(CheckInputs(predictions, labels));
  double sum = 0.0;
  for (size_t i = 0; i < predictions.size(); ++i) {
    const double p = std::clamp(static_cast<double>(predictions[i]), epsilon, 1.0 - epsilon);
    sum -= labels[i] == 1.0f ? std::log(p) : std::log1p(-p);
  }
  return sum / static_cast<double>(predictions.size());
}

absl::StatusOr<CalibrationReport> Calibration(absl::Span<const float> predictions,
                                              absl::Span<const float> labels, int num_bins) {
  if (num_bins < 1 || num_bins > 10000) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_bins: ", num_bins, " is not in [1, 10000]"));
  }
  COUPOND_RETURN_IF_ERROR(CheckInputs(predictions, labels));
  const size_t bins = static_cast<size_t>(num_bins);
  std::vector<double> sum_p(bins, 0.0);
  std::vector<double> sum_y(bins, 0.0);
  std::vector<size_t> count(bins, 0);
  for (size_t i = 0; i < predictions.size(); ++i) {
    const double p = predictions[i];
    const size_t k = std::min(bins - 1, static_cast<size_t>(p * static_cast<double>(bins)));
    sum_p[k] += p;
    sum_y[k] += labels[i];
    ++count[k];
  }
  CalibrationReport report;
  report.bins.resize(bins);
  const double n = static_cast<double>(predictions.size());
  for (size_t k = 0; k < bins; ++k) {
    CalibrationBin& b = report.bins[k];
    b.lower = static_cast<double>(k) / static_cast<double>(bins);
    b.upper = static_cast<double>(k + 1) / static_cast<double>(bins);
    b.count = count[k];
    if (count[k] == 0) continue;
    const double c = static_cast<double>(count[k]);
    b.mean_predicted = sum_p[k] / c;
    b.observed_rate = sum_y[k] / c;
    report.expected_calibration_error += c / n * std::abs(b.mean_predicted - b.observed_rate);
  }
  return report;
}

}  // namespace coupond::learn
