// Tests of analysis/: distribution functions, the textbook two-sample tests, Holm, sample
// sizes, CUPED, the A/B report on the real Hillstrom experiment, and every bad-input class.
//
// Reference numbers marked "mpmath" were computed independently with Python's mpmath 1.3.0
// at 30 significant digits (betainc for the t CDF, erfinv for the normal quantile, findroot
// for t quantiles: tests/ab_report_reference.py prints them all); the rest are closed
// forms evaluated in the test itself or published table values. The test does not run
// Python: mpmath is not a build dependency.

#include "analysis/ab_report.h"

#include <cmath>
#include <cstdint>
#include <iostream>
#include <memory>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "analysis/sample_size.h"
#include "analysis/stats.h"
#include "core/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pipeline/csv.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::analysis {
namespace {

using ::coupond::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr double kZ975 = 1.95996398454005423552;  // mpmath: sqrt(2) erfinv(0.95)

// Relative closeness for values of any magnitude.
::testing::AssertionResult RelNear(double actual, double expected, double rel) {
  if (std::fabs(actual - expected) <= rel * std::fabs(expected)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << actual << " differs from " << expected << " by more than " << rel << " relative";
}

std::unique_ptr<pipeline::CsvReader> Reader(const std::string& text) {
  auto reader =
      pipeline::CsvReader::FromStream(std::make_unique<std::istringstream>(text), "t.csv");
  EXPECT_TRUE(reader.ok()) << reader.status();
  return reader.ok() ? *std::move(reader) : nullptr;
}

absl::StatusOr<ExperimentData> Read(const std::string& text, const AbReportOptions& options) {
  auto reader =
      pipeline::CsvReader::FromStream(std::make_unique<std::istringstream>(text), "t.csv");
  if (!reader.ok()) return reader.status();
  return ReadExperiment(**reader, options);
}

absl::StatusOr<AbReport> ReadAndAnalyze(const std::string& text, const AbReportOptions& options) {
  absl::StatusOr<ExperimentData> data = Read(text, options);
  if (!data.ok()) return data.status();
  return AnalyzeExperiment(*data, options);
}

// ------------------------------------------------------------------ distributions

TEST(DistributionTest, NormalQuantileMatchesReferenceValues) {
  EXPECT_TRUE(RelNear(NormalQuantile(0.975), kZ975, 1e-15));
  EXPECT_NEAR(NormalQuantile(0.975), 1.959964, 5e-7);                            // the table value
  EXPECT_TRUE(RelNear(NormalQuantile(0.3), -0.524400512708040784038, 1e-14));    // mpmath
  EXPECT_TRUE(RelNear(NormalQuantile(1e-10), -6.36134090240405620470, 1e-14));   // mpmath
  EXPECT_TRUE(RelNear(NormalQuantile(1e-300), -37.0470962993611992372, 1e-13));  // mpmath
  EXPECT_TRUE(RelNear(NormalQuantile(0.8), 0.841621233572914, 1e-13));           // the usual z_0.8
  EXPECT_EQ(NormalQuantile(0.5), 0.0);
  EXPECT_EQ(NormalQuantile(0.0), -INFINITY);
  EXPECT_EQ(NormalQuantile(1.0), INFINITY);
  EXPECT_TRUE(std::isnan(NormalQuantile(-0.1)));
  EXPECT_TRUE(std::isnan(NormalQuantile(NAN)));
  // Quantile and CDF invert each other across all three branches of AS 241.
  for (double p : {1e-250, 1e-20, 1e-6, 0.01, 0.07, 0.2, 0.5, 0.6, 0.93, 0.999, 1 - 1e-12}) {
    EXPECT_TRUE(RelNear(NormalCdf(NormalQuantile(p)), p, 1e-12)) << p;
  }
  EXPECT_TRUE(RelNear(NormalUpperTail(8.0), NormalCdf(-8.0), 1e-15));
}

TEST(DistributionTest, IncompleteBetaMatchesClosedForms) {
  // I_x(2, 3) = 1 - (1-x)^4 - 4x(1-x)^3 (binomial sum); I_x(1/2, 1/2) = (2/pi) asin(sqrt x).
  for (double x : {0.01, 0.2, 0.4, 0.5, 0.77, 0.99}) {
    const double y = 1 - x;
    EXPECT_TRUE(
        RelNear(RegularizedIncompleteBeta(2, 3, x), 1 - y * y * y * y - 4 * x * y * y * y, 1e-13))
        << x;
    EXPECT_TRUE(RelNear(RegularizedIncompleteBeta(0.5, 0.5, x),
                        2 / std::numbers::pi * std::asin(std::sqrt(x)), 1e-13))
        << x;
  }
  EXPECT_DOUBLE_EQ(RegularizedIncompleteBeta(2, 3, 0.4), 0.5248);
  // A Welch-sized shape parameter (df 40,000): mpmath 2.51438519294750117e-10.
  EXPECT_TRUE(
      RelNear(RegularizedIncompleteBeta(20000, 0.5, 0.999), 2.51438519294750117e-10, 1e-10));
  EXPECT_EQ(RegularizedIncompleteBeta(2, 3, 0.0), 0.0);
  EXPECT_EQ(RegularizedIncompleteBeta(2, 3, 1.0), 1.0);
  EXPECT_TRUE(std::isnan(RegularizedIncompleteBeta(0, 3, 0.5)));
  EXPECT_TRUE(std::isnan(RegularizedIncompleteBeta(2, 3, 1.5)));
}

TEST(DistributionTest, StudentTCdfMatchesClosedFormsForSmallDf) {
  // df 1 (Cauchy), 2 and 3 have elementary CDFs.
  for (double t : {-30.0, -4.0, -1.0, -0.3, 0.0, 0.25, 1.0, 2.5, 12.0, 300.0}) {
    const double cauchy = 0.5 + std::atan(t) / std::numbers::pi;
    const double two = 0.5 + t / (2 * std::sqrt(2 + t * t));
    const double theta = std::atan(t / std::sqrt(3.0));
    const double three = 0.5 + (theta + std::sin(theta) * std::cos(theta)) / std::numbers::pi;
    EXPECT_NEAR(StudentTCdf(t, 1), cauchy, 1e-14) << t;
    EXPECT_NEAR(StudentTCdf(t, 2), two, 1e-14) << t;
    EXPECT_NEAR(StudentTCdf(t, 3), three, 1e-14) << t;
  }
}

TEST(DistributionTest, StudentTMatchesTablesAndMpmath) {
  EXPECT_NEAR(StudentTQuantile(0.975, 10), 2.228139, 5e-7);  // printed tables
  EXPECT_NEAR(StudentTQuantile(0.975, 1), 12.7062, 5e-5);
  EXPECT_NEAR(StudentTQuantile(0.995, 30), 2.750, 5e-4);
  EXPECT_TRUE(RelNear(StudentTQuantile(0.975, 10), 2.22813885198627474840, 1e-12));   // mpmath
  EXPECT_TRUE(RelNear(StudentTQuantile(0.975, 1), 12.7062047361747046460, 1e-12));    // mpmath
  EXPECT_TRUE(RelNear(StudentTQuantile(0.995, 30), 2.74999565356722533240, 1e-12));   // mpmath
  EXPECT_TRUE(RelNear(StudentTQuantile(0.975, 2.5), 3.57465484200368321845, 1e-12));  // mpmath
  EXPECT_TRUE(RelNear(StudentTQuantile(0.025, 10), -2.22813885198627474840, 1e-12));
  EXPECT_TRUE(RelNear(StudentTCdf(2.0, 5), 0.949030260585070821877, 1e-14));       // mpmath
  EXPECT_TRUE(RelNear(StudentTCdf(-1.5, 7.3), 0.0877815464015430622225, 1e-13));   // mpmath
  EXPECT_TRUE(RelNear(StudentTCdf(1.96, 40000), 0.974998638709514698966, 1e-14));  // mpmath
  // A tiny two-sided p-value keeps its precision (mpmath 6.90269638480423217e-137).
  EXPECT_TRUE(RelNear(StudentTTwoSidedP(25.0, 40000), 6.90269638480423217e-137, 1e-10));
  // Quantile inverts the CDF for fractional df, tails included.
  for (double df : {0.7, 1.0, 4.5, 30.0, 1e4, 1e7}) {
    for (double p : {1e-9, 0.001, 0.2, 0.5, 0.77, 0.999999}) {
      EXPECT_TRUE(RelNear(StudentTCdf(StudentTQuantile(p, df), df), p, 1e-10))
          << "df " << df << " p " << p;
    }
  }
  // Large df tends to the normal; df = inf is the normal.
  EXPECT_NEAR(StudentTCdf(1.5, 1e9), NormalCdf(1.5), 1e-9);
  EXPECT_EQ(StudentTCdf(1.5, INFINITY), NormalCdf(1.5));
  EXPECT_TRUE(std::isnan(StudentTCdf(1.0, 0.0)));
  EXPECT_TRUE(std::isnan(StudentTQuantile(1.2, 5)));
}

// ------------------------------------------------------------------ textbook tests

// 150 / 1000 conversions in the treatment against 120 / 1000 in the control.
TEST(TextbookTest, TwoProportionsFromTheFormulas) {
  const TestResult r = TwoProportionTest(150, 1000, 120, 1000, 0.95);
  // Independently, from the counts.
  const double pt = 0.15, pc = 0.12, pooled = 270.0 / 2000.0;
  const double se_unpooled = std::sqrt(pt * (1 - pt) / 1000 + pc * (1 - pc) / 1000);
  const double z = (pt - pc) / std::sqrt(pooled * (1 - pooled) * (2.0 / 1000));
  EXPECT_NEAR(r.difference, 0.03, 1e-15);
  EXPECT_NEAR(r.standard_error, se_unpooled, 1e-15);
  EXPECT_NEAR(r.statistic, z, 1e-12);
  EXPECT_NEAR(r.p_value, std::erfc(z / std::sqrt(2.0)), 1e-14);
  EXPECT_NEAR(r.ci.lower, 0.03 - kZ975 * se_unpooled, 1e-14);
  EXPECT_NEAR(r.ci.upper, 0.03 + kZ975 * se_unpooled, 1e-14);
  EXPECT_TRUE(std::isinf(r.df));
  // Fixed values (mpmath).
  EXPECT_TRUE(RelNear(r.statistic, 1.96304980762235518558, 1e-12));
  EXPECT_TRUE(RelNear(r.p_value, 0.0496403868653687891988, 1e-11));
  EXPECT_TRUE(RelNear(r.ci.lower, 0.0000760288212977861635, 1e-9));
  EXPECT_TRUE(RelNear(r.ci.upper, 0.0599239711787022138365, 1e-12));

  const Interval w = WilsonInterval(120, 1000, 0.95);
  EXPECT_TRUE(RelNear(w.lower, 0.101299260601309137298, 1e-12));  // mpmath
  EXPECT_TRUE(RelNear(w.upper, 0.141609075847712757042, 1e-12));

  const RelativeLift rel = RelativeLiftDelta(pt, std::sqrt(pt * (1 - pt) / 1000), pc,
                                             std::sqrt(pc * (1 - pc) / 1000), 0.95);
  EXPECT_NEAR(rel.estimate, 0.25, 1e-14);
  EXPECT_TRUE(RelNear(rel.ci.lower, -0.000326672241985968742, 1e-8));  // mpmath
  EXPECT_TRUE(RelNear(rel.ci.upper, 0.563010592174393425751, 1e-12));
  EXPECT_TRUE(std::isnan(RelativeLiftDelta(0.1, 0.01, 0.0, 0.0, 0.95).estimate));

  // No variation at all: nothing to test.
  const TestResult none = TwoProportionTest(0, 50, 0, 40, 0.95);
  EXPECT_EQ(none.p_value, 1.0);
  EXPECT_EQ(none.statistic, 0.0);
}

const std::vector<double> kWelchA = {19.5, 22.1, 20.3, 25.0, 23.4, 21.8, 24.6, 20.9};
const std::vector<double> kWelchB = {18.2, 19.9, 17.5, 21.0, 20.1, 18.8};

TEST(TextbookTest, WelchFromTheFormulas) {
  auto moments = [](const std::vector<double>& v, double* mean, double* var) {
    double s = 0;
    for (double x : v) s += x;
    *mean = s / v.size();
    double ss = 0;
    for (double x : v) ss += (x - *mean) * (x - *mean);
    *var = ss / (v.size() - 1);
  };
  double ma, va, mb, vb;
  moments(kWelchA, &ma, &va);
  moments(kWelchB, &mb, &vb);
  const TestResult r = WelchTest(ma, va, 8, mb, vb, 6, 0.95);
  const double sa = va / 8, sb = vb / 6;
  EXPECT_NEAR(r.statistic, (ma - mb) / std::sqrt(sa + sb), 1e-12);
  EXPECT_NEAR(r.df, (sa + sb) * (sa + sb) / (sa * sa / 7 + sb * sb / 5), 1e-12);
  // Fixed values (mpmath).
  EXPECT_TRUE(RelNear(r.difference, 2.95, 1e-13));
  EXPECT_TRUE(RelNear(r.statistic, 3.33538464756655089979, 1e-12));
  EXPECT_TRUE(RelNear(r.df, 11.8715939350142889399, 1e-12));
  EXPECT_TRUE(RelNear(r.p_value, 0.00602090702024395656917, 1e-10));
  EXPECT_TRUE(RelNear(r.ci.lower, 1.02062226243994537902, 1e-11));
  EXPECT_TRUE(RelNear(r.ci.upper, 4.87937773756005462098, 1e-11));
  const Interval a = MeanInterval(ma, std::sqrt(va), 8, 0.95);
  EXPECT_TRUE(RelNear(a.lower, 20.5339404365392972386, 1e-12));
  EXPECT_TRUE(RelNear(a.upper, 23.8660595634607027614, 1e-12));

  // Zero variance in both arms: a deterministic difference.
  const TestResult same = WelchTest(3.0, 0.0, 5, 3.0, 0.0, 5, 0.95);
  EXPECT_EQ(same.p_value, 1.0);
  const TestResult apart = WelchTest(4.0, 0.0, 5, 3.0, 0.0, 5, 0.95);
  EXPECT_EQ(apart.p_value, 0.0);
  EXPECT_TRUE(std::isinf(apart.statistic));
}

// The whole path, CSV text -> report, on the same made-up tables.
TEST(TextbookTest, ReportFromCsvReproducesTheTextbookNumbers) {
  std::string csv = "group,converted,revenue\n";
  for (int i = 0; i < 1000; ++i) {
    csv += absl::StrCat("T,", i < 150 ? 1 : 0, ",", i < 8 ? kWelchA[i] : 21.0, "\n");
    csv += absl::StrCat("C,", i < 120 ? 1 : 0, ",", i < 6 ? kWelchB[i] : 19.0, "\n");
  }
  AbReportOptions o;
  o.arm_column = "group";
  o.conversion_columns = {"converted"};
  o.control_arm = "C";
  ASSERT_OK_AND_ASSIGN(AbReport report, ReadAndAnalyze(csv, o));
  ASSERT_EQ(report.metrics.size(), 1u);
  const MetricReport& m = report.metrics[0];
  ASSERT_EQ(m.arms.size(), 3u);
  EXPECT_EQ(m.arms[0].arm, "C");
  EXPECT_EQ(m.arms[1].arm, "T");
  EXPECT_EQ(m.arms[2].arm, "overall");
  EXPECT_EQ(m.arms[0].successes, 120);
  EXPECT_EQ(m.arms[2].n, 2000);
  EXPECT_EQ(m.arms[2].successes, 270);
  EXPECT_TRUE(RelNear(m.arms[0].ci.lower, 0.101299260601309137298, 1e-12));
  ASSERT_EQ(m.comparisons.size(), 1u);
  EXPECT_TRUE(RelNear(m.comparisons[0].test.statistic, 1.96304980762235518558, 1e-12));
  EXPECT_TRUE(RelNear(m.comparisons[0].test.p_value, 0.0496403868653687891988, 1e-11));
  EXPECT_EQ(m.comparisons[0].p_holm, m.comparisons[0].test.p_value);  // one comparison

  // Values: only the rows of the Welch tables.
  std::string small = "group,revenue\n";
  for (double v : kWelchA) small += absl::StrCat("T,", v, "\n");
  for (double v : kWelchB) small += absl::StrCat("C,", v, "\n");
  o.conversion_columns = {};
  o.value_columns = {"revenue"};
  ASSERT_OK_AND_ASSIGN(AbReport values, ReadAndAnalyze(small, o));
  const Comparison& c = values.metrics[0].comparisons[0];
  EXPECT_TRUE(RelNear(c.test.statistic, 3.33538464756655089979, 1e-12));
  EXPECT_TRUE(RelNear(c.test.df, 11.8715939350142889399, 1e-12));
  EXPECT_TRUE(RelNear(c.test.p_value, 0.00602090702024395656917, 1e-10));
  EXPECT_TRUE(RelNear(values.metrics[0].arms[1].ci.lower, 20.5339404365392972386, 1e-12));
  EXPECT_NEAR(c.relative.estimate, 22.2 / 19.25 - 1, 1e-13);

  // The order of rows in the file does not matter.
  std::string reversed = "group,revenue\n";
  for (int i = 5; i >= 0; --i) reversed += absl::StrCat("C,", kWelchB[i], "\n");
  for (int i = 7; i >= 0; --i) reversed += absl::StrCat("T,", kWelchA[i], "\n");
  ASSERT_OK_AND_ASSIGN(AbReport again, ReadAndAnalyze(reversed, o));
  EXPECT_EQ(FormatAbReport(again, AbReportFormat::kCsv),
            FormatAbReport(values, AbReportFormat::kCsv));
}

// ------------------------------------------------------------------ Holm

TEST(HolmTest, KnownAdjustments) {
  // Sorted 0.005, 0.01, 0.03, 0.04 -> 4x, 3x, 2x, 1x = 0.02, 0.03, 0.06, 0.04 -> monotone
  // 0.02, 0.03, 0.06, 0.06 (R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm")).
  std::vector<double> adj = HolmAdjust({0.01, 0.04, 0.03, 0.005});
  ASSERT_EQ(adj.size(), 4u);
  EXPECT_DOUBLE_EQ(adj[0], 0.03);
  EXPECT_DOUBLE_EQ(adj[1], 0.06);
  EXPECT_DOUBLE_EQ(adj[2], 0.06);
  EXPECT_DOUBLE_EQ(adj[3], 0.02);
  // Capped at 1; ties keep their order.
  EXPECT_THAT(HolmAdjust({0.5, 0.6}), ElementsAre(1.0, 1.0));
  EXPECT_THAT(HolmAdjust({0.02, 0.02}), ElementsAre(0.04, 0.04));
  // One test: unchanged. NaN stays NaN and does not count in m.
  EXPECT_THAT(HolmAdjust({0.03}), ElementsAre(0.03));
  std::vector<double> with_nan = HolmAdjust({0.01, NAN, 0.04});
  EXPECT_DOUBLE_EQ(with_nan[0], 0.02);
  EXPECT_TRUE(std::isnan(with_nan[1]));
  EXPECT_DOUBLE_EQ(with_nan[2], 0.04);
  EXPECT_TRUE(HolmAdjust({}).empty());
}

// ------------------------------------------------------------------ sample size

TEST(SampleSizeTest, TwoProportionsTextbook) {
  ProportionSampleSizeOptions o;
  o.baseline_rate = 0.10;
  o.absolute_lift = 0.02;
  ASSERT_OK_AND_ASSIGN(SampleSize n, ProportionSampleSize(o));
  // Independently from the formula, with fixed z values (mpmath: z_0.975, z_0.8).
  const double za = kZ975, zb = 0.841621233572914;
  const double term = za * std::sqrt(2 * 0.11 * 0.89) + zb * std::sqrt(0.09 + 0.12 * 0.88);
  EXPECT_NEAR(n.exact, term * term / 0.0004, 1e-8);
  EXPECT_TRUE(RelNear(n.exact, 3840.84748243627249839, 1e-12));  // mpmath
  EXPECT_EQ(n.per_arm, 3841);
  EXPECT_EQ(n.total, 7682);
  EXPECT_NEAR(n.p1, 0.12, 1e-15);
  // The same effect as a relative lift of 20%.
  o.absolute_lift = 0;
  o.relative_lift = 0.2;
  ASSERT_OK_AND_ASSIGN(SampleSize rel, ProportionSampleSize(o));
  EXPECT_EQ(rel.per_arm, 3841);
}

TEST(SampleSizeTest, BonferroniOverArmsAndHillstromBaseline) {
  ProportionSampleSizeOptions o;
  o.baseline_rate = 0.0057;  // Hillstrom's control conversion
  o.relative_lift = 0.5;
  ASSERT_OK_AND_ASSIGN(SampleSize two, ProportionSampleSize(o));
  EXPECT_TRUE(RelNear(two.exact, 13670.6744535481691736, 1e-11));  // mpmath
  o.arms = 3;
  ASSERT_OK_AND_ASSIGN(SampleSize three, ProportionSampleSize(o));
  EXPECT_TRUE(RelNear(three.exact, 16555.3926655237676541, 1e-11));  // mpmath, alpha 0.025
  EXPECT_EQ(three.per_arm, 16556);
  EXPECT_EQ(three.total, 3 * 16556);
  EXPECT_EQ(three.comparisons, 2);
  EXPECT_DOUBLE_EQ(three.alpha_per_comparison, 0.025);
  // Three arms at alpha 0.05 = two arms at alpha 0.025.
  o.arms = 2;
  o.alpha = 0.025;
  ASSERT_OK_AND_ASSIGN(SampleSize same, ProportionSampleSize(o));
  EXPECT_EQ(same.per_arm, three.per_arm);
}

TEST(SampleSizeTest, Means) {
  MeanSampleSizeOptions o;
  o.sd = 1.0;
  o.delta = 0.5;  // half a standard deviation: the classic "63 per group"
  ASSERT_OK_AND_ASSIGN(SampleSize n, MeanSampleSize(o));
  EXPECT_TRUE(RelNear(n.exact, 62.7910378747927116093, 1e-12));  // mpmath
  EXPECT_EQ(n.per_arm, 63);
  o.sd = 10.0;  // scale invariance: sd and delta in the same units
  o.delta = -5.0;
  ASSERT_OK_AND_ASSIGN(SampleSize scaled, MeanSampleSize(o));
  EXPECT_EQ(scaled.per_arm, 63);
}

TEST(SampleSizeTest, BadInputsNameTheOption) {
  ProportionSampleSizeOptions o;
  o.baseline_rate = 0.1;
  EXPECT_THAT(ProportionSampleSize(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                                HasSubstr("exactly one")));  // no effect
  o.relative_lift = 0.1;
  o.absolute_lift = 0.01;
  EXPECT_THAT(ProportionSampleSize(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                                HasSubstr("exactly one")));  // both
  o.absolute_lift = 0;
  o.relative_lift = 9.0;  // p1 = 1.0
  EXPECT_THAT(ProportionSampleSize(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("treatment rate")));
  o.relative_lift = 0.1;
  o.baseline_rate = 0;
  EXPECT_THAT(ProportionSampleSize(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("baseline_rate")));
  o.baseline_rate = NAN;
  EXPECT_THAT(ProportionSampleSize(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("baseline_rate")));
  o.baseline_rate = 0.1;
  o.alpha = 0;
  EXPECT_THAT(ProportionSampleSize(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("alpha")));
  o.alpha = 0.05;
  o.power = 1.0;
  EXPECT_THAT(ProportionSampleSize(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("power")));
  o.power = 0.8;
  o.arms = 1;
  EXPECT_THAT(ProportionSampleSize(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("arms")));
  o.arms = 2;
  o.relative_lift = 1e-12;  // an effect too small to ever detect
  EXPECT_THAT(ProportionSampleSize(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("too small")));
  MeanSampleSizeOptions m;
  m.delta = 1;
  EXPECT_THAT(MeanSampleSize(m), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sd")));
  m.sd = 1;
  m.delta = INFINITY;
  EXPECT_THAT(MeanSampleSize(m), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("delta")));
}

// ------------------------------------------------------------------ CUPED

// A synthetic experiment: X ~ N(50, 10), Y = 5 + 0.5 X + effect * treated + N(0, 2), so
// corr(X, Y)^2 = 25 / 29 and CUPED should remove about 86% of the variance.
ExperimentData Synthetic(uint64_t seed, int n_per_arm, double effect, double slope) {
  core::SplitMix64 rng(seed);
  auto normal = [&rng]() {  // Box-Muller
    const double u1 = 1.0 - rng.Uniform(), u2 = rng.Uniform();
    return std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
  };
  ExperimentData d;
  d.source = "synthetic";
  d.arms = {"control", "treatment"};
  d.metrics.push_back({"y", MetricKind::kValue, {{}, {}}});
  d.covariate_by_arm = {{}, {}};
  for (int arm = 0; arm < 2; ++arm) {
    for (int i = 0; i < n_per_arm; ++i) {
      const double x = 50 + 10 * normal();
      d.covariate_by_arm[arm].push_back(x);
      d.metrics[0].by_arm[arm].push_back(5 + slope * x + (arm == 1 ? effect : 0) + 2 * normal());
    }
  }
  return d;
}

TEST(CupedTest, ShrinksVarianceOfACorrelatedMetric) {
  AbReportOptions o;
  o.control_arm = "control";
  o.value_columns = {"y"};
  o.covariate_column = "x";
  ASSERT_OK_AND_ASSIGN(AbReport r, AnalyzeExperiment(Synthetic(7, 5000, 1.0, 0.5), o));
  const MetricReport& m = r.metrics[0];
  ASSERT_TRUE(m.cuped.has_value());
  EXPECT_NEAR(m.cuped->theta, 0.5, 0.02);
  EXPECT_NEAR(m.cuped->variance_reduction, 25.0 / 29.0, 0.02);
  const Comparison& raw = m.comparisons[0];
  const Comparison& adj = m.cuped->comparisons[0];
  EXPECT_LT(adj.test.standard_error, 0.45 * raw.test.standard_error);
  EXPECT_NEAR(adj.variance_reduction, 25.0 / 29.0, 0.03);
  // The adjusted estimate is within its (small) interval of the truth.
  EXPECT_LT(adj.test.ci.lower, 1.0);
  EXPECT_GT(adj.test.ci.upper, 1.0);
  EXPECT_LT(adj.test.p_value, raw.test.p_value);
}

TEST(CupedTest, UnbiasedAcrossReplications) {
  AbReportOptions o;
  o.control_arm = "control";
  o.value_columns = {"y"};
  o.covariate_column = "x";
  constexpr int kReps = 300;
  double sum_raw = 0, sum_adj = 0, ss_raw = 0, ss_adj = 0;
  int covered = 0;
  for (int rep = 0; rep < kReps; ++rep) {
    ASSERT_OK_AND_ASSIGN(AbReport r, AnalyzeExperiment(Synthetic(1000 + rep, 200, 1.0, 0.5), o));
    const TestResult& raw = r.metrics[0].comparisons[0].test;
    const TestResult& adj = r.metrics[0].cuped->comparisons[0].test;
    sum_raw += raw.difference;
    ss_raw += raw.difference * raw.difference;
    sum_adj += adj.difference;
    ss_adj += adj.difference * adj.difference;
    covered += adj.ci.lower <= 1.0 && 1.0 <= adj.ci.upper;
  }
  const double mean_raw = sum_raw / kReps, mean_adj = sum_adj / kReps;
  const double sd_raw = std::sqrt(ss_raw / kReps - mean_raw * mean_raw);
  const double sd_adj = std::sqrt(ss_adj / kReps - mean_adj * mean_adj);
  // Unbiased: the mean estimate is within 4 standard errors of the true effect 1.0.
  EXPECT_NEAR(mean_adj, 1.0, 4 * sd_adj / std::sqrt(kReps)) << "sd " << sd_adj;
  EXPECT_NEAR(mean_raw, 1.0, 4 * sd_raw / std::sqrt(kReps)) << "sd " << sd_raw;
  // Far less spread: sqrt(4/29) ~ 0.37 of the unadjusted one.
  EXPECT_LT(sd_adj, 0.5 * sd_raw);
  // The 95% intervals cover the truth about 95% of the time.
  EXPECT_GE(covered, 0.90 * kReps);
  EXPECT_LE(covered, 0.99 * kReps);
}

TEST(CupedTest, AnUncorrelatedCovariateChangesLittle) {
  AbReportOptions o;
  o.control_arm = "control";
  o.value_columns = {"y"};
  o.covariate_column = "x";
  ASSERT_OK_AND_ASSIGN(AbReport r, AnalyzeExperiment(Synthetic(11, 5000, 1.0, 0.0), o));
  const MetricReport& m = r.metrics[0];
  EXPECT_NEAR(m.cuped->theta, 0.0, 0.01);
  EXPECT_LT(std::fabs(m.cuped->variance_reduction), 0.01);
  EXPECT_NEAR(m.cuped->comparisons[0].test.difference, m.comparisons[0].test.difference,
              0.2 * m.comparisons[0].test.standard_error);
}

// ------------------------------------------------------------------ Hillstrom

TEST(HillstromTest, ReproducesThePublishedFigures) {
  const std::optional<std::string> dir = coupond::testing::SharedDataDir();
  if (!dir.has_value()) {
    COUPOND_SKIP_WITHOUT_SHARED_DATA(
        "shared data not found (set COUPOND_SHARED_DATA or place ../shared/data next to the "
        "repository); needs hillstrom/hillstrom.csv");
  }
  const std::string path = *dir + "/hillstrom/hillstrom.csv";
  AbReportOptions o;
  o.arm_column = "segment";
  o.conversion_columns = {"visit", "conversion"};
  o.value_columns = {"spend"};
  o.control_arm = "No E-Mail";
  o.covariate_column = "history";
  absl::StatusOr<ExperimentData> data = ReadExperimentCsv(path, o);
  if (absl::IsNotFound(data.status())) {
    COUPOND_SKIP_WITHOUT_SHARED_DATA(absl::StrCat(path, " is absent: ", data.status().ToString()));
  }
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->arms, ElementsAre("No E-Mail", "Mens E-Mail", "Womens E-Mail"));
  ASSERT_OK_AND_ASSIGN(AbReport r, AnalyzeExperiment(*data, o));
  EXPECT_EQ(r.rows, 64000);
  ASSERT_EQ(r.metrics.size(), 3u);
  const MetricReport& visit = r.metrics[0];
  const MetricReport& conversion = r.metrics[1];
  const MetricReport& spend = r.metrics[2];
  ASSERT_EQ(visit.arms.size(), 4u);  // control, Mens, Womens, overall
  // n per arm: Mens 21,307, Womens 21,387, No E-Mail 21,306.
  EXPECT_EQ(visit.arms[0].n, 21306);
  EXPECT_EQ(visit.arms[1].n, 21307);
  EXPECT_EQ(visit.arms[2].n, 21387);
  EXPECT_EQ(visit.arms[3].n, 64000);
  // Published rates (to the decimals given).
  EXPECT_NEAR(visit.arms[1].mean, 0.1828, 5e-5);
  EXPECT_NEAR(visit.arms[2].mean, 0.1514, 5e-5);
  EXPECT_NEAR(visit.arms[0].mean, 0.1062, 5e-5);
  EXPECT_NEAR(visit.arms[3].mean, 0.14678, 5e-6);
  EXPECT_NEAR(conversion.arms[1].mean, 0.01253, 5e-6);
  EXPECT_NEAR(conversion.arms[2].mean, 0.00884, 5e-6);
  EXPECT_NEAR(conversion.arms[0].mean, 0.00573, 5e-6);
  EXPECT_NEAR(conversion.arms[3].mean, 0.00903, 5e-6);
  EXPECT_NEAR(spend.arms[1].mean, 1.4226, 5e-5);
  EXPECT_NEAR(spend.arms[2].mean, 1.0772, 5e-5);
  EXPECT_NEAR(spend.arms[0].mean, 0.6528, 5e-5);
  EXPECT_NEAR(spend.arms[3].mean, 1.05091, 5e-6);
  // Every lift is the difference of the arm's and the control's figures, the intervals
  // contain it, and the Holm p-values are never below the raw ones.
  for (const MetricReport* m : {&visit, &conversion, &spend}) {
    ASSERT_EQ(m->comparisons.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
      const Comparison& c = m->comparisons[i];
      EXPECT_EQ(c.arm, m->arms[i + 1].arm);
      EXPECT_NEAR(c.test.difference, m->arms[i + 1].mean - m->arms[0].mean, 1e-12);
      EXPECT_LT(c.test.ci.lower, c.test.difference);
      EXPECT_GT(c.test.ci.upper, c.test.difference);
      EXPECT_GE(c.p_holm, c.test.p_value);
      // Both e-mails raised every outcome (a well-known result of this experiment).
      EXPECT_GT(c.test.ci.lower, 0.0) << m->name << " " << c.arm;
    }
  }
  EXPECT_LT(visit.comparisons[0].p_holm, 1e-50);
  EXPECT_NEAR(visit.comparisons[0].relative.estimate, 0.1828 / 0.1062 - 1, 0.002);
  // Welch df for spend is of the order of the arm sizes (unequal variances).
  EXPECT_GT(spend.comparisons[0].test.df, 20000);
  EXPECT_LT(spend.comparisons[0].test.df, 42693);
  // CUPED on `history`: a real but small reduction (history barely predicts two weeks of
  // outcome); the adjusted lifts stay within one unadjusted SE of the raw ones.
  for (const MetricReport* m : {&visit, &conversion, &spend}) {
    ASSERT_TRUE(m->cuped.has_value());
    EXPECT_GT(m->cuped->variance_reduction, 0.0) << m->name;
    EXPECT_LT(m->cuped->variance_reduction, 0.2) << m->name;
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_NEAR(m->cuped->comparisons[i].test.difference, m->comparisons[i].test.difference,
                  m->comparisons[i].test.standard_error);
    }
    std::cout << "CUPED on history, " << m->name << ": theta " << m->cuped->theta
              << ", variance reduction " << 100 * m->cuped->variance_reduction << "%\n";
  }
  std::cout << FormatAbReport(r, AbReportFormat::kText);
}

