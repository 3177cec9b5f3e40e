#ifndef COUPOND_ANALYSIS_OPE_H_
#define COUPOND_ANALYSIS_OPE_H_

// Off-policy evaluation (issue 6): what a different decision policy would have earned, from
// a decision log (analysis/decision_log.h) written while an exploring policy decided.
//
// Notation, per logged decision i: actions a = the candidates and "nothing"; mu_i(a) the
// logging propensities (from the log), a_i the action taken, r_i its reward, pi_i(a) the
// target policy's probabilities computed from the logged scores, w_i = pi_i(a_i) / mu_i(a_i)
// the importance weight, rhat_i(a) a reward model (for slates, a_i is the set of coupons
// given; see "Slates" below). With n usable decisions:
//
//   logging value  (1/n) sum r_i                          what the logging policy earned
//   IPS            (1/n) sum w_i r_i                      unbiased when mu > 0 wherever pi > 0
//   SNIPS          sum w_i r_i / sum w_i                  self-normalised: a little bias, far
//                                                         less variance with large weights
//   DR             (1/n) sum [ sum_a pi_i(a) rhat_i(a) + w_i (r_i - rhat_i(a_i)) ]
//                                                         unbiased like IPS; lower variance the
//                                                         better rhat is
//   DM             (1/n) sum sum_a pi_i(a) rhat_i(a)      the reward model alone (biased when
//                                                         the model is; shown for contrast)
//
// Reward model: rhat(coupon) = its logged model probability p (reward "redeemed"), or
// p x (mean order value of the redeemed rows used) (reward "order_value"; that mean is
// computed from the same log, one extra pass); rhat(nothing) = 0: no coupon, no redemption.
//
// Confidence intervals (95% by default): normal approximation, value +- z x standard error;
// for IPS, DR, DM and the logging value the standard error is the sample standard deviation
// of the per-decision terms over sqrt(n); for SNIPS (a ratio of means) by the delta method:
//   se^2 = (Var(w r) - 2 theta Cov(w r, w) + theta^2 Var(w)) / (n mean(w)^2).
// These assume independent decisions and enough of them that the mean is near normal; with
// heavy weights (a small effective sample size) the intervals are too narrow, which the
// result's weight diagnostics show.
//
// Support: an action the target policy may take but the logging policy never did (logging
// propensity 0, e.g. any coupon in a control arm) makes IPS and DR biased low for it; the
// result reports how much target mass is unsupported. Restrict to the arms that explored
// (OpeOptions::arm) when the log mixes arms.
//
// Duplicate decision ids are an error (a double-counted export would bias everything).
//
// Slates (decisions of a campaign with max_coupons_per_user = max_slots > 1) are evaluated
// at the slate level: the action is the set S_i of coupons given (LoggedDecision::slots;
// empty for nothing), its one reward (redeemed, order value) is the slate's, and
//   w_i = pi_i(S_i) / mu_i(S_i),  mu_i(S_i) = slate_propensity (required when max_slots > 1;
//                                 for max_slots = 1 the chosen action's propensity, so
//                                 one-coupon logs give exactly the one-action estimates).
// The target's slate probabilities: the one-action targets (epsilon_greedy, softmax,
// uniform, none) give at most one coupon whatever max_slots is, so pi({a}) = pi(a),
// pi({}) = pi(nothing) and pi(S) = 0 for |S| > 1. The greedy target with max_slots = k gives
// the slate core::ChooseCoupons gives (the coupond greedy path): the (at most) k candidates
// with the largest positive logged score, ties by candidate order (coupond logs candidates
// in coupon order, ChooseCoupons' tie order); pi(S) = 1 iff S is that set (order ignored).
// The log cannot tell what differs online from the logged scores: prices or a model
// republished between the decision and the evaluation (the logged scores are those used),
// or another writer's candidate order (ties); the evaluation is of "greedy on the logged
// scores". The slate reward model is rhat(S) = 1 - prod_{c in S} (1 - p_c) (times the mean
// order value for the order value reward): coupons redeemed independently, at least one
// redemption counts as one; rhat({a}) = p_a, rhat({}) = 0. DR and DM use pi and rhat over
// slates as above.
//
// Assumptions: the logged slate_propensity is the probability of the logged set (summed over
// the orders it could be drawn in) under the policy that decided, and the reward depends on
// the set only. Then IPS and DR are unbiased for the target wherever the logging policy gives
// every slate the target may give a positive probability. Support, as far as the log tells:
// a decision of at most one coupon whose slate propensity equals its action's candidate
// propensity comes from a one-coupon policy (exploration and random arms, control, greedy
// giving one), under which every slate of two or more coupons has probability 0; a certain
// slate (propensity 1, greedy) is the only one; for a stochastic policy giving several
// coupons the log holds the logged slate's probability only, and such decisions are counted
// in decisions_with_unknown_support (mean_weight below 1 then hints at missing support). So a
// greedy 3-coupon target on a log of one-coupon exploration has no support where greedy gives
// 2 or more: IPS is biased low there, DR rests on the reward model alone there, and
// unsupported_mass says how much.
//
// Truncated decisions (the logger cut their candidate list to fit the collector's message
// limit; LoggedDecision::truncated) are left out and counted (skipped_truncated): the target
// policy's probabilities need every candidate's score. The estimates then cover the other
// decisions only: still unbiased for them, as a restriction on the decision's context (its
// candidate count), but not for the whole log.

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "analysis/decision_log.h"
#include "core/exploration.h"

