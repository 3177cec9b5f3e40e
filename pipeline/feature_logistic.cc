#include "pipeline/feature_logistic.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "learn/metrics.h"

namespace coupond::pipeline {
namespace {

// Names distinct from baselines.cc's helpers: the unity build puts both in one unit.
double FlSigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}

// log(1 + exp(z)), without overflow.
double FlSoftplus(double z) {
  return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
}

double FlDot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t k = 0; k < a.size(); ++k) s += a[k] * b[k];
  return s;
}

// The regression's linear map X: parameters theta = [w0, a (user features), b (coupon
// features)] -> per-example logits, and its transpose, both through per-user and per-coupon
// sums, so each costs O(examples + attribute entries).
class FlDesign {
 public:
  FlDesign(const learn::TrainingData& data, absl::Span<const uint32_t> examples)
      : data_(data),
        examples_(examples),
        fu_(data.user_features.num_features()),
        fc_(data.coupon_features.num_features()) {}

  size_t parameters() const { return 1 + fu_ + fc_; }

  // out[k] = (X theta)[k] for examples_[k].
  void Apply(const std::vector<double>& theta, std::vector<double>* out) const {
    user_sum_.assign(data_.user_ids.size(), 0.0);
    coupon_sum_.assign(data_.coupon_ids.size(), 0.0);
    for (size_t u = 0; u < user_sum_.size(); ++u) {
      for (uint32_t f : data_.user_features.row(u)) user_sum_[u] += theta[1 + f];
    }
    for (size_t c = 0; c < coupon_sum_.size(); ++c) {
      for (uint32_t g : data_.coupon_features.row(c)) coupon_sum_[c] += theta[1 + fu_ + g];
    }
    out->resize(examples_.size());
    for (size_t k = 0; k < examples_.size(); ++k) {
      const learn::Example& e = data_.examples[examples_[k]];
      (*out)[k] = theta[0] + user_sum_[e.user] + coupon_sum_[e.coupon];
    }
  }

  // out = X^T r / n.
  void ApplyTransposeMean(const std::vector<double>& r, std::vector<double>* out) const {
    user_sum_.assign(data_.user_ids.size(), 0.0);
    coupon_sum_.assign(data_.coupon_ids.size(), 0.0);
    double total = 0.0;
    for (size_t k = 0; k < examples_.size(); ++k) {
      const learn::Example& e = data_.examples[examples_[k]];
      user_sum_[e.user] += r[k];
      coupon_sum_[e.coupon] += r[k];
      total += r[k];
    }
    out->assign(parameters(), 0.0);
    const double inv_n = 1.0 / static_cast<double>(examples_.size());
    (*out)[0] = total * inv_n;
    for (size_t u = 0; u < user_sum_.size(); ++u) {
      for (uint32_t f : data_.user_features.row(u)) (*out)[1 + f] += user_sum_[u] * inv_n;
    }
    for (size_t c = 0; c < coupon_sum_.size(); ++c) {
      for (uint32_t g : data_.coupon_features.row(c)) {
        (*out)[1 + fu_ + g] += coupon_sum_[c] * inv_n;
      }
    }
  }

  size_t user_features() const { return fu_; }

 private:
  const learn::TrainingData& data_;
  absl::Span<const uint32_t> examples_;
  size_t fu_, fc_;
  mutable std::vector<double> user_sum_, coupon_sum_;
};

// The penalty applies to every parameter but the intercept.
double FlPenalty(const std::vector<double>& theta, double l2) {
  double s = 0.0;
  for (size_t k = 1; k < theta.size(); ++k) s += theta[k] * theta[k];
  return 0.5 * l2 * s;
}

double FlObjective(const std::vector<double>& z, absl::Span<const float> labels,
                   const std::vector<double>& theta, double l2) {
  double loss = 0.0;
  for (size_t k = 0; k < z.size(); ++k) loss += FlSoftplus(z[k]) - labels[k] * z[k];
  return loss / static_cast<double>(z.size()) + FlPenalty(theta, l2);
}

}  // namespace

