#ifndef COUPOND_CORE_ASSIGNMENT_PASS_H_
#define COUPOND_CORE_ASSIGNMENT_PASS_H_

// The assignment solver's view of an instance and its pass over the users: what the price
// search (assignment_dual.cc), the repair (assignment_repair.cc) and SolveAssignment
// (assignment.cc) share. Internal to core/assignment*.cc; not part of core's API.
//
// Determinism. Users are cut into blocks and chunks whose boundaries depend only on the
// instance; each chunk accumulates in user order and chunks are reduced in index order, so
// the floating-point result does not depend on the number of threads.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/assignment.h"

namespace coupond::core::assignment_internal {

inline constexpr double kInf = std::numeric_limits<double>::infinity();
// Reduction slots. Fixed (not the thread count) so that sums do not depend on threads.
inline constexpr size_t kMaxChunks = 64;

// How the solver's error messages print a double.
std::string FormatDouble(double v);

// A run of consecutive users: oracle users [first, first + count), which are the view's users
// [local, local + count).
struct Block {
  size_t first = 0;
  size_t count = 0;
  size_t local = 0;
};

// The validated instance, after exact reductions: coupons with stock 0, weight 0, or a
// positive face value when the budget is 0 are unavailable (no feasible or useful x_ij = 1);
// a stock >= the number of users cannot bind and gets no price. A Campaign is a view of the
// population (all users) or of a sample of it (budget and stocks scaled; probabilities from
// `cache` when set, else from the oracle).
struct Campaign {
  absl::Span<const AssignmentCoupon> coupons;
  const ProbabilityOracle* oracle = nullptr;
  size_t n = 0;  // users of this view
  size_t m = 0;
  size_t k = 1;
  double budget = 0.0;
  std::vector<double> w, c;
  std::vector<char> available;
  std::vector<int> var;        // index of mu_j in theta, or -1
  std::vector<double> stock;   // by theta index (entry 0 unused)
  std::vector<int64_t> limit;  // by coupon: stock, or -1 when unlimited
  size_t d = 1;                // 1 + priced coupons
  bool dense = true;
  std::vector<Block> blocks;
  size_t max_block = 1;           // users
  const double* cache = nullptr;  // n x m, row-major (view users), already validated
  size_t num_chunks = 0;
  int threads = 1;

  size_t ChunkBegin(size_t chunk) const { return chunk * blocks.size() / num_chunks; }
  void SetBlocks(std::vector<Block> b) {
    blocks = std::move(b);
    max_block = 1;
    for (const Block& x : blocks) max_block = std::max(max_block, x.count);
    num_chunks = std::min(blocks.size(), kMaxChunks);
  }
};

// Per-pass coefficients of the reduced scores: r_j = p_j a_j - b_j (a_j = w_j - lambda c_j,
// b_j = mu_j or 0), written exactly as ChooseCoupons computes a score.
struct PassPrices {
  std::vector<double> a, b;
  PassPrices(const Campaign& cp, const std::vector<double>& theta) : a(cp.m), b(cp.m, 0.0) {
    for (size_t j = 0; j < cp.m; ++j) {
      a[j] = cp.w[j] - theta[0] * cp.c[j];
      if (cp.var[j] >= 0) b[j] = theta[static_cast<size_t>(cp.var[j])];
    }
  }
};

// One eligible, available coupon of the user being scored.
struct Entry {
  uint32_t j;    // coupon index
  int var;       // its theta index, or -1
  double r;      // reduced score
  double q;      // p c: expected cost
  double value;  // p w: expected value
  double p;
  double x;  // smoothed choice
  double a;  // curvature weight
};

// A worker's buffers, reused from user to user.
struct Scratch {
  std::vector<double> p;  // one block of oracle output (when the view has no cache)
  std::vector<Entry> e;
  std::vector<uint32_t> top;
  std::vector<size_t> uv;  // theta indices of the priced support (Hessian update)
  std::vector<double> ub;  // and their curvature weights
};

// Higher reduced score first, ties by lower coupon index (as ChooseCoupons ranks).
inline bool Better(const Entry& a, const Entry& b) {
  return a.r > b.r || (a.r == b.r && a.j < b.j);
}

// Fills s.e with the user's available eligible coupons whose reduced score exceeds `floor`
// (every positive one included: floor <= 0), and s.top with the indices (into s.e) of its
// exact top-k positive reduced scores, best first.
void ScoreUser(const Campaign& cp, const double* p, const PassPrices& pr, double floor, Scratch& s);

// Checks a block of oracle output (`size` values, users from `first_user`): OK when every
// value is a probability in [0, 1] or kNotEligible, else InvalidArgument naming the first
// bad value.
absl::Status CheckBlock(const double* p, size_t size, size_t first_user, const Campaign& cp);

// Runs per_user(chunk, user, probabilities, scratch) over every user of the view, chunk by
// chunk (user = the view's index), calling the oracle once per block (or reading the cache)
// and validating what it returns; then chunk_done(chunk), if given, on the same worker.
// Returns the error of the lowest failing chunk.
absl::Status RunPass(const Campaign& cp,
                     const std::function<void(size_t, size_t, const double*, Scratch&)>& per_user,
                     const std::function<void(size_t)>& chunk_done = nullptr);

}  // namespace coupond::core::assignment_internal

#endif  // COUPOND_CORE_ASSIGNMENT_PASS_H_
