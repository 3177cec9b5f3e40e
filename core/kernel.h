#ifndef COUPOND_CORE_KERNEL_H_
#define COUPOND_CORE_KERNEL_H_

// The scoring kernel: dot products of one user vector against many coupon rows, compiled
// for every SIMD target Highway supports and dispatched at run time (AVX-512 where the CPU
// has it, AVX2/SSE4 or scalar elsewhere), so one binary runs well on any x86-64.

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "hwy/aligned_allocator.h"

namespace coupond::core {

// A row-major float32 matrix in the kernel's layout: every row starts on a 64-byte boundary
// and is padded with zeros to a multiple of kFactorMatrixLanes floats, so the kernel loads
// whole vectors with no tail handling. Built once (at model load) and immutable after.
// Thread-safe for concurrent reads.
class FactorMatrix {
 public:
  // Row padding unit in floats (one 512-bit vector).
  static constexpr size_t kLanes = 16;

  // Copies `rows` (num_rows x dim, row-major, dense) into the padded layout.
  // InvalidArgument if dim == 0 or rows.size() != num_rows * dim.
  static absl::StatusOr<FactorMatrix> Create(absl::Span<const float> rows, size_t num_rows,
                                             size_t dim);

  FactorMatrix() = default;
  FactorMatrix(FactorMatrix&&) = default;
  FactorMatrix& operator=(FactorMatrix&&) = default;

  size_t rows() const { return rows_; }
  size_t dim() const { return dim_; }
  // Distance between consecutive rows, in floats (dim rounded up to kLanes).
  size_t stride() const { return stride_; }
  const float* row(size_t i) const { return data_.get() + i * stride_; }
  // Bytes held by the matrix, padding included.
  size_t memory_bytes() const { return rows_ * stride_ * sizeof(float); }

 private:
  size_t rows_ = 0;
  size_t dim_ = 0;
  size_t stride_ = 0;
  hwy::AlignedFreeUniquePtr<float[]> data_;
};

// out[i] = <x, m.row(i)> for every row i of `m`.
// REQUIRES: x points to m.dim() floats (any alignment); out to m.rows() floats.
void DotAll(const float* x, const FactorMatrix& m, float* out);

// out[j] = <x, m.row(rows[j])> for each j.
// REQUIRES: every rows[j] < m.rows(); x as for DotAll; out has rows.size() floats.
void DotRows(const float* x, const FactorMatrix& m, absl::Span<const uint32_t> rows,
             float* out);

// Name of the SIMD target the dispatcher picks on this CPU (e.g. "AVX3", "AVX2").
const char* KernelTargetName();

}  // namespace coupond::core

#endif  // COUPOND_CORE_KERNEL_H_