std::vector<float> FeatureLogisticModel::Predict(const learn::TrainingData& data,
                                                 absl::Span<const uint32_t> examples) const {
  std::vector<float> p;
  p.reserve(examples.size());
  for (uint32_t i : examples) {
    const learn::Example& e = data.examples[i];
    double z = intercept;
    for (uint32_t f : data.user_features.row(e.user)) z += user_weights[f];
    for (uint32_t g : data.coupon_features.row(e.coupon)) z += coupon_weights[g];
    p.push_back(static_cast<float>(FlSigmoid(z)));
  }
  return p;
}

absl::StatusOr<FeatureLogisticModel> FitFeatureLogistic(const learn::TrainingData& data,
                                                        absl::Span<const uint32_t> train,
                                                        double l2,
                                                        const FeatureLogisticOptions& options) {
  if (!(std::isfinite(l2) && l2 > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("l2: ", l2, " must be finite and > 0"));
  }
  if (options.max_newton_iterations < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_newton_iterations: ", options.max_newton_iterations, " must be >= 1"));
  }
  if (options.max_cg_iterations < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_cg_iterations: ", options.max_cg_iterations, " must be >= 1"));
  }
  if (!(options.gradient_tolerance > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gradient_tolerance: ", options.gradient_tolerance, " must be > 0"));
  }
  if (train.empty()) return absl::InvalidArgumentError("train: empty");
  if (data.user_features.rows() != data.user_ids.size() ||
      data.coupon_features.rows() != data.coupon_ids.size()) {
    return absl::InvalidArgumentError(
        "user_features/coupon_features: need one row per user and per coupon");
  }
  std::vector<float> labels;
  labels.reserve(train.size());
  int64_t positives = 0;
  for (size_t k = 0; k < train.size(); ++k) {
    if (train[k] >= data.examples.size()) {
      return absl::InvalidArgumentError(absl::StrCat("train[", k, "]: ", train[k],
                                                     " out of range (", data.examples.size(),
                                                     " examples)"));
    }
    const learn::Example& e = data.examples[train[k]];
    if (e.user >= data.user_ids.size() || e.coupon >= data.coupon_ids.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("examples[", train[k], "]: user or coupon index out of range"));
    }
    labels.push_back(e.label == 1.0f ? 1.0f : 0.0f);
    positives += e.label == 1.0f ? 1 : 0;
  }
  const int64_t n = static_cast<int64_t>(train.size());
  if (positives == 0 || positives == n) {
    return absl::InvalidArgumentError(absl::StrCat("train: a single class (", positives,
                                                   " positives of ", n, ")"));
  }

  const FlDesign x(data, train);
  const size_t dims = x.parameters();
  // theta = [w0 at the logit of the training rate, every feature weight 0].
  const double rate = static_cast<double>(positives) / static_cast<double>(n);
  std::vector<double> theta = {std::log(rate / (1.0 - rate))};
  theta.resize(dims, 0.0);

  FeatureLogisticModel m;
  m.l2 = l2;
  std::vector<double> z, r(train.size()), d(train.size()), grad, hv, xs;
  x.Apply(theta, &z);
  double objective = FlObjective(z, labels, theta, l2);
  for (int it = 0; it < options.max_newton_iterations; ++it) {
    for (size_t k = 0; k < z.size(); ++k) {
      const double p = FlSigmoid(z[k]);
      r[k] = p - labels[k];
      d[k] = p * (1.0 - p);
    }
    x.ApplyTransposeMean(r, &grad);
    for (size_t k = 1; k < dims; ++k) grad[k] += l2 * theta[k];
    double gmax = 0.0;
    for (double g : grad) gmax = std::max(gmax, std::abs(g));
    if (gmax < options.gradient_tolerance) break;

    // Conjugate gradients on H s = -grad, H = X^T D X / n + l2 (features only); truncated
    // once the residual is small relative to the gradient (Newton-CG).
    auto apply_h = [&](const std::vector<double>& v, std::vector<double>* out) {
      x.Apply(v, &xs);
      for (size_t k = 0; k < xs.size(); ++k) xs[k] *= d[k];
      x.ApplyTransposeMean(xs, out);
      for (size_t k = 1; k < dims; ++k) (*out)[k] += l2 * v[k];
    };
    // Preconditioned by H's diagonal (Jacobi): attribute frequencies differ by orders of
    // magnitude (a demographic value against a rare coupon's "like="), which without it
    // makes small-L2 fits take hundreds of CG steps. diag = X^T d / n over 0/1 columns
    // (a feature repeated within a row is under-counted: only the preconditioner suffers).
    std::vector<double> diag;
    x.ApplyTransposeMean(d, &diag);
    for (size_t k = 1; k < dims; ++k) diag[k] += l2;
    for (double& v : diag) v = v > 0 ? 1.0 / v : 1.0;
    std::vector<double> step(dims, 0.0), res(dims), pres(dims), dir(dims);
    for (size_t k = 0; k < dims; ++k) {
      res[k] = -grad[k];
      pres[k] = diag[k] * res[k];
    }
    dir = pres;
    double rz = FlDot(res, pres);
    const double gnorm = std::sqrt(FlDot(res, res));
    const double stop = std::min(0.1, std::sqrt(gnorm)) * gnorm;
    for (int cg = 0; cg < options.max_cg_iterations; ++cg) {
      apply_h(dir, &hv);
      const double dhd = FlDot(dir, hv);
      if (!(dhd > 0)) break;
      const double alpha = rz / dhd;
      for (size_t k = 0; k < dims; ++k) {
        step[k] += alpha * dir[k];
        res[k] -= alpha * hv[k];
      }
      if (std::sqrt(FlDot(res, res)) <= stop) break;
      for (size_t k = 0; k < dims; ++k) pres[k] = diag[k] * res[k];
      const double rz_next = FlDot(res, pres);
      const double beta = rz_next / rz;
      rz = rz_next;
      for (size_t k = 0; k < dims; ++k) dir[k] = pres[k] + beta * dir[k];
    }
    if (FlDot(step, step) == 0.0) step = res;  // CG made no progress: steepest descent

    // Backtracking (Armijo) line search on the objective.
    const double slope = FlDot(grad, step);
    double t = 1.0;
    bool moved = false;
    std::vector<double> trial(dims), trial_z;
    for (int ls = 0; ls < 40; ++ls, t *= 0.5) {
      for (size_t k = 0; k < dims; ++k) trial[k] = theta[k] + t * step[k];
      x.Apply(trial, &trial_z);
      const double f = FlObjective(trial_z, labels, trial, l2);
      if (f <= objective + 1e-4 * t * slope) {
        theta.swap(trial);
        z.swap(trial_z);
        const double before = objective;
        objective = f;
        moved = before - f > 0;
        break;
      }
    }
    m.newton_iterations = it + 1;
    if (!moved) break;  // no decrease possible at double precision: converged
  }

  m.intercept = theta[0];
  const size_t fu = x.user_features();
  m.user_weights.assign(theta.begin() + 1, theta.begin() + 1 + static_cast<std::ptrdiff_t>(fu));
  m.coupon_weights.assign(theta.begin() + 1 + static_cast<std::ptrdiff_t>(fu), theta.end());
  std::vector<char> active(dims, 0);
  for (uint32_t i : train) {
    const learn::Example& e = data.examples[i];
    for (uint32_t f : data.user_features.row(e.user)) active[1 + f] = 1;
    for (uint32_t g : data.coupon_features.row(e.coupon)) active[1 + fu + g] = 1;
  }
  for (size_t k = 1; k < dims; ++k) m.active_features += active[k];
  return m;
}

