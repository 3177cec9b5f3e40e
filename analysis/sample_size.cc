#include "analysis/sample_size.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "analysis/stats.h"

namespace coupond::analysis {
namespace {

// Checks alpha, power and arms, and fills the quantiles of `out`.
absl::Status CommonInputs(double alpha, double power, int arms, SampleSize* out) {
  if (!(alpha > 0.0 && alpha < 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("alpha must be in (0, 1), got ", alpha));
  }
  if (!(power > 0.0 && power < 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("power must be in (0, 1), got ", power));
  }
  if (arms < 2 || arms > 1000) {
    return absl::InvalidArgumentError(absl::StrCat("arms must be in [2, 1000], got ", arms));
  }
  out->comparisons = arms - 1;
  out->alpha_per_comparison = alpha / out->comparisons;
  out->z_alpha = NormalQuantile(1.0 - 0.5 * out->alpha_per_comparison);
  out->z_beta = NormalQuantile(power);
  return absl::OkStatus();
}

absl::StatusOr<SampleSize> Finish(double exact, int arms, SampleSize out) {
  if (!std::isfinite(exact) || exact > 1e15) {
    return absl::InvalidArgumentError(
        absl::StrCat("the effect is too small to detect: ", exact, " units per arm"));
  }
  out.exact = exact;
  out.per_arm = static_cast<int64_t>(std::ceil(exact));
  out.total = out.per_arm * arms;
  return out;
}

}  // namespace

absl::StatusOr<SampleSize> ProportionSampleSize(const ProportionSampleSizeOptions& o) {
  SampleSize out;
  if (absl::Status s = CommonInputs(o.alpha, o.power, o.arms, &out); !s.ok()) return s;
  const double p0 = o.baseline_rate;
  if (!(p0 > 0.0 && p0 < 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("baseline_rate must be in (0, 1), got ", p0));
  }
  const bool has_abs = o.absolute_lift != 0.0, has_rel = o.relative_lift != 0.0;
  if (has_abs == has_rel) {
    return absl::InvalidArgumentError(
        "give exactly one non-zero effect: absolute_lift or relative_lift");
  }
  if (!std::isfinite(o.absolute_lift) || !std::isfinite(o.relative_lift)) {
    return absl::InvalidArgumentError("absolute_lift and relative_lift must be finite");
  }
  const double p1 = has_abs ? p0 + o.absolute_lift : p0 * (1.0 + o.relative_lift);
  if (!(p1 > 0.0 && p1 < 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the treatment rate ", p1, " (baseline_rate plus the lift) must be in (0, 1)"));
  }
  out.p0 = p0;
  out.p1 = p1;
  const double pbar = 0.5 * (p0 + p1);
  const double term = out.z_alpha * std::sqrt(2.0 * pbar * (1.0 - pbar)) +
                      out.z_beta * std::sqrt(p0 * (1.0 - p0) + p1 * (1.0 - p1));
  const double d = p1 - p0;
  return Finish(term * term / (d * d), o.arms, out);
}

absl::StatusOr<SampleSize> MeanSampleSize(const MeanSampleSizeOptions& o) {
  SampleSize out;
  if (absl::Status s = CommonInputs(o.alpha, o.power, o.arms, &out); !s.ok()) return s;
  if (!(o.sd > 0.0) || !std::isfinite(o.sd)) {
    return absl::InvalidArgumentError(absl::StrCat("sd must be finite and > 0, got ", o.sd));
  }
  if (o.delta == 0.0 || !std::isfinite(o.delta)) {
    return absl::InvalidArgumentError(
        absl::StrCat("delta must be finite and non-zero, got ", o.delta));
  }
  const double z = out.z_alpha + out.z_beta;
  return Finish(2.0 * o.sd * o.sd * z * z / (o.delta * o.delta), o.arms, out);
}

}  // namespace coupond::analysis
