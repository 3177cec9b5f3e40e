#ifndef COUPOND_CORE_ASSIGNMENT_BASELINES_H_
#define COUPOND_CORE_ASSIGNMENT_BASELINES_H_

// Naive assignment policies that a platform without an optimiser would use, for comparison
// with SolveAssignment on the same instance and the same probabilities (on the synthetic
// platform those are the ground truth). Both give each user at most one coupon, respect
// eligibility and stock, and stop when the next user's coupon would exceed the budget.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/assignment.h"

namespace coupond::core {

struct PolicyOutcome {
  std::string policy;
  double expected_value = 0.0;        // sum of p w
  double expected_redemptions = 0.0;  // sum of p
  double expected_spend = 0.0;        // sum of p c
  uint64_t assignments = 0;
};

// Users in population order; each gets its highest-probability eligible coupon with stock
// left, until that coupon's expected cost no longer fits in the budget.
absl::StatusOr<PolicyOutcome> GreedyHighestProbabilityPolicy(
    absl::Span<const AssignmentCoupon> coupons, double budget, const ProbabilityOracle& oracle);

// Users in a seeded random order; each gets a uniformly random eligible coupon with stock
// left, until that coupon's expected cost no longer fits in the budget.
absl::StatusOr<PolicyOutcome> RandomPolicy(absl::Span<const AssignmentCoupon> coupons,
                                           double budget, const ProbabilityOracle& oracle,
                                           uint64_t seed);

}  // namespace coupond::core

#endif  // COUPOND_CORE_ASSIGNMENT_BASELINES_H_
