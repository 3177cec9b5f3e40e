#ifndef COUPOND_CORE_ASSIGNMENT_DUAL_H_
#define COUPOND_CORE_ASSIGNMENT_DUAL_H_

// The assignment solver's price search: minimises the Lagrangian dual over theta = (lambda,
// the mu_j of the priced coupons) >= 0 by projected Newton on a smoothed dual, with the
// smoothing decreased stage by stage (see assignment_dual.cc for how and why). Internal to
// core/assignment*.cc; not part of core's API.

#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "core/assignment.h"
#include "core/assignment_pass.h"

namespace coupond::core::assignment_internal {

// Sums of one pass at theta, per chunk and then reduced.
struct Sums {
  double exact = 0;                 // sum_i exact per-user max
  double exact_spend = 0;           // of the exact choice
  double exact_value = 0;           // of the exact choice
  double smooth = 0;                // sum_i h_i
  double spend = 0;                 // sum x q under the smoothed choice
  std::vector<double> demand;       // by theta index: sum x (smoothed)
  std::vector<double> exact_count;  // by theta index: exact choice
  std::vector<double> hess;         // d*d (dense) or d (diagonal), theta space
  double best_value = 0;            // sum_i max_j p w (statistics, theta = 0 pass)
  double sum_q = 0;
  double num_q = 0;

  void Init(const Campaign& cp, bool with_hessian) {
    demand.assign(cp.d, 0.0);
    exact_count.assign(cp.d, 0.0);
    hess.assign(with_hessian ? (cp.dense ? cp.d * cp.d : cp.d) : 0, 0.0);
  }
  void Add(const Sums& o) {
    exact += o.exact;
    exact_spend += o.exact_spend;
    exact_value += o.exact_value;
    smooth += o.smooth;
    spend += o.spend;
    for (size_t i = 0; i < demand.size(); ++i) demand[i] += o.demand[i];
    for (size_t i = 0; i < exact_count.size(); ++i) exact_count[i] += o.exact_count[i];
    for (size_t i = 0; i < hess.size(); ++i) hess[i] += o.hess[i];
    best_value += o.best_value;
    sum_q += o.sum_q;
    num_q += o.num_q;
  }
};

// One pass at theta: the exact dual L and, when smoothed (tau > 0), the smoothed dual D_tau
// with its gradient and Hessian in theta space.
struct Evaluation {
  std::vector<double> theta;
  double exact_dual = 0;   // L(theta)
  double smooth_dual = 0;  // D_tau(theta)
  std::vector<double> grad;
  std::vector<double> hess;
  Sums sums;
};

// Controls of one continuation (see assignment_dual.cc).
struct SearchControl {
  double tau = 0;        // of the first stage
  double tau_min = 0;    // of the last
  double qbar = 1;       // mean expected cost of a pair: scale of the Levenberg-Marquardt floor
  double stage_eps = 0;  // a stage ends when Newton predicts less decrease than this
  double tolerance = 0;
  int max_passes = 1;
};

// Where a search on one view stands; Search continues from it.
struct SearchState {
  Evaluation ev;        // at the final prices
  double bound = kInf;  // least exact L seen (of this view)
  int passes = 0;       // passes over this view
  bool converged = false;
  double tau = 0;  // of the last stage
};

// Continuation from theta0: stages of projected Newton on D_tau, tau divided by 4 between
// stages, until the exact choice at the prices is feasible and within the tolerance of the
// bound, or tau reaches tau_min. Never starts a pass beyond ctl.max_passes (st->passes counts,
// and is not reset: passes already spent count against the limit). st->bound becomes the
// least of its value and every exact dual evaluated; st->ev holds the final prices (theta0
// when no pass was left or tau is not positive). Errors: those of the oracle and of its
// values' validation.
absl::Status Search(const Campaign& cp, const std::vector<double>& theta0, const SearchControl& ctl,
                    SearchState* st);

// Scales of an instance, from the prices-0 pass: mean best per-user value and mean expected
// cost of a pair, for the smoothing schedule and the Levenberg-Marquardt floor.
struct Scales {
  double vbar = 0;
  double qbar = 1;
};

// The whole search on a view, from prices 0: the prices-0 pass (if the unconstrained choice
// is feasible it is optimal and the search ends there), then the continuation from
// tau = 0.05 vbar down to 1e-5 vbar (options.tolerance, at most options.max_iterations
// passes). Sets *scales from the prices-0 pass.
absl::Status SearchFromZero(const Campaign& cp, const AssignmentOptions& options, SearchState* st,
                            Scales* scales);

}  // namespace coupond::core::assignment_internal

#endif  // COUPOND_CORE_ASSIGNMENT_DUAL_H_
