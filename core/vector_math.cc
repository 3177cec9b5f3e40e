// Highway's foreach_target re-includes this file once per SIMD target; the HWY_ONCE part at
// the bottom holds the target-independent code and the dispatch table.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "core/vector_math.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

#ifndef COUPOND_CORE_VECTOR_MATH_CC_ONCE_
#define COUPOND_CORE_VECTOR_MATH_CC_ONCE_
#include <cmath>
#include <cstring>

#include "core/vector_math.h"
#endif  // COUPOND_CORE_VECTOR_MATH_CC_ONCE_

HWY_BEFORE_NAMESPACE();
namespace coupond::core {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

HWY_INLINE hn::Vec<hn::ScalableTag<float>> SigmoidVec(hn::ScalableTag<float> d,
                                                       hn::Vec<hn::ScalableTag<float>> z) {
  const auto one = hn::Set(d, 1.0f);
  // e = exp(-|z|) in (0, 1]: no overflow; p = 1/(1+e) for z >= 0, e/(1+e) otherwise.
  const auto e = hn::Exp(d, hn::Neg(hn::Abs(z)));
  const auto inv = hn::Div(one, hn::Add(one, e));
  const auto p = hn::IfThenElse(hn::Ge(z, hn::Zero(d)), inv, hn::Mul(e, inv));
  // Exp does not promise to propagate NaN: pass NaN through explicitly.
  return hn::IfThenElse(hn::IsNaN(z), z, p);
}

void SigmoidFloatImpl(const float* z, size_t n, float* out) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(SigmoidVec(d, hn::LoadU(d, z + i)), d, out + i);
  }
  if (i < n) {
    // Tail through a padded buffer: the lanes are independent, so the bits match the
    // full-vector path.
    HWY_ALIGN float buf[hn::MaxLanes(hn::ScalableTag<float>())] = {};
    std::memcpy(buf, z + i, (n - i) * sizeof(float));
    hn::Store(SigmoidVec(d, hn::Load(d, buf)), d, buf);
    std::memcpy(out + i, buf, (n - i) * sizeof(float));
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace coupond::core
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace coupond::core {

HWY_EXPORT(SigmoidFloatImpl);

void SigmoidFloat(const float* z, size_t n, float* out) {
  if (n == 0) return;
  HWY_DYNAMIC_DISPATCH(SigmoidFloatImpl)(z, n, out);
}

double ReferenceSigmoid(double z) {
  if (std::isnan(z)) return z;
  return z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
}

}  // namespace coupond::core
#endif  // HWY_ONCE
