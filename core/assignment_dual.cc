#include "core/assignment_dual.h"

// How the price search works (see assignment.h for the problem, assignment.cc for the solver
// as a whole).
//
// Dual. Relaxing the budget (price lambda) and the stocks (prices mu_j) gives
//   L(theta) = lambda B + sum_j mu_j s_j + sum_i max_{S <= eligible, |S| <= k} sum_{j in S} r_ij,
//   r_ij = p_ij (w_j - lambda c_j) - mu_j,
// an upper bound on the LP relaxation for every theta = (lambda, mu) >= 0. Each user's inner
// problem is an LP over an integral polytope ({0 <= x <= 1, sum x <= k}), so min L equals the LP
// optimum. L is convex but piecewise linear; subgradient methods converge slowly and need step
// rules, and coordinate descent can stall at kinks. We instead minimise a smoothed dual
//   D_tau(theta) = lambda B + sum mu s + sum_i h_i(r_i),
//   h_i = max_{x in P_k} r.x + tau * entropy(x)            (>= the per-user max, within O(tau))
// which is convex and twice differentiable, and whose gradient (the constraints' slack under
// the smoothed choice) and Hessian (dimension 1 + stocked coupons) one pass over the users
// yields exactly. k = 1 uses the softmax with a "nothing" option (closed form); k > 1 uses the
// Fermi-Dirac entropy with a per-user multiplier for sum x <= k (solved by safeguarded Newton).
// A projected Newton method with Levenberg-Marquardt damping and an Armijo test minimises
// D_tau over theta >= 0 (globally convergent, quadratically near the minimum: a handful of
// passes per stage), and tau is decreased geometrically (continuation), warm-starting each
// stage. Every pass also evaluates the exact L at its theta: the reported bound is the least of
// these, valid whatever the search did.
//
// Cost of a pass. Per user, the reduced scores are computed once from per-pass coefficients
// (a_j = w_j - lambda c_j, b_j = mu_j: r = p a - b, the same expression ChooseCoupons uses);
// only the entries that can carry smoothed mass (r > -2 kCutoff tau) are materialised, and
// exp is taken only of those. The exact top-k of a k = 1 user is a running maximum.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include "absl/status/statusor.h"
#include "common/status_macros.h"

