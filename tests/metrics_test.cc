// Metrics against values computed by hand, ties, degenerate label sets and bad input.

#include "learn/metrics.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::learn {
namespace {

using ::coupond::testing::StatusIs;
using ::testing::DoubleNear;
using ::testing::HasSubstr;

TEST(RocAucTest, HandComputedWithoutTies) {
  // Positives scored 0.9, 0.4; negatives 0.8, 0.3, 0.1. Pairs (pos > neg):
  // 0.9 beats all 3; 0.4 beats 0.3 and 0.1 -> 5 of 2 * 3 = 6 pairs: AUC = 5/6.
  const std::vector<float> p = {0.9f, 0.8f, 0.4f, 0.3f, 0.1f};
  const std::vector<float> y = {1, 0, 1, 0, 0};
  ASSERT_OK_AND_ASSIGN(double auc, RocAuc(p, y));
  EXPECT_DOUBLE_EQ(auc, 5.0 / 6.0);
}

TEST(RocAucTest, TiesCountOneHalf) {
  // Positives 0.5, 0.7; negatives 0.5, 0.2. Pairs: (0.5 vs 0.5) tie = 1/2, (0.5 vs 0.2) = 1,
  // (0.7 vs 0.5) = 1, (0.7 vs 0.2) = 1 -> 3.5 / 4 = 0.875.
  const std::vector<float> p = {0.5f, 0.7f, 0.5f, 0.2f};
  const std::vector<float> y = {1, 1, 0, 0};
  ASSERT_OK_AND_ASSIGN(double auc, RocAuc(p, y));
  EXPECT_DOUBLE_EQ(auc, 0.875);
}

TEST(RocAucTest, AllTiedIsOneHalfAndPerfectRankingIsOne) {
  ASSERT_OK_AND_ASSIGN(double tied, RocAuc(std::vector<float>(6, 0.3f), {1, 0, 1, 0, 0, 1}));
  EXPECT_DOUBLE_EQ(tied, 0.5);
  ASSERT_OK_AND_ASSIGN(double perfect, RocAuc({0.1f, 0.2f, 0.8f, 0.9f}, {0, 0, 1, 1}));
  EXPECT_DOUBLE_EQ(perfect, 1.0);
  ASSERT_OK_AND_ASSIGN(double reversed, RocAuc({0.1f, 0.2f, 0.8f, 0.9f}, {1, 1, 0, 0}));
  EXPECT_DOUBLE_EQ(reversed, 0.0);
}

TEST(RocAucTest, OneClassIsFailedPrecondition) {
  EXPECT_THAT(RocAuc({0.1f, 0.7f}, {1, 1}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("positive")));
  EXPECT_THAT(RocAuc({0.1f, 0.7f}, {0, 0}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("negative")));
}

TEST(MetricsInputTest, NaNPredictionNamesItsIndex) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> p = {0.1f, 0.2f, nan};
  const std::vector<float> y = {0, 1, 0};
  EXPECT_THAT(RocAuc(p, y), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("predictions[2]")));
  EXPECT_THAT(LogLoss(p, y), StatusIs(absl::StatusCode::kInvalidArgument,
                                      HasSubstr("predictions[2]")));
  EXPECT_THAT(Calibration(p, y), StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("predictions[2]")));
}

