// Highway's foreach_target re-includes this file once per SIMD target; the HWY_ONCE part at
// the bottom holds the target-independent code and the dispatch tables.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "core/kernel.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

#ifndef COUPOND_CORE_KERNEL_CC_ONCE_
#define COUPOND_CORE_KERNEL_CC_ONCE_
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/kernel.h"

namespace coupond::core::kernel_internal {

constexpr size_t kPanel = FactorMatrix::kPanelRows;

// Keeps the best `capacity` (row, logit) pairs offered so far, in the order ScoreTopK
// documents. Worst kept element on top of a heap, so a candidate is one comparison.
class TopKCollector {
 public:
  TopKCollector(size_t capacity, RowTieBreak tie_break, std::vector<ScoredRow>* out)
      : capacity_(capacity), tie_break_(tie_break), out_(out) {}

  // True when a logit must be compared against worst() before it can enter.
  bool full() const { return out_->size() >= capacity_; }
  // REQUIRES: full().
  float worst_logit() const { return out_->front().logit; }

  void Offer(float logit, uint32_t row) {
    const ScoredRow cand{row, logit, 0.0f};
    if (out_->size() < capacity_) {
      out_->push_back(cand);
      if (heap_) std::push_heap(out_->begin(), out_->end(), Better{tie_break_});
      return;
    }
    const Better better{tie_break_};
    if (!better(cand, out_->front())) return;
    ReplaceWorst(cand, better);
  }

  // Sorts the survivors best first.
  void Finish() {
    if (heap_) {
      std::sort_heap(out_->begin(), out_->end(), Better{tie_break_});
    } else {
      std::sort(out_->begin(), out_->end(), Better{tie_break_});
    }
  }

  // Collect without a heap (everything is kept) when capacity covers every candidate.
  void set_keep_all() { heap_ = false; }

 private:
  // a ranks before b: larger logit first, NaN after every number, then the tie-break.
  struct Better {
    RowTieBreak tie_break;
    bool operator()(const ScoredRow& a, const ScoredRow& b) const {
      const bool a_nan = std::isnan(a.logit);
      const bool b_nan = std::isnan(b.logit);
      if (a_nan != b_nan) return b_nan;
      if (!a_nan && a.logit != b.logit) return a.logit > b.logit;
      return tie_break(a.row, b.row);
    }
  };

  // Puts `cand` in place of the worst kept element (the heap's top) and sifts it down: one
  // pass, where std::pop_heap then std::push_heap take two. The heap is a max-heap under
  // Better, so a parent is never better than its children.
  void ReplaceWorst(const ScoredRow& cand, const Better& better) {
    std::vector<ScoredRow>& h = *out_;
    const size_t n = h.size();
    size_t i = 0;
    while (true) {
      size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && better(h[child], h[child + 1])) ++child;  // the worse child
      if (!better(cand, h[child])) break;
      h[i] = h[child];
      i = child;
    }
    h[i] = cand;
  }

  size_t capacity_;
  RowTieBreak tie_break_;
  std::vector<ScoredRow>* out_;
  bool heap_ = true;
};

}  // namespace coupond::core::kernel_internal
#endif  // COUPOND_CORE_KERNEL_CC_ONCE_

