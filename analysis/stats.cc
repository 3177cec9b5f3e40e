#include "analysis/stats.h"

#include <math.h>  // lgamma_r (glibc; thread-safe, unlike std::lgamma which writes signgam)

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>

namespace coupond::analysis {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
// Degrees of freedom from which the t distribution is taken to be the normal.
constexpr double kNormalDf = 1e10;

// c[0] + c[1] x + ... + c[N-1] x^(N-1), by Horner's rule.
template <size_t N>
double Polynomial(const double (&c)[N], double x) {
  double y = c[N - 1];
  for (size_t i = N - 1; i-- > 0;) y = y * x + c[i];
  return y;
}

double LogGamma(double x) {
  int sign = 0;
  return ::lgamma_r(x, &sign);
}

// The continued fraction of I_x(a, b) (Numerical Recipes, betacf), evaluated by the modified
// Lentz method. Converges quickly for x < (a + 1) / (a + b + 2); needs O(sqrt(max(a, b)))
// terms, so Welch df of a few hundred thousand are still cheap.
double BetaContinuedFraction(double a, double b, double x) {
  constexpr int kMaxIterations = 100000;
  constexpr double kEpsilon = 1e-16;
  constexpr double kTiny = 1e-300;
  const double qab = a + b, qap = a + 1.0, qam = a - 1.0;
  double c = 1.0;
  double d = 1.0 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= kMaxIterations; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));  // even step
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));  // odd step
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1.0) < kEpsilon) return h;
  }
  return kNaN;
}

// lgamma(x) - Stirling's approximation (x - 1/2) log x - x + log(2 pi) / 2, for x >= 10, by
// its asymptotic series (the next term is below 3e-17 at x = 10).
double StirlingCorrection(double x) {
  // B_2k / (2k (2k - 1) x^(2k - 1)) for k = 1..7.
  static constexpr double kTerms[7] = {1.0 / 12,   -1.0 / 360,        1.0 / 1260, -1.0 / 1680,
                                       1.0 / 1188, -691.0 / 360360.0, 1.0 / 156};
  const double r = 1.0 / x;
  return r * Polynomial(kTerms, r * r);
}

// log B(a, b). The plain lgamma(a) + lgamma(b) - lgamma(a + b) cancels catastrophically
// when a or b is large (Welch df of 40,000 give lgamma values near 2e5, leaving about 1e-11
// of relative precision; df of 1e9 leave 1e-6), so large arguments go through Stirling's
// series with the leading terms cancelled by hand (the approach of R's lbeta).
double LogBeta(double a, double b) {
  const double p = std::min(a, b), q = std::max(a, b);
  if (q < 10.0) return LogGamma(p) + LogGamma(q) - LogGamma(p + q);
  const double log_sqrt_2pi = 0.5 * std::log(2.0 * std::numbers::pi);
  double corr = StirlingCorrection(q) - StirlingCorrection(p + q);
  if (p >= 10.0) {
    corr += StirlingCorrection(p);
    return -0.5 * std::log(q) + log_sqrt_2pi + corr + (p - 0.5) * std::log(p / (p + q)) +
           q * std::log1p(-p / (p + q));
  }
  return LogGamma(p) + corr + p - p * std::log(p + q) + (q - 0.5) * std::log1p(-p / (p + q));
}

// x^a (1-x)^b / (a B(a, b)) * continued fraction = I_x(a, b), for x below the switch point.
// log x and log(1 - x) come from the caller, who may know them more precisely than
// log(x) of a rounded x (the t tail does).
double IncompleteBetaLower(double a, double b, double x, double log_x, double log_1mx) {
  const double log_front = a * log_x + b * log_1mx - LogBeta(a, b);
  return std::exp(log_front) * BetaContinuedFraction(a, b, x) / a;
}

