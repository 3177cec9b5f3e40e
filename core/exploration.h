#ifndef COUPOND_CORE_EXPLORATION_H_
#define COUPOND_CORE_EXPLORATION_H_

// Exploration for online decisions (issue 6).
//
// The online decision for one user (ChooseCoupons with k = 1) is greedy: the eligible coupon
// with the largest positive reduced score  s_j = p_j (w_j - lambda c_j) - mu_j,  or nothing.
// A greedy log gives every other action propensity 0, and no off-policy estimator can learn
// what those actions would have done. An ExplorationPolicy turns the scores into a
// probability distribution over the actions, so that each logged decision carries the
// propensity with which it was taken (analysis/ope.h uses them).
//
// The action set of a decision with n candidate coupons (the eligible ones, in the caller's
// order) is {0, ..., n-1, n}: the coupons, then "nothing" (index n), whose score is 0 (giving
// nothing neither earns nor costs anything at the campaign's prices).
//
// Pure computation: no I/O, no randomness of its own (the caller draws u01), thread-safe.

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace coupond::core {

struct ExplorationPolicy {
  enum class Kind {
    // All mass on the greedy action: the coupon with the largest score if that score is > 0
    // (ties to the lowest index), otherwise nothing. The same choice as ChooseCoupons(k = 1).
    kGreedy,
    // (1 - epsilon) x greedy + epsilon x uniform over the n + 1 actions (nothing included).
    kEpsilonGreedy,
    // Boltzmann: P(a) proportional to exp(score_a / temperature) over the n + 1 actions,
    // score_nothing = 0. Small temperatures approach greedy (ties split evenly), large ones
    // uniform.
    kSoftmax,
  };
  // Default kGreedy: no exploration (propensity 1 for the chosen action).
  Kind kind = Kind::kGreedy;
  // kEpsilonGreedy only: the exploration probability. In [0, 1]. Default 0 (= greedy).
  double epsilon = 0.0;
  // kSoftmax only: in score units (scores are p x value, so typically 0.01-0.1 for a
  // redemption objective). Finite, > 0. Default 1.
  double temperature = 1.0;
};

// OK, or InvalidArgument naming the field ("epsilon: ...", "temperature: ..."). Fields that
// the kind does not use are still checked, so a configuration typo does not hide.
absl::Status ValidateExplorationPolicy(const ExplorationPolicy& policy);

// The probabilities of the n + 1 actions (coupons in the order of `scores`, then nothing).
// They are >= 0 and sum to 1 up to rounding (the last ulp). An empty `scores` gives {1}.
// InvalidArgument when the policy is invalid or a score is NaN or infinite ("scores[j]: ...").
// A NaN score is an error, not a "never choose", because it means a broken model or broken
// prices, and quietly routing around it would hide that.
absl::StatusOr<std::vector<double>> ActionProbabilities(absl::Span<const double> scores,
                                                        const ExplorationPolicy& policy);

// Draws an action from `probabilities` (as ActionProbabilities returns them) by inverting the
// cumulative distribution at u01: the first index whose cumulative sum exceeds u01. An action
// of probability 0 is never returned; when rounding leaves u01 at or above the total, the last
// action with positive probability is returned.
// REQUIRES: u01 in [0, 1), probabilities non-empty with a positive entry.
size_t SampleAction(absl::Span<const double> probabilities, double u01);

// Text forms, for flags and configuration: "greedy", "epsilon_greedy:0.1", "softmax:0.05".
// Parse returns InvalidArgument (naming the text) on anything else or on invalid values.
absl::StatusOr<ExplorationPolicy> ParseExplorationPolicy(absl::string_view text);
std::string FormatExplorationPolicy(const ExplorationPolicy& policy);

}  // namespace coupond::core

#endif  // COUPOND_CORE_EXPLORATION_H_