// ------------------------------------------------------------------ formats

TEST(FormatTest, TextMarkdownAndCsv) {
  const std::string csv =
      "arm,visit,spend,pre\n"
      "A,1,3.5,1\nA,0,0,2\nA,1,2,3\nB,0,1,1\nB,0,0,2\nB,1,4,4\nC,1,1,2\nC,1,2,2.5\n";
  AbReportOptions o;
  o.conversion_columns = {"visit"};
  o.value_columns = {"spend"};
  o.control_arm = "B";
  o.covariate_column = "pre";
  ASSERT_OK_AND_ASSIGN(AbReport r, ReadAndAnalyze(csv, o));
  const std::string text = FormatAbReport(r, AbReportFormat::kText);
  EXPECT_THAT(text, HasSubstr("control 'B'"));
  EXPECT_THAT(text, HasSubstr("== visit (conversion rate)"));
  EXPECT_THAT(text, HasSubstr("95% CI (Wilson)"));
  EXPECT_THAT(text, HasSubstr("CUPED on 'pre'"));
  const std::string md = FormatAbReport(r, AbReportFormat::kMarkdown);
  EXPECT_THAT(md, HasSubstr("| arm | n | conversions | rate |"));
  EXPECT_THAT(md, HasSubstr("| --- | ---: |"));
  // CSV: per metric 3 arms + overall, 2 lifts and 2 CUPED lifts; read back with our reader.
  const std::string out = FormatAbReport(r, AbReportFormat::kCsv);
  auto reader = Reader(out);
  ASSERT_NE(reader, nullptr);
  ASSERT_OK_AND_ASSIGN(size_t section, reader->RequireColumn("section"));
  ASSERT_OK_AND_ASSIGN(size_t estimate, reader->RequireColumn("estimate"));
  int rows = 0, cuped = 0;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(bool more, reader->Next());
    if (!more) break;
    ASSERT_TRUE(reader->record().ok()) << reader->record().error();
    ++rows;
    cuped += reader->record().Text(section) == "cuped_lift";
    if (rows == 1) {
      EXPECT_EQ(reader->record().Text(estimate), "0.3333333333");  // B's visit rate
    }
  }
  EXPECT_EQ(rows, 2 * (4 + 2 + 2));
  EXPECT_EQ(cuped, 4);

  EXPECT_EQ(*ParseAbReportFormat("Markdown"), AbReportFormat::kMarkdown);
  EXPECT_EQ(*ParseAbReportFormat("csv"), AbReportFormat::kCsv);
  EXPECT_THAT(ParseAbReportFormat("html"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'html'")));
}

// ------------------------------------------------------------------ bad input

class BadInputTest : public ::testing::Test {
 protected:
  BadInputTest() {
    options_.conversion_columns = {"visit"};
    options_.value_columns = {"spend"};
    options_.control_arm = "B";
  }
  void ExpectError(const std::string& csv, const std::string& message) {
    EXPECT_THAT(ReadAndAnalyze(csv, options_),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)))
        << csv;
  }
  AbReportOptions options_;
  const std::string header_ = "arm,visit,spend,pre\n";
  const std::string good_ = "A,1,2.5,1\nA,0,0,2\nB,0,1,3\nB,1,0,4\n";
};

