#ifndef COUPOND_COMMON_NUMERIC_BOUNDS_H_
#define COUPOND_COMMON_NUMERIC_BOUNDS_H_

// Range checks for the numbers a request carries. Every numeric request field has a
// documented finite range (proto comments, docs/api.md): bounded inputs are what makes every
// computed output finite (no Infinity or NaN can come out of sums and products of bounded
// terms), so a value outside its range is refused up front, as InvalidArgument naming the
// field, e.g. "campaign.coupons[0].value_weight: 1e+308 is out of range [0, 1e+06]".

#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace coupond::common {

// OK when `value` is finite, in [lo, hi] and not subnormal; InvalidArgument naming `field`
// otherwise. NaN, +-Inf and every value outside the range fail. Subnormals (nonzero values
// below 2.2e-308) fail too: no amount a campaign means is that small, and arithmetic on them
// takes a slow microcode path on x86 (up to ~100x per operation in the solver's loops).
// REQUIRES: lo <= hi, both finite.
inline absl::Status CheckDoubleRange(absl::string_view field, double value, double lo, double hi) {
  // Written so that NaN fails: every comparison with NaN is false.
  if (!(value >= lo && value <= hi)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", value, " is out of range [", lo, ", ", hi, "]"));
  }
  if (std::fpclassify(value) == FP_SUBNORMAL) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": ", value, " is subnormal; use 0 or a value of at least ",
        std::numeric_limits<double>::min()));
  }
  return absl::OkStatus();
}

// OK when lo <= value <= hi; InvalidArgument naming `field` otherwise.
inline absl::Status CheckIntRange(absl::string_view field, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", value, " is out of range [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
}

// The largest time a request may name: 9999-12-31T23:59:59Z, the last second RFC 3339 (and
// absl::FormatTime's four-digit years) can write. Generous for any campaign, and far from
// int64 overflow when durations are added to it.
inline constexpr int64_t kMaxRequestUnixSeconds = 253'402'300'799;

}  // namespace coupond::common

#endif  // COUPOND_COMMON_NUMERIC_BOUNDS_H_
