#include "cli/ope_commands.h"

#include <cmath>
#include <cstdio>

#include "absl/strings/str_format.h"
#include "analysis/ope.h"
#include "cli/cli_util.h"

namespace coupond::couponctl {
namespace {

void PrintEstimate(const char* name, const analysis::OpeEstimate& e) {
  if (std::isnan(e.value)) {
    std::printf("  %-28s %12s\n", name, "undefined");
    return;
  }
  std::printf("  %-28s %12.6g   95%% CI [%.6g, %.6g]   (se %.3g)\n", name, e.value, e.ci_low,
              e.ci_high, e.std_error);
}

}  // namespace

int Ope(const OpeFlags& flags) {
  if (flags.decisions.empty()) return Usage("ope: --decisions is required");
  analysis::OpeOptions options;
  absl::StatusOr<analysis::TargetPolicy> target = analysis::ParseTargetPolicy(flags.policy);
  if (!target.ok()) return Usage(std::string(target.status().message()).c_str());
  options.target = *target;
  if (flags.reward == "redeemed") {
    options.reward = analysis::OpeReward::kRedeemed;
  } else if (flags.reward == "order_value") {
    options.reward = analysis::OpeReward::kOrderValue;
  } else {
    return Usage("ope: --reward is redeemed or order_value");
  }
  if (flags.missing_outcome == "drop") {
    options.missing_outcome = analysis::MissingOutcome::kDrop;
  } else if (flags.missing_outcome == "zero") {
    options.missing_outcome = analysis::MissingOutcome::kZero;
  } else {
    return Usage("ope: --missing_outcome is drop or zero");
  }
  options.arm = flags.arm;

  absl::StatusOr<analysis::OpeResult> r = analysis::EvaluateDecisionLog(flags.decisions, options);
  if (!r.ok()) return Fail(r.status());

  std::printf("decision log: %s\n", flags.decisions.c_str());
  std::printf("  %zu decisions read, %zu used", r->rows, r->used);
  if (!options.arm.empty())
    std::printf(", %zu in other arms than '%s'", r->skipped_other_arm, options.arm.c_str());
  if (r->skipped_truncated > 0)
    std::printf(", %zu left out (candidate list truncated by the logger)", r->skipped_truncated);
  if (r->dropped_missing_outcome > 0)
    std::printf(", %zu dropped (no outcome)", r->dropped_missing_outcome);
  if (r->zeroed_missing_outcome > 0)
    std::printf(", %zu without an outcome counted as 0", r->zeroed_missing_outcome);
  std::printf("\n");
  if (r->slate_decisions > 0) {
    std::printf(
        "  %zu of them from campaigns that may give several coupons (max_slots > 1): evaluated "
        "as slates (weight pi(slate) / slate_propensity, reward model 1 - prod(1 - p))\n",
        r->slate_decisions);
  }
  std::printf("target policy: %s   reward: %s",
              analysis::FormatTargetPolicy(options.target).c_str(), flags.reward.c_str());
  if (options.reward == analysis::OpeReward::kOrderValue) {
    std::printf(" (reward model: p x mean order value %.6g of the redeemed rows)",
                r->mean_order_value);
  } else {
    std::printf(" (reward model: the logged model probability p)");
  }
  std::printf("\n\nvalue per decision:\n");
  PrintEstimate("logging policy (on-policy)", r->logging);
  PrintEstimate("target, IPS", r->ips);
  PrintEstimate("target, SNIPS", r->snips);
  PrintEstimate("target, doubly robust", r->dr);
  PrintEstimate("target, reward model only", r->direct);
  std::printf(
      "\nimportance weights: mean %.4g (expect about 1), max %.4g, effective sample size %.1f of "
      "%zu\n",
      r->mean_weight, r->max_weight, r->effective_sample_size, r->used);
  if (r->decisions_with_unsupported_mass > 0) {
    std::printf(
        "warning: the target puts %.3g of its mass (on %zu decisions) on actions the logging "
        "policy never took; IPS and DR are biased low for them (restrict with --arm?)\n",
        r->unsupported_mass, r->decisions_with_unsupported_mass);
  }
  if (r->decisions_with_unknown_support > 0) {
    std::printf(
        "note: %zu decisions come from a stochastic policy giving several coupons; the log has "
        "only the logged slate's probability, so unsupported target mass there is unknown (a "
        "mean weight below 1 hints at it)\n",
        r->decisions_with_unknown_support);
  }
  if (r->effective_sample_size < 0.1 * static_cast<double>(r->used)) {
    std::printf(
        "warning: effective sample size below 10%% of the decisions: the intervals are "
        "optimistic\n");
  }
  return 0;
}

}  // namespace coupond::couponctl