TEST_F(BadInputTest, GoodInputIsAccepted) {
  ASSERT_OK_AND_ASSIGN(AbReport r, ReadAndAnalyze(header_ + good_, options_));
  EXPECT_EQ(r.rows, 4);
  // Conversions written as 1.0 / 0.0 are 0/1 values; CRLF and a BOM are fine.
  EXPECT_OK(
      ReadAndAnalyze("\xEF\xBB\xBF"
                     "arm,visit,spend\r\nA,1.0,2\r\nA,0.0,1\r\nB,0,1\r\nB,1,3",
                     options_));
}

TEST_F(BadInputTest, MissingColumns) {
  ExpectError("arm,visit\nA,1\nA,0\nB,0\nB,1\n", "t.csv:1: no column 'spend' in header");
  options_.arm_column = "segment";
  ExpectError(header_ + good_, "no column 'segment'");
  options_.arm_column = "arm";
  options_.covariate_column = "history";
  ExpectError(header_ + good_, "no column 'history'");
}

TEST_F(BadInputTest, AColumnInTwoRoles) {
  options_.conversion_columns = {"visit", "visit"};
  ExpectError(header_ + good_, "column 'visit' is named twice (as conversion and as conversion)");
  options_.conversion_columns = {"visit"};
  options_.covariate_column = "spend";
  ExpectError(header_ + good_, "column 'spend' is named twice (as value and as covariate)");
  options_.covariate_column = "";
  options_.value_columns = {"ARM"};  // header lookups ignore case
  ExpectError(header_ + good_, "named twice (as arm and as value)");
}