absl::StatusOr<FeatureLogisticSelection> SelectFeatureLogisticL2(
    const learn::TrainingData& data, absl::Span<const uint32_t> fit,
    absl::Span<const uint32_t> validation, const FeatureLogisticOptions& options) {
  if (options.l2_grid.empty()) return absl::InvalidArgumentError("l2_grid: empty");
  if (validation.empty()) return absl::InvalidArgumentError("validation: empty");
  std::vector<float> labels;
  labels.reserve(validation.size());
  for (size_t k = 0; k < validation.size(); ++k) {
    if (validation[k] >= data.examples.size()) {
      return absl::InvalidArgumentError(absl::StrCat("validation[", k, "]: ", validation[k],
                                                     " out of range"));
    }
    labels.push_back(data.examples[validation[k]].label);
  }
  FeatureLogisticSelection s;
  for (size_t k = 0; k < options.l2_grid.size(); ++k) {
    absl::StatusOr<FeatureLogisticModel> m =
        FitFeatureLogistic(data, fit, options.l2_grid[k], options);
    if (!m.ok()) {
      return absl::Status(m.status().code(),
                          absl::StrCat("l2_grid[", k, "]: ", m.status().message()));
    }
    const std::vector<float> p = m->Predict(data, validation);
    FeatureLogisticGridPoint g;
    g.l2 = options.l2_grid[k];
    g.newton_iterations = m->newton_iterations;
    absl::StatusOr<double> auc = learn::RocAuc(p, labels);
    if (!auc.ok()) {
      return absl::Status(auc.status().code(),
                          absl::StrCat("validation: ", auc.status().message()));
    }
    g.validation_auc = *auc;
    absl::StatusOr<double> loss = learn::LogLoss(p, labels);
    if (!loss.ok()) return loss.status();
    g.validation_log_loss = *loss;
    s.grid.push_back(g);
    if (g.validation_log_loss < s.grid[s.chosen].validation_log_loss) s.chosen = k;
  }
  return s;
}

