#include "pipeline/baselines.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace coupond::pipeline {
namespace {

double Logit(double p) { return std::log(p / (1.0 - p)); }
double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// Rates are strictly inside (0, 1) whenever the global rate is (guaranteed by the
// one-class check), but keep the logit finite for extreme counts anyway.
double SafeLogit(double p) {
  constexpr double kEps = 1e-9;
  return Logit(std::min(1.0 - kEps, std::max(kEps, p)));
}

// Solves the 3x3 system a x = b by Gaussian elimination with partial pivoting. False when
// singular.
bool Solve3(std::array<std::array<double, 3>, 3> a, std::array<double, 3> b,
            std::array<double, 3>* x) {
  for (int col = 0; col < 3; ++col) {
    int pivot = col;
    for (int r = col + 1; r < 3; ++r) {
      if (std::abs(a[r][col]) > std::abs(a[pivot][col])) pivot = r;
    }
    if (std::abs(a[pivot][col]) < 1e-300) return false;
    std::swap(a[col], a[pivot]);
    std::swap(b[col], b[pivot]);
    for (int r = col + 1; r < 3; ++r) {
      const double f = a[r][col] / a[col][col];
      for (int k = col; k < 3; ++k) a[r][k] -= f * a[col][k];
      b[r] -= f * b[col];
    }
  }
  for (int r = 2; r >= 0; --r) {
    double s = b[r];
    for (int k = r + 1; k < 3; ++k) s -= a[r][k] * (*x)[k];
    (*x)[r] = s / a[r][r];
  }
  return true;
}

}  // namespace

const char* BaselineName(BaselineKind kind) {
  switch (kind) {
    case BaselineKind::kCouponPopularity:
      return "coupon popularity";
    case BaselineKind::kUserPropensity:
      return "user propensity";
    case BaselineKind::kLogistic:
      return "logistic (coupon + user rates)";
  }
  return "?";
}

std::vector<float> Baselines::Predict(BaselineKind kind, const learn::TrainingData& data,
                                      absl::Span<const uint32_t> examples) const {
  std::vector<float> p;
  p.reserve(examples.size());
  for (uint32_t i : examples) {
    const learn::Example& e = data.examples[i];
    const double cr = e.coupon < coupon_rate.size() ? coupon_rate[e.coupon] : global_rate;
    const double ur = e.user < user_rate.size() ? user_rate[e.user] : global_rate;
    double v = 0.0;
    switch (kind) {
      case BaselineKind::kCouponPopularity:
        v = cr;
        break;
      case BaselineKind::kUserPropensity:
        v = ur;
        break;
      case BaselineKind::kLogistic:
        v = Sigmoid(weights[0] + weights[1] * SafeLogit(cr) + weights[2] * SafeLogit(ur));
        break;
    }
    p.push_back(static_cast<float>(v));
  }
  return p;
}

absl::StatusOr<Baselines> FitBaselines(const learn::TrainingData& data,
                                       absl::Span<const uint32_t> train_examples,
                                       const BaselineOptions& options) {
  if (!(options.prior_strength >= 0) || !std::isfinite(options.prior_strength)) {
    return absl::InvalidArgumentError(
        absl::StrCat("prior_strength: ", options.prior_strength, " must be finite and >= 0"));
  }
  if (options.max_newton_iterations < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_newton_iterations: ", options.max_newton_iterations, " must be >= 1"));
  }
  if (!(options.l2 >= 0) || !std::isfinite(options.l2)) {
    return absl::InvalidArgumentError(absl::StrCat("l2: ", options.l2, " must be finite and >= 0"));
  }
  if (train_examples.empty()) {
    return absl::InvalidArgumentError("train_examples: empty");
  }
  const size_t users = data.user_ids.size();
  const size_t coupons = data.coupon_ids.size();
  std::vector<int64_t> user_n(users, 0), user_pos(users, 0);
  std::vector<int64_t> coupon_n(coupons, 0), coupon_pos(coupons, 0);
  int64_t positives = 0;
  for (size_t k = 0; k < train_examples.size(); ++k) {
    const uint32_t i = train_examples[k];
    if (i >= data.examples.size()) {
      return absl::InvalidArgumentError(absl::StrCat("train_examples[", k, "]: ", i,
                                                     " out of range (", data.examples.size(),
                                                     " examples)"));
    }
    const learn::Example& e = data.examples[i];
    if (e.user >= users || e.coupon >= coupons) {
      return absl::InvalidArgumentError(
          absl::StrCat("examples[", i, "]: user or coupon index out of range"));
    }
    const int64_t y = e.label == 1.0f ? 1 : 0;
    positives += y;
    ++user_n[e.user];
    user_pos[e.user] += y;
    ++coupon_n[e.coupon];
    coupon_pos[e.coupon] += y;
  }
  const int64_t n = static_cast<int64_t>(train_examples.size());
  if (positives == 0 || positives == n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "train_examples: a single class (", positives, " positives of ", n,
        "): the baselines need both"));
  }
  Baselines b;
  b.global_rate = static_cast<double>(positives) / static_cast<double>(n);
  const double s = options.prior_strength;
  auto rate = [&](int64_t pos, int64_t cnt) {
    if (cnt == 0) return b.global_rate;
    return (static_cast<double>(pos) + s * b.global_rate) / (static_cast<double>(cnt) + s);
  };
  b.user_rate.reserve(users);
  for (size_t u = 0; u < users; ++u) b.user_rate.push_back(rate(user_pos[u], user_n[u]));
  b.coupon_rate.reserve(coupons);
  for (size_t c = 0; c < coupons; ++c) b.coupon_rate.push_back(rate(coupon_pos[c], coupon_n[c]));

  // Newton's method on the mean log loss + l2/2 (w1^2 + w2^2). The features are per
  // (user, coupon) pair, so the sums run over distinct feature rows weighted by counts.
  std::array<double, 3> w = {Logit(b.global_rate), 0.0, 0.0};
  const double l2 = options.l2;
  for (int it = 0; it < options.max_newton_iterations; ++it) {
    std::array<double, 3> grad = {0.0, 0.0, 0.0};
    std::array<std::array<double, 3>, 3> hess = {};
    for (uint32_t i : train_examples) {
      const learn::Example& e = data.examples[i];
      const std::array<double, 3> x = {1.0, SafeLogit(b.coupon_rate[e.coupon]),
                                       SafeLogit(b.user_rate[e.user])};
      const double p = Sigmoid(w[0] + w[1] * x[1] + w[2] * x[2]);
      const double r = p - (e.label == 1.0f ? 1.0 : 0.0);
      const double h = p * (1.0 - p);
      for (int a = 0; a < 3; ++a) {
        grad[a] += r * x[a];
        for (int c = 0; c < 3; ++c) hess[a][c] += h * x[a] * x[c];
      }
    }
    const double inv_n = 1.0 / static_cast<double>(n);
    for (int a = 0; a < 3; ++a) {
      grad[a] *= inv_n;
      for (int c = 0; c < 3; ++c) hess[a][c] *= inv_n;
    }
    for (int a = 1; a < 3; ++a) {
      grad[a] += l2 * w[a];
      hess[a][a] += l2;
    }
    std::array<double, 3> step = {0.0, 0.0, 0.0};
    if (!Solve3(hess, grad, &step)) break;
    double norm = 0.0;
    for (int a = 0; a < 3; ++a) {
      w[a] -= step[a];
      norm += step[a] * step[a];
    }
    b.newton_iterations = it + 1;
    if (norm < 1e-20) break;
  }
  b.weights = w;
  return b;
}

}  // namespace coupond::pipeline