// P(T > t) for t >= 0: I_{df/(df+t^2)}(df/2, 1/2) / 2. Computed from the tail so that it
// keeps its relative precision when tiny.
double StudentTUpperTail(double t, double df) {
  // Beyond 1e10 df the t and normal CDFs differ by less than 1e-10 (the first correction is
  // phi(t) (t^3 + t) / (4 df)), while the continued fraction would need ~sqrt(df) terms.
  if (df > kNormalDf) return NormalUpperTail(t);
  if (std::isinf(t)) return 0.0;
  if (t == 0.0) return 0.5;
  // x = df / (df + t^2) is close to 1 for t^2 << df; 1 - x = t^2 / (df + t^2) and both logs
  // are formed without rounding x first.
  const double t2 = t * t;
  const double x = df / (df + t2);
  const double one_minus_x = t2 / (df + t2);
  const double log_x = -std::log1p(t2 / df);
  const double log_1mx = 2.0 * std::log(t) - std::log(df + t2);
  const double a = 0.5 * df, b = 0.5;
  if (x < (a + 1.0) / (a + b + 2.0)) return 0.5 * IncompleteBetaLower(a, b, x, log_x, log_1mx);
  return 0.5 * (1.0 - IncompleteBetaLower(b, a, one_minus_x, log_1mx, log_x));
}

// Gamma((df+1)/2) / (sqrt(df pi) Gamma(df/2)) = 1 / (sqrt(df) B(df/2, 1/2)).
double StudentTDensity(double t, double df) {
  return std::exp(-LogBeta(0.5 * df, 0.5) - 0.5 * std::log(df) -
                  0.5 * (df + 1.0) * std::log1p(t * t / df));
}

// Two-sided critical value for a `confidence` interval, e.g. 1.959964 for 0.95.
double NormalCritical(double confidence) { return NormalQuantile(0.5 + 0.5 * confidence); }

}  // namespace

double NormalCdf(double x) { return 0.5 * std::erfc(-x / std::numbers::sqrt2); }

double NormalUpperTail(double x) { return 0.5 * std::erfc(x / std::numbers::sqrt2); }

double NormalQuantile(double p) {
  // Wichura, Algorithm AS 241 (PPND16), Applied Statistics 37(3), 1988: rational
  // approximations on |p - 0.5| <= 0.425 and, in r = sqrt(-log(min(p, 1 - p))), on r <= 5
  // and r > 5. Coefficients in increasing powers: a0..a7 over 1, b1..b7, and so on.
  static constexpr double kA[8] = {3.3871328727963666080e+0, 1.3314166789178437745e+2,
                                   1.9715909503065514427e+3, 1.3731693765509461125e+4,
                                   4.5921953931549871457e+4, 6.7265770927008700853e+4,
                                   3.3430575583588128105e+4, 2.5090809287301226727e+3};
  static constexpr double kB[8] = {1.0000000000000000000e+0, 4.2313330701600911252e+1,
                                   6.8718700749205790830e+2, 5.3941960214247511077e+3,
                                   2.1213794301586595867e+4, 3.9307895800092710610e+4,
                                   2.8729085735721942674e+4, 5.2264952788528545610e+3};
  static constexpr double kC[8] = {1.42343711074968357734e+0, 4.63033784615654529590e+0,
                                   5.76949722146069140550e+0, 3.64784832476320460504e+0,
                                   1.27045825245236838258e+0, 2.41780725177450611770e-1,
                                   2.27238449892691845833e-2, 7.74545014278341407640e-4};
  static constexpr double kD[8] = {1.0000000000000000000e+0,  2.05319162663775882187e+0,
                                   1.67638483018380384940e+0, 6.89767334985100004550e-1,
                                   1.48103976427480074590e-1, 1.51986665636164571966e-2,
                                   5.47593808499534494600e-4, 1.05075007164441684324e-9};
  static constexpr double kE[8] = {6.65790464350110377720e+0, 5.46378491116411436990e+0,
                                   1.78482653991729133580e+0, 2.96560571828504891230e-1,
                                   2.65321895265761230930e-2, 1.24266094738807843860e-3,
                                   2.71155556874348757815e-5, 2.01033439929228813265e-7};
  static constexpr double kF[8] = {1.0000000000000000000e+0,  5.99832206555887937690e-1,
                                   1.36929880922735805310e-1, 1.48753612908506148525e-2,
                                   7.86869131145613259100e-4, 1.84631831751005468180e-5,
                                   1.42151175831644588870e-7, 2.04426310338993978564e-15};
  if (std::isnan(p) || p < 0.0 || p > 1.0) return kNaN;
  if (p == 0.0) return -kInf;
  if (p == 1.0) return kInf;
  const double q = p - 0.5;
  if (std::fabs(q) <= 0.425) {
    const double r = 0.180625 - q * q;
    return q * Polynomial(kA, r) / Polynomial(kB, r);
  }
  double r = std::sqrt(-std::log(q < 0.0 ? p : 1.0 - p));
  const double value = r <= 5.0 ? Polynomial(kC, r - 1.6) / Polynomial(kD, r - 1.6)
                                : Polynomial(kE, r - 5.0) / Polynomial(kF, r - 5.0);
  return q < 0.0 ? -value : value;
}

