#include "analysis/ope.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace coupond::analysis {

absl::StatusOr<TargetPolicy> ParseTargetPolicy(absl::string_view text) {
  TargetPolicy policy;
  if (text == "none") {
    policy.kind = TargetPolicy::Kind::kNone;
    return policy;
  }
  if (text == "uniform") {
    policy.kind = TargetPolicy::Kind::kUniform;
    return policy;
  }
  absl::StatusOr<core::ExplorationPolicy> exploration = core::ParseExplorationPolicy(text);
  if (!exploration.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(exploration.status().message(), " (or none, uniform)"));
  }
  policy.exploration = *exploration;
  return policy;
}

std::string FormatTargetPolicy(const TargetPolicy& policy) {
  switch (policy.kind) {
    case TargetPolicy::Kind::kNone:
      return "none";
    case TargetPolicy::Kind::kUniform:
      return "uniform";
    case TargetPolicy::Kind::kExploration:
      break;
  }
  return core::FormatExplorationPolicy(policy.exploration);
}

absl::StatusOr<std::vector<double>> TargetProbabilities(const LoggedDecision& decision,
                                                        const TargetPolicy& policy) {
  const size_t n = decision.candidates.size();
  switch (policy.kind) {
    case TargetPolicy::Kind::kNone: {
      std::vector<double> p(n + 1, 0.0);
      p[n] = 1.0;
      return p;
    }
    case TargetPolicy::Kind::kUniform: {
      if (n == 0) return std::vector<double>{1.0};
      std::vector<double> p(n + 1, 1.0 / static_cast<double>(n));
      p[n] = 0.0;
      return p;
    }
    case TargetPolicy::Kind::kExploration:
      break;
  }
  std::vector<double> scores(n);
  for (size_t j = 0; j < n; ++j) scores[j] = decision.candidates[j].score;
  return core::ActionProbabilities(scores, policy.exploration);
}

namespace {

// An action whose logging propensity is below this was never taken by the logging policy.
constexpr double kUnsupported = 1e-9;

// Running mean and co-moments of a pair (Welford): stable for long logs where the naive
// sum of squares would cancel.
struct CoMoments {
  double n = 0.0;
  double mean_x = 0.0, mean_y = 0.0;
  double m2_x = 0.0, m2_y = 0.0, c_xy = 0.0;

  void Add(double x, double y) {
    n += 1.0;
    const double dx = x - mean_x;
    mean_x += dx / n;
    const double dy = y - mean_y;
    mean_y += dy / n;
    m2_x += dx * (x - mean_x);
    m2_y += dy * (y - mean_y);
    c_xy += dx * (y - mean_y);
  }
  // Sample (n - 1) variances and covariance. REQUIRES n >= 2.
  double var_x() const { return m2_x / (n - 1.0); }
  double var_y() const { return m2_y / (n - 1.0); }
  double cov() const { return c_xy / (n - 1.0); }
};

OpeEstimate MeanEstimate(double mean, double var, double n, double z) {
  OpeEstimate e;
  e.value = mean;
  e.std_error = std::sqrt(std::max(var, 0.0) / n);
  e.ci_low = mean - z * e.std_error;
  e.ci_high = mean + z * e.std_error;
  return e;
}

// The reward of a decision, or nullopt when its outcome is missing.
std::optional<double> Reward(const LoggedDecision& d, OpeReward kind) {
  if (!d.redeemed.has_value()) return std::nullopt;
  if (kind == OpeReward::kRedeemed) return *d.redeemed ? 1.0 : 0.0;
  if (!*d.redeemed) return 0.0;
  if (!d.order_value.has_value()) return std::nullopt;
  return *d.order_value;
}

absl::Status ValidateOptions(const OpeOptions& options) {
  if (!(options.z > 0.0 && std::isfinite(options.z))) {
    return absl::InvalidArgumentError(absl::StrCat("z: ", options.z, " is not finite and > 0"));
  }
  if (options.target.kind == TargetPolicy::Kind::kExploration) {
    if (absl::Status s = core::ValidateExplorationPolicy(options.target.exploration); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("target: ", s.message()));
    }
  }
  return absl::OkStatus();
}

// First pass (order value reward only): the mean order value of the redeemed rows used.
class OrderValueMean {
 public:
  explicit OrderValueMean(const OpeOptions& options) : options_(options) {}
  void Add(const LoggedDecision& d) {
    if (!options_.arm.empty() && d.arm != options_.arm) return;
    if (d.redeemed.value_or(false) && d.order_value.has_value()) {
      ++count_;
      sum_ += *d.order_value;
    }
  }
  double mean() const { return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_); }

 private:
  const OpeOptions& options_;
  size_t count_ = 0;
  double sum_ = 0.0;
};

