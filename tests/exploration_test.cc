// Exploration policies: distributions over coupons + nothing, agreement of greedy with
// ChooseCoupons, the epsilon and temperature limits, numerical safety, sampling frequencies,
// and bad input (NaN/infinite scores, out-of-range parameters, unparsable text).

#include "core/exploration.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/assignment.h"
#include "core/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/chi_square.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::core {
namespace {

using ::coupond::testing::ChiSquareCritical;
using ::coupond::testing::ChiSquareStatistic;
using ::coupond::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

ExplorationPolicy Greedy() { return ExplorationPolicy{}; }
ExplorationPolicy Epsilon(double e) {
  ExplorationPolicy p;
  p.kind = ExplorationPolicy::Kind::kEpsilonGreedy;
  p.epsilon = e;
  return p;
}
ExplorationPolicy Softmax(double t) {
  ExplorationPolicy p;
  p.kind = ExplorationPolicy::Kind::kSoftmax;
  p.temperature = t;
  return p;
}

double Sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

TEST(ExplorationTest, DefaultsAreGreedyWithoutExploration) {
  const ExplorationPolicy p;
  EXPECT_EQ(p.kind, ExplorationPolicy::Kind::kGreedy);
  EXPECT_EQ(p.epsilon, 0.0);
  EXPECT_EQ(p.temperature, 1.0);
  EXPECT_OK(ValidateExplorationPolicy(p));
}

TEST(ExplorationTest, ProbabilitiesAreADistributionOverCouponsAndNothing) {
  SplitMix64 rng(11);
  for (const ExplorationPolicy& policy :
       {Greedy(), Epsilon(0.1), Epsilon(0.9), Softmax(0.01), Softmax(1.0), Softmax(50.0)}) {
    for (int trial = 0; trial < 200; ++trial) {
      const size_t n = rng.Below(12);  // 0 .. 11 candidates
      std::vector<double> scores(n);
      for (double& s : scores) s = rng.Uniform() * 0.4 - 0.1;  // some negative
      ASSERT_OK_AND_ASSIGN(std::vector<double> p, ActionProbabilities(scores, policy));
      ASSERT_EQ(p.size(), n + 1);
      for (double v : p) {
        EXPECT_GE(v, 0.0);
        EXPECT_LE(v, 1.0);
      }
      EXPECT_NEAR(Sum(p), 1.0, 1e-12) << FormatExplorationPolicy(policy) << " n=" << n;
    }
  }
}

TEST(ExplorationTest, NoCandidatesMeansNothingWithCertainty) {
  for (const ExplorationPolicy& policy : {Greedy(), Epsilon(0.5), Softmax(0.1)}) {
    ASSERT_OK_AND_ASSIGN(std::vector<double> p, ActionProbabilities({}, policy));
    EXPECT_THAT(p, ElementsAre(1.0));
  }
}

// The greedy policy is the online decision: for random campaigns (eligibility holes, ties,
// coupons priced out of the money) its single action is ChooseCoupons' choice with k = 1.
TEST(ExplorationTest, GreedyMatchesChooseCouponsWithOneCoupon) {
  SplitMix64 rng(7);
  int nothing_cases = 0, tie_cases = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    const size_t m = 1 + rng.Below(8);
    std::vector<AssignmentCoupon> coupons(m);
    AssignmentPrices prices;
    prices.budget_price = rng.Uniform() * 0.6;
    std::vector<double> probabilities(m);
    for (size_t j = 0; j < m; ++j) {
      coupons[j].id = absl::StrCat("c", j);
      coupons[j].face_value = static_cast<double>(rng.Below(4));  // 0..3
      coupons[j].weight = 1.0;
      prices.stock_prices.push_back(rng.Below(3) == 0 ? 0.05 * static_cast<double>(rng.Below(3))
                                                      : 0.0);
      // Coarse probabilities make exact ties between coupons common.
      probabilities[j] = rng.Below(6) == 0 ? kNotEligible : 0.1 * static_cast<double>(rng.Below(6));
    }
    ASSERT_OK_AND_ASSIGN(std::vector<CouponChoice> choice,
                         ChooseCoupons(coupons, prices, probabilities, 1));
    // Scores of the eligible coupons, in coupon order, as the online path would pass them.
    std::vector<double> scores;
    std::vector<uint32_t> index;
    for (size_t j = 0; j < m; ++j) {
      if (probabilities[j] == kNotEligible) continue;
      scores.push_back(probabilities[j] *
                           (coupons[j].weight - prices.budget_price * coupons[j].face_value) -
                       prices.stock_prices[j]);
      index.push_back(static_cast<uint32_t>(j));
    }
    for (size_t a = 0; a < scores.size(); ++a) {
      for (size_t b = a + 1; b < scores.size(); ++b)
        tie_cases += scores[a] == scores[b] && scores[a] > 0;
    }
    ASSERT_OK_AND_ASSIGN(std::vector<double> p, ActionProbabilities(scores, Greedy()));
    const size_t action = static_cast<size_t>(std::max_element(p.begin(), p.end()) - p.begin());
    EXPECT_EQ(p[action], 1.0);
    if (choice.empty()) {
      ++nothing_cases;
      EXPECT_EQ(action, scores.size()) << "trial " << trial;
    } else {
      ASSERT_LT(action, scores.size()) << "trial " << trial;
      EXPECT_EQ(index[action], choice[0].coupon) << "trial " << trial;
    }
  }
  // The instances exercised both branches and ties, or the comparison proved little.
  EXPECT_GT(nothing_cases, 100);
  EXPECT_GT(tie_cases, 100);
}