double RegularizedIncompleteBeta(double a, double b, double x) {
  if (!(a > 0.0) || !(b > 0.0) || std::isnan(x) || x < 0.0 || x > 1.0) return kNaN;
  if (x == 0.0) return 0.0;
  if (x == 1.0) return 1.0;
  const double log_x = std::log(x), log_1mx = std::log1p(-x);
  if (x < (a + 1.0) / (a + b + 2.0)) return IncompleteBetaLower(a, b, x, log_x, log_1mx);
  return 1.0 - IncompleteBetaLower(b, a, 1.0 - x, log_1mx, log_x);
}

double StudentTCdf(double t, double df) {
  if (std::isnan(t) || !(df > 0.0)) return kNaN;
  if (t >= 0.0) return 1.0 - StudentTUpperTail(t, df);
  return StudentTUpperTail(-t, df);
}

double StudentTTwoSidedP(double t, double df) {
  if (std::isnan(t) || !(df > 0.0)) return kNaN;
  return std::min(1.0, 2.0 * StudentTUpperTail(std::fabs(t), df));
}

double StudentTQuantile(double p, double df) {
  if (std::isnan(p) || p < 0.0 || p > 1.0 || !(df > 0.0)) return kNaN;
  if (p == 0.0) return -kInf;
  if (p == 1.0) return kInf;
  if (p == 0.5) return 0.0;
  if (df > kNormalDf) return NormalQuantile(p);
  // Solve P(T > t) = q for t > 0, q the smaller tail: for p < 0.5 that is p itself (forming
  // 1 - p would cost a tiny p its precision), and 1 - p is exact for p >= 0.5. The tail is
  // decreasing and convex in t, so Newton steps from the left undershoot and from the right
  // may overshoot: keep a bracket [lo, hi] and bisect whenever a step leaves it.
  const bool lower = p < 0.5;
  const double q = lower ? p : 1.0 - p;
  double lo = 0.0;
  double hi = std::max(1.0, -NormalQuantile(q));
  while (StudentTUpperTail(hi, df) > q) {
    lo = hi;
    hi *= 2.0;
    if (hi > 1e300) return lower ? -kInf : kInf;
  }
  double t = 0.5 * (lo + hi);
  for (int i = 0; i < 300; ++i) {
    const double g = StudentTUpperTail(t, df) - q;  // decreasing in t
    if (g == 0.0) break;
    if (g > 0.0) {
      lo = t;
    } else {
      hi = t;
    }
    const double density = StudentTDensity(t, df);
    double next = density > 0.0 ? t + g / density : kNaN;
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    if (std::fabs(next - t) <= 1e-15 * std::max(1.0, std::fabs(t))) {
      t = next;
      break;
    }
    t = next;
  }
  return lower ? -t : t;
}

