#ifndef COUPOND_TESTS_TEST_UTIL_ASSIGNMENT_INSTANCES_H_
#define COUPOND_TESTS_TEST_UTIL_ASSIGNMENT_INSTANCES_H_

// Random assignment instances and their exact LP relaxation (GLPK), shared by
// tests/assignment_test.cc and bench/assignment_bench.cc so that both measure the same
// family of instances the same way. Needs glpk.h and libglpk.

#include <glpk.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/assignment.h"

namespace coupond::testing {

using ::coupond::core::AssignmentCoupon;
using ::coupond::core::DenseProbabilityOracle;
using ::coupond::core::kNotEligible;

// A random campaign: p_ij (kNotEligible for some pairs), face values, weights, stocks, budget.
struct Instance {
  size_t n = 0;
  std::vector<AssignmentCoupon> coupons;
  std::vector<double> p;  // n x m, row-major
  double budget = 0;

  size_t m() const { return coupons.size(); }
  double P(size_t i, size_t j) const { return p[i * m() + j]; }
  DenseProbabilityOracle Oracle() const { return DenseProbabilityOracle(n, m(), p); }
};

struct InstanceSpec {
  size_t users = 5;
  size_t coupons = 3;
  double eligible = 0.85;       // probability that a pair is eligible
  double stocked = 0.7;         // probability that a coupon has a stock
  double stock_fraction = 0.3;  // mean stock as a fraction of the users
  double budget_fraction = 0.4; // budget as a fraction of the unconstrained spend
  int k = 1;
};

inline Instance RandomInstance(uint64_t seed, const InstanceSpec& spec) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  Instance inst;
  inst.n = spec.users;
  for (size_t j = 0; j < spec.coupons; ++j) {
    AssignmentCoupon c;
    c.id = absl::StrCat("c", j);
    c.face_value = u01(rng) < 0.1 ? 0.0 : 1.0 + 9.0 * u01(rng);
    c.weight = 0.5 + 2.0 * u01(rng);
    if (u01(rng) < spec.stocked) {
      c.stock = static_cast<int64_t>(
          std::floor(2.0 * spec.stock_fraction * u01(rng) * static_cast<double>(spec.users)));
    }
    inst.coupons.push_back(c);
  }
  inst.p.resize(spec.users * spec.coupons);
  for (size_t i = 0; i < spec.users; ++i) {
    const double affinity = u01(rng);
    for (size_t j = 0; j < spec.coupons; ++j) {
      inst.p[i * spec.coupons + j] =
          u01(rng) < spec.eligible ? std::min(1.0, affinity * u01(rng) * u01(rng) * 1.5)
                                   : kNotEligible;
    }
  }
  // Unconstrained spend: each user's top-k by value.
  double spend = 0;
  for (size_t i = 0; i < inst.n; ++i) {
    std::vector<std::pair<double, double>> vc;
    for (size_t j = 0; j < inst.m(); ++j) {
      if (inst.P(i, j) == kNotEligible) continue;
      vc.push_back({inst.P(i, j) * inst.coupons[j].weight, inst.P(i, j) * inst.coupons[j].face_value});
    }
    std::sort(vc.rbegin(), vc.rend());
    for (size_t t = 0; t < vc.size() && t < static_cast<size_t>(spec.k); ++t) spend += vc[t].second;
  }
  inst.budget = spec.budget_fraction * spend;
  return inst;
}

// The LP relaxation (0 <= x <= 1) of `inst` with at most k coupons per user, solved exactly
// by GLPK: method 0 primal simplex (presolver on; the fastest here), 1 dual simplex,
// 2 interior point. Returns the optimum, or NaN when GLPK does not report one.
inline double GlpkLpOptimum(const Instance& inst, int k, int method = 0) {
  glp_prob* lp = glp_create_prob();
  glp_set_obj_dir(lp, GLP_MAX);
  const int m = static_cast<int>(inst.m());
  const int n = static_cast<int>(inst.n);
  glp_add_rows(lp, 1 + m + n);
  glp_set_row_bnds(lp, 1, GLP_UP, 0.0, inst.budget);
  for (int j = 0; j < m; ++j) {
    const auto& s = inst.coupons[static_cast<size_t>(j)].stock;
    if (s.has_value()) {
      glp_set_row_bnds(lp, 2 + j, GLP_UP, 0.0, static_cast<double>(*s));
    } else {
      glp_set_row_bnds(lp, 2 + j, GLP_FR, 0.0, 0.0);
    }
  }
  for (int i = 0; i < n; ++i) glp_set_row_bnds(lp, 2 + m + i, GLP_UP, 0.0, k);
  std::vector<int> ia{0}, ja{0};
  std::vector<double> ar{0.0};
  std::vector<std::pair<int, int>> cols;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < m; ++j) {
      const double p = inst.p[static_cast<size_t>(i) * inst.m() + static_cast<size_t>(j)];
      if (p == kNotEligible || p == 0) continue;
      cols.push_back({i, j});
    }
  }
  glp_add_cols(lp, static_cast<int>(cols.size()));
  for (size_t t = 0; t < cols.size(); ++t) {
    const int col = static_cast<int>(t) + 1;
    const auto [i, j] = cols[t];
    const double p = inst.p[static_cast<size_t>(i) * inst.m() + static_cast<size_t>(j)];
    const AssignmentCoupon& c = inst.coupons[static_cast<size_t>(j)];
    glp_set_col_bnds(lp, col, GLP_DB, 0.0, 1.0);
    glp_set_obj_coef(lp, col, p * c.weight);
    if (p * c.face_value > 0) ia.push_back(1), ja.push_back(col), ar.push_back(p * c.face_value);
    ia.push_back(2 + j), ja.push_back(col), ar.push_back(1.0);
    ia.push_back(2 + m + i), ja.push_back(col), ar.push_back(1.0);
  }
  glp_load_matrix(lp, static_cast<int>(ia.size()) - 1, ia.data(), ja.data(), ar.data());
  double obj = std::nan("");
  if (method == 2) {
    glp_iptcp parm;
    glp_init_iptcp(&parm);
    parm.msg_lev = GLP_MSG_OFF;
    if (glp_interior(lp, &parm) == 0 && glp_ipt_status(lp) == GLP_OPT) obj = glp_ipt_obj_val(lp);
  } else {
    glp_smcp parm;
    glp_init_smcp(&parm);
    parm.msg_lev = GLP_MSG_OFF;
    parm.presolve = GLP_ON;
    parm.meth = method == 1 ? GLP_DUALP : GLP_PRIMAL;
    if (glp_simplex(lp, &parm) == 0 && glp_get_status(lp) == GLP_OPT) obj = glp_get_obj_val(lp);
  }
  glp_delete_prob(lp);
  return obj;
}

}  // namespace coupond::testing

#endif  // COUPOND_TESTS_TEST_UTIL_ASSIGNMENT_INSTANCES_H_
