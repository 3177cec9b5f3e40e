#include "pipeline/segment_priors.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/scorer.h"
#include "gtest/gtest.h"
#include "learn/lmf_trainer.h"
#include "pipeline/profiles.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::pipeline {
namespace {

// 80 users, 6 coupons: a quarter redeem often (40%), the rest rarely (2%), so that the
// trained user biases spread and a segment's mean-logit prior sits away from its members'
// redemption rate. Every user but the last has an attribute "grp=" a or b (so that a new
// user can be placed in a segment); the last has none. Fit period days 0-9, validation days
// 10-14.
struct PriorData {
  learn::TrainingData data;
  std::vector<uint32_t> fit, validation;
};

PriorData MakePriorData() {
  PriorData f;
  constexpr uint32_t kPriorUsers = 80, kPriorCoupons = 6;
  for (uint32_t u = 0; u < kPriorUsers; ++u) f.data.user_ids.push_back(absl::StrCat("u", u));
  for (uint32_t c = 0; c < kPriorCoupons; ++c) f.data.coupon_ids.push_back(absl::StrCat("c", c));
  f.data.campaign_ids = {"k0"};
  f.data.user_features.names = {"grp=a", "grp=b"};
  for (uint32_t u = 0; u < kPriorUsers; ++u) {
    if (u + 1 < kPriorUsers) f.data.user_features.features.push_back(u % 2);
    f.data.user_features.offsets.push_back(
        static_cast<uint32_t>(f.data.user_features.features.size()));
  }
  f.data.coupon_features.offsets.assign(kPriorCoupons + 1, 0);
  f.data.coupon_attributes.resize(kPriorCoupons);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int32_t day = 0; day < 15; ++day) {
    for (uint32_t u = 0; u < kPriorUsers; ++u) {
      const double rate = u % 4 == 0 ? 0.4 : 0.02;
      learn::Example e;
      e.user = u;
      e.coupon = static_cast<uint32_t>(rng() % kPriorCoupons);
      e.day = day;
      e.label = unit(rng) < rate ? 1.0f : 0.0f;
      e.label_day = day;
      (day < 10 ? f.fit : f.validation).push_back(static_cast<uint32_t>(f.data.examples.size()));
      f.data.examples.push_back(e);
    }
  }
  return f;
}

struct PriorFit {
  Segmentation seg;
  core::ModelData model;
};

PriorFit FitPriors(const PriorData& f, int k = 2) {
  learn::LmfTrainerOptions t;
  t.dimension = 2;
  t.epochs = 15;
  t.threads = 1;
  auto trained = learn::TrainLmf(f.data, f.fit, {}, t);
  EXPECT_OK(trained.status());
  auto model = learn::MaterializeLmfModel(trained->model, f.data);
  EXPECT_OK(model.status());
  SegmentOptions so;
  so.profile.as_of_day = 10;
  so.kmeans.k = k;
  auto seg = SegmentUsers(f.data, f.fit, so);
  EXPECT_OK(seg.status());
  return {*std::move(seg), *std::move(model)};
}

// PriorLogLoss scores each example with the prior of the segment its user is placed in, not
// with the user's own vector.
TEST(PriorLogLossTest, ScoresEachExampleWithItsUsersSegmentPrior) {
  core::ModelData m;
  m.dimension = 1;
  m.global_bias = -1.0f;
  m.user_ids = {"a", "b", "c"};
  m.user_bias = {5.0f, 5.0f, 5.0f};  // never read
  m.user_factors = {9.0f, 9.0f, 9.0f};
  m.coupon_ids = {"x"};
  m.coupon_bias = {0.5f};
  m.coupon_factors = {2.0f};
  m.segments.resize(2);
  m.segments[0].prior_bias = 0.25f;
  m.segments[0].prior_factors = {0.5f};
  m.segments[1].prior_bias = -2.0f;
  m.segments[1].prior_factors = {-1.0f};
  const std::vector<int32_t> placed = {0, 1, -1};  // "c" has no segment: skipped
  learn::TrainingData data;
  data.user_ids = m.user_ids;
  data.coupon_ids = m.coupon_ids;
  data.examples = {{0, 0, 0, 0, 1.0f}, {1, 0, 0, 0, 0.0f}, {2, 0, 0, 0, 1.0f},
                   {0, 7, 0, 0, 1.0f}};  // coupon 7 out of range: skipped
  const double p0 = core::Sigmoid(-1.0 + 0.25 + 0.5 + 0.5 * 2.0);
  const double p1 = core::Sigmoid(-1.0 - 2.0 + 0.5 - 1.0 * 2.0);
  int64_t scored = 0;
  const double loss = PriorLogLoss(m, placed, data, std::vector<uint32_t>{0, 1, 2, 3}, &scored);
  EXPECT_EQ(scored, 2);
  EXPECT_NEAR(loss, (-std::log(p0) - std::log1p(-p1)) / 2, 1e-6);
  EXPECT_TRUE(std::isnan(PriorLogLoss(m, placed, data, std::vector<uint32_t>{2, 3})));
}

