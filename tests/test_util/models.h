#ifndef COUPOND_TESTS_TEST_UTIL_MODELS_H_
#define COUPOND_TESTS_TEST_UTIL_MODELS_H_

// Small hand-made models and a double-precision reference scorer for tests.

#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/model.h"

namespace coupond::testing {

// A model with `users` users ("u0".."u{n-1}") and `coupons` coupons ("c0".."c{m-1}") whose
// numbers are simple deterministic functions of the indices (no RNG), all coupons active.
inline core::ModelData TinyModel(uint32_t users, uint32_t coupons, uint32_t dim) {
  core::ModelData m;
  m.dimension = dim;
  m.global_bias = -1.25;
  m.description = "tiny test model";
  for (uint32_t u = 0; u < users; ++u) {
    m.user_ids.push_back(absl::StrCat("u", u));
    m.user_bias.push_back(0.1f * static_cast<float>(u % 7) - 0.3f);
    for (uint32_t k = 0; k < dim; ++k) {
      m.user_factors.push_back(std::sin(0.37f * static_cast<float>(u * dim + k + 1)));
    }
  }
  for (uint32_t c = 0; c < coupons; ++c) {
    m.coupon_ids.push_back(absl::StrCat("c", c));
    m.coupon_bias.push_back(0.05f * static_cast<float>(c % 11) - 0.2f);
    for (uint32_t k = 0; k < dim; ++k) {
      m.coupon_factors.push_back(std::cos(0.23f * static_cast<float>(c * dim + k + 3)));
    }
    core::CouponAttributes a;
    a.face_value = 5.0 + c;
    m.coupon_attributes.push_back(a);
  }
  return m;
}

// p(u, c) computed in double, straight from the definition.
inline double ReferenceLogit(const core::ModelData& m, int user_row, uint32_t coupon_row) {
  double z = m.global_bias + m.coupon_bias[coupon_row];
  if (user_row >= 0) {
    z += m.user_bias[user_row];
    for (uint32_t k = 0; k < m.dimension; ++k) {
      z += double{m.user_factors[size_t(user_row) * m.dimension + k]} *
           double{m.coupon_factors[size_t{coupon_row} * m.dimension + k]};
    }
  }
  return z;
}
inline double ReferenceProbability(const core::ModelData& m, int user_row, uint32_t coupon_row) {
  return 1.0 / (1.0 + std::exp(-ReferenceLogit(m, user_row, coupon_row)));
}

}  // namespace coupond::testing

#endif  // COUPOND_TESTS_TEST_UTIL_MODELS_H_