HWY_BEFORE_NAMESPACE();
namespace coupond::core {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using kernel_internal::kPanel;
using kernel_internal::TopKCollector;

// A panel line is 64 floats; cap vectors at 16 lanes so a line is a whole number of them.
using D = hn::CappedTag<float, 16>;
using V = hn::Vec<D>;

// Targets with 32 vector registers (AVX-512) afford larger register tiles.
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr size_t kRegisters = 32;
#else
constexpr size_t kRegisters = 16;
#endif

// FMA chains per dot product on this target, shared by DotPanel and GatherDots so that a
// row's dot product, hence its logit, has the same bits whichever path scores it (Score over
// every coupon, over a list, and Decide agree to the bit): 1 chain over all columns when a
// panel line is at least 8 vectors (AVX2, SSE4: 8 independent vector accumulators already
// cover FMA latency x throughput), else 2 (AVX-512: even columns in one chain, odd in the
// other, the last column of an odd dim in the even one, then even + odd).
constexpr size_t kDotChains = kPanel / hn::MaxLanes(D()) < 8 ? 2 : 1;

// out[r] = <x, row r of the panel> for the panel's 64 rows. dim == 0 gives zeros.
// Accumulates up to 8 vectors at once (enough to cover FMA latency x throughput), and
// splits even/odd columns when a panel has fewer than 8 vectors (AVX-512: 4): kDotChains.
HWY_INLINE void DotPanel(const float* HWY_RESTRICT x, size_t dim,
                         const float* HWY_RESTRICT panel, float* HWY_RESTRICT out) {
  const D d;
  constexpr size_t kN = hn::MaxLanes(D());
  constexpr size_t kVecs = kPanel / kN;                 // vectors per line
  constexpr size_t kChunk = kVecs < 8 ? kVecs : 8;      // vectors per pass
  constexpr size_t kSplit = kDotChains;                 // accumulator sets
  static_assert(kSplit == (kChunk < 8 ? 2 : 1), "one pass of 8 vectors, or 2 chains");
  static_assert(kVecs % kChunk == 0, "chunk must divide the line");
  for (size_t c = 0; c < kVecs; c += kChunk) {
    V acc[kSplit][kChunk];
    for (size_t s = 0; s < kSplit; ++s) {
      for (size_t v = 0; v < kChunk; ++v) acc[s][v] = hn::Zero(d);
    }
    const float* HWY_RESTRICT line = panel + c * kN;
    size_t j = 0;
    for (; j + kSplit <= dim; j += kSplit) {
      for (size_t s = 0; s < kSplit; ++s) {
        const V xj = hn::Set(d, x[j + s]);
        const float* HWY_RESTRICT l = line + (j + s) * kPanel;
        for (size_t v = 0; v < kChunk; ++v) {
          acc[s][v] = hn::MulAdd(xj, hn::Load(d, l + v * kN), acc[s][v]);
        }
      }
    }
    for (; j < dim; ++j) {
      const V xj = hn::Set(d, x[j]);
      const float* HWY_RESTRICT l = line + j * kPanel;
      for (size_t v = 0; v < kChunk; ++v) {
        acc[0][v] = hn::MulAdd(xj, hn::Load(d, l + v * kN), acc[0][v]);
      }
    }
    for (size_t v = 0; v < kChunk; ++v) {
      V sum = acc[0][v];
      for (size_t s = 1; s < kSplit; ++s) sum = hn::Add(sum, acc[s][v]);
      hn::StoreU(sum, d, out + c * kN + v * kN);
    }
  }
}

void DotAllImpl(const float* HWY_RESTRICT x, const FactorMatrix& m, float* HWY_RESTRICT out) {
  HWY_ALIGN float buf[kPanel];
  const size_t dim = m.dim();
  for (size_t p = 0; p < m.num_panels(); ++p) {
    const size_t row0 = p * kPanel;
    const size_t valid = std::min(kPanel, m.rows() - row0);
    if (valid == kPanel) {
      DotPanel(x, dim, m.panel(p), out + row0);
    } else {
      DotPanel(x, dim, m.panel(p), buf);
      std::memcpy(out + row0, buf, valid * sizeof(float));
    }
  }
}

// Offsets (in floats, from panel 0) of `count` <= kN rows, padded with row 0.
HWY_INLINE void RowOffsets(const uint32_t* rows, size_t count, size_t dim, int32_t* offsets) {
  constexpr size_t kN = hn::MaxLanes(D());
  for (size_t l = 0; l < kN; ++l) {
    const size_t r = l < count ? rows[l] : 0;
    offsets[l] = static_cast<int32_t>(r / kPanel * dim * kPanel + r % kPanel);
  }
}

// Dot products of up to kN listed rows by gathering one column at a time, summed in
// DotPanel's order (kDotChains chains).
// REQUIRES: the matrix has at most INT32_MAX floats (checked by the caller).
HWY_INLINE V GatherDots(const float* HWY_RESTRICT x, size_t dim, const float* HWY_RESTRICT base,
                        const int32_t* offsets) {
  const D d;
  const hn::RebindToSigned<D> di;
  const auto idx = hn::Load(di, offsets);
  V acc0 = hn::Zero(d);
  if constexpr (kDotChains == 1) {
    for (size_t j = 0; j < dim; ++j) {
      acc0 = hn::MulAdd(hn::Set(d, x[j]), hn::GatherIndex(d, base + j * kPanel, idx), acc0);
    }
    return acc0;
  } else {
    V acc1 = hn::Zero(d);
    size_t j = 0;
    for (; j + 2 <= dim; j += 2) {
      acc0 = hn::MulAdd(hn::Set(d, x[j]), hn::GatherIndex(d, base + j * kPanel, idx), acc0);
      acc1 = hn::MulAdd(hn::Set(d, x[j + 1]), hn::GatherIndex(d, base + (j + 1) * kPanel, idx),
                        acc1);
    }
    if (j < dim) {
      acc0 = hn::MulAdd(hn::Set(d, x[j]), hn::GatherIndex(d, base + j * kPanel, idx), acc0);
    }
    return hn::Add(acc0, acc1);
  }
}

void DotRowsImpl(const float* HWY_RESTRICT x, const FactorMatrix& m, const uint32_t* rows,
                 size_t count, float* HWY_RESTRICT out) {
  const D d;
  constexpr size_t kN = hn::MaxLanes(D());
  HWY_ALIGN int32_t offsets[kN];
  HWY_ALIGN float buf[kN];
  for (size_t i = 0; i < count; i += kN) {
    const size_t n = std::min(kN, count - i);
    RowOffsets(rows + i, n, m.dim(), offsets);
    hn::Store(GatherDots(x, m.dim(), m.panel(0), offsets), d, buf);
    std::memcpy(out + i, buf, n * sizeof(float));
  }
}

// Register tile: kU <= 6 users x kV (2 or 4) vectors of one panel sub-range, over all
// columns. Accumulators are named variables, not an array: GCC keeps a 24-vector array in
// memory (a store per FMA), named variables stay in registers.
#define COUPOND_TILE_USER(u)                                                       \
  [[maybe_unused]] V a##u##0 = hn::Zero(d), a##u##1 = hn::Zero(d),                 \
                     a##u##2 = hn::Zero(d), a##u##3 = hn::Zero(d)
#define COUPOND_TILE_FMA(u)                                                        \
  if constexpr (kU > u) {                                                          \
    const V xu = hn::Set(d, x[u * x_stride + j]);                                  \
    a##u##0 = hn::MulAdd(xu, y0, a##u##0);                                         \
    a##u##1 = hn::MulAdd(xu, y1, a##u##1);                                         \
    if constexpr (kV == 4) {                                                       \
      a##u##2 = hn::MulAdd(xu, y2, a##u##2);                                       \
      a##u##3 = hn::MulAdd(xu, y3, a##u##3);                                       \
    }                                                                              \
  }
#define COUPOND_TILE_STORE(u)                                                      \
  if constexpr (kU > u) {                                                          \
    float* HWY_RESTRICT o = full ? out + u * out_stride : buf;                     \
    hn::StoreU(a##u##0, d, o);                                                     \
    hn::StoreU(a##u##1, d, o + kN);                                                \
    if constexpr (kV == 4) {                                                       \
      hn::StoreU(a##u##2, d, o + 2 * kN);                                          \
      hn::StoreU(a##u##3, d, o + 3 * kN);                                          \
    }                                                                              \
    if (!full) std::memcpy(out + u * out_stride, buf, valid * sizeof(float));      \
  }

template <size_t kU, size_t kV>
HWY_INLINE void BlockTile(const float* HWY_RESTRICT x, size_t x_stride, size_t dim,
                          const float* HWY_RESTRICT lines, float* HWY_RESTRICT out,
                          size_t out_stride, size_t valid) {
  static_assert(kU >= 1 && kU <= 6 && (kV == 2 || kV == 4), "unsupported tile");
  const D d;
  constexpr size_t kN = hn::MaxLanes(D());
  COUPOND_TILE_USER(0);
  COUPOND_TILE_USER(1);
  COUPOND_TILE_USER(2);
  COUPOND_TILE_USER(3);
  COUPOND_TILE_USER(4);
  COUPOND_TILE_USER(5);
  for (size_t j = 0; j < dim; ++j) {
    const float* HWY_RESTRICT l = lines + j * kPanel;
    const V y0 = hn::Load(d, l);
    const V y1 = hn::Load(d, l + kN);
    [[maybe_unused]] const V y2 = kV == 4 ? hn::Load(d, l + 2 * kN) : y0;
    [[maybe_unused]] const V y3 = kV == 4 ? hn::Load(d, l + 3 * kN) : y0;
    COUPOND_TILE_FMA(0)
    COUPOND_TILE_FMA(1)
    COUPOND_TILE_FMA(2)
    COUPOND_TILE_FMA(3)
    COUPOND_TILE_FMA(4)
    COUPOND_TILE_FMA(5)
  }
  const bool full = valid == kV * kN;
  HWY_ALIGN float buf[kV * kN];
  COUPOND_TILE_STORE(0)
  COUPOND_TILE_STORE(1)
  COUPOND_TILE_STORE(2)
  COUPOND_TILE_STORE(3)
  COUPOND_TILE_STORE(4)
  COUPOND_TILE_STORE(5)
}
#undef COUPOND_TILE_USER
#undef COUPOND_TILE_FMA
#undef COUPOND_TILE_STORE

template <size_t kV>
HWY_INLINE void BlockTileAnyUsers(size_t users, const float* HWY_RESTRICT x, size_t x_stride,
                                  size_t dim, const float* HWY_RESTRICT lines,
                                  float* HWY_RESTRICT out, size_t out_stride, size_t valid) {
  switch (users) {
    case 1: return BlockTile<1, kV>(x, x_stride, dim, lines, out, out_stride, valid);
    case 2: return BlockTile<2, kV>(x, x_stride, dim, lines, out, out_stride, valid);
    case 3: return BlockTile<3, kV>(x, x_stride, dim, lines, out, out_stride, valid);
    case 4: return BlockTile<4, kV>(x, x_stride, dim, lines, out, out_stride, valid);
    case 5: return BlockTile<5, kV>(x, x_stride, dim, lines, out, out_stride, valid);
    default: return BlockTile<6, kV>(x, x_stride, dim, lines, out, out_stride, valid);
  }
}

void DotBlockImpl(const float* HWY_RESTRICT x, size_t num_users, size_t x_stride,
                  const FactorMatrix& m, float* HWY_RESTRICT out, size_t out_stride) {
  constexpr size_t kN = hn::MaxLanes(D());
  // AVX-512: 6 users x 4 vectors = 24 accumulators + 4 loaded lines + 1 broadcast.
  // 16-register targets: 6 x 2 = 12 + 2 + 1.
  constexpr size_t kWantV = kRegisters >= 32 ? 4 : 2;
  constexpr size_t kV = kWantV * kN <= kPanel ? kWantV : kPanel / kN;
  constexpr size_t kU = 6;
  constexpr size_t kTileRows = kV * kN;
  static_assert(kPanel % kTileRows == 0, "tiles must divide the panel");
  const size_t dim = m.dim();
  for (size_t p = 0; p < m.num_panels(); ++p) {
    const float* panel = m.panel(p);
    const size_t row0 = p * kPanel;
    for (size_t t = 0; t < kPanel; t += kTileRows) {
      if (row0 + t >= m.rows()) break;
      const size_t valid = std::min(kTileRows, m.rows() - row0 - t);
      for (size_t u = 0; u < num_users; u += kU) {
        BlockTileAnyUsers<kV>(std::min(kU, num_users - u), x + u * x_stride, x_stride, dim,
                              panel + t, out + u * out_stride + row0 + t, out_stride, valid);
      }
    }
  }
}

// Bits of `mask` (one per lane) as an integer.
HWY_INLINE uint64_t MaskBits(D d, hn::Mask<D> mask) {
  uint8_t bytes[8] = {0};
  hn::StoreMaskBits(d, mask, bytes);
  return uint64_t{bytes[0]} | (uint64_t{bytes[1]} << 8);
}

// Offers the lanes of `logits` (kPanel values for rows row_of(lane)) that are set in
// `eligible` and can still enter the top-k, filtering whole vectors against the current
// k-th logit first.
template <class RowOf>
HWY_INLINE void OfferPanel(const float* HWY_RESTRICT logits, size_t lanes, uint64_t eligible,
                           const RowOf& row_of, TopKCollector* topk) {
  const D d;
  constexpr size_t kN = hn::MaxLanes(D());
  uint64_t cand = eligible;
  if (topk->full()) {
    const float worst = topk->worst_logit();
    // A NaN worst is beaten by any number and tied by any NaN: offer every lane then.
    if (!std::isnan(worst)) {
      const V thr = hn::Set(d, worst);
      uint64_t bits = 0;
      for (size_t v = 0; v * kN < lanes; ++v) {
        const auto ge = hn::Ge(hn::Load(d, logits + v * kN), thr);
        if (!hn::AllFalse(d, ge)) bits |= MaskBits(d, ge) << (v * kN);
      }
      cand &= bits;
    }
  }
  while (cand != 0) {
    const size_t lane = static_cast<size_t>(__builtin_ctzll(cand));
    cand &= cand - 1;
    topk->Offer(logits[lane], row_of(lane));
  }
}

// Logits of one panel into `logits` (all 64 lanes): offset + bias + dot.
// REQUIRES: bias points to 64 readable floats.
HWY_INLINE void PanelLogits(const float* HWY_RESTRICT x, size_t dim,
                            const float* HWY_RESTRICT panel, const float* HWY_RESTRICT bias,
                            float offset, float* HWY_RESTRICT logits) {
  const D d;
  constexpr size_t kN = hn::MaxLanes(D());
  DotPanel(x, dim, panel, logits);
  const V off = hn::Set(d, offset);
  for (size_t v = 0; v < kPanel / kN; ++v) {
    const V b = hn::Add(off, hn::LoadU(d, bias + v * kN));
    hn::Store(hn::Add(b, hn::Load(d, logits + v * kN)), d, logits + v * kN);
  }
}

// Scans whole panels; row r is eligible when keep is null or bit r of keep is set.
// dim == 0 means x is the zero vector.
void ScanTopKImpl(const float* HWY_RESTRICT x, size_t dim, float offset, const FactorMatrix& m,
                  const float* HWY_RESTRICT bias, const uint64_t* keep, TopKCollector* topk) {
  HWY_ALIGN float logits[kPanel];
  HWY_ALIGN float tail_bias[kPanel];
  for (size_t p = 0; p < m.num_panels(); ++p) {
    const size_t row0 = p * kPanel;
    const size_t valid = std::min(kPanel, m.rows() - row0);
    const float* b = bias + row0;
    if (valid < kPanel) {
      std::memcpy(tail_bias, b, valid * sizeof(float));
      std::fill(tail_bias + valid, tail_bias + kPanel, 0.0f);
      b = tail_bias;
    }
    uint64_t eligible = valid == kPanel ? ~uint64_t{0} : (uint64_t{1} << valid) - 1;
    if (keep != nullptr) eligible &= keep[p];
    if (eligible == 0) continue;
    PanelLogits(x, dim, m.panel(p), b, offset, logits);
    OfferPanel(logits, kPanel, eligible, [row0](size_t lane) {
      return static_cast<uint32_t>(row0 + lane);
    }, topk);
  }
}

// Listed rows, kN at a time by gathering. dim == 0 means x is the zero vector.
// bias_by_row[rows[i]] or, when null, bias_by_index[i] is the bias of rows[i].
void ListTopKImpl(const float* HWY_RESTRICT x, size_t dim, float offset, const FactorMatrix& m,
                  const float* HWY_RESTRICT bias_by_row, const float* HWY_RESTRICT bias_by_index,
                  const uint32_t* rows, size_t count, TopKCollector* topk) {
  const D d;
  constexpr size_t kN = hn::MaxLanes(D());
  HWY_ALIGN int32_t offsets[kN];
  HWY_ALIGN float logits[kN];
  HWY_ALIGN float b[kN];
  const V off = hn::Set(d, offset);
  for (size_t i = 0; i < count; i += kN) {
    const size_t n = std::min(kN, count - i);
    RowOffsets(rows + i, n, dim, offsets);
    for (size_t l = 0; l < kN; ++l) {
      b[l] = l >= n ? 0.0f : bias_by_row != nullptr ? bias_by_row[rows[i + l]] : bias_by_index[i + l];
    }
    const V dots = dim == 0 ? hn::Zero(d) : GatherDots(x, dim, m.panel(0), offsets);
    hn::Store(hn::Add(hn::Add(off, hn::Load(d, b)), dots), d, logits);
    const uint64_t eligible = (uint64_t{1} << n) - 1;  // n <= 16
    OfferPanel(logits, kN, eligible, [rows, i](size_t lane) { return rows[i + lane]; }, topk);
  }
}

// probability[i] = sigmoid(logit[i]) for the survivors, vectorized through a small buffer.
void SigmoidImpl(ScoredRow* rows, size_t count) {
  const D d;
  constexpr size_t kN = hn::MaxLanes(D());
  HWY_ALIGN float buf[kN];
  const V one = hn::Set(d, 1.0f);
  for (size_t i = 0; i < count; i += kN) {
    const size_t n = std::min(kN, count - i);
    for (size_t l = 0; l < kN; ++l) buf[l] = l < n ? rows[i + l].logit : 0.0f;
    const V z = hn::Load(d, buf);
    // e = exp(-|z|) in (0, 1]: no overflow; p = 1/(1+e) for z >= 0, e/(1+e) otherwise.
    // Exp's input is clamped to [-105, 0] and NaN replaced by 0, since Exp converts its
    // argument to int on the way (undefined for NaN, infinities and huge values on the
    // emulated targets; UBSan's float-cast-overflow caught it). Exp already returns exactly
    // 0 below -104, so no finite logit's probability changes.
    const V a = hn::IfThenElse(hn::IsNaN(z), hn::Zero(d), hn::Min(hn::Abs(z), hn::Set(d, 105.0f)));
    const V e = hn::Exp(d, hn::Neg(a));
    const V inv = hn::Div(one, hn::Add(one, e));
    const V p = hn::IfThenElse(hn::Ge(z, hn::Zero(d)), inv, hn::Mul(e, inv));
    // Exp does not promise to propagate NaN: pass NaN logits through explicitly.
    hn::Store(hn::IfThenElse(hn::IsNaN(z), z, p), d, buf);
    for (size_t l = 0; l < n; ++l) rows[i + l].probability = buf[l];
  }
}

const char* TargetNameImpl() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace coupond::core
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace coupond::core {

HWY_EXPORT(DotAllImpl);
HWY_EXPORT(DotRowsImpl);
HWY_EXPORT(DotBlockImpl);
HWY_EXPORT(ScanTopKImpl);
HWY_EXPORT(ListTopKImpl);
HWY_EXPORT(SigmoidImpl);
HWY_EXPORT(TargetNameImpl);

namespace {

using kernel_internal::kPanel;
using kernel_internal::TopKCollector;

// Gathers use 32-bit offsets; larger matrices take the scalar path for listed rows.
bool GatherOk(const FactorMatrix& m) {
  return m.num_panels() * m.panel_floats() <= size_t{INT32_MAX};
}

float ScalarDot(const float* x, const FactorMatrix& m, size_t row) {
  const float* p = m.panel(row / kPanel) + row % kPanel;
  float sum = 0.0f;
  for (size_t j = 0; j < m.dim(); ++j) sum += x[j] * p[j * kPanel];
  return sum;
}

// A listed candidate set at least this fraction of all rows is scored by scanning whole
// panels (sequential) rather than gathering (each row touches dim() cache lines).
constexpr size_t kScanFraction = 8;

}  // namespace

absl::StatusOr<FactorMatrix> FactorMatrix::Create(absl::Span<const float> rows,
                                                  size_t num_rows, size_t dim) {
  if (dim == 0) return absl::InvalidArgumentError("FactorMatrix: dimension must be >= 1");
  if (num_rows > size_t{UINT32_MAX}) {
    return absl::InvalidArgumentError(
        absl::StrCat("FactorMatrix: ", num_rows, " rows exceed the 32-bit row index"));
  }
  if (rows.size() / dim != num_rows || rows.size() % dim != 0) {
    return absl::InvalidArgumentError(absl::StrCat("FactorMatrix: ", rows.size(),
                                                   " values for ", num_rows, " rows of ", dim));
  }
  FactorMatrix m;
  m.rows_ = num_rows;
  m.dim_ = dim;
  m.panels_ = (num_rows + kPanelRows - 1) / kPanelRows;
  // Allocate at least one panel so data_ is never null (an empty matrix is still valid).
  const size_t total = std::max<size_t>(m.panels_, 1) * m.panel_floats();
  m.data_ = hwy::AllocateAligned<float>(total);
  if (m.data_ == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("FactorMatrix: cannot allocate ", total * sizeof(float), " bytes"));
  }
  std::memset(m.data_.get(), 0, total * sizeof(float));
  for (size_t i = 0; i < num_rows; ++i) {
    float* dst = m.data_.get() + i / kPanelRows * m.panel_floats() + i % kPanelRows;
    const float* src = rows.data() + i * dim;
    for (size_t j = 0; j < dim; ++j) dst[j * kPanelRows] = src[j];
  }
  return m;
}

void DotAll(const float* x, const FactorMatrix& m, float* out) {
  if (m.rows() == 0) return;
  HWY_DYNAMIC_DISPATCH(DotAllImpl)(x, m, out);
}

void DotRows(const float* x, const FactorMatrix& m, absl::Span<const uint32_t> rows,
             float* out) {
  if (rows.empty()) return;
  if (!GatherOk(m)) {
    for (size_t i = 0; i < rows.size(); ++i) out[i] = ScalarDot(x, m, rows[i]);
    return;
  }
  HWY_DYNAMIC_DISPATCH(DotRowsImpl)(x, m, rows.data(), rows.size(), out);
}

void DotBlock(const float* x, size_t num_users, size_t x_stride, const FactorMatrix& m,
              float* out, size_t out_stride) {
  if (m.rows() == 0 || num_users == 0) return;
  HWY_DYNAMIC_DISPATCH(DotBlockImpl)(x, num_users, x_stride, m, out, out_stride);
}

void ScoreTopK(const float* x, float offset, const FactorMatrix& m, const float* coupon_bias,
               const CandidateRows& candidates, size_t k, RowTieBreak tie_break,
               std::vector<ScoredRow>* out) {
  out->clear();
  const size_t count = candidates.all ? m.rows() : candidates.rows.size();
  if (count == 0) return;
  const size_t capacity = (k == 0 || k >= count) ? count : k;
  out->reserve(capacity);
  TopKCollector topk(capacity, tie_break, out);
  if (capacity == count) topk.set_keep_all();
  // x == nullptr: the zero vector, so skip the dot products entirely.
  const size_t dim = x == nullptr ? 0 : m.dim();
  const absl::Span<const uint32_t> rows = candidates.rows;
  const bool own_bias = !candidates.all && !candidates.bias.empty();
  if (candidates.all) {
    HWY_DYNAMIC_DISPATCH(ScanTopKImpl)(x, dim, offset, m, coupon_bias, nullptr, &topk);
  } else if (count * kScanFraction >= m.rows()) {
    // Long list: scan whole panels, keeping the listed rows (O(rows) work either way).
    std::vector<uint64_t> keep(m.num_panels(), 0);
    for (const uint32_t r : rows) keep[r / kPanel] |= uint64_t{1} << (r % kPanel);
    std::vector<float> dense_bias;
    const float* bias = coupon_bias;
    if (own_bias) {
      dense_bias.assign(m.rows(), 0.0f);
      for (size_t i = 0; i < count; ++i) dense_bias[rows[i]] = candidates.bias[i];
      bias = dense_bias.data();
    }
    HWY_DYNAMIC_DISPATCH(ScanTopKImpl)(x, dim, offset, m, bias, keep.data(), &topk);
  } else if (GatherOk(m) || dim == 0) {
    HWY_DYNAMIC_DISPATCH(ListTopKImpl)(x, dim, offset, m, own_bias ? nullptr : coupon_bias,
                                       own_bias ? candidates.bias.data() : nullptr,
                                       rows.data(), count, &topk);
  } else {
    for (size_t i = 0; i < count; ++i) {
      const float b = own_bias ? candidates.bias[i] : coupon_bias[rows[i]];
      topk.Offer(offset + b + ScalarDot(x, m, rows[i]), rows[i]);
    }
  }
  topk.Finish();
  HWY_DYNAMIC_DISPATCH(SigmoidImpl)(out->data(), out->size());
}

void ScoreTopK(const float* x, float offset, const FactorMatrix& m, const float* coupon_bias,
               const CandidateRows& candidates, size_t k, std::vector<ScoredRow>* out) {
  ScoreTopK(x, offset, m, coupon_bias, candidates, k,
            [](uint32_t a, uint32_t b) { return a < b; }, out);
}

const char* KernelTargetName() { return HWY_DYNAMIC_DISPATCH(TargetNameImpl)(); }

double ReferenceDot(const float* x, const FactorMatrix& m, size_t row) {
  double sum = 0.0;
  for (size_t j = 0; j < m.dim(); ++j) sum += double{x[j]} * double{m.at(row, j)};
  return sum;
}

}  // namespace coupond::core
#endif  // HWY_ONCE