TEST(ExplorationTest, ZeroScoreDoesNotBeatNothing) {
  ASSERT_OK_AND_ASSIGN(std::vector<double> p, ActionProbabilities({0.0, -0.5}, Greedy()));
  EXPECT_THAT(p, ElementsAre(0.0, 0.0, 1.0));
  ASSERT_OK_AND_ASSIGN(p, ActionProbabilities({0.2, 0.3, 0.3}, Greedy()));
  EXPECT_THAT(p, ElementsAre(0.0, 1.0, 0.0, 0.0));  // tie to the lowest index
}

TEST(ExplorationTest, EpsilonExtremes) {
  const std::vector<double> scores = {0.1, 0.4, -0.2};
  ASSERT_OK_AND_ASSIGN(std::vector<double> greedy, ActionProbabilities(scores, Greedy()));
  ASSERT_OK_AND_ASSIGN(std::vector<double> e0, ActionProbabilities(scores, Epsilon(0.0)));
  EXPECT_EQ(e0, greedy);
  ASSERT_OK_AND_ASSIGN(std::vector<double> e1, ActionProbabilities(scores, Epsilon(1.0)));
  EXPECT_THAT(e1, ElementsAre(0.25, 0.25, 0.25, 0.25));
  ASSERT_OK_AND_ASSIGN(std::vector<double> e, ActionProbabilities(scores, Epsilon(0.2)));
  EXPECT_DOUBLE_EQ(e[0], 0.05);
  EXPECT_DOUBLE_EQ(e[1], 0.85);
  EXPECT_DOUBLE_EQ(e[2], 0.05);
  EXPECT_DOUBLE_EQ(e[3], 0.05);
}

TEST(ExplorationTest, SoftmaxMatchesTheFormula) {
  const std::vector<double> scores = {0.1, 0.4, -0.2};
  const double t = 0.3;
  ASSERT_OK_AND_ASSIGN(std::vector<double> p, ActionProbabilities(scores, Softmax(t)));
  const double z = std::exp(0.1 / t) + std::exp(0.4 / t) + std::exp(-0.2 / t) + std::exp(0.0);
  EXPECT_NEAR(p[0], std::exp(0.1 / t) / z, 1e-15);
  EXPECT_NEAR(p[1], std::exp(0.4 / t) / z, 1e-15);
  EXPECT_NEAR(p[2], std::exp(-0.2 / t) / z, 1e-15);
  EXPECT_NEAR(p[3], 1.0 / z, 1e-15);
}

TEST(ExplorationTest, SoftmaxLimits) {
  const std::vector<double> scores = {0.1, 0.4, 0.39, -0.2};
  // T -> 0: the greedy action's mass goes to 1 (gap 0.01 / 1e-4 = 100 nats).
  ASSERT_OK_AND_ASSIGN(std::vector<double> cold, ActionProbabilities(scores, Softmax(1e-4)));
  EXPECT_EQ(cold[1], 1.0);
  EXPECT_GT(cold[2], 0.0);  // the runner-up keeps exp(-100) of the mass, not yet underflowed
  EXPECT_LT(cold[2], 1e-40);
  // An extreme (denormal) temperature: exponents underflow to exp(-inf) = 0, no NaN.
  ASSERT_OK_AND_ASSIGN(
      std::vector<double> frozen,
      ActionProbabilities(scores, Softmax(std::numeric_limits<double>::denorm_min())));
  EXPECT_THAT(frozen, ElementsAre(0.0, 1.0, 0.0, 0.0, 0.0));
  // All scores negative: nothing (score 0) is the greedy action and takes the mass when cold.
  ASSERT_OK_AND_ASSIGN(std::vector<double> none, ActionProbabilities({-0.1, -0.3}, Softmax(1e-4)));
  EXPECT_EQ(none[2], 1.0);
  // T -> infinity: uniform over the n + 1 actions.
  ASSERT_OK_AND_ASSIGN(std::vector<double> hot, ActionProbabilities(scores, Softmax(1e9)));
  for (double v : hot) EXPECT_NEAR(v, 0.2, 1e-9);
  // Huge scores: no overflow (exp(1e300 / 1) would be inf without the shift).
  ASSERT_OK_AND_ASSIGN(std::vector<double> huge,
                       ActionProbabilities({1e300, -1e300, 1e300 * 0.5}, Softmax(1.0)));
  EXPECT_THAT(huge, ElementsAre(1.0, 0.0, 0.0, 0.0));
  ASSERT_OK_AND_ASSIGN(
      std::vector<double> max_equal,
      ActionProbabilities({std::numeric_limits<double>::max(), std::numeric_limits<double>::max()},
                          Softmax(1e-3)));
  EXPECT_THAT(max_equal, ElementsAre(0.5, 0.5, 0.0));
}

