#ifndef COUPOND_TESTS_TEST_UTIL_EXTREME_VALUES_H_
#define COUPOND_TESTS_TEST_UTIL_EXTREME_VALUES_H_

// The extreme inputs every bounded numeric request field must refuse (issue 15: 1e308 in a
// value_weight once came back as "Infinity"). No double field's range reaches 1e13, so every
// value here is outside every double range: huge magnitudes of both signs, the largest
// double and float, subnormals, NaN, the infinities, and a plain negative.

#include <cstdint>
#include <limits>
#include <vector>

namespace coupond::testing {

inline std::vector<double> ExtremeDoubles() {
  using L = std::numeric_limits<double>;
  return {1e308,
          -1e308,
          L::max(),
          L::lowest(),
          static_cast<double>(std::numeric_limits<float>::max()),
          -static_cast<double>(std::numeric_limits<float>::max()),
          L::denorm_min(),   // 4.9e-324, subnormal
          1e-310,            // subnormal
          -L::denorm_min(),
          L::quiet_NaN(),
          -L::quiet_NaN(),
          L::infinity(),
          -L::infinity(),
          -1.0,
          1e13};
}

// Out of range for every int64 field that counts or dates something (each is >= 0 and at most
// 10^12, or a time up to year 9999).
inline std::vector<int64_t> ExtremeInt64s() {
  using L = std::numeric_limits<int64_t>;
  return {-1, L::min(), L::max(), 1'000'000'000'000'000};
}

}  // namespace coupond::testing

#endif  // COUPOND_TESTS_TEST_UTIL_EXTREME_VALUES_H_