absl::StatusOr<core::ModelData> FeatureLogisticAsModel(const FeatureLogisticModel& model,
                                                       const learn::TrainingData& data) {
  if (model.user_weights.size() != data.user_features.num_features() ||
      model.coupon_weights.size() != data.coupon_features.num_features() ||
      data.user_features.rows() != data.user_ids.size() ||
      data.coupon_features.rows() != data.coupon_ids.size()) {
    return absl::InvalidArgumentError(
        "model: its feature weights do not match the data's feature tables");
  }
  core::ModelData m;
  m.dimension = 1;
  m.global_bias = model.intercept;
  m.user_ids = data.user_ids;
  m.coupon_ids = data.coupon_ids;
  m.user_bias.reserve(data.user_ids.size());
  for (size_t u = 0; u < data.user_ids.size(); ++u) {
    double b = 0.0;
    for (uint32_t f : data.user_features.row(u)) b += model.user_weights[f];
    m.user_bias.push_back(static_cast<float>(b));
  }
  m.coupon_bias.reserve(data.coupon_ids.size());
  for (size_t c = 0; c < data.coupon_ids.size(); ++c) {
    double b = 0.0;
    for (uint32_t g : data.coupon_features.row(c)) b += model.coupon_weights[g];
    m.coupon_bias.push_back(static_cast<float>(b));
  }
  m.user_factors.assign(data.user_ids.size(), 0.0f);
  m.coupon_factors.assign(data.coupon_ids.size(), 0.0f);
  m.coupon_attributes = data.coupon_attributes;
  if (m.coupon_attributes.size() != m.coupon_ids.size()) {
    m.coupon_attributes.resize(m.coupon_ids.size());
  }
  if (!(std::abs(m.global_bias) <= core::kMaxModelMagnitude)) {
    return absl::InvalidArgumentError(
        absl::StrCat("intercept: ", m.global_bias, " out of range"));
  }
  return m;
}

}  // namespace coupond::pipeline
