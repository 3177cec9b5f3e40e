#ifndef COUPOND_CORE_KERNEL_H_
#define COUPOND_CORE_KERNEL_H_

// The scoring kernel: dot products of user vectors against many coupon rows, and the fused
// scoring epilogue (bias, sigmoid, top-k). Compiled for every SIMD target Highway supports
// and dispatched at run time (AVX-512 where the CPU has it, AVX2/SSE4/SSSE3 or emulated
// 128-bit elsewhere), so one binary runs well on any x86-64.
//
// All functions here are thread-safe: they only read their inputs and write their outputs.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "hwy/aligned_allocator.h"

namespace coupond::core {

// Coupon factors in the kernel's layout (the server's snapshot format), built once at model
// load and immutable after. Thread-safe for concurrent reads.
//
// Layout: rows are grouped into panels of kPanelRows consecutive rows (the last panel is
// padded with zero rows). A panel is stored column-major: dim() lines of kPanelRows floats,
// line j holding element j of the panel's 64 rows. Every panel and line starts on a
// 64-byte boundary. Why: one user against a panel is a sequence of broadcast(x[j]) x line
// FMAs whose accumulators ARE the panel's 64 dot products, so there is no horizontal
// reduction, no padding of `dim`, one sequential memory stream, and the bias/sigmoid/top-k
// epilogue works on whole vectors of logits. A B-user block reuses each line from
// registers/L1 across many users (a register-blocked GEMM micro-kernel). The price is that
// one isolated row is spread over dim() cache lines; DotRows/ScoreTopK gather for short
// row lists and scan whole panels for long ones.
class FactorMatrix {
 public:
  // Rows per panel.
  static constexpr size_t kPanelRows = 64;

  // Copies `rows` (num_rows x dim, row-major, dense) into the panel layout.
  // InvalidArgument if dim == 0, rows.size() != num_rows * dim, or num_rows >= 2^32.
  // ResourceExhausted if the allocation fails.
  static absl::StatusOr<FactorMatrix> Create(absl::Span<const float> rows, size_t num_rows,
                                             size_t dim);

  FactorMatrix() = default;
  FactorMatrix(FactorMatrix&&) = default;
  FactorMatrix& operator=(FactorMatrix&&) = default;

  size_t rows() const { return rows_; }
  size_t dim() const { return dim_; }
  size_t num_panels() const { return panels_; }
  // Panel p: dim() x kPanelRows floats; element (row p*kPanelRows + r, column j) is at
  // panel(p)[j * kPanelRows + r]. REQUIRES: p < num_panels().
  const float* panel(size_t p) const { return data_.get() + p * panel_floats(); }
  size_t panel_floats() const { return dim_ * kPanelRows; }
  // Element (row, col). REQUIRES: row < rows(), col < dim(). Slow; for tests and tools.
  float at(size_t row, size_t col) const {
    return panel(row / kPanelRows)[col * kPanelRows + row % kPanelRows];
  }
  // Bytes held by the matrix, padding included.
  size_t memory_bytes() const { return panels_ * panel_floats() * sizeof(float); }

 private:
  size_t rows_ = 0;
  size_t dim_ = 0;
  size_t panels_ = 0;
  hwy::AlignedFreeUniquePtr<float[]> data_;
};

// out[i] = <x, row i of m> for every row i of `m`.
// REQUIRES: x points to m.dim() floats (any alignment); out to m.rows() floats.
void DotAll(const float* x, const FactorMatrix& m, float* out);

// out[j] = <x, row rows[j] of m> for each j (any order, repeats allowed).
// REQUIRES: every rows[j] < m.rows(); x as for DotAll; out has rows.size() floats.
void DotRows(const float* x, const FactorMatrix& m, absl::Span<const uint32_t> rows,
             float* out);

// A block of users against every row: out[u * out_stride + i] = <x_u, row i of m> where
// x_u = x + u * x_stride.
// REQUIRES: x_stride >= m.dim(), out_stride >= m.rows(); x holds num_users such vectors
// and out num_users such rows (any alignment).
void DotBlock(const float* x, size_t num_users, size_t x_stride, const FactorMatrix& m,
              float* out, size_t out_stride);

// The rows ScoreTopK considers: every row of the matrix, or a list of distinct rows.
// A list may carry its own biases (bias[i] for rows[i]); then ScoreTopK's coupon_bias is
// not read and may be null. Spans must outlive the call.
struct CandidateRows {
  static CandidateRows All() { return CandidateRows{true, {}, {}}; }
  // REQUIRES: distinct rows, each < m.rows().
  static CandidateRows List(absl::Span<const uint32_t> rows) {
    return CandidateRows{false, rows, {}};
  }
  // REQUIRES: as above, and bias.size() == rows.size().
  static CandidateRows List(absl::Span<const uint32_t> rows, absl::Span<const float> bias) {
    return CandidateRows{false, rows, bias};
  }
  bool all = true;
  absl::Span<const uint32_t> rows;
  absl::Span<const float> bias;  // empty: coupon_bias[row]
};

struct ScoredRow {
  uint32_t row = 0;
  // offset + coupon_bias[row] + <x, row>, computed in float.
  float logit = 0.0f;
  // sigmoid(logit) in float (max error a few ULP); NaN if logit is NaN.
  float probability = 0.0f;
};

// Order at equal logits: true when row `a` ranks before row `b`. Must be a strict total
// order on rows (e.g. by coupon id). Called only on exact ties.
using RowTieBreak = absl::FunctionRef<bool(uint32_t a, uint32_t b)>;

// Fused scoring: logit(r) = offset + coupon_bias[r] + <x, row r> for each candidate r,
// keeping the k best (k == 0: all) in `out`, sorted by descending logit, then by
// `tie_break` (the overload without it: ascending row). No per-call intermediate array
// of N logits is written: the top-k threshold filters whole vectors of logits as they are
// produced, and sigmoid is computed only for the survivors.
//
// A row's logit depends only on x, offset, its bias and its row, never on which or how many
// other rows are candidates or on the path that scores them (panel scan or gather: both sum
// in DotPanel's order), so Score over every coupon, Score over a list and Decide give the
// same bits for the same user and coupon on a given SIMD target. (Exception: matrices of
// more than 2^31 floats score listed rows with a scalar loop of another order.)
//
// Exactly min(k, candidates) rows are returned (k == 0: all candidates); ties at the k-th
// place are resolved by the tie-break, never by scan order. NaN logits (a NaN or Inf in a
// row, bias or x) rank after every number, -inf included, and among themselves by the
// tie-break; a non-finite value in one row never affects another row's logit.
//
// x == nullptr means the zero vector (the population prior: every dot product is 0).
// REQUIRES: x (if not null) points to m.dim() floats, any alignment; coupon_bias points
// to m.rows() floats unless the candidates carry their biases; out != nullptr (its
// previous contents are replaced).
void ScoreTopK(const float* x, float offset, const FactorMatrix& m, const float* coupon_bias,
               const CandidateRows& candidates, size_t k, RowTieBreak tie_break,
               std::vector<ScoredRow>* out);
void ScoreTopK(const float* x, float offset, const FactorMatrix& m, const float* coupon_bias,
               const CandidateRows& candidates, size_t k, std::vector<ScoredRow>* out);

// Name of the SIMD target the dispatcher runs on this CPU (e.g. "AVX3", "AVX2"), as
// reported by code compiled for that target.
const char* KernelTargetName();

// Double-precision scalar reference of <x, row> for tests and benchmarks.
double ReferenceDot(const float* x, const FactorMatrix& m, size_t row);

}  // namespace coupond::core

#endif  // COUPOND_CORE_KERNEL_H_