namespace coupond::analysis {

struct TargetPolicy {
  enum class Kind {
    // The model policy with `exploration` over the logged scores (greedy by default).
    kExploration,
    // Never give a coupon.
    kNone,
    // A uniformly random candidate coupon, as an experiment's kRandom arm does; nothing only
    // when there is no candidate.
    kUniform,
  };
  Kind kind = Kind::kExploration;
  core::ExplorationPolicy exploration;
};

// "none", "uniform", or an exploration policy's text ("greedy", "epsilon_greedy:0.1",
// "softmax:0.05"). InvalidArgument naming the text otherwise.
absl::StatusOr<TargetPolicy> ParseTargetPolicy(absl::string_view text);
std::string FormatTargetPolicy(const TargetPolicy& policy);

// The target policy's probabilities over the decision's candidates then nothing (size n + 1).
// InvalidArgument as core::ActionProbabilities (a non-finite logged score).
absl::StatusOr<std::vector<double>> TargetProbabilities(const LoggedDecision& decision,
                                                        const TargetPolicy& policy);

enum class OpeReward {
  kRedeemed,    // 1 if the coupon was redeemed, else 0
  kOrderValue,  // the order value when redeemed, else 0
};

// What to do with a decision whose outcome is missing: `redeemed` empty, or (order value
// reward) redeemed = 1 with an empty order_value.
enum class MissingOutcome {
  kDrop,  // leave it out (counted in OpeResult::dropped_missing_outcome)
  kZero,  // count it as reward 0 (counted in OpeResult::zeroed_missing_outcome)
};

struct OpeOptions {
  // Default: greedy, the online policy without exploration.
  TargetPolicy target;
  // Default kRedeemed.
  OpeReward reward = OpeReward::kRedeemed;
  // Default kDrop: an outcome not yet reported is unknown, not a non-redemption.
  MissingOutcome missing_outcome = MissingOutcome::kDrop;
  // When non-empty, only decisions with this `arm` are used (others are counted in
  // skipped_other_arm). Default: all.
  std::string arm;
  // Normal quantile of the intervals. Finite, > 0. Default 1.959964 (95%).
  double z = 1.959963984540054;
};

struct OpeEstimate {
  double value = 0.0;
  double std_error = 0.0;
  double ci_low = 0.0;
  double ci_high = 0.0;
};

struct OpeResult {
  size_t rows = 0;  // decisions read
  size_t used = 0;  // n: decisions in the estimates
  size_t skipped_other_arm = 0;
  size_t skipped_truncated = 0;  // candidate list truncated by the logger
  size_t dropped_missing_outcome = 0;  // MissingOutcome::kDrop
  size_t zeroed_missing_outcome = 0;   // MissingOutcome::kZero
  // Order value reward: the mean order value of the redeemed rows used (the reward model's
  // scale); 0 for the redeemed reward.
  double mean_order_value = 0.0;

  OpeEstimate logging;  // on-policy: the mean reward under the logging policy
  OpeEstimate ips;
  // SNIPS is undefined (NaN value and interval) when every weight is 0.
  OpeEstimate snips;
  OpeEstimate dr;
  OpeEstimate direct;  // DM, the reward model alone

  // Importance weight diagnostics. mean_weight estimates 1 (less the unsupported mass);
  // far from it means the propensities or the scores are not what the logging policy used.
  double mean_weight = 0.0;
  double max_weight = 0.0;
  // (sum w)^2 / sum w^2: how many decisions the estimate is effectively worth.
  double effective_sample_size = 0.0;
  // Mean over decisions of the target probability on actions (slates) whose logging
  // propensity is below 1e-9 (never taken), and the number of decisions with any such mass.
  double unsupported_mass = 0.0;
  size_t decisions_with_unsupported_mass = 0;
  // Decisions made by a stochastic policy giving several coupons, whose unsupported target
  // mass the log cannot tell (0 in unsupported_mass); see the header comment.
  size_t decisions_with_unknown_support = 0;
  // Decisions used of campaigns that may give several coupons (max_slots > 1).
  size_t slate_decisions = 0;
};

// Evaluates options.target on `decisions`. InvalidArgument on invalid options, an invalid
// decision ("decisions[i] ('id'): field: why"; for a slate decision also a missing
// slate_propensity, missing slots, or a slate_propensity that differs from the propensity
// when max_slots = 1), a repeated decision_id; FailedPrecondition when fewer than 2
// decisions remain (no interval).
absl::StatusOr<OpeResult> EvaluateOffPolicy(absl::Span<const LoggedDecision> decisions,
                                            const OpeOptions& options);

// The same over a decision log file, streamed (two passes for the order value reward).
// Memory: the set of decision ids (duplicate detection). Errors as DecisionLogReader's
// ("path:line: field: why") and as above.
absl::StatusOr<OpeResult> EvaluateDecisionLog(const std::string& path, const OpeOptions& options);

}  // namespace coupond::analysis

#endif  // COUPOND_ANALYSIS_OPE_H_
