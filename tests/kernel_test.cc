// Guards the scoring kernel (core/kernel.h): dot products against a double-precision scalar
// reference on every compiled Highway target, the block (B x N) kernel, the fused top-k
// epilogue (order, ties, NaN) and the panel layout. Deterministic: fixed seeds, no timing.

#include "core/kernel.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iterator>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hwy/targets.h"
#include "tests/test_util/sanitizers.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::core {
namespace {

using ::coupond::testing::StatusIs;

using ::coupond::testing::kSanitizedBuild;

constexpr size_t kDims[] = {1, 3, 7, 8, 16, 31, 32, 33, 64, 100, 128, 256};
constexpr size_t kCounts[] = {0, 1, 7, 1000, 10007};
constexpr double kEpsilon = 1e-5;

std::vector<float> RandomFloats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

FactorMatrix MakeMatrix(const std::vector<float>& data, size_t rows, size_t dim) {
  absl::StatusOr<FactorMatrix> m = FactorMatrix::Create(data, rows, dim);
  EXPECT_TRUE(m.ok()) << m.status();
  return *std::move(m);
}

// Allowed error of a float dot product: epsilon x sum |x_i y_i| (computed in double).
double Tolerance(const float* x, const std::vector<float>& rows, size_t row, size_t dim) {
  double mag = 0.0;
  for (size_t j = 0; j < dim; ++j) mag += std::fabs(double{x[j]} * rows[row * dim + j]);
  return kEpsilon * mag + 1e-30;
}

double RowMajorDot(const float* x, const std::vector<float>& rows, size_t row, size_t dim) {
  double sum = 0.0;
  for (size_t j = 0; j < dim; ++j) sum += double{x[j]} * rows[row * dim + j];
  return sum;
}

// Runs `body` once per compiled target the CPU supports, asserting that the dispatcher
// really switched to it; restores normal dispatch afterwards.
void ForEachTarget(const std::function<void()>& body) {
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  std::set<std::string> ran;
  for (const int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    const std::string name = KernelTargetName();
    ASSERT_EQ(name, hwy::TargetName(target)) << "dispatch did not switch target";
    SCOPED_TRACE(name);
    ran.insert(name);
    body();
  }
  hwy::SetSupportedTargetsForTest(0);
  EXPECT_EQ(ran.size(), targets.size());
  EXPECT_EQ(std::string(KernelTargetName()), hwy::TargetName(targets.front()));
}

TEST(FactorMatrixTest, RejectsBadShapes) {
  const std::vector<float> data(12, 1.0f);
  EXPECT_THAT(FactorMatrix::Create(data, 4, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FactorMatrix::Create(data, 5, 3), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FactorMatrix::Create(data, 3, 3), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FactorMatrixTest, PanelLayoutHoldsEveryElementAndZeroPadding) {
  const size_t rows = 70, dim = 5;
  const std::vector<float> data = RandomFloats(rows * dim, 1);
  const FactorMatrix m = MakeMatrix(data, rows, dim);
  EXPECT_EQ(m.rows(), rows);
  EXPECT_EQ(m.dim(), dim);
  EXPECT_EQ(m.num_panels(), 2u);
  EXPECT_EQ(m.memory_bytes(), 2 * dim * FactorMatrix::kPanelRows * sizeof(float));
  for (size_t r = 0; r < rows; ++r) {
    for (size_t j = 0; j < dim; ++j) EXPECT_EQ(m.at(r, j), data[r * dim + j]);
  }
  for (size_t r = rows; r < 2 * FactorMatrix::kPanelRows; ++r) {
    for (size_t j = 0; j < dim; ++j) {
      EXPECT_EQ(m.panel(1)[j * FactorMatrix::kPanelRows + r % FactorMatrix::kPanelRows], 0.0f);
    }
  }
  const FactorMatrix empty = MakeMatrix({}, 0, 3);
  EXPECT_EQ(empty.rows(), 0u);
  EXPECT_EQ(empty.memory_bytes(), 0u);
}

TEST(KernelTest, DispatchReachesEveryCompiledTarget) {
  ForEachTarget([] {});
}

// DotAll and DotRows against the double reference, every d and N, misaligned x.
TEST(KernelTest, DotAllAndDotRowsMatchReferenceOnEveryTarget) {
  for (const size_t dim : kDims) {
    for (const size_t n : kCounts) {
      // Under the sanitizers 10,007 rows only for d = 64: the other dims' long runs take the
      // paths that 1,000 rows (a ragged last panel) already take, ten times over.
      if (kSanitizedBuild && n > 1000 && dim != 64) continue;
      SCOPED_TRACE(::testing::Message() << "dim=" << dim << " n=" << n);
      const std::vector<float> data = RandomFloats(n * dim, static_cast<uint32_t>(dim * 7 + n));
      const FactorMatrix m = MakeMatrix(data, n, dim);
      std::vector<float> xbuf = RandomFloats(dim + 1, 99);
      const float* x = xbuf.data() + 1;  // not 64-byte (nor 8-byte) aligned
      std::vector<double> ref(n), tol(n);
      for (size_t r = 0; r < n; ++r) {
        ref[r] = RowMajorDot(x, data, r, dim);
        tol[r] = Tolerance(x, data, r, dim);
        ASSERT_NEAR(ReferenceDot(x, m, r), ref[r], 1e-12 * (1 + std::fabs(ref[r])));
      }
      // Subset: arbitrary order, repeats, first and last rows.
      std::vector<uint32_t> subset;
      if (n > 0) {
        std::mt19937 rng(static_cast<uint32_t>(n + dim));
        for (size_t i = 0; i < std::min<size_t>(n, 300) + 3; ++i) {
          subset.push_back(static_cast<uint32_t>(rng() % n));
        }
        subset.push_back(static_cast<uint32_t>(n - 1));
        subset.push_back(0);
        subset.push_back(static_cast<uint32_t>(n - 1));
      }
      ForEachTarget([&] {
        std::vector<float> out(n + 1, -7.0f);  // one sentinel past the end
        DotAll(x, m, out.data());
        for (size_t r = 0; r < n; ++r) ASSERT_NEAR(out[r], ref[r], tol[r]) << "row " << r;
        EXPECT_EQ(out[n], -7.0f) << "wrote past the end";
        std::vector<float> sub(subset.size() + 1, -7.0f);
        DotRows(x, m, subset, sub.data());
        for (size_t i = 0; i < subset.size(); ++i) {
          ASSERT_NEAR(sub[i], ref[subset[i]], tol[subset[i]]) << "entry " << i;
        }
        EXPECT_EQ(sub[subset.size()], -7.0f);
      });
    }
  }
}

// The B x N kernel, with user counts around the register tile (6) and strided, misaligned
// inputs and outputs; padding between output rows must stay untouched.
TEST(KernelTest, DotBlockMatchesReferenceOnEveryTarget) {
  constexpr size_t kUserCounts[] = {1, 5, 6, 7, 13, 64};
  // Under the sanitizers, 64 users (two thirds of the sweep's work) adds no path that 13
  // (two whole tiles and a remainder) does not take.
  const size_t user_counts = kSanitizedBuild ? std::size(kUserCounts) - 1 : std::size(kUserCounts);
  for (const size_t dim : kDims) {
    for (const size_t n : kCounts) {
      if (n > 1000 && dim > 64) continue;  // the 10007 x {100..256} cases add no new paths
      // Nor do the others beyond one (1,000 rows already end in a ragged panel); under the
      // sanitizers' slowdown they were most of the suite's time.
      if (kSanitizedBuild && n > 1000 && dim != 64) continue;
      SCOPED_TRACE(::testing::Message() << "dim=" << dim << " n=" << n);
      const std::vector<float> data = RandomFloats(n * dim, static_cast<uint32_t>(dim + n));
      const FactorMatrix m = MakeMatrix(data, n, dim);
      for (const size_t users : absl::MakeConstSpan(kUserCounts, user_counts)) {
        const size_t x_stride = dim + 3, out_stride = n + 5;
        std::vector<float> xbuf = RandomFloats(users * x_stride + 1, static_cast<uint32_t>(users));
        const float* x = xbuf.data() + 1;
        // The double-precision reference once, not once per target: under the sanitizers it
        // was most of this test's time.
        std::vector<double> want(users * n), tol(users * n);
        for (size_t u = 0; u < users; ++u) {
          for (size_t r = 0; r < n; ++r) {
            want[u * n + r] = RowMajorDot(x + u * x_stride, data, r, dim);
            tol[u * n + r] = Tolerance(x + u * x_stride, data, r, dim);
          }
        }
        ForEachTarget([&] {
          std::vector<float> out(users * out_stride + 1, -7.0f);
          DotBlock(x, users, x_stride, m, out.data() + 1, out_stride);
          EXPECT_EQ(out[0], -7.0f);
          // Compare in a plain loop and assert once: a gtest assertion per element is what
          // made this sweep take a minute under the sanitizers.
          for (size_t u = 0; u < users; ++u) {
            for (size_t r = 0; r < n; ++r) {
              const float got = out[1 + u * out_stride + r];
              if (!(std::abs(got - want[u * n + r]) <= tol[u * n + r])) {
                ASSERT_NEAR(got, want[u * n + r], tol[u * n + r])
                    << "user " << u << " row " << r << " users " << users;
              }
            }
            for (size_t r = n; r < out_stride && 1 + u * out_stride + r < out.size(); ++r) {
              if (out[1 + u * out_stride + r] != -7.0f) {
                ASSERT_EQ(out[1 + u * out_stride + r], -7.0f) << "padding written";
              }
            }
          }
        });
      }
    }
  }
}

// A NaN or Inf in one coupon row changes only that row's results, on every path.
TEST(KernelTest, NonFiniteRowDoesNotLeakIntoOtherRows) {
  const size_t n = 200, dim = 33;
  const std::vector<float> clean = RandomFloats(n * dim, 5);
  std::vector<float> dirty = clean;
  dirty[5 * dim + 3] = std::numeric_limits<float>::quiet_NaN();
  dirty[70 * dim + 0] = std::numeric_limits<float>::infinity();
  dirty[71 * dim + 32] = -std::numeric_limits<float>::infinity();
  const FactorMatrix mc = MakeMatrix(clean, n, dim);
  const FactorMatrix md = MakeMatrix(dirty, n, dim);
  const std::vector<float> x = RandomFloats(dim, 6);
  const std::set<size_t> bad = {5, 70, 71};
  std::vector<uint32_t> all_rows(n);
  for (size_t r = 0; r < n; ++r) all_rows[r] = static_cast<uint32_t>(r);
  ForEachTarget([&] {
    std::vector<float> a(n), b(n), ra(n), rb(n), ba(2 * n), bb(2 * n);
    DotAll(x.data(), mc, a.data());
    DotAll(x.data(), md, b.data());
    DotRows(x.data(), mc, all_rows, ra.data());
    DotRows(x.data(), md, all_rows, rb.data());
    std::vector<float> x2(x);
    x2.insert(x2.end(), x.begin(), x.end());
    DotBlock(x2.data(), 2, dim, mc, ba.data(), n);
    DotBlock(x2.data(), 2, dim, md, bb.data(), n);
    for (size_t r = 0; r < n; ++r) {
      if (bad.count(r) != 0) {
        EXPECT_FALSE(std::isfinite(b[r])) << r;
        EXPECT_FALSE(std::isfinite(rb[r])) << r;
        EXPECT_FALSE(std::isfinite(bb[r])) << r;
        continue;
      }
      EXPECT_EQ(a[r], b[r]) << r;
      EXPECT_EQ(ra[r], rb[r]) << r;
      EXPECT_EQ(ba[r], bb[r]) << r;
      EXPECT_EQ(ba[n + r], bb[n + r]) << r;
    }
    EXPECT_TRUE(std::isnan(b[5]));
    EXPECT_EQ(b[70], std::copysign(std::numeric_limits<float>::infinity(), x[0]));
  });
}

// Checks a ScoreTopK answer: size, distinct candidate rows, sorted by (logit desc, NaN last,
// tie-break), logits near the reference, nothing left out that beats the k-th.
void ExpectValidTopK(const std::vector<ScoredRow>& got, const std::vector<uint32_t>& cands,
                     const std::vector<double>& ref_logit, const std::vector<double>& tol,
                     size_t k, const std::function<bool(uint32_t, uint32_t)>& tie) {
  const size_t want = (k == 0 || k >= cands.size()) ? cands.size() : k;
  ASSERT_EQ(got.size(), want);
  std::set<uint32_t> seen;
  const std::set<uint32_t> cand_set(cands.begin(), cands.end());
  for (size_t i = 0; i < got.size(); ++i) {
    const ScoredRow& s = got[i];
    ASSERT_TRUE(cand_set.count(s.row) != 0) << "not a candidate: " << s.row;
    ASSERT_TRUE(seen.insert(s.row).second) << "duplicate " << s.row;
    ASSERT_NEAR(s.logit, ref_logit[s.row], tol[s.row]) << "row " << s.row;
    ASSERT_NEAR(s.probability, 1.0 / (1.0 + std::exp(-double{s.logit})), 1e-6);
    if (i > 0) {
      const ScoredRow& p = got[i - 1];
      const bool ordered = p.logit > s.logit || (p.logit == s.logit && tie(p.row, s.row));
      ASSERT_TRUE(ordered) << "order broken at " << i;
    }
  }
  if (want == 0 || want == cands.size()) return;
  const double kth = got.back().logit;
  for (const uint32_t r : cands) {
    if (seen.count(r) == 0) {
      ASSERT_LE(ref_logit[r], kth + tol[r] + 1e-6) << "row " << r << " left out";
    }
  }
}

TEST(ScoreTopKTest, MatchesReferenceForAllAndListedRowsOnEveryTarget) {
  constexpr size_t kTopK[] = {0, 1, 10, 64, 999};
  for (const size_t dim : {size_t{1}, size_t{7}, size_t{64}, size_t{100}}) {
    for (const size_t n : {size_t{1}, size_t{7}, size_t{1000}, size_t{10007}}) {
      if (kSanitizedBuild && n > 1000 && dim != 64) continue;  // as in DotAll's sweep
      SCOPED_TRACE(::testing::Message() << "dim=" << dim << " n=" << n);
      const std::vector<float> data = RandomFloats(n * dim, static_cast<uint32_t>(3 * dim + n));
      const std::vector<float> bias = RandomFloats(n, 17);
      const FactorMatrix m = MakeMatrix(data, n, dim);
      std::vector<float> xbuf = RandomFloats(dim + 1, 23);
      const float* x = xbuf.data() + 1;
      const float offset = -0.25f;
      std::vector<double> ref(n), tol(n);
      for (size_t r = 0; r < n; ++r) {
        ref[r] = offset + double{bias[r]} + RowMajorDot(x, data, r, dim);
        tol[r] = Tolerance(x, data, r, dim) + 1e-6;
      }
      std::vector<uint32_t> all(n);
      for (size_t r = 0; r < n; ++r) all[r] = static_cast<uint32_t>(r);
      // A short unsorted list (gathered) and a long one (panel scan with a keep mask).
      std::vector<uint32_t> shuffled = all;
      std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(7));
      const std::vector<uint32_t> short_list(shuffled.begin(),
                                             shuffled.begin() + std::min<size_t>(n, 37));
      std::vector<uint32_t> long_list;
      for (size_t r = 0; r < n; ++r) {
        if (r % 3 != 1) long_list.push_back(static_cast<uint32_t>(r));
      }
      const auto by_row = [](uint32_t a, uint32_t b) { return a < b; };
      ForEachTarget([&] {
        for (const size_t k : kTopK) {
          SCOPED_TRACE(::testing::Message() << "k=" << k);
          std::vector<ScoredRow> out;
          ScoreTopK(x, offset, m, bias.data(), CandidateRows::All(), k, &out);
          ExpectValidTopK(out, all, ref, tol, k, by_row);
          for (const std::vector<uint32_t>* list :
               std::vector<const std::vector<uint32_t>*>{&short_list, &long_list}) {
            ScoreTopK(x, offset, m, bias.data(), CandidateRows::List(*list), k, &out);
            ExpectValidTopK(out, *list, ref, tol, k, by_row);
            std::vector<float> own_bias;
            for (const uint32_t r : *list) own_bias.push_back(bias[r]);
            std::vector<ScoredRow> out2;
            ScoreTopK(x, offset, m, nullptr, CandidateRows::List(*list, own_bias), k, &out2);
            ASSERT_EQ(out2.size(), out.size());
            for (size_t i = 0; i < out.size(); ++i) {
              EXPECT_EQ(out2[i].row, out[i].row);
              EXPECT_EQ(out2[i].logit, out[i].logit);
            }
          }
        }
      });
    }
  }
}

// A row's logit has the same bits whichever path scores it: the whole matrix (panel scan), a
// long list (panel scan with a keep mask) or a short one (gather), on every target. Score
// over every coupon, Score over a list and Decide (a campaign's list) rely on it to give the
// same probability for the same user and coupon (issue 15). Odd and even dims, and lists
// of a single row.
TEST(ScoreTopKTest, ARowsLogitIsTheSameBitsOnEveryPath) {
  for (const size_t dim : {size_t{1}, size_t{2}, size_t{7}, size_t{24}, size_t{33}, size_t{64},
                           size_t{100}}) {
    const size_t n = 300;
    SCOPED_TRACE(::testing::Message() << "dim=" << dim);
    const std::vector<float> data = RandomFloats(n * dim, static_cast<uint32_t>(5 * dim + 1));
    const std::vector<float> bias = RandomFloats(n, 29);
    const FactorMatrix m = MakeMatrix(data, n, dim);
    const std::vector<float> x = RandomFloats(dim, 31);
    std::vector<uint32_t> long_list;  // over 1/8 of the rows: scanned with a keep mask
    for (uint32_t r = 0; r < n; r += 2) long_list.push_back(r);
    ForEachTarget([&] {
      std::vector<ScoredRow> all;
      ScoreTopK(x.data(), 0.125f, m, bias.data(), CandidateRows::All(), 0, &all);
      ASSERT_EQ(all.size(), n);
      std::vector<float> logit(n);
      for (const ScoredRow& s : all) logit[s.row] = s.logit;
      std::vector<ScoredRow> out;
      ScoreTopK(x.data(), 0.125f, m, bias.data(), CandidateRows::List(long_list), 0, &out);
      for (const ScoredRow& s : out) EXPECT_EQ(s.logit, logit[s.row]) << "scan, row " << s.row;
      for (uint32_t r = 0; r < n; r += 37) {
        const std::vector<uint32_t> one = {r};
        ScoreTopK(x.data(), 0.125f, m, bias.data(), CandidateRows::List(one), 0, &out);
        ASSERT_EQ(out.size(), 1u);
        EXPECT_EQ(out[0].logit, logit[r]) << "gather, row " << r;
        const std::vector<uint32_t> few = {r, (r + 101) % 300, (r + 7) % 300};
        ScoreTopK(x.data(), 0.125f, m, bias.data(), CandidateRows::List(few), 0, &out);
        for (const ScoredRow& s : out) EXPECT_EQ(s.logit, logit[s.row]) << "gather, row " << s.row;
      }
    });
  }
}

// Small integer factors make every logit exact, so ties are real and the expected answer
// is exact: ties (including across the k-th place) follow the caller's tie-break, not the
// scan order, on every path.
TEST(ScoreTopKTest, TiesAtTheBoundaryFollowTheTieBreak) {
  const size_t n = 300, dim = 4;
  std::vector<float> data(n * dim), bias(n);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(static_cast<int>(i % 3) - 1);
  for (size_t r = 0; r < n; ++r) bias[r] = static_cast<float>(r % 4);
  const FactorMatrix m = MakeMatrix(data, n, dim);
  const std::vector<float> x = {1.0f, 2.0f, -1.0f, 0.5f};
  std::vector<uint32_t> all(n);
  for (size_t r = 0; r < n; ++r) all[r] = static_cast<uint32_t>(r);
  std::vector<uint32_t> few = {299, 3, 150, 7, 11, 15, 19, 42, 250, 251};
  // Tie-break: descending row (the opposite of scan order).
  const auto desc = [](uint32_t a, uint32_t b) { return a > b; };
  const auto expected = [&](std::vector<uint32_t> cands, size_t k) {
    std::vector<std::pair<float, uint32_t>> v;
    for (const uint32_t r : cands) {
      float dot = 0.0f;
      for (size_t j = 0; j < dim; ++j) dot += x[j] * data[r * dim + j];
      v.push_back({1.0f + bias[r] + dot, r});
    }
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second > b.second;
    });
    v.resize(std::min(v.size(), k == 0 ? v.size() : k));
    return v;
  };
  ForEachTarget([&] {
    for (const size_t k : {size_t{0}, size_t{1}, size_t{5}, size_t{17}, size_t{100}}) {
      for (const bool use_all : {true, false}) {
        const std::vector<uint32_t>& cands = use_all ? all : few;
        std::vector<ScoredRow> out;
        ScoreTopK(x.data(), 1.0f, m, bias.data(),
                  use_all ? CandidateRows::All() : CandidateRows::List(few), k, desc, &out);
        const auto want = expected(cands, k);
        ASSERT_EQ(out.size(), want.size());
        for (size_t i = 0; i < want.size(); ++i) {
          EXPECT_EQ(out[i].row, want[i].second) << "k=" << k << " i=" << i;
          EXPECT_EQ(out[i].logit, want[i].first);
        }
      }
    }
  });
}