namespace coupond::core::assignment_internal {
namespace {

// exp(-40) ~ 4e-18: smoothed terms further than this many tau below the top are dropped.
constexpr double kCutoff = 40.0;

// Smoothed per-user maximum; sets e.x (the smoothed choice) and e.a, and returns h together
// with the rank-one correction of the Hessian in r-space: H_r = diag(a) - u u^T / beta with
// u_l = b_l (b = a for Fermi-Dirac, b = x / tau for softmax). beta = 0 means no correction.
struct Smoothed {
  double h = 0;
  double beta = 0;
  bool softmax = false;
};

Smoothed SmoothUser(const Campaign& cp, double tau, std::vector<Entry>& e) {
  Smoothed out;
  double maxr = 0;  // the "nothing" option scores 0
  for (const Entry& x : e) maxr = std::max(maxr, x.r);
  if (cp.k == 1) {
    // h = tau log(1 + sum exp(r/tau)), x = softmax; H_r = (diag(x) - x x^T) / tau.
    out.softmax = true;
    double z = std::exp(-maxr / tau);
    for (Entry& x : e) {
      const double t = (x.r - maxr) / tau;
      x.x = t < -kCutoff ? 0.0 : std::exp(t);
      z += x.x;
    }
    for (Entry& x : e) {
      x.x /= z;
      x.a = x.x / tau;
    }
    out.h = maxr + tau * std::log(z);
    out.beta = 1.0 / tau;
    return out;
  }
  // Fermi-Dirac: x_l = sigmoid((r_l - nu)/tau), nu >= 0 with sum x <= k (equality if nu > 0);
  // h = nu k + tau sum softplus((r_l - nu)/tau).
  auto sigmoid = [](double t) {
    return t >= 0 ? 1.0 / (1.0 + std::exp(-t)) : std::exp(t) / (1.0 + std::exp(t));
  };
  auto total = [&](double nu, double* slope) {
    double sum = 0, da = 0;
    for (const Entry& x : e) {
      const double t = (x.r - nu) / tau;
      if (t < -kCutoff) continue;
      const double s = sigmoid(t);
      sum += s;
      da += s * (1 - s) / tau;
    }
    *slope = da;
    return sum;
  };
  const double kk = static_cast<double>(cp.k);
  double nu = 0, slope = 0;
  double f = total(0.0, &slope) - kk;
  if (f > 0) {
    double lo = 0;
    double hi = maxr + tau * (std::log(static_cast<double>(e.size()) / kk) + 1.0);
    nu = 0;
    for (int it = 0; it < 200; ++it) {
      double next = slope > 0 ? nu + f / slope : 0.5 * (lo + hi);
      if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
      nu = next;
      f = total(nu, &slope) - kk;
      if (f > 0)
        lo = nu;
      else
        hi = nu;
      if (std::abs(f) <= 1e-12 * kk || hi - lo <= 1e-15 * (std::abs(hi) + tau)) break;
    }
  }
  double h = nu * kk, beta = 0;
  for (Entry& x : e) {
    const double t = (x.r - nu) / tau;
    if (t < -kCutoff) {
      x.x = x.a = 0;
      continue;
    }
    x.x = sigmoid(t);
    x.a = x.x * (1 - x.x) / tau;
    h += tau * (std::max(t, 0.0) + std::log1p(std::exp(-std::abs(t))));
    beta += x.a;
  }
  out.h = h;
  out.beta = nu > 0 ? beta : 0.0;
  return out;
}

// One pass: exact dual at theta and, if tau > 0, the smoothed dual with gradient and Hessian;
// if tau == 0, the statistics of the prices-0 pass (best_value, sum_q, num_q) as well.
absl::StatusOr<Evaluation> Evaluate(const Campaign& cp, const std::vector<double>& theta,
                                    double tau) {
  const bool smooth = tau > 0;
  const PassPrices pr(cp, theta);
  // Entries at or below -2 kCutoff tau get no smoothed mass (SmoothUser drops t < -kCutoff,
  // and t <= r / tau): they are not materialised. Without smoothing only positives matter.
  const double floor = smooth ? -2.0 * kCutoff * tau : 0.0;
  std::vector<Sums> chunk_sums(cp.num_chunks);
  for (Sums& s : chunk_sums) s.Init(cp, smooth);
  COUPOND_RETURN_IF_ERROR(RunPass(cp, [&](size_t chunk, size_t, const double* p, Scratch& s) {
    Sums& acc = chunk_sums[chunk];
    ScoreUser(cp, p, pr, floor, s);
    for (uint32_t t : s.top) {
      const Entry& x = s.e[t];
      acc.exact += x.r;
      acc.exact_spend += x.q;
      acc.exact_value += x.value;
      if (x.var >= 0) acc.exact_count[static_cast<size_t>(x.var)] += 1;
    }
    if (!smooth) {
      double best = 0;
      for (size_t j = 0; j < cp.m; ++j) {
        if (!cp.available[j] || p[j] == kNotEligible) continue;
        best = std::max(best, p[j] * cp.w[j]);
        const double q = p[j] * cp.c[j];
        if (q > 0) {
          acc.sum_q += q;
          acc.num_q += 1;
        }
      }
      acc.best_value += best;
      return;
    }
    if (s.e.empty()) return;
    const Smoothed sm = SmoothUser(cp, tau, s.e);
    acc.smooth += sm.h;
    // theta-space: r_l depends on theta through e_l = -(q_l at 0, 1 at var_l).
    double u0 = 0;  // u = sum b_l e_l, component 0 (negated below)
    for (const Entry& x : s.e) {
      if (x.x == 0 && x.a == 0) continue;
      acc.spend += x.x * x.q;
      const double b = sm.softmax ? x.x / tau : x.a;
      u0 += b * x.q;
      if (x.var >= 0) acc.demand[static_cast<size_t>(x.var)] += x.x;
      if (x.a == 0) continue;
      const size_t v = x.var >= 0 ? static_cast<size_t>(x.var) : 0;
      if (cp.dense) {
        acc.hess[0] += x.a * x.q * x.q;
        if (x.var >= 0) {
          acc.hess[v] += x.a * x.q;
          acc.hess[v * cp.d] += x.a * x.q;
          acc.hess[v * cp.d + v] += x.a;
        }
      } else {
        acc.hess[0] += x.a * x.q * x.q;
        if (x.var >= 0) acc.hess[v] += x.a;
      }
    }
    if (sm.beta <= 0) return;
    const double inv_beta = 1.0 / sm.beta;
    // Subtract u u^T / beta over the support: u_0 = -sum b q, u_v = -b_l for var_l = v.
    if (cp.dense) {
      acc.hess[0] -= u0 * u0 * inv_beta;
      // The priced entries of the support, compacted first: the outer product then costs
      // (priced support)^2, not entries x priced support.
      s.uv.clear();
      s.ub.clear();
      for (const Entry& x : s.e) {
        if (x.var < 0 || x.x == 0) continue;
        s.uv.push_back(static_cast<size_t>(x.var));
        s.ub.push_back(sm.softmax ? x.x / tau : x.a);
      }
      for (size_t i = 0; i < s.uv.size(); ++i) {
        const size_t v = s.uv[i];
        const double bv = s.ub[i];
        acc.hess[v] -= u0 * bv * inv_beta;
        acc.hess[v * cp.d] -= u0 * bv * inv_beta;
        double* row = acc.hess.data() + v * cp.d;
        for (size_t l = 0; l < s.uv.size(); ++l) row[s.uv[l]] -= bv * s.ub[l] * inv_beta;
      }
    } else {
      acc.hess[0] -= u0 * u0 * inv_beta;
      for (const Entry& x : s.e) {
        if (x.var < 0 || x.x == 0) continue;
        const double bv = sm.softmax ? x.x / tau : x.a;
        acc.hess[static_cast<size_t>(x.var)] -= bv * bv * inv_beta;
      }
    }
  }));
  Evaluation ev;
  ev.theta = theta;
  ev.sums.Init(cp, smooth);
  for (const Sums& s : chunk_sums) ev.sums.Add(s);
  double fixed = theta[0] * cp.budget;
  for (size_t v = 1; v < cp.d; ++v) fixed += theta[v] * cp.stock[v];
  ev.exact_dual = fixed + ev.sums.exact;
  if (smooth) {
    ev.smooth_dual = fixed + ev.sums.smooth;
    ev.grad.assign(cp.d, 0.0);
    ev.grad[0] = cp.budget - ev.sums.spend;
    for (size_t v = 1; v < cp.d; ++v) ev.grad[v] = cp.stock[v] - ev.sums.demand[v];
    ev.hess = ev.sums.hess;
  }
  return ev;
}

bool ExactFeasible(const Campaign& cp, const Evaluation& ev) {
  bool feasible = ev.sums.exact_spend <= cp.budget;
  for (size_t v = 1; v < cp.d; ++v) feasible = feasible && ev.sums.exact_count[v] <= cp.stock[v];
  return feasible;
}

// In-place Cholesky solve of A x = b (A n x n, row-major, symmetric). False if A is not
// numerically positive definite.
bool CholeskySolve(std::vector<double>& a, std::vector<double>& b, size_t n) {
  for (size_t j = 0; j < n; ++j) {
    double diag = a[j * n + j];
    for (size_t l = 0; l < j; ++l) diag -= a[j * n + l] * a[j * n + l];
    if (!(diag > 0) || !std::isfinite(diag)) return false;
    const double ljj = std::sqrt(diag);
    a[j * n + j] = ljj;
    for (size_t i = j + 1; i < n; ++i) {
      double s = a[i * n + j];
      for (size_t l = 0; l < j; ++l) s -= a[i * n + l] * a[j * n + l];
      a[i * n + j] = s / ljj;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    double s = b[i];
    for (size_t l = 0; l < i; ++l) s -= a[i * n + l] * b[l];
    b[i] = s / a[i * n + i];
  }
  for (size_t i = n; i-- > 0;) {
    double s = b[i];
    for (size_t l = i + 1; l < n; ++l) s -= a[l * n + i] * b[l];
    b[i] = s / a[i * n + i];
  }
  return true;
}

}  // namespace

absl::Status Search(const Campaign& cp, const std::vector<double>& theta0, const SearchControl& ctl,
                    SearchState* st) {
  double tau = ctl.tau;
  double rho = 1e-6;
  st->converged = false;
  st->tau = tau;
  // The smoothed dual and its derivatives exist only for tau > 0 (Evaluate computes no
  // gradient at tau 0). Values near the smallest doubles (weights like 1e-320) make the
  // schedule's tau underflow to 0: the search then ends at the prices it has, as when out of
  // passes, and the repair keeps the assignment feasible.
  if (st->passes >= ctl.max_passes || !(tau > 0)) {
    st->ev = Evaluation();
    st->ev.theta = theta0;
    return absl::OkStatus();
  }
  COUPOND_ASSIGN_OR_RETURN(st->ev, Evaluate(cp, theta0, tau));
  ++st->passes;
  st->bound = std::min(st->bound, st->ev.exact_dual);
  Evaluation& ev = st->ev;
  for (;;) {
    // Newton stage at this tau.
    int stage_passes = 0;
    bool stage_done = false;
    bool out_of_passes = false;
    while (!stage_done) {
      if (st->passes >= ctl.max_passes) {
        out_of_passes = true;
        break;
      }
      std::vector<size_t> free;
      for (size_t v = 0; v < cp.d; ++v) {
        if (ev.theta[v] > 0 || ev.grad[v] < 0) free.push_back(v);
      }
      const size_t nf = free.size();
      std::vector<double> step(cp.d, 0.0);
      bool solved = false;
      while (!solved && rho < 1e30) {
        std::vector<double> a(nf * nf, 0.0), rhs(nf);
        for (size_t i = 0; i < nf; ++i) {
          const size_t vi = free[i];
          const double hii = cp.dense ? ev.hess[vi * cp.d + vi] : ev.hess[vi];
          const double floor_v = (vi == 0 ? ctl.qbar * ctl.qbar : 1.0) / tau;
          if (cp.dense) {
            for (size_t l = 0; l < nf; ++l) a[i * nf + l] = ev.hess[vi * cp.d + free[l]];
          } else {
            a[i * nf + i] = hii;
          }
          a[i * nf + i] += rho * std::max(hii, floor_v);
          rhs[i] = -ev.grad[vi];
        }
        solved = CholeskySolve(a, rhs, nf);
        if (!solved) {
          rho = std::max(rho * 10, 1e-9);
          continue;
        }
        for (size_t i = 0; i < nf; ++i) step[free[i]] = rhs[i];
      }
      if (!solved) break;
      std::vector<double> trial(cp.d);
      double pred = 0;
      for (size_t v = 0; v < cp.d; ++v) {
        trial[v] = std::max(0.0, ev.theta[v] + step[v]);
        pred += ev.grad[v] * (trial[v] - ev.theta[v]);
      }
      if (-pred <= ctl.stage_eps) {
        stage_done = true;
        break;
      }
      COUPOND_ASSIGN_OR_RETURN(Evaluation next, Evaluate(cp, trial, tau));
      ++st->passes;
      ++stage_passes;
      st->bound = std::min(st->bound, next.exact_dual);
      if (next.smooth_dual <= ev.smooth_dual + 1e-4 * pred) {
        const double decrease = ev.smooth_dual - next.smooth_dual;
        ev = std::move(next);
        rho = std::max(rho / 4, 1e-9);
        if (decrease <= ctl.stage_eps) stage_done = true;
      } else {
        rho = std::max(rho * 4, 1e-6);
      }
      if (stage_passes >= 30) stage_done = true;
    }
    st->tau = tau;
    if (out_of_passes || !stage_done) return absl::OkStatus();
    // Stop when the exact choice at these prices is feasible and within tolerance, or at
    // the end of the schedule.
    if ((ExactFeasible(cp, ev) && st->bound - ev.sums.exact_value <= ctl.tolerance * st->bound) ||
        tau <= ctl.tau_min) {
      st->converged = true;
      return absl::OkStatus();
    }
    tau = std::max(tau / 4, ctl.tau_min);
    if (st->passes >= ctl.max_passes || !(tau > 0)) return absl::OkStatus();
    COUPOND_ASSIGN_OR_RETURN(ev, Evaluate(cp, ev.theta, tau));
    ++st->passes;
    st->bound = std::min(st->bound, ev.exact_dual);
  }
}

absl::Status SearchFromZero(const Campaign& cp, const AssignmentOptions& options, SearchState* st,
                            Scales* scales) {
  std::vector<double> theta(cp.d, 0.0);
  COUPOND_ASSIGN_OR_RETURN(st->ev, Evaluate(cp, theta, 0.0));
  ++st->passes;
  st->bound = std::min(st->bound, st->ev.exact_dual);
  scales->vbar = st->ev.sums.best_value / static_cast<double>(cp.n);
  scales->qbar = st->ev.sums.num_q > 0 ? st->ev.sums.sum_q / st->ev.sums.num_q : 1.0;
  st->tau = 0;
  st->converged = true;
  if (ExactFeasible(cp, st->ev)) return absl::OkStatus();
  SearchControl ctl;
  ctl.tau = 0.05 * scales->vbar;
  ctl.tau_min = 1e-5 * scales->vbar;
  ctl.qbar = scales->qbar;
  ctl.stage_eps = 1e-3 * options.tolerance * scales->vbar * static_cast<double>(cp.n) + 1e-300;
  ctl.tolerance = options.tolerance;
  ctl.max_passes = options.max_iterations;
  return Search(cp, theta, ctl, st);
}

}  // namespace coupond::core::assignment_internal