// What OPE needs of a decision beyond ValidateLoggedDecision: a slate's logging probability
// and its coupons. InvalidArgument naming the field.
absl::Status CheckSlate(const LoggedDecision& d) {
  if (d.max_slots > 1) {
    if (!d.slate_propensity.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "slate_propensity: missing on a decision of max_slots ", d.max_slots,
          " (the slate's logging probability is the importance weight's denominator)"));
    }
    if (!d.chosen_coupon_id.empty() && d.slots.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "slots: not recorded on a decision of max_slots ", d.max_slots, " that gave '",
          d.chosen_coupon_id, "' (the slate given is unknown)"));
    }
  } else if (d.slate_propensity.has_value() &&
             std::abs(*d.slate_propensity - d.propensity) > kPropensityTolerance) {
    return absl::InvalidArgumentError(
        absl::StrCat("slate_propensity: ", *d.slate_propensity, " differs from propensity ",
                     d.propensity, " on a decision of max_slots 1"));
  }
  return absl::OkStatus();
}

// Index of a coupon among the decision's candidates. REQUIRES: it is one (validated).
size_t SlateCandidateIndex(const LoggedDecision& d, absl::string_view coupon_id) {
  for (size_t j = 0; j < d.candidates.size(); ++j) {
    if (d.candidates[j].coupon_id == coupon_id) return j;
  }
  return d.candidates.size();
}

// The greedy target's slate for a decision: what core::ChooseCoupons gives with
// max_coupons_per_user = max_slots on the logged scores: the candidates with a positive
// score, the max_slots largest, ties by candidate order (coupond logs candidates in the
// campaign's coupon order, ChooseCoupons' tie order). By descending score.
std::vector<size_t> GreedyTargetSlate(const LoggedDecision& d) {
  std::vector<size_t> positive;
  for (size_t j = 0; j < d.candidates.size(); ++j) {
    if (d.candidates[j].score > 0) positive.push_back(j);
  }
  auto better = [&](size_t a, size_t b) {
    const double sa = d.candidates[a].score, sb = d.candidates[b].score;
    return sa > sb || (sa == sb && a < b);
  };
  const size_t k = std::min<size_t>(d.max_slots, positive.size());
  std::partial_sort(positive.begin(), positive.begin() + static_cast<std::ptrdiff_t>(k),
                    positive.end(), better);
  positive.resize(k);
  return positive;
}

