#ifndef COUPOND_LEARN_METRICS_H_
#define COUPOND_LEARN_METRICS_H_

// Offline evaluation of predicted redemption probabilities against observed 0/1 labels:
// ranking (ROC AUC), probabilistic accuracy (log loss) and calibration (reliability table,
// expected calibration error).
//
// Every function is pure and thread-compatible. Inputs are validated: the two spans must have
// equal, non-zero length; every prediction must be a number in [0, 1] (a NaN or out-of-range
// value gives InvalidArgument naming its index); every label must be exactly 0 or 1.
// Sums are accumulated in double.

#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace coupond::learn {

// Area under the ROC curve: the probability that a random positive example is scored above a
// random negative one, ties counting one half. Computed as the Mann-Whitney U statistic with
// tied predictions given their average rank, in O(n log n).
//
// Errors: InvalidArgument for bad input (see above); FailedPrecondition when all labels are
// equal (all positive or all negative), where AUC is undefined. Callers that want a number
// anyway (e.g. a progress display) may map that status to NaN themselves.
absl::StatusOr<double> RocAuc(absl::Span<const float> predictions, absl::Span<const float> labels);

// Default clipping of LogLoss: predictions are clipped to [eps, 1 - eps] so that one confident
// mistake costs at most -log(1e-7) ~= 16.1 nats instead of infinity. 1e-7 is just above float's
// resolution near 1 (2^-24 ~= 6e-8), so 1 - eps is still distinct from 1 in float.
inline constexpr double kLogLossEpsilon = 1e-7;

// Mean binary cross-entropy in nats: -mean(y log p + (1 - y) log(1 - p)), with p clipped to
// [epsilon, 1 - epsilon] first. REQUIRES 0 < epsilon < 0.5 (else InvalidArgument).
absl::StatusOr<double> LogLoss(absl::Span<const float> predictions,
                               absl::Span<const float> labels,
                               double epsilon = kLogLossEpsilon);

// One bin of a reliability table.
struct CalibrationBin {
  double lower = 0.0;  // bin covers predictions in [lower, upper); the last bin includes 1.0
  double upper = 0.0;
  size_t count = 0;             // examples whose prediction falls in the bin
  double mean_predicted = 0.0;  // mean prediction of those examples; 0 when count == 0
  double observed_rate = 0.0;   // fraction of them with label 1; 0 when count == 0
};

struct CalibrationReport {
  // num_bins bins, in order, empty ones included (count 0).
  std::vector<CalibrationBin> bins;
  // Expected calibration error: sum over bins of (count / n) * |mean_predicted - observed_rate|.
  double expected_calibration_error = 0.0;
};

// Reliability table with `num_bins` EQUAL-WIDTH bins over [0, 1] (bin k holds predictions in
// [k / num_bins, (k + 1) / num_bins), the last bin also holds 1.0), and the ECE over them.
// Equal-width because the table is read by people next to a diagonal; with rare events most
// examples fall in the first bins, which the per-bin counts make visible.
// REQUIRES 1 <= num_bins <= 10000 (else InvalidArgument).
absl::StatusOr<CalibrationReport> Calibration(absl::Span<const float> predictions,
                                              absl::Span<const float> labels, int num_bins = 10);

}  // namespace coupond::learn

#endif  // COUPOND_LEARN_METRICS_H_