// NaN logits rank after every number (-inf included), among themselves by the tie-break;
// the answer does not depend on where the NaN rows are.
TEST(ScoreTopKTest, NanLogitsRankLastDeterministically) {
  const size_t n = 130, dim = 3;
  std::vector<float> data = RandomFloats(n * dim, 3);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  data[100 * dim + 1] = nan;
  data[2 * dim + 0] = nan;
  data[64 * dim + 2] = nan;
  std::vector<float> bias(n, 0.0f);
  bias[50] = -std::numeric_limits<float>::infinity();
  const FactorMatrix m = MakeMatrix(data, n, dim);
  const std::vector<float> x = {0.5f, -1.0f, 2.0f};
  ForEachTarget([&] {
    std::vector<ScoredRow> out;
    ScoreTopK(x.data(), 0.0f, m, bias.data(), CandidateRows::All(), 0, &out);
    ASSERT_EQ(out.size(), n);
    EXPECT_EQ(out[n - 4].row, 50u);
    EXPECT_EQ(out[n - 4].logit, -std::numeric_limits<float>::infinity());
    EXPECT_EQ(out[n - 3].row, 2u);
    EXPECT_EQ(out[n - 2].row, 64u);
    EXPECT_EQ(out[n - 1].row, 100u);
    for (size_t i = 0; i + 3 < n; ++i) EXPECT_FALSE(std::isnan(out[i].logit)) << i;
    EXPECT_TRUE(std::isnan(out[n - 1].probability));
    // k reaching into the NaN rows keeps the lowest rows among them.
    ScoreTopK(x.data(), 0.0f, m, bias.data(), CandidateRows::All(), n - 2, &out);
    ASSERT_EQ(out.size(), n - 2);
    EXPECT_EQ(out.back().row, 2u);
    ScoreTopK(x.data(), 0.0f, m, bias.data(), CandidateRows::All(), n - 1, &out);
    ASSERT_EQ(out.size(), n - 1);
    EXPECT_EQ(out.back().row, 64u);
    // Fewer numbers than k in the first panel: NaNs must not block later numbers.
    const std::vector<uint32_t> list = {2, 64, 100, 7, 120};
    ScoreTopK(x.data(), 0.0f, m, bias.data(), CandidateRows::List(list), 2, &out);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_FALSE(std::isnan(out[0].logit));
    EXPECT_FALSE(std::isnan(out[1].logit));
  });
}