TEST_F(BadInputTest, UnknownControlArmListsTheArms) {
  options_.control_arm = "b";  // labels are case-sensitive
  ExpectError(header_ + good_,
              "control arm 'b' is not among the 2 arm(s) in column 'arm': 'A', 'B'");
}

TEST_F(BadInputTest, NonNumericNanInfAndMissingOutcomes) {
  ExpectError(header_ + good_ + "A,1,abc,1\n", "t.csv:6: column 'spend': 'abc' is not a number");
  ExpectError(header_ + good_ + "A,1,nan,1\n",
              "t.csv:6: column 'spend': 'nan' is not a finite number");
  ExpectError(header_ + good_ + "A,1,NaN,1\n", "'NaN' is not a finite number");
  ExpectError(header_ + good_ + "A,1,inf,1\n", "'inf' is not a finite number");
  ExpectError(header_ + good_ + "A,1,-Infinity,1\n", "is not a finite number");
  ExpectError(header_ + good_ + "A,1,1e999,1\n", "'1e999' is not a finite number");  // overflows
  ExpectError(header_ + good_ + "A,1,,1\n", "t.csv:6: column 'spend': missing value");
  ExpectError(header_ + good_ + "A,1,null,1\n", "column 'spend': missing value");
  ExpectError(header_ + good_ + "A,1\n", "column 'spend': missing value");  // short row
  ExpectError(header_ + good_ + "A,x,1,1\n", "column 'visit': 'x' is not a number");
  options_.covariate_column = "pre";
  ExpectError(header_ + good_ + "A,1,1,nan\n", "t.csv:6: column 'pre': 'nan' is not a finite");
}