// Whether two slates hold the same coupons (the reward is the set's, whatever the order).
bool SameSet(std::vector<size_t> a, std::vector<size_t> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

// The target's mass on slates the logging policy never gives, as far as the log tells:
//  - a decision of at most one coupon whose slate propensity is its action's candidate
//    propensity was made by a one-coupon policy (exploration, a random arm, control, any
//    max_slots 1 campaign, greedy giving at most one): its candidate propensities are the
//    one-coupon slates' probabilities and every larger slate has probability 0, which
//    `one_coupon_mass` computes for the target;
//  - a certain slate (propensity 1, greedy) is the only one: 1 - pi(S_i);
//  - otherwise (a stochastic policy giving several coupons) the log has the probability of
//    the logged slate only: NaN, unknown (counted in decisions_with_unknown_support).
template <typename OneCouponMass>
double SlateUnsupported(const LoggedDecision& d, absl::Span<const size_t> logged,
                        double mu_logged, double pi_logged, OneCouponMass one_coupon_mass) {
  if (logged.size() <= 1) {
    const double action_mu =
        logged.empty() ? d.NothingPropensity() : d.candidates[logged[0]].propensity;
    if (std::abs(action_mu - mu_logged) <= kPropensityTolerance) return one_coupon_mass();
  }
  if (mu_logged >= 1.0 - kPropensityTolerance) return 1.0 - pi_logged;
  return std::numeric_limits<double>::quiet_NaN();
}

// Second pass: the per-decision terms of every estimator, accumulated.
// REQUIRES: each decision passed ValidateLoggedDecision.
class Accumulator {
 public:
  Accumulator(const OpeOptions& options, double mean_order_value)
      : options_(options),
        reward_scale_(options.reward == OpeReward::kOrderValue ? mean_order_value : 1.0) {
    result_.mean_order_value = options.reward == OpeReward::kOrderValue ? mean_order_value : 0.0;
  }

  // InvalidArgument "decision_id: 'X' repeats an earlier decision" or a target policy error.
  absl::Status Add(const LoggedDecision& d) {
    ++result_.rows;
    if (!ids_.insert(d.decision_id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("decision_id: '", d.decision_id, "' repeats an earlier decision"));
    }
    if (!options_.arm.empty() && d.arm != options_.arm) {
      ++result_.skipped_other_arm;
      return absl::OkStatus();
    }
    COUPOND_RETURN_IF_ERROR(CheckSlate(d));
    if (d.truncated()) {
      ++result_.skipped_truncated;
      return absl::OkStatus();
    }
    std::optional<double> reward = Reward(d, options_.reward);
    if (!reward.has_value()) {
      if (options_.missing_outcome == MissingOutcome::kDrop) {
        ++result_.dropped_missing_outcome;
        return absl::OkStatus();
      }
      ++result_.zeroed_missing_outcome;
      reward = 0.0;
    }
    const size_t n = d.candidates.size();
    const size_t chosen = *d.ChosenAction();  // validated
    const double r = *reward;
    if (d.max_slots > 1) ++result_.slate_decisions;

    // The logged slate as candidate indices (slots[0] is the chosen coupon, validated).
    std::vector<size_t> logged;
    if (d.slots.empty()) {
      if (chosen < n) logged.push_back(chosen);
    } else {
      for (const LoggedSlot& slot : d.slots) {
        logged.push_back(SlateCandidateIndex(d, slot.coupon_id));
      }
    }
    // mu(S_i). One-coupon campaigns keep the chosen action's propensity (CheckSlate: the
    // slate's equals it), so their results are exactly those of the one-action estimators.
    const double mu_logged = d.max_slots > 1 ? *d.slate_propensity : d.propensity;

    double pi_logged = 0.0;  // pi(S_i)
    double direct = 0.0;     // sum_S pi(S) rhat(S)
    double unsupported = 0.0;
    if (IsGreedyTarget() && d.max_slots > 1) {
      const std::vector<size_t> greedy_slate = GreedyTargetSlate(d);
      // A deterministic slate target: pi(G) = 1 for its top-k slate G (possibly empty).
      pi_logged = SameSet(greedy_slate, logged) ? 1.0 : 0.0;
      direct = SlateRewardModel(d, greedy_slate);
      unsupported = SlateUnsupported(d, logged, mu_logged, pi_logged, [&] {
        // Target mass the one-coupon logging policy never puts: on G when |G| > 1, else on
        // G's one action when its logged propensity is 0.
        if (greedy_slate.size() > 1) return 1.0;
        const double mu = greedy_slate.empty() ? d.NothingPropensity()
                                               : d.candidates[greedy_slate[0]].propensity;
        return mu < kUnsupported ? 1.0 : 0.0;
      });
    } else {
      // A one-action target (at most one coupon whatever max_slots is): pi({a}) = pi(a),
      // pi({}) = pi(nothing), pi(S) = 0 for |S| > 1.
      COUPOND_ASSIGN_OR_RETURN(std::vector<double> pi, TargetProbabilities(d, options_.target));
      double one_action_unsupported = 0.0;
      const double nothing_propensity = d.NothingPropensity();
      for (size_t a = 0; a <= n; ++a) {
        const double mu = a < n ? d.candidates[a].propensity : nothing_propensity;
        if (a < n) direct += pi[a] * RewardModel(d, a);
        if (mu < kUnsupported) one_action_unsupported += pi[a];
      }
      if (logged.size() <= 1) pi_logged = logged.empty() ? pi[n] : pi[logged[0]];
      unsupported = SlateUnsupported(d, logged, mu_logged, pi_logged,
                                     [&] { return one_action_unsupported; });
    }
    const double w = pi_logged / mu_logged;
    const double rhat_logged = SlateRewardModel(d, logged);
    const double dr = direct + w * (r - rhat_logged);

    reward_.Add(r, 0.0);
    weighted_.Add(w * r, w);
    dr_.Add(dr, direct);
    max_weight_ = std::max(max_weight_, w);
    sum_w_ += w;
    sum_w2_ += w * w;
    if (std::isnan(unsupported)) {
      ++result_.decisions_with_unknown_support;
      unsupported = 0.0;  // not known: left out of unsupported_mass, counted above
    }
    unsupported_sum_ += unsupported;
    if (unsupported > 0.0) ++result_.decisions_with_unsupported_mass;
    ++result_.used;
    return absl::OkStatus();
  }

  absl::StatusOr<OpeResult> Finish() {
    OpeResult& out = result_;
    if (out.used < 2) {
      return absl::FailedPreconditionError(
          absl::StrCat("only ", out.used, " of ", out.rows, " decisions are usable (",
                       out.skipped_other_arm, " in other arms, ", out.skipped_truncated,
                       " truncated, ", out.dropped_missing_outcome,
                       " without an outcome); an interval needs at least 2"));
    }
    const double n = static_cast<double>(out.used);
    const double z = options_.z;
    out.logging = MeanEstimate(reward_.mean_x, reward_.var_x(), n, z);
    out.ips = MeanEstimate(weighted_.mean_x, weighted_.var_x(), n, z);
    out.dr = MeanEstimate(dr_.mean_x, dr_.var_x(), n, z);
    out.direct = MeanEstimate(dr_.mean_y, dr_.var_y(), n, z);
    const double mean_w = weighted_.mean_y;
    if (mean_w > 0.0) {
      const double theta = weighted_.mean_x / mean_w;
      const double var =
          weighted_.var_x() - 2.0 * theta * weighted_.cov() + theta * theta * weighted_.var_y();
      out.snips = MeanEstimate(theta, var / (mean_w * mean_w), n, z);
    } else {
      const double nan = std::numeric_limits<double>::quiet_NaN();
      out.snips = OpeEstimate{nan, nan, nan, nan};
    }
    out.mean_weight = mean_w;
    out.max_weight = max_weight_;
    out.effective_sample_size = sum_w2_ > 0.0 ? sum_w_ * sum_w_ / sum_w2_ : 0.0;
    out.unsupported_mass = unsupported_sum_ / n;
    return out;
  }

 private:
  double RewardModel(const LoggedDecision& d, size_t coupon) const {
    return d.candidates[coupon].probability * reward_scale_;
  }

  // rhat(S) = 1 - prod_{c in S} (1 - p_c) (times the order value scale): the chance that at
  // least one coupon of the slate is redeemed if each is redeemed independently with its
  // model p. A one-coupon slate is exactly p (not 1 - (1 - p), which rounds), so one-coupon
  // logs keep their results bit for bit.
  double SlateRewardModel(const LoggedDecision& d, absl::Span<const size_t> slate) const {
    if (slate.empty()) return 0.0;
    if (slate.size() == 1) return RewardModel(d, slate[0]);
    double none = 1.0;
    for (size_t c : slate) none *= 1.0 - d.candidates[c].probability;
    return (1.0 - none) * reward_scale_;
  }

  bool IsGreedyTarget() const {
    return options_.target.kind == TargetPolicy::Kind::kExploration &&
           options_.target.exploration.kind == core::ExplorationPolicy::Kind::kGreedy;
  }

  const OpeOptions& options_;
  const double reward_scale_;
  OpeResult result_;
  absl::flat_hash_set<std::string> ids_;
  CoMoments reward_;    // (r, unused)
  CoMoments weighted_;  // (w r, w)
  CoMoments dr_;        // (DR term, DM term)
  double max_weight_ = 0.0;
  double sum_w_ = 0.0, sum_w2_ = 0.0;
  double unsupported_sum_ = 0.0;
};

}  // namespace