TEST(ExplorationTest, NonFiniteScoresAreRejectedByIndex) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (const ExplorationPolicy& policy : {Greedy(), Epsilon(0.1), Softmax(0.5)}) {
    EXPECT_THAT(ActionProbabilities({0.1, nan}, policy),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("scores[1]: nan")));
    EXPECT_THAT(ActionProbabilities({inf}, policy),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("scores[0]: inf")));
    EXPECT_THAT(ActionProbabilities({0.2, -inf}, policy),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("scores[1]: -inf")));
  }
}

TEST(ExplorationTest, InvalidPoliciesNameTheField) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (double e : {-0.01, 1.01, nan}) {
    EXPECT_THAT(ValidateExplorationPolicy(Epsilon(e)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("epsilon: ")));
    EXPECT_THAT(ActionProbabilities({0.1}, Epsilon(e)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("epsilon: ")));
  }
  for (double t : {0.0, -1.0, nan, std::numeric_limits<double>::infinity()}) {
    EXPECT_THAT(ValidateExplorationPolicy(Softmax(t)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("temperature: ")));
  }
  // Unused fields are checked too: a typo in a greedy configuration does not hide.
  ExplorationPolicy greedy = Greedy();
  greedy.temperature = 0.0;
  EXPECT_THAT(ValidateExplorationPolicy(greedy),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("temperature: ")));
}

TEST(ExplorationTest, SamplingFrequenciesMatchTheProbabilities) {
  ASSERT_OK_AND_ASSIGN(std::vector<double> p,
                       ActionProbabilities({0.05, 0.12, -0.03, 0.08, 0.0}, Softmax(0.05)));
  SplitMix64 rng(2024);
  constexpr int kDraws = 200000;
  std::vector<double> counts(p.size(), 0.0);
  for (int i = 0; i < kDraws; ++i) counts[SampleAction(p, rng.Uniform())] += 1;
  std::vector<double> expected(p.size());
  for (size_t a = 0; a < p.size(); ++a) expected[a] = p[a] * kDraws;
  const double chi2 = ChiSquareStatistic(counts, expected);
  EXPECT_LT(chi2, ChiSquareCritical(static_cast<int>(p.size()) - 1)) << "chi2 = " << chi2;
  // And the statistic has power: the frequencies do not fit a perturbed distribution.
  std::vector<double> wrong = expected;
  wrong[1] *= 0.97;
  wrong[0] += expected[1] * 0.03;
  EXPECT_GT(ChiSquareStatistic(counts, wrong), ChiSquareCritical(static_cast<int>(p.size()) - 1));
}

TEST(ExplorationTest, SamplingNeverReturnsAZeroProbabilityAction) {
  const std::vector<double> p = {0.0, 0.3, 0.0, 0.7, 0.0};
  EXPECT_EQ(SampleAction(p, 0.0), 1u);
  EXPECT_EQ(SampleAction(p, 0.2999), 1u);
  EXPECT_EQ(SampleAction(p, 0.3), 3u);
  EXPECT_EQ(SampleAction(p, std::nextafter(1.0, 0.0)), 3u);
  // Probabilities that sum to slightly less than 1 (rounding): the top of [0, 1) goes to
  // the last positive action, not past the end.
  EXPECT_EQ(SampleAction({0.5, 0.5 - 1e-15, 0.0}, 1.0 - 1e-16), 1u);
}

TEST(ExplorationTest, ParseAndFormatRoundTrip) {
  for (const ExplorationPolicy& policy :
       {Greedy(), Epsilon(0.1), Epsilon(1.0), Softmax(0.05), Softmax(0.123456789012345)}) {
    const std::string text = FormatExplorationPolicy(policy);
    ASSERT_OK_AND_ASSIGN(ExplorationPolicy back, ParseExplorationPolicy(text));
    EXPECT_EQ(back.kind, policy.kind) << text;
    EXPECT_EQ(back.epsilon, policy.epsilon) << text;
    EXPECT_EQ(back.temperature, policy.temperature) << text;
  }
  EXPECT_EQ(FormatExplorationPolicy(Epsilon(0.1)), "epsilon_greedy:0.1");
  for (const char* bad :
       {"", "Greedy", "epsilon_greedy", "epsilon_greedy:", "epsilon_greedy:x", "epsilon_greedy:1.5",
        "softmax:0", "softmax:-1", "softmax:nan", "softmax:inf", "uniform"}) {
    EXPECT_THAT(ParseExplorationPolicy(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                                      HasSubstr(absl::StrCat("'", bad, "'"))))
        << bad;
  }
}

}  // namespace
}  // namespace coupond::core