Interval WilsonInterval(int64_t successes, int64_t n, double confidence) {
  const double z = NormalCritical(confidence);
  const double nn = static_cast<double>(n), x = static_cast<double>(successes);
  const double z2 = z * z;
  const double center = (x + 0.5 * z2) / (nn + z2);
  const double half = z / (nn + z2) * std::sqrt(x * (nn - x) / nn + 0.25 * z2);
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

Interval MeanInterval(double mean, double sd, int64_t n, double confidence) {
  const double t = StudentTQuantile(0.5 + 0.5 * confidence, static_cast<double>(n - 1));
  const double half = t * sd / std::sqrt(static_cast<double>(n));
  return {mean - half, mean + half};
}

TestResult TwoProportionTest(int64_t x_t, int64_t n_t, int64_t x_c, int64_t n_c,
                             double confidence) {
  const double nt = static_cast<double>(n_t), nc = static_cast<double>(n_c);
  const double pt = static_cast<double>(x_t) / nt, pc = static_cast<double>(x_c) / nc;
  TestResult r;
  r.difference = pt - pc;
  r.standard_error = std::sqrt(pt * (1.0 - pt) / nt + pc * (1.0 - pc) / nc);
  const double z = NormalCritical(confidence);
  r.ci = {r.difference - z * r.standard_error, r.difference + z * r.standard_error};
  const double pooled = static_cast<double>(x_t + x_c) / (nt + nc);
  const double pooled_se = std::sqrt(pooled * (1.0 - pooled) * (1.0 / nt + 1.0 / nc));
  r.df = kInf;
  if (pooled_se > 0.0) {
    r.statistic = r.difference / pooled_se;
    r.p_value = std::min(1.0, 2.0 * NormalUpperTail(std::fabs(r.statistic)));
  } else {  // all outcomes equal in both arms: no difference, nothing to test
    r.statistic = 0.0;
    r.p_value = 1.0;
  }
  return r;
}

TestResult WelchTest(double mean_t, double var_t, int64_t n_t, double mean_c, double var_c,
                     int64_t n_c, double confidence) {
  const double nt = static_cast<double>(n_t), nc = static_cast<double>(n_c);
  const double vt = var_t / nt, vc = var_c / nc;  // squared standard errors of the means
  TestResult r;
  r.difference = mean_t - mean_c;
  r.standard_error = std::sqrt(vt + vc);
  if (!(r.standard_error > 0.0)) {
    r.df = kNaN;
    r.ci = {r.difference, r.difference};
    r.statistic = r.difference == 0.0 ? 0.0 : std::copysign(kInf, r.difference);
    r.p_value = r.difference == 0.0 ? 1.0 : 0.0;
    return r;
  }
  r.df = (vt + vc) * (vt + vc) / (vt * vt / (nt - 1.0) + vc * vc / (nc - 1.0));
  r.statistic = r.difference / r.standard_error;
  r.p_value = StudentTTwoSidedP(r.statistic, r.df);
  const double t = StudentTQuantile(0.5 + 0.5 * confidence, r.df);
  r.ci = {r.difference - t * r.standard_error, r.difference + t * r.standard_error};
  return r;
}

RelativeLift RelativeLiftDelta(double mean_t, double se_t, double mean_c, double se_c,
                               double confidence) {
  if (!(mean_t > 0.0) || !(mean_c > 0.0)) return {kNaN, {kNaN, kNaN}};
  const double log_ratio = std::log(mean_t / mean_c);
  const double se = std::sqrt(se_t * se_t / (mean_t * mean_t) + se_c * se_c / (mean_c * mean_c));
  const double z = NormalCritical(confidence);
  return {mean_t / mean_c - 1.0,
          {std::exp(log_ratio - z * se) - 1.0, std::exp(log_ratio + z * se) - 1.0}};
}

std::vector<double> HolmAdjust(absl::Span<const double> p_values) {
  std::vector<double> adjusted(p_values.begin(), p_values.end());
  std::vector<size_t> order;
  for (size_t i = 0; i < p_values.size(); ++i) {
    if (!std::isnan(p_values[i])) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return p_values[a] < p_values[b]; });
  const double m = static_cast<double>(order.size());
  double running = 0.0;
  for (size_t j = 0; j < order.size(); ++j) {
    const double scaled = std::min(1.0, (m - static_cast<double>(j)) * p_values[order[j]]);
    running = std::max(running, scaled);
    adjusted[order[j]] = running;
  }
  return adjusted;
}

}  // namespace coupond::analysis
