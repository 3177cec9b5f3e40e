#ifndef COUPOND_CORE_VECTOR_MATH_H_
#define COUPOND_CORE_VECTOR_MATH_H_

// Element-wise math on float arrays, compiled for every SIMD target Highway supports and
// dispatched at run time (like core/kernel.h). Thread-safe: functions only read their
// inputs and write their outputs.

#include <cstddef>

namespace coupond::core {

// out[i] = 1 / (1 + exp(-z[i])) in float for i in [0, n), computed without overflow for any
// finite z (exp is only taken of -|z|); max error a few ULP. NaN in gives NaN out; +-inf give
// 1 and 0. The value of an element depends only on z[i], never on n or on its position, so a
// block of values and the same values one at a time give identical bits.
// REQUIRES: z and out hold n floats (any alignment); out may equal z (in place), otherwise
// the ranges must not overlap.
void SigmoidFloat(const float* z, size_t n, float* out);

// Double-precision scalar reference of SigmoidFloat, for tests.
double ReferenceSigmoid(double z);

}  // namespace coupond::core

#endif  // COUPOND_CORE_VECTOR_MATH_H_