absl::StatusOr<OpeResult> EvaluateOffPolicy(absl::Span<const LoggedDecision> decisions,
                                            const OpeOptions& options) {
  COUPOND_RETURN_IF_ERROR(ValidateOptions(options));
  OrderValueMean order_value(options);
  for (size_t i = 0; i < decisions.size(); ++i) {
    if (absl::Status s = ValidateLoggedDecision(decisions[i]); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("decisions[", i, "] ('", decisions[i].decision_id, "'): ", s.message()));
    }
    order_value.Add(decisions[i]);
  }
  Accumulator acc(options, order_value.mean());
  for (size_t i = 0; i < decisions.size(); ++i) {
    if (absl::Status s = acc.Add(decisions[i]); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("decisions[", i, "] ('", decisions[i].decision_id,
                                                 "'): ", s.message()));
    }
  }
  return acc.Finish();
}

absl::StatusOr<OpeResult> EvaluateDecisionLog(const std::string& path, const OpeOptions& options) {
  COUPOND_RETURN_IF_ERROR(ValidateOptions(options));
  LoggedDecision d;
  double mean_order_value = 0.0;
  if (options.reward == OpeReward::kOrderValue) {
    COUPOND_ASSIGN_OR_RETURN(std::unique_ptr<DecisionLogReader> reader,
                             DecisionLogReader::Open(path));
    OrderValueMean order_value(options);
    while (true) {
      COUPOND_ASSIGN_OR_RETURN(bool more, reader->Next(&d));
      if (!more) break;
      order_value.Add(d);
    }
    mean_order_value = order_value.mean();
  }
  COUPOND_ASSIGN_OR_RETURN(std::unique_ptr<DecisionLogReader> reader,
                           DecisionLogReader::Open(path));
  Accumulator acc(options, mean_order_value);
  while (true) {
    COUPOND_ASSIGN_OR_RETURN(bool more, reader->Next(&d));
    if (!more) break;
    if (absl::Status s = acc.Add(d); !s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat(reader->name(), ":", reader->line(), ": ", s.message()));
    }
  }
  return acc.Finish();
}

}  // namespace coupond::analysis
