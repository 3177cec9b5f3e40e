#include "pipeline/baselines.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::pipeline {
namespace {

using ::coupond::testing::StatusIs;

// 2 users x 3 coupons; coupon 2 never appears in training.
learn::TrainingData TinyData() {
  learn::TrainingData d;
  d.user_ids = {"u0", "u1"};
  d.coupon_ids = {"c0", "c1", "c2"};
  d.campaign_ids = {"k"};
  d.user_features.AddRow({});
  d.user_features.AddRow({});
  for (int c = 0; c < 3; ++c) d.coupon_features.AddRow({});
  d.coupon_attributes.resize(3);
  auto add = [&](uint32_t u, uint32_t c, float y) {
    learn::Example e;
    e.user = u;
    e.coupon = c;
    e.label = y;
    d.examples.push_back(e);
  };
  add(0, 0, 1);  // 0
  add(0, 0, 1);  // 1
  add(0, 1, 0);  // 2
  add(1, 0, 0);  // 3
  add(1, 1, 0);  // 4
  add(1, 1, 1);  // 5
  add(1, 2, 0);  // 6: test only
  return d;
}

TEST(BaselinesTest, SmoothedRatesMatchHandComputedValues) {
  const learn::TrainingData d = TinyData();
  BaselineOptions o;
  o.prior_strength = 2.0;
  const std::vector<uint32_t> train = {0, 1, 2, 3, 4, 5};
  ASSERT_OK_AND_ASSIGN(Baselines b, FitBaselines(d, train, o));
  const double g = 3.0 / 6.0;
  EXPECT_DOUBLE_EQ(b.global_rate, g);
  // coupon 0: 2 of 3; coupon 1: 1 of 3; coupon 2 unseen -> global.
  EXPECT_DOUBLE_EQ(b.coupon_rate[0], (2 + 2 * g) / (3 + 2));
  EXPECT_DOUBLE_EQ(b.coupon_rate[1], (1 + 2 * g) / (3 + 2));
  EXPECT_DOUBLE_EQ(b.coupon_rate[2], g);
  // user 0: 2 of 3; user 1: 1 of 3.
  EXPECT_DOUBLE_EQ(b.user_rate[0], (2 + 2 * g) / (3 + 2));
  EXPECT_DOUBLE_EQ(b.user_rate[1], (1 + 2 * g) / (3 + 2));

  const std::vector<uint32_t> eval = {0, 6};
  const std::vector<float> pc = b.Predict(BaselineKind::kCouponPopularity, d, eval);
  EXPECT_FLOAT_EQ(pc[0], static_cast<float>((2 + 2 * g) / 5));
  EXPECT_FLOAT_EQ(pc[1], static_cast<float>(g));
  const std::vector<float> pu = b.Predict(BaselineKind::kUserPropensity, d, eval);
  EXPECT_FLOAT_EQ(pu[1], static_cast<float>((1 + 2 * g) / 5));
}

TEST(BaselinesTest, LogisticFitSatisfiesTheOptimalityConditions) {
  const learn::TrainingData d = TinyData();
  BaselineOptions o;
  o.prior_strength = 2.0;
  o.l2 = 0.0;
  const std::vector<uint32_t> train = {0, 1, 2, 3, 4, 5};
  ASSERT_OK_AND_ASSIGN(Baselines b, FitBaselines(d, train, o));
  // At the unpenalised maximum-likelihood optimum the gradient vanishes: sum (p - y) x = 0
  // for each feature x in {1, logit(coupon rate), logit(user rate)}.
  const std::vector<float> p = b.Predict(BaselineKind::kLogistic, d, train);
  double g0 = 0, g1 = 0, g2 = 0;
  for (size_t k = 0; k < train.size(); ++k) {
    const learn::Example& e = d.examples[train[k]];
    const double r = p[k] - e.label;
    const double xc = std::log(b.coupon_rate[e.coupon] / (1 - b.coupon_rate[e.coupon]));
    const double xu = std::log(b.user_rate[e.user] / (1 - b.user_rate[e.user]));
    g0 += r;
    g1 += r * xc;
    g2 += r * xu;
  }
  EXPECT_NEAR(g0, 0.0, 1e-5);
  EXPECT_NEAR(g1, 0.0, 1e-5);
  EXPECT_NEAR(g2, 0.0, 1e-5);
  EXPECT_GT(b.newton_iterations, 0);
  // Here coupon and user rates take the same two values, so the data are symmetric in the
  // two features and the fitted slopes are equal.
  EXPECT_NEAR(b.weights[1], b.weights[2], 1e-6);
}

TEST(BaselinesTest, RejectsBadInput) {
  const learn::TrainingData d = TinyData();
  EXPECT_THAT(FitBaselines(d, {}), StatusIs(absl::StatusCode::kInvalidArgument));
  const std::vector<uint32_t> out_of_range = {0, 99};
  EXPECT_THAT(FitBaselines(d, out_of_range),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("train_examples[1]")));
  const std::vector<uint32_t> one_class = {2, 3};
  EXPECT_THAT(FitBaselines(d, one_class),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("single class")));
  BaselineOptions bad;
  bad.prior_strength = -1;
  const std::vector<uint32_t> train = {0, 1, 2};
  EXPECT_THAT(FitBaselines(d, train, bad),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("prior_strength")));
}

}  // namespace
}  // namespace coupond::pipeline