TEST_F(BadInputTest, ConversionNotZeroOrOne) {
  ExpectError(header_ + good_ + "B,2,1,1\n", "t.csv:6: column 'visit': '2' is not 0 or 1");
  ExpectError(header_ + good_ + "B,0.5,1,1\n", "'0.5' is not 0 or 1");
  ExpectError(header_ + good_ + "B,-1,1,1\n", "'-1' is not 0 or 1");
  ExpectError(header_ + good_ + "B,true,1,1\n", "'true' is not a number");
}

TEST_F(BadInputTest, TooFewRowsOrArms) {
  ExpectError(header_ + good_ + "C,1,1,1\n",
              "arm 'C' has 1 row(s) in column 'arm'; each arm needs at least 2");
  ExpectError(header_ + "B,1,1,1\nB,0,2,2\n", "only one arm ('B')");
}

TEST_F(BadInputTest, EmptyFileHeaderOnlyAndMalformedRecords) {
  ExpectError("", "t.csv:1: empty file, expected a header");
  ExpectError(header_, "t.csv: no data rows");
  ExpectError(header_ + good_ + "A,\"1,2.5,1\n", "malformed record");  // unterminated quote
  ExpectError(header_ + good_ + "A,1\"x,2,1\n", "t.csv:6: malformed record");
  ExpectError(header_ + good_ + ",1,2,1\n", "t.csv:6: column 'arm': empty arm label");
}