TEST(MetricsInputTest, RejectsBadInput) {
  EXPECT_THAT(RocAuc({}, {}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(LogLoss({0.5f}, {1, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sizes")));
  EXPECT_THAT(LogLoss({1.5f}, {1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("predictions[0]")));
  EXPECT_THAT(LogLoss({0.5f, 0.5f}, {1, 0.5f}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("labels[1]")));
  EXPECT_THAT(LogLoss({0.5f}, {1}, 0.0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("epsilon")));
  EXPECT_THAT(Calibration({0.5f}, {1}, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_bins")));
}

TEST(LogLossTest, HandComputed) {
  // -(log 0.8 + log(1 - 0.4)) / 2 = -(log 0.8 + log 0.6) / 2 = 0.36698...
  ASSERT_OK_AND_ASSIGN(double loss, LogLoss({0.8f, 0.4f}, {1, 0}));
  EXPECT_THAT(loss, DoubleNear(-(std::log(0.8) + std::log(0.6)) / 2, 1e-7));
}

TEST(LogLossTest, ClipsCertainMistakes) {
  // p = 0 for a positive costs -log(1e-7) = 16.118..., not infinity.
  ASSERT_OK_AND_ASSIGN(double loss, LogLoss({0.0f}, {1}));
  EXPECT_THAT(loss, DoubleNear(-std::log(1e-7), 1e-9));
  ASSERT_OK_AND_ASSIGN(double loss2, LogLoss({1.0f}, {0}, 1e-3));
  EXPECT_THAT(loss2, DoubleNear(-std::log(1e-3), 1e-9));
  ASSERT_OK_AND_ASSIGN(double right, LogLoss({1.0f, 0.0f}, {1, 0}));
  EXPECT_LT(right, 1e-6);
}

TEST(CalibrationTest, HandComputedEqualWidthBins) {
  // Two bins: [0, 0.5) holds 0.1, 0.2, 0.3 with labels 0, 0, 1 -> mean 0.2, rate 1/3;
  // [0.5, 1] holds 0.6, 1.0 with labels 1, 1 -> mean 0.8, rate 1.
  // ECE = 3/5 * |0.2 - 1/3| + 2/5 * |0.8 - 1| = 0.08 + 0.08 = 0.16.
  const std::vector<float> p = {0.1f, 0.2f, 0.3f, 0.6f, 1.0f};
  const std::vector<float> y = {0, 0, 1, 1, 1};
  ASSERT_OK_AND_ASSIGN(CalibrationReport r, Calibration(p, y, 2));
  ASSERT_EQ(r.bins.size(), 2u);
  EXPECT_DOUBLE_EQ(r.bins[0].lower, 0.0);
  EXPECT_DOUBLE_EQ(r.bins[0].upper, 0.5);
  EXPECT_EQ(r.bins[0].count, 3u);
  EXPECT_THAT(r.bins[0].mean_predicted, DoubleNear(0.2, 1e-7));
  EXPECT_THAT(r.bins[0].observed_rate, DoubleNear(1.0 / 3, 1e-12));
  EXPECT_EQ(r.bins[1].count, 2u);
  EXPECT_THAT(r.bins[1].mean_predicted, DoubleNear(0.8, 1e-7));
  EXPECT_DOUBLE_EQ(r.bins[1].observed_rate, 1.0);
  EXPECT_THAT(r.expected_calibration_error, DoubleNear(0.16, 1e-7));
}

TEST(CalibrationTest, EmptyBinsAreReportedAndPerfectCalibrationHasZeroError) {
  // Ten bins; predictions 0.25 (x4, one positive) and 0.75 (x4, three positives): both
  // bins calibrated exactly, the other eight empty.
  const std::vector<float> p = {0.25f, 0.25f, 0.25f, 0.25f, 0.75f, 0.75f, 0.75f, 0.75f};
  const std::vector<float> y = {1, 0, 0, 0, 1, 1, 1, 0};
  ASSERT_OK_AND_ASSIGN(CalibrationReport r, Calibration(p, y, 10));
  ASSERT_EQ(r.bins.size(), 10u);
  EXPECT_EQ(r.bins[2].count, 4u);
  EXPECT_EQ(r.bins[7].count, 4u);
  EXPECT_EQ(r.bins[0].count, 0u);
  EXPECT_DOUBLE_EQ(r.bins[0].mean_predicted, 0.0);
  EXPECT_DOUBLE_EQ(r.expected_calibration_error, 0.0);
}

}  // namespace
}  // namespace coupond::learn
