#ifndef COUPOND_TESTS_TEST_UTIL_OPE_SIMULATION_H_
#define COUPOND_TESTS_TEST_UTIL_OPE_SIMULATION_H_

// A simulated platform with known truth for off-policy evaluation, shared by the OPE tests
// (tests/ope_test.cc: 100 repetitions per scenario) and the coverage study
// (bench/ope_coverage_bench.cc: 1,000). Contexts have candidate coupons with true
// redemption probabilities q; the model knows them only approximately (p = q perturbed by up
// to 0.06, so the doubly robust estimator is not trivially exact); a logging policy explores;
// outcomes are Bernoulli(q). The target policy's true value is computed exactly from q.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "analysis/decision_log.h"
#include "analysis/ope.h"
#include "core/exploration.h"
#include "core/random.h"

namespace coupond::analysis::ope_sim {

inline core::ExplorationPolicy Softmax(double t) {
  core::ExplorationPolicy p;
  p.kind = core::ExplorationPolicy::Kind::kSoftmax;
  p.temperature = t;
  return p;
}
inline core::ExplorationPolicy EpsilonGreedy(double e) {
  core::ExplorationPolicy p;
  p.kind = core::ExplorationPolicy::Kind::kEpsilonGreedy;
  p.epsilon = e;
  return p;
}
inline TargetPolicy Target(const core::ExplorationPolicy& p) {
  TargetPolicy t;
  t.exploration = p;
  return t;
}
inline TargetPolicy Target(TargetPolicy::Kind kind) {
  TargetPolicy t;
  t.kind = kind;
  return t;
}

// ---- The synthetic platform --------------------------------------------------------------

struct Context {
  std::vector<double> q;      // true redemption probabilities
  std::vector<double> p;      // the model's, q perturbed
  std::vector<double> score;  // p (w - lambda c) with w = 1, lambda = 0.4
};

inline constexpr double kMeanOrderValue = 50.0;  // order values ~ U(20, 80)

inline std::vector<Context> MakePlatform(core::SplitMix64& rng, int num_contexts) {
  std::vector<Context> contexts(static_cast<size_t>(num_contexts));
  for (Context& c : contexts) {
    const size_t n = 1 + rng.Below(5);
    for (size_t j = 0; j < n; ++j) {
      const double q = 0.02 + 0.38 * rng.Uniform();
      const double p = std::clamp(q + 0.06 * (2.0 * rng.Uniform() - 1.0), 0.001, 0.999);
      const double face_value = 3.0 * rng.Uniform();  // above 2.5 the score is negative
      c.q.push_back(q);
      c.p.push_back(p);
      c.score.push_back(p * (1.0 - 0.4 * face_value));
    }
  }
  return contexts;
}

// The exact value of `target` on the platform (contexts equally likely): sum_a pi(a) q_a,
// times the mean order value for the order value reward.
inline double TrueValue(const std::vector<Context>& contexts, const TargetPolicy& target,
                 OpeReward reward) {
  double total = 0.0;
  for (const Context& c : contexts) {
    LoggedDecision d;
    for (size_t j = 0; j < c.q.size(); ++j) {
      d.candidates.push_back({absl::StrCat("c", j), c.p[j], c.score[j], 0.0});
    }
    const std::vector<double> pi = *TargetProbabilities(d, target);
    for (size_t j = 0; j < c.q.size(); ++j) total += pi[j] * c.q[j];
  }
  const double scale = reward == OpeReward::kOrderValue ? kMeanOrderValue : 1.0;
  return scale * total / static_cast<double>(contexts.size());
}

inline std::vector<LoggedDecision> SimulateLog(const std::vector<Context>& contexts,
                                        const core::ExplorationPolicy& logging, int decisions,
                                        core::SplitMix64& rng) {
  // The logging distribution and the candidate list depend only on the context.
  std::vector<std::vector<double>> mus;
  std::vector<std::vector<LoggedCandidate>> candidates;
  for (size_t k = 0; k < contexts.size(); ++k) {
    const Context& c = contexts[k];
    mus.push_back(*core::ActionProbabilities(c.score, logging));
    candidates.emplace_back();
    for (size_t j = 0; j < c.q.size(); ++j) {
      candidates.back().push_back({absl::StrCat("k", k, "-c", j), c.p[j], c.score[j], mus[k][j]});
    }
  }
  std::vector<LoggedDecision> log;
  log.reserve(static_cast<size_t>(decisions));
  for (int i = 0; i < decisions; ++i) {
    const size_t k = rng.Below(contexts.size());
    const Context& c = contexts[k];
    const std::vector<double>& mu = mus[k];
    const size_t a = core::SampleAction(mu, rng.Uniform());
    LoggedDecision d;
    d.decision_id = absl::StrCat("d", i);
    d.unix_seconds = 1700000000 + i;
    d.user_key = absl::StrCat("u", k);
    d.campaign_id = "sim";
    d.arm = "model";
    d.model_version = 3;
    d.prices_sequence = 1;
    d.candidates = candidates[k];
    d.propensity = mu[a];
    const bool redeemed = a < c.q.size() && rng.Uniform() < c.q[a];
    if (a < c.q.size()) d.chosen_coupon_id = d.candidates[a].coupon_id;
    d.redeemed = redeemed;
    if (redeemed) d.order_value = 20.0 + 60.0 * rng.Uniform();
    log.push_back(std::move(d));
  }
  return log;
}

inline bool Covers(const OpeEstimate& e, double truth) { return e.ci_low <= truth && truth <= e.ci_high; }

struct Coverage {
  int ips = 0, snips = 0, dr = 0, logging_covers_target = 0;
  double ips_half_width = 0, dr_half_width = 0;
  std::vector<double> ips_error, dr_error;
};

// `repetitions` seeded repetitions (seed + rep * 1000003): a fresh platform of 200 contexts,
// 2,000 logged decisions, and whether each estimator's 95% interval covers the true value.
inline absl::StatusOr<Coverage> RunCoverage(const core::ExplorationPolicy& logging,
                                            const TargetPolicy& target, OpeReward reward,
                                            int repetitions, uint64_t seed) {
  Coverage cov;
  for (int rep = 0; rep < repetitions; ++rep) {
    core::SplitMix64 rng(seed + static_cast<uint64_t>(rep) * 1000003);
    const std::vector<Context> contexts = MakePlatform(rng, 200);
    const double truth = TrueValue(contexts, target, reward);
    const std::vector<LoggedDecision> log = SimulateLog(contexts, logging, 2000, rng);
    OpeOptions options;
    options.target = target;
    options.reward = reward;
    absl::StatusOr<OpeResult> r = EvaluateOffPolicy(log, options);
    if (!r.ok()) return r.status();
    cov.ips += Covers(r->ips, truth);
    cov.snips += Covers(r->snips, truth);
    cov.dr += Covers(r->dr, truth);
    cov.logging_covers_target += Covers(r->logging, truth);
    cov.ips_half_width += (r->ips.ci_high - r->ips.value) / repetitions;
    cov.dr_half_width += (r->dr.ci_high - r->dr.value) / repetitions;
    cov.ips_error.push_back(r->ips.value - truth);
    cov.dr_error.push_back(r->dr.value - truth);
  }
  return cov;
}

}  // namespace coupond::analysis::ope_sim

#endif  // COUPOND_TESTS_TEST_UTIL_OPE_SIMULATION_H_