// kMean publishes the members' mean bias; kCalibrated a different one (the members'
// logits spread); the factors are the same under both rules.
TEST(AttachSegmentsTest, MeanRuleKeepsTheMembersMeanBias) {
  const PriorData f = MakePriorData();
  const PriorFit fitted = FitPriors(f);
  core::ModelData mean = fitted.model, calibrated = fitted.model;
  ASSERT_OK(AttachSegments(fitted.seg, f.data, f.fit, &mean, PriorBias::kMean));
  ASSERT_OK(AttachSegments(fitted.seg, f.data, f.fit, &calibrated, PriorBias::kCalibrated));
  EXPECT_EQ(mean.metadata.at("segments.prior_bias"), "mean");
  // Placed as new users, by attribute alone: everyone but the user without one.
  ASSERT_OK_AND_ASSIGN(std::vector<int32_t> placed, PlaceAsNewUsers(mean, f.data));
  ASSERT_EQ(placed.size(), f.data.user_ids.size());
  for (size_t u = 0; u + 1 < placed.size(); ++u) EXPECT_GE(placed[u], 0) << u;
  EXPECT_EQ(placed.back(), -1);
  EXPECT_EQ(calibrated.metadata.at("segments.prior_bias"), "calibrated");
  ASSERT_EQ(mean.segments.size(), 2u);
  for (size_t c = 0; c < 2; ++c) {
    double sum = 0;
    int members = 0;
    for (size_t u = 0; u < mean.num_users(); ++u) {
      if (mean.user_segment[u] != static_cast<int32_t>(c)) continue;
      sum += mean.user_bias[u];  // every user has fit-period exposures here
      ++members;
    }
    ASSERT_GT(members, 0);
    EXPECT_NEAR(mean.segments[c].prior_bias, sum / members, 1e-5) << c;
    EXPECT_EQ(mean.segments[c].prior_factors, calibrated.segments[c].prior_factors) << c;
  }
  EXPECT_NE(mean.segments, calibrated.segments);
}

// The rule follows the validation labels. With one segment each rule's prior differs only
// in its bias, so the higher bias gives every example a higher probability: where every
// validation example redeems it has the lower log loss and wins, where none does the lower
// bias wins. The figures are PriorLogLoss under each rule; the priors come from the fit
// period and do not change with the validation labels.
TEST(ChoosePriorBiasTest, TheRuleWithTheLowerValidationLogLossWins) {
  PriorData f = MakePriorData();
  const PriorFit fitted = FitPriors(f, /*k=*/1);
  core::ModelData calibrated = fitted.model, mean = fitted.model;
  ASSERT_OK(AttachSegments(fitted.seg, f.data, f.fit, &calibrated, PriorBias::kCalibrated));
  ASSERT_OK(AttachSegments(fitted.seg, f.data, f.fit, &mean, PriorBias::kMean));
  ASSERT_EQ(calibrated.segments.size(), 1u);
  const float calibrated_bias = calibrated.segments[0].prior_bias;
  const float mean_bias = mean.segments[0].prior_bias;
  ASSERT_GT(std::fabs(calibrated_bias - mean_bias), 0.05f) << "the two rules must differ here";
  const PriorBias higher = calibrated_bias > mean_bias ? PriorBias::kCalibrated : PriorBias::kMean;
  const PriorBias lower = higher == PriorBias::kMean ? PriorBias::kCalibrated : PriorBias::kMean;
  for (const float label : {1.0f, 0.0f}) {
    for (uint32_t i : f.validation) f.data.examples[i].label = label;
    ASSERT_OK_AND_ASSIGN(PriorBiasChoice choice,
                         ChoosePriorBias(fitted.seg, f.data, f.fit, f.validation, fitted.model));
    EXPECT_EQ(choice.examples, static_cast<int64_t>(f.validation.size()) - 5)
        << "the last user, without attributes, is not placed: 5 validation examples";
    EXPECT_EQ(choice.rule, label == 1.0f ? higher : lower)
        << "calibrated " << choice.calibrated_log_loss << " mean " << choice.mean_log_loss;
    ASSERT_OK_AND_ASSIGN(std::vector<int32_t> placed, PlaceAsNewUsers(calibrated, f.data));
    EXPECT_EQ(choice.calibrated_log_loss, PriorLogLoss(calibrated, placed, f.data, f.validation));
    EXPECT_EQ(choice.mean_log_loss, PriorLogLoss(mean, placed, f.data, f.validation));
  }
  // Nothing to score (no validation examples): the calibrated default stays.
  ASSERT_OK_AND_ASSIGN(PriorBiasChoice none,
                       ChoosePriorBias(fitted.seg, f.data, f.fit, {}, fitted.model));
  EXPECT_EQ(none.rule, PriorBias::kCalibrated);
  EXPECT_EQ(none.examples, 0);
  EXPECT_TRUE(std::isnan(none.mean_log_loss));
}

}  // namespace
}  // namespace coupond::pipeline
