// The budget-pacing controller (core/pacing.h): direction, proportionality, clamping, the
// zero-price restart, convergence on a simulated campaign, and bad input.

#include "core/pacing.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::core {
namespace {

using ::coupond::testing::StatusIs;
using ::testing::StartsWith;

double Pace(double price, double planned, double observed, PacingOptions options = {}) {
  PacingInput input;
  input.budget_price = price;
  input.planned_spend = planned;
  input.observed_spend = observed;
  absl::StatusOr<double> out = PaceBudgetPrice(input, options);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : -1;
}

TEST(PacingTest, RaisesThePriceWhenAheadOfPlanAndLowersItWhenBehind) {
  EXPECT_NEAR(Pace(0.2, 100, 110), 0.2 * std::exp(0.1), 1e-12);
  EXPECT_NEAR(Pace(0.2, 100, 90), 0.2 * std::exp(-0.1), 1e-12);
  EXPECT_EQ(Pace(0.2, 100, 100), 0.2);
  PacingOptions gentle;
  gentle.gain = 0.5;
  EXPECT_NEAR(Pace(0.2, 100, 110, gentle), 0.2 * std::exp(0.05), 1e-12);
}

TEST(PacingTest, OneUpdateMovesAtMostMaxStepAndNothingPlannedChangesNothing) {
  EXPECT_NEAR(Pace(0.2, 100, 10000), 0.4, 1e-12);  // clamped at x2
  EXPECT_NEAR(Pace(0.2, 100, 0), 0.1, 1e-12);  // e^-1 < 1/2: clamped at /2
  EXPECT_EQ(Pace(0.2, 0, 50), 0.2);
}

TEST(PacingTest, AZeroPriceRestartsFromTheFloorOnlyWhenOverspending) {
  EXPECT_EQ(Pace(0.0, 100, 150), 1e-3);
  EXPECT_EQ(Pace(0.0, 100, 50), 0.0);
}

// A campaign whose spend rate falls with the price (rate = base / (1 + 20 lambda)), started
// at a price far too low: hourly updates bring the cumulative spend back to plan.
TEST(PacingTest, ConvergesTheCumulativeSpendToThePlan) {
  const double budget = 1000, hours = 48, base_rate = 60;  // unpriced: 60/h, twice the plan
  double price = 0.01, spent = 0;
  for (int h = 1; h <= 48; ++h) {
    spent += base_rate / (1 + 20 * price);
    price = Pace(price, budget * h / hours, spent);
  }
  EXPECT_NEAR(spent / budget, 1.0, 0.05) << "price " << price;
}

TEST(PacingTest, BadInputIsInvalidArgumentNamingTheField) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  PacingInput input;
  input.budget_price = nan;
  EXPECT_THAT(PaceBudgetPrice(input).status(), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("budget_price")));
  input = PacingInput();
  input.planned_spend = -1;
  EXPECT_THAT(PaceBudgetPrice(input).status(), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("planned_spend")));
  input = PacingInput();
  input.observed_spend = std::numeric_limits<double>::infinity();
  EXPECT_THAT(PaceBudgetPrice(input).status(), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("observed_spend")));
  PacingOptions options;
  options.gain = 0;
  EXPECT_THAT(PaceBudgetPrice(PacingInput(), options).status(), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("gain")));
  options = PacingOptions();
  options.max_step = 0.5;
  EXPECT_THAT(PaceBudgetPrice(PacingInput(), options).status(), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("max_step")));
}

}  // namespace
}  // namespace coupond::core
