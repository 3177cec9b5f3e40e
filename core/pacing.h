#ifndef COUPOND_CORE_PACING_H_
#define COUPOND_CORE_PACING_H_

// Budget pacing: a feedback controller on a campaign's budget price lambda (the price of one
// unit of expected spend that Decide subtracts, p (w - lambda c) - mu).
//
// The batch solve sets lambda so that the plan spends the budget in expectation. Online,
// reality drifts (the model is off, traffic differs from the plan), so the price is
// corrected from observed spend against the plan's spend-to-date:
//
//   error    e = observed / planned - 1             (> 0: spending too fast)
//   lambda'  = lambda * exp(gain * e), with exp(gain * e) clamped to [1/max_step, max_step]
//
// Multiplicative (the price is a scale: a 10% overspend moves it by the same factor whether
// it is 0.01 or 10), proportional on the cumulative error, which makes it an integral
// controller on the spend rate: a persistent overspend keeps raising the price until the
// cumulative spend is back on plan. The clamp bounds how far one update moves (stability
// under a noisy early estimate). A price of 0 (the budget did not bind in the plan) cannot
// grow multiplicatively: on overspend it restarts from `floor_price`.
// With nothing planned yet (planned <= 0), the price is left unchanged.

#include "absl/status/statusor.h"

namespace coupond::core {

struct PacingOptions {
  // Response to the relative error. Default 1.0 (a 10% overspend raises lambda ~10.5%).
  double gain = 1.0;
  // Largest factor one update may move lambda by (either way). Default 2.
  double max_step = 2.0;
  // Where a zero price restarts when spend runs ahead of plan. Default 1e-3.
  double floor_price = 1e-3;
};

struct PacingInput {
  double budget_price = 0.0;    // current lambda, finite >= 0
  double planned_spend = 0.0;   // the plan's spend to date, finite >= 0
  double observed_spend = 0.0;  // spend observed to date, finite >= 0
};

// The new budget price. InvalidArgument naming the field for a negative or non-finite
// input or option (gain > 0, max_step >= 1, floor_price > 0).
absl::StatusOr<double> PaceBudgetPrice(const PacingInput& input, const PacingOptions& options = {});

}  // namespace coupond::core

#endif  // COUPOND_CORE_PACING_H_
