#include "core/pacing.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace coupond::core {
namespace {

bool NonNegativeFinite(double v) { return std::isfinite(v) && v >= 0; }

absl::Status Invalid(const char* field, double v, const char* what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", v, " ", what));
}

}  // namespace

absl::StatusOr<double> PaceBudgetPrice(const PacingInput& input, const PacingOptions& options) {
  if (!NonNegativeFinite(input.budget_price)) return Invalid("budget_price", input.budget_price, "is not a finite value >= 0");
  if (!NonNegativeFinite(input.planned_spend)) return Invalid("planned_spend", input.planned_spend, "is not a finite value >= 0");
  if (!NonNegativeFinite(input.observed_spend)) return Invalid("observed_spend", input.observed_spend, "is not a finite value >= 0");
  if (!(std::isfinite(options.gain) && options.gain > 0)) return Invalid("gain", options.gain, "is not a finite value > 0");
  if (!(std::isfinite(options.max_step) && options.max_step >= 1)) return Invalid("max_step", options.max_step, "is not a finite value >= 1");
  if (!(std::isfinite(options.floor_price) && options.floor_price > 0)) return Invalid("floor_price", options.floor_price, "is not a finite value > 0");
  if (input.planned_spend <= 0) return input.budget_price;
  const double error = input.observed_spend / input.planned_spend - 1.0;
  const double factor = std::clamp(std::exp(options.gain * error), 1.0 / options.max_step, options.max_step);
  if (input.budget_price == 0.0) return error > 0 ? options.floor_price : 0.0;
  return input.budget_price * factor;
}

}  // namespace coupond::core
