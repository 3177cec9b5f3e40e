// Highway's foreach_target re-includes this file once per SIMD target; the HWY_ONCE part at
// the bottom holds the target-independent code and the dispatch tables.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "core/kernel.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#ifndef COUPOND_CORE_KERNEL_CC_ONCE_
#define COUPOND_CORE_KERNEL_CC_ONCE_
#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/kernel.h"
#endif

HWY_BEFORE_NAMESPACE();
namespace coupond::core {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Rows are padded to FactorMatrix::kLanes floats, so cap vectors at that width.
using D = hn::CappedTag<float, FactorMatrix::kLanes>;

// Dot product of the padded user vector `x` with one padded row; `stride` is a multiple of
// the vector length. Two accumulators hide the FMA latency.
HWY_INLINE float DotPadded(D d, const float* HWY_RESTRICT x, const float* HWY_RESTRICT row,
                           size_t stride) {
  const size_t n = hn::Lanes(d);
  auto acc0 = hn::Zero(d);
  auto acc1 = hn::Zero(d);
  size_t j = 0;
  for (; j + 2 * n <= stride; j += 2 * n) {
    acc0 = hn::MulAdd(hn::Load(d, x + j), hn::Load(d, row + j), acc0);
    acc1 = hn::MulAdd(hn::Load(d, x + j + n), hn::Load(d, row + j + n), acc1);
  }
  for (; j < stride; j += n) {
    acc0 = hn::MulAdd(hn::Load(d, x + j), hn::Load(d, row + j), acc0);
  }
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(acc0, acc1)));
}

// `rows` may be null, meaning rows 0..count-1.
void DotRowsPadded(const float* HWY_RESTRICT x, const float* HWY_RESTRICT base,
                   size_t stride, const uint32_t* HWY_RESTRICT rows, size_t count,
                   float* HWY_RESTRICT out) {
  const D d;
  if (rows == nullptr) {
    for (size_t i = 0; i < count; ++i) out[i] = DotPadded(d, x, base + i * stride, stride);
  } else {
    for (size_t i = 0; i < count; ++i) {
      out[i] = DotPadded(d, x, base + size_t{rows[i]} * stride, stride);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace coupond::core
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace coupond::core {

HWY_EXPORT(DotRowsPadded);

namespace {

// The user vector copied into the padded, aligned layout of the matrix rows. Small
// dimensions (the common case) stay on the stack; the request path does not allocate.
class PaddedVector {
 public:
  PaddedVector(const float* x, const FactorMatrix& m) {
    float* dst = inline_;
    if (m.stride() > kInlineFloats) {
      heap_ = hwy::AllocateAligned<float>(m.stride());
      dst = heap_.get();
    }
    std::memcpy(dst, x, m.dim() * sizeof(float));
    std::memset(dst + m.dim(), 0, (m.stride() - m.dim()) * sizeof(float));
    data_ = dst;
  }
  const float* data() const { return data_; }

 private:
  static constexpr size_t kInlineFloats = 512;
  alignas(64) float inline_[kInlineFloats];
  hwy::AlignedFreeUniquePtr<float[]> heap_;
  const float* data_ = nullptr;
};

}  // namespace

absl::StatusOr<FactorMatrix> FactorMatrix::Create(absl::Span<const float> rows,
                                                  size_t num_rows, size_t dim) {
  if (dim == 0) return absl::InvalidArgumentError("FactorMatrix: dimension must be >= 1");
  if (rows.size() != num_rows * dim) {
    return absl::InvalidArgumentError(absl::StrCat("FactorMatrix: ", rows.size(),
                                                   " values for ", num_rows, " rows of ", dim));
  }
  FactorMatrix m;
  m.rows_ = num_rows;
  m.dim_ = dim;
  m.stride_ = (dim + kLanes - 1) / kLanes * kLanes;
  // Allocate at least one row so data_ is never null (an empty matrix is still valid).
  const size_t total = std::max<size_t>(num_rows, 1) * m.stride_;
  m.data_ = hwy::AllocateAligned<float>(total);
  if (m.data_ == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("FactorMatrix: cannot allocate ", total * sizeof(float), " bytes"));
  }
  std::memset(m.data_.get(), 0, total * sizeof(float));
  for (size_t i = 0; i < num_rows; ++i) {
    std::memcpy(m.data_.get() + i * m.stride_, rows.data() + i * dim, dim * sizeof(float));
  }
  return m;
}

void DotAll(const float* x, const FactorMatrix& m, float* out) {
  if (m.rows() == 0) return;
  const PaddedVector px(x, m);
  HWY_DYNAMIC_DISPATCH(DotRowsPadded)(px.data(), m.row(0), m.stride(), nullptr, m.rows(), out);
}

void DotRows(const float* x, const FactorMatrix& m, absl::Span<const uint32_t> rows,
             float* out) {
  if (rows.empty()) return;
  const PaddedVector px(x, m);
  HWY_DYNAMIC_DISPATCH(DotRowsPadded)(px.data(), m.row(0), m.stride(), rows.data(),
                                      rows.size(), out);
}

const char* KernelTargetName() {
  // Highway orders targets best-first by bit position, and the dispatcher picks the best
  // target that is both compiled in and supported by this CPU: the first of this list.
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  return targets.empty() ? "none" : hwy::TargetName(targets.front());
}

}  // namespace coupond::core
#endif  // HWY_ONCE