TEST_F(BadInputTest, HugeValuesAndConstantCovariate) {
  // Finite, but their squares overflow: refused rather than reported as inf/NaN.
  ExpectError(header_ + "A,1,1e300,1\nA,0,-1e300,2\nB,0,1,3\nB,1,0,4\n", "values too large");
  options_.covariate_column = "pre";
  ExpectError("arm,visit,spend,pre\nA,1,2.5,7\nA,0,0,7\nB,0,1,7\nB,1,0,7\n",
              "covariate 'pre' is constant");
}

TEST_F(BadInputTest, BadOptions) {
  options_.control_arm = "";
  ExpectError(header_ + good_, "control_arm");
  options_.control_arm = "B";
  options_.confidence = 1.0;
  ExpectError(header_ + good_, "confidence");
  options_.confidence = 0.95;
  options_.conversion_columns = {};
  options_.value_columns = {};
  ExpectError(header_ + good_, "at least one conversion column or value column");
  options_.value_columns = {"spend"};
  EXPECT_THAT(ReadExperimentCsv("/nonexistent/x.csv", options_),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(BadInputTest, InMemoryDataIsCheckedToo) {
  ExperimentData d;
  d.source = "mem";
  d.arms = {"B", "A"};
  d.metrics.push_back({"visit", MetricKind::kConversion, {{0, 1}, {1, 2}}});
  options_.value_columns = {};
  EXPECT_THAT(AnalyzeExperiment(d, options_), StatusIs(absl::StatusCode::kInvalidArgument,
                                                       HasSubstr("conversion 2 is not 0 or 1")));
  d.metrics[0].by_arm = {{0, 1}, {1, NAN}};
  EXPECT_THAT(AnalyzeExperiment(d, options_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("non-finite")));
  d.metrics[0].by_arm = {{0, 1}};
  EXPECT_THAT(AnalyzeExperiment(d, options_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("one vector per arm")));
  d.metrics[0].by_arm = {{0, 1}, {1, 0}};
  d.covariate_by_arm = {{1, 2}, {3}};
  EXPECT_THAT(AnalyzeExperiment(d, options_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("covariate")));
}

}  // namespace
}  // namespace coupond::analysis