// x == nullptr is the zero vector: logits are offset + bias exactly.
TEST(ScoreTopKTest, NullUserVectorScoresBiasOnly) {
  const size_t n = 90, dim = 16;
  const std::vector<float> data = RandomFloats(n * dim, 8);
  const std::vector<float> bias = RandomFloats(n, 9);
  const FactorMatrix m = MakeMatrix(data, n, dim);
  const std::vector<uint32_t> list = {89, 0, 45};
  ForEachTarget([&] {
    std::vector<ScoredRow> out;
    ScoreTopK(nullptr, 0.5f, m, bias.data(), CandidateRows::All(), 0, &out);
    ASSERT_EQ(out.size(), n);
    for (const ScoredRow& s : out) EXPECT_EQ(s.logit, 0.5f + bias[s.row]);
    ScoreTopK(nullptr, 0.5f, m, bias.data(), CandidateRows::List(list), 0, &out);
    ASSERT_EQ(out.size(), 3u);
    for (const ScoredRow& s : out) EXPECT_EQ(s.logit, 0.5f + bias[s.row]);
  });
}

TEST(ScoreTopKTest, EmptyCandidatesGiveEmptyResult) {
  const FactorMatrix m = MakeMatrix(RandomFloats(20, 1), 10, 2);
  const std::vector<float> bias(10, 0.0f), x = {1.0f, 1.0f};
  std::vector<ScoredRow> out = {ScoredRow{}};
  ScoreTopK(x.data(), 0.0f, m, bias.data(), CandidateRows::List({}), 5, &out);
  EXPECT_TRUE(out.empty());
  const FactorMatrix empty = MakeMatrix({}, 0, 2);
  ScoreTopK(x.data(), 0.0f, empty, bias.data(), CandidateRows::All(), 5, &out);
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace coupond::core
