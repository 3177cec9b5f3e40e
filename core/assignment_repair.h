#ifndef COUPOND_CORE_ASSIGNMENT_REPAIR_H_
#define COUPOND_CORE_ASSIGNMENT_REPAIR_H_

// The assignment solver's repair: turns the choice at the searched prices into an assignment
// that satisfies every constraint exactly (see assignment_repair.cc for how and why).
// Internal to core/assignment*.cc; not part of core's API.

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "core/assignment_pass.h"

namespace coupond::core::assignment_internal {

// A repair candidate. Value and expected cost are p w_j and p c_j, recomputed from p.
struct Record {
  double r;  // reduced score at the repair's prices
  double p;  // the oracle's probability
  uint32_t user;
  uint32_t coupon;
};

// The repair: one pass collects each user's best few candidates at prices theta (and
// evaluates the exact L there: *exact_dual), then a deterministic greedy admits those that
// keep every constraint. *out receives the admitted candidates, sorted by (user, coupon);
// *passes is incremented by the one pass. Memory: users x (k + 2) records. Errors: those of
// the oracle and of its values' validation.
absl::Status Repair(const Campaign& cp, const std::vector<double>& theta, std::vector<Record>* out,
                    int* passes, double* exact_dual);

}  // namespace coupond::core::assignment_internal

#endif  // COUPOND_CORE_ASSIGNMENT_REPAIR_H_
