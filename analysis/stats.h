#ifndef COUPOND_ANALYSIS_STATS_H_
#define COUPOND_ANALYSIS_STATS_H_

// Distribution functions and the textbook two-sample tests behind `couponctl ab-report`.
//
// Why our own: the project has no statistics dependency (Debian's GSL would do, but one
// incomplete beta function and one normal quantile do not justify a GPL library), and each
// function here is short, classical and checked against tables and mpmath in
// tests/ab_report_test.cc.
//
// Every function is pure and thread-safe (log-gamma is taken with lgamma_r, which does not
// write the global `signgam`). Arguments outside a function's domain give NaN, as <cmath>
// does; callers that take user input validate it first (ab_report.cc, sample_size.cc).

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace coupond::analysis {

// ---- distributions ----

// Standard normal CDF, Phi(x) = erfc(-x / sqrt 2) / 2 (accurate in both tails).
double NormalCdf(double x);
// Upper tail 1 - Phi(x) = erfc(x / sqrt 2) / 2, without the cancellation of 1 - NormalCdf.
double NormalUpperTail(double x);
// Phi^-1(p) for 0 < p < 1 by Wichura's AS 241 (PPND16), relative error about 1e-16.
// -inf at 0, +inf at 1, NaN outside [0, 1].
double NormalQuantile(double p);

// The regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1, by the
// continued fraction of Numerical Recipes (betacf, modified Lentz), on x or on 1 - x
// whichever converges fast. NaN outside the domain or if the fraction does not converge.
double RegularizedIncompleteBeta(double a, double b, double x);

// Student t CDF with `df` > 0 degrees of freedom (not necessarily an integer: Welch's df is
// not), through I_{df/(df+t^2)}(df/2, 1/2). df above 1e10 (and +inf) give the normal CDF,
// which is then within 1e-10 of it. Accuracy of the tail against mpmath on a grid of
// t in [0.01, 60]: relative error below 1e-12 up to df 1000, 2e-12 at df 40,000 and
// 1.4e-10 at df 3e6 (the continued fraction then runs near its switch point).
double StudentTCdf(double t, double df);
// P(T > |t|) * 2: the two-sided p-value of a t statistic (computed from the tail, so tiny
// p-values keep their precision).
double StudentTTwoSidedP(double t, double df);
// The t quantile for 0 < p < 1: a safeguarded Newton iteration on the CDF (bisection when a
// Newton step leaves the bracket), to about 1e-13 relative.
double StudentTQuantile(double p, double df);

// ---- intervals and tests ----

struct Interval {
  double lower = 0.0;
  double upper = 0.0;
};

// Wilson score interval for a binomial proportion `successes` / `n` at two-sided level
// `confidence` (e.g. 0.95). REQUIRES n > 0, 0 <= successes <= n.
Interval WilsonInterval(int64_t successes, int64_t n, double confidence);

// Mean +- t_{n-1, (1+confidence)/2} * sd / sqrt(n). REQUIRES n >= 2.
Interval MeanInterval(double mean, double sd, int64_t n, double confidence);

// A treatment-minus-control comparison.
struct TestResult {
  double difference = 0.0;      // treatment - control
  double standard_error = 0.0;  // of the difference, as used for the interval
  Interval ci;                  // of the difference
  double statistic = 0.0;       // z or t
  double df = 0.0;              // t degrees of freedom; +inf for a z test
  double p_value = 1.0;         // two-sided
};

// Two proportions, x_t / n_t against x_c / n_c. Interval: unpooled Wald,
// d +- z * sqrt(p_t q_t / n_t + p_c q_c / n_c). Test: pooled two-proportion z test,
// z = d / sqrt(p (1 - p) (1 / n_t + 1 / n_c)) with p = (x_t + x_c) / (n_t + n_c).
// When the pooled SE is 0 (every outcome 0, or every one 1) z = 0 and p = 1.
// REQUIRES n_t, n_c > 0 and 0 <= x <= n.
TestResult TwoProportionTest(int64_t x_t, int64_t n_t, int64_t x_c, int64_t n_c, double confidence);

// Welch's unequal-variance t test from summary statistics (sample variances, n - 1
// denominators). df by Welch-Satterthwaite; interval d +- t_{df, (1+confidence)/2} * SE.
// When both variances are 0 the SE is 0: p = 1 if the means are equal, else 0 (the statistic
// is then +-inf), df = NaN and the interval is the point. REQUIRES n_t, n_c >= 2.
TestResult WelchTest(double mean_t, double var_t, int64_t n_t, double mean_c, double var_c,
                     int64_t n_c, double confidence);

// Relative lift mean_t / mean_c - 1 with an interval by the delta method on the log ratio:
// SE(log r) = sqrt(se_t^2 / mean_t^2 + se_c^2 / mean_c^2), interval
// exp(log r +- z * SE) - 1 with the normal quantile z (the approximation is asymptotic).
// `se_*` are the standard errors of the two means. NaN (estimate and interval) unless both
// means are > 0, where the log ratio is undefined.
struct RelativeLift {
  double estimate = 0.0;
  Interval ci;
};
RelativeLift RelativeLiftDelta(double mean_t, double se_t, double mean_c, double se_c,
                               double confidence);

// Holm-Bonferroni step-down adjusted p-values, in the input's order: with p sorted
// ascending, adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)) (i, j 1-based). NaN inputs
// are left NaN and do not count in m.
std::vector<double> HolmAdjust(absl::Span<const double> p_values);

}  // namespace coupond::analysis

#endif  // COUPOND_ANALYSIS_STATS_H_
