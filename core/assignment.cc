#include "core/assignment.h"

// How the solver works (see assignment.h for the problem).
//
// Dual. Relaxing the budget (price lambda) and the stocks (prices mu_j) gives
//   L(theta) = lambda B + sum_j mu_j s_j + sum_i max_{S <= eligible, |S| <= k} sum_{j in S} r_ij,
//   r_ij = p_ij (w_j - lambda c_j) - mu_j,
// an upper bound on the LP relaxation for every theta = (lambda, mu) >= 0. Each user's inner
// problem is an LP over an integral polytope ({0 <= x <= 1, sum x <= k}), so min L equals the LP
// optimum. L is convex but piecewise linear; subgradient methods converge slowly and need step
// rules, and coordinate descent can stall at kinks. We instead minimise a smoothed dual
//   D_tau(theta) = lambda B + sum mu s + sum_i h_i(r_i),
//   h_i = max_{x in P_k} r.x + tau * entropy(x)            (>= the per-user max, within O(tau))
// which is convex and twice differentiable, and whose gradient (the constraints' slack under
// the smoothed choice) and Hessian (dimension 1 + stocked coupons) one pass over the users
// yields exactly. k = 1 uses the softmax with a "nothing" option (closed form); k > 1 uses the
// Fermi-Dirac entropy with a per-user multiplier for sum x <= k (solved by safeguarded Newton).
// A projected Newton method with Levenberg-Marquardt damping and an Armijo test minimises
// D_tau over theta >= 0 (globally convergent, quadratically near the minimum: a handful of
// passes per stage), and tau is decreased geometrically (continuation), warm-starting each
// stage. Every pass also evaluates the exact L at its theta: the reported bound is the least of
// these, valid whatever the search did.
//
// Sampled search (large populations). A pass over 1M users x 100 coupons costs about as much
// as scoring them (~0.1-0.2 s on two cores); the 30-80 passes of the continuation would not
// fit the 3 s. The prices are a property of the population's distribution, so the
// continuation runs first on a sample (16,384 users: stratified runs of 16 consecutive users,
// so that the oracle still scores blocks; budget and stocks scaled by the sampled fraction;
// the sample's probabilities fetched once and cached). Its prices differ from the
// population's by O(1/sqrt(sample)), and L is flat to second order at its minimum, so a few
// full-population Newton passes (same method, warm-started at the sample's final tau) finish
// the search. Measured at 1M x 100: ~100 passes over the sample (~0.9 s on two idle cores),
// then 1-3 full passes and the repair pass. Only exact L values of full passes enter the reported bound; the sample's own
// dual values bound nothing and are discarded.
//
// Cost of a pass. Per user, the reduced scores are computed once from per-pass coefficients
// (a_j = w_j - lambda c_j, b_j = mu_j: r = p a - b, the same expression ChooseCoupons uses);
// only the entries that can carry smoothed mass (r > -2 kCutoff tau) are materialised, and
// exp is taken only of those. The exact top-k of a k = 1 user is a running maximum.
//
// Repair. One more pass collects, per user, its k + 2 best coupons by reduced score at the
// final prices (memory users x (k + 2) records of 24 bytes). A deterministic greedy then
// admits candidates in descending reduced score (ties by user, coupon) while the user has a
// free slot, the coupon stock and the remaining budget allow: at optimal prices this is the
// Lagrangian choice with the few users on the margin of a binding constraint rounded down or
// moved to their next candidate, and candidates with non-positive scores only fill slack the
// prices left. Every constraint holds exactly; the spend is confirmed on the final, canonically
// ordered sum. Each chunk's candidates are sorted by its worker, then merged. On small
// populations (<= kSmallRepairUsers) the same greedy is also run in order of value per expected
// spend and of value (no oracle call) and the best of the three is kept, which matters only
// when few users share the budget.
//
// Determinism. Users are cut into blocks and chunks whose boundaries depend only on the
// instance; each chunk accumulates in user order and chunks are reduced in index order, so
// the floating-point result does not depend on the number of threads. The sample is drawn
// with a fixed seed.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "core/random.h"

namespace coupond::core {

absl::Status DenseProbabilityOracle::Fill(size_t first_user, size_t count,
                                          absl::Span<double> out) const {
  if (first_user > num_users_ || count > num_users_ - first_user ||
      out.size() != count * num_coupons_) {
    return absl::InvalidArgumentError(
        absl::StrCat("DenseProbabilityOracle::Fill: users [", first_user, ", ",
                     first_user + count, ") or output size ", out.size(), " out of range"));
  }
  std::copy_n(p_.begin() + static_cast<std::ptrdiff_t>(first_user * num_coupons_),
              count * num_coupons_, out.begin());
  return absl::OkStatus();
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Probability rows per oracle call: at most this many doubles per block.
constexpr size_t kBlockDoubles = 16384;
constexpr size_t kMaxUsersPerBlock = 256;
// Reduction slots. Fixed (not the thread count) so that sums do not depend on threads.
constexpr size_t kMaxChunks = 64;
// Above this many dual variables the Newton system keeps only the Hessian's diagonal.
constexpr size_t kDenseHessianLimit = 256;
// exp(-40) ~ 4e-18: smoothed terms further than this many tau below the top are dropped.
constexpr double kCutoff = 40.0;
// Sampled search: default sample, automatic only for populations this many times larger,
// users per sampled run (one oracle call), and the most probabilities the sample may cache.
constexpr size_t kDefaultSampleUsers = 16384;
constexpr size_t kAutoSampleFactor = 4;
constexpr size_t kSampleRun = 16;
constexpr size_t kMaxSampleValues = size_t{1} << 22;
// Full-population phase after a sampled search: below kLargePopulationRatio x the sample,
// its continuation starts kFullRestart times above the sample's last tau.
constexpr size_t kLargePopulationRatio = 16;
constexpr double kFullRestart = 64;
// Repair: relative distance within which the budget price is moved to a shared kink.
constexpr double kSnap = 2e-3;
// Populations up to this size also try the two alternative repair orders.
constexpr size_t kSmallRepairUsers = size_t{1} << 16;

std::string FormatDouble(double v) { return absl::StrCat(v); }

absl::Status CheckNonNegativeFinite(double v, absl::string_view field) {
  if (!std::isfinite(v)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", FormatDouble(v), " is not finite"));
  }
  if (v < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", FormatDouble(v), " is negative"));
  }
  return absl::OkStatus();
}

absl::Status CheckProbability(double v, size_t user, size_t coupon,
                              absl::Span<const AssignmentCoupon> coupons) {
  if (v == kNotEligible || (v >= 0.0 && v <= 1.0)) return absl::OkStatus();  // NaN fails both
  return absl::InvalidArgumentError(absl::StrCat(
      "probability of user ", user, " for coupons[", coupon, "] ('", coupons[coupon].id,
      "'): ", FormatDouble(v), " is neither in [0, 1] nor kNotEligible"));
}

// Runs fn(task, worker) for task in [0, tasks) on up to `threads` threads. Tasks are taken in
// any order; fn must write only to per-task or per-worker state.
void ParallelFor(int threads, size_t tasks, const std::function<void(size_t, int)>& fn) {
  const int workers = static_cast<int>(std::min<size_t>(static_cast<size_t>(threads), tasks));
  if (workers <= 1) {
    for (size_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(workers));
  for (int w = 0; w < workers; ++w) {
    pool.emplace_back([&next, &fn, tasks, w] {
      for (size_t t = next.fetch_add(1); t < tasks; t = next.fetch_add(1)) fn(t, w);
    });
  }
  for (std::thread& t : pool) t.join();
}

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
  std::vector<int> var;         // index of mu_j in theta, or -1
  std::vector<double> stock;    // by theta index (entry 0 unused)
  std::vector<int64_t> limit;   // by coupon: stock, or -1 when unlimited
  size_t d = 1;                 // 1 + priced coupons
  bool dense = true;
  std::vector<Block> blocks;
  size_t max_block = 1;         // users
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

struct Entry {
  uint32_t j;
  int var;
  double r;      // reduced score
  double q;      // p c: expected cost
  double value;  // p w: expected value
  double p;
  double x;      // smoothed choice
  double a;      // curvature weight
};

struct Scratch {
  std::vector<double> p;
  std::vector<Entry> e;
  std::vector<uint32_t> top;
  std::vector<size_t> uv;  // theta indices of the priced support (Hessian update)
  std::vector<double> ub;  // and their curvature weights
};

bool Better(const Entry& a, const Entry& b) {
  return a.r > b.r || (a.r == b.r && a.j < b.j);
}

// Fills s.e with the user's available eligible coupons whose reduced score exceeds `floor`
// (every positive one included: floor <= 0), and s.top with the indices (into s.e) of its
// exact top-k positive reduced scores, best first.
void ScoreUser(const Campaign& cp, const double* p, const PassPrices& pr, double floor,
               Scratch& s) {
  s.e.clear();
  s.top.clear();
  for (size_t j = 0; j < cp.m; ++j) {
    const double pj = p[j];
    if (!cp.available[j] || pj == kNotEligible) continue;
    const double r = pj * pr.a[j] - pr.b[j];
    if (!(r > floor)) continue;
    s.e.push_back(Entry{static_cast<uint32_t>(j), cp.var[j], r, pj * cp.c[j], pj * cp.w[j], pj,
                        0.0, 0.0});
  }
  for (size_t i = 0; i < s.e.size(); ++i) {
    if (s.e[i].r > 0) s.top.push_back(static_cast<uint32_t>(i));
  }
  auto cmp = [&s](uint32_t a, uint32_t b) { return Better(s.e[a], s.e[b]); };
  if (s.top.size() > cp.k) {
    std::partial_sort(s.top.begin(), s.top.begin() + static_cast<std::ptrdiff_t>(cp.k), s.top.end(), cmp);
    s.top.resize(cp.k);
  } else {
    std::sort(s.top.begin(), s.top.end(), cmp);
  }
}

// Checks a block of oracle output; the message names the first bad value. The scan has no
// early exit so that it vectorises; only a bad block is scanned again for the message.
absl::Status CheckBlock(const double* p, size_t size, size_t first_user, const Campaign& cp) {
  unsigned ok = 1;
  for (size_t i = 0; i < size; ++i) {
    const double v = p[i];
    ok &= static_cast<unsigned>(v == kNotEligible) |
          (static_cast<unsigned>(v >= 0.0) & static_cast<unsigned>(v <= 1.0));
  }
  if (ok) return absl::OkStatus();
  for (size_t i = 0; i < size; ++i) {
    const double v = p[i];
    if (!(v == kNotEligible || (v >= 0.0 && v <= 1.0))) {  // NaN fails both
      return CheckProbability(v, first_user + i / cp.m, i % cp.m, cp.coupons);
    }
  }
  return absl::OkStatus();
}

// Runs per_user(chunk, user, probabilities, scratch) over every user of the view, chunk by
// chunk (user = the view's index), calling the oracle once per block (or reading the cache)
// and validating what it returns; then chunk_done(chunk), if given, on the same worker.
// Returns the error of the lowest failing chunk.
absl::Status RunPass(const Campaign& cp,
                     const std::function<void(size_t, size_t, const double*, Scratch&)>& per_user,
                     const std::function<void(size_t)>& chunk_done = nullptr) {
  std::vector<absl::Status> status(cp.num_chunks);
  std::vector<Scratch> scratch(static_cast<size_t>(std::max(cp.threads, 1)));
  ParallelFor(cp.threads, cp.num_chunks, [&](size_t chunk, int worker) {
    Scratch& s = scratch[static_cast<size_t>(worker)];
    if (cp.cache == nullptr) s.p.resize(cp.max_block * cp.m);
    for (size_t b = cp.ChunkBegin(chunk); b < cp.ChunkBegin(chunk + 1); ++b) {
      const Block& blk = cp.blocks[b];
      const double* p;
      if (cp.cache != nullptr) {
        p = cp.cache + blk.local * cp.m;
      } else {
        absl::Status st = cp.oracle->Fill(blk.first, blk.count,
                                          absl::MakeSpan(s.p.data(), blk.count * cp.m));
        if (st.ok()) st = CheckBlock(s.p.data(), blk.count * cp.m, blk.first, cp);
        if (!st.ok()) {
          status[chunk] = std::move(st);
          return;
        }
        p = s.p.data();
      }
      for (size_t u = 0; u < blk.count; ++u) per_user(chunk, blk.local + u, p + u * cp.m, s);
    }
    if (chunk_done) chunk_done(chunk);
  });
  for (absl::Status& st : status) COUPOND_RETURN_IF_ERROR(st);
  return absl::OkStatus();
}

// Sums of one pass at theta, per chunk and then reduced.
struct Sums {
  double exact = 0;        // sum_i exact per-user max
  double exact_spend = 0;  // of the exact choice
  double exact_value = 0;  // of the exact choice
  double smooth = 0;       // sum_i h_i
  double spend = 0;        // sum x q under the smoothed choice
  std::vector<double> demand;       // by theta index: sum x (smoothed)
  std::vector<double> exact_count;  // by theta index: exact choice
  std::vector<double> hess;         // d*d (dense) or d (diagonal), theta space
  double best_value = 0;   // sum_i max_j p w (statistics, theta = 0 pass)
  double sum_q = 0;
  double num_q = 0;

  void Init(const Campaign& cp, bool with_hessian) {
    demand.assign(cp.d, 0.0);
    exact_count.assign(cp.d, 0.0);
    hess.assign(with_hessian ? (cp.dense ? cp.d * cp.d : cp.d) : 0, 0.0);
  }
  void Add(const Sums& o) {
    exact += o.exact;
    exact_spend += o.exact_spend;
    exact_value += o.exact_value;
    smooth += o.smooth;
    spend += o.spend;
    for (size_t i = 0; i < demand.size(); ++i) demand[i] += o.demand[i];
    for (size_t i = 0; i < exact_count.size(); ++i) exact_count[i] += o.exact_count[i];
    for (size_t i = 0; i < hess.size(); ++i) hess[i] += o.hess[i];
    best_value += o.best_value;
    sum_q += o.sum_q;
    num_q += o.num_q;
  }
};

// Smoothed per-user maximum; sets e.x (the smoothed choice) and e.a, and returns h together
// with the rank-one correction of the Hessian in r-space: H_r = diag(a) - u u^T / beta with
// u_l = b_l (b = a for Fermi-Dirac, b = x / tau for softmax). beta = 0 means no correction.
struct Smoothed {
  double h = 0;
  double beta = 0;
  bool softmax = false;
};

Smoothed SmoothUser(const Campaign& cp, double tau, std::vector<Entry>& e) {
  Smoothed out;
  double maxr = 0;  // the "nothing" option scores 0
  for (const Entry& x : e) maxr = std::max(maxr, x.r);
  if (cp.k == 1) {
    // h = tau log(1 + sum exp(r/tau)), x = softmax; H_r = (diag(x) - x x^T) / tau.
    out.softmax = true;
    double z = std::exp(-maxr / tau);
    for (Entry& x : e) {
      const double t = (x.r - maxr) / tau;
      x.x = t < -kCutoff ? 0.0 : std::exp(t);
      z += x.x;
    }
    for (Entry& x : e) {
      x.x /= z;
      x.a = x.x / tau;
    }
    out.h = maxr + tau * std::log(z);
    out.beta = 1.0 / tau;
    return out;
  }
  // Fermi-Dirac: x_l = sigmoid((r_l - nu)/tau), nu >= 0 with sum x <= k (equality if nu > 0);
  // h = nu k + tau sum softplus((r_l - nu)/tau).
  auto sigmoid = [](double t) {
    return t >= 0 ? 1.0 / (1.0 + std::exp(-t)) : std::exp(t) / (1.0 + std::exp(t));
  };
  auto total = [&](double nu, double* slope) {
    double sum = 0, da = 0;
    for (const Entry& x : e) {
      const double t = (x.r - nu) / tau;
      if (t < -kCutoff) continue;
      const double s = sigmoid(t);
      sum += s;
      da += s * (1 - s) / tau;
    }
    *slope = da;
    return sum;
  };
  const double kk = static_cast<double>(cp.k);
  double nu = 0, slope = 0;
  double f = total(0.0, &slope) - kk;
  if (f > 0) {
    double lo = 0;
    double hi = maxr + tau * (std::log(static_cast<double>(e.size()) / kk) + 1.0);
    nu = 0;
    for (int it = 0; it < 200; ++it) {
      double next = slope > 0 ? nu + f / slope : 0.5 * (lo + hi);
      if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
      nu = next;
      f = total(nu, &slope) - kk;
      if (f > 0) lo = nu; else hi = nu;
      if (std::abs(f) <= 1e-12 * kk || hi - lo <= 1e-15 * (std::abs(hi) + tau)) break;
    }
  }
  double h = nu * kk, beta = 0;
  for (Entry& x : e) {
    const double t = (x.r - nu) / tau;
    if (t < -kCutoff) {
      x.x = x.a = 0;
      continue;
    }
    x.x = sigmoid(t);
    x.a = x.x * (1 - x.x) / tau;
    h += tau * (std::max(t, 0.0) + std::log1p(std::exp(-std::abs(t))));
    beta += x.a;
  }
  out.h = h;
  out.beta = nu > 0 ? beta : 0.0;
  return out;
}


struct Evaluation {
  std::vector<double> theta;
  double exact_dual = 0;   // L(theta)
  double smooth_dual = 0;  // D_tau(theta)
  std::vector<double> grad;
  std::vector<double> hess;
  Sums sums;
};

// One pass: exact dual at theta and, if tau > 0, the smoothed dual with gradient and Hessian;
// if tau == 0, the statistics of the prices-0 pass (best_value, sum_q, num_q) as well.
absl::StatusOr<Evaluation> Evaluate(const Campaign& cp, const std::vector<double>& theta,
                                    double tau) {
  const bool smooth = tau > 0;
  const PassPrices pr(cp, theta);
  // Entries at or below -2 kCutoff tau get no smoothed mass (SmoothUser drops t < -kCutoff,
  // and t <= r / tau): they are not materialised. Without smoothing only positives matter.
  const double floor = smooth ? -2.0 * kCutoff * tau : 0.0;
  std::vector<Sums> chunk_sums(cp.num_chunks);
  for (Sums& s : chunk_sums) s.Init(cp, smooth);
  COUPOND_RETURN_IF_ERROR(RunPass(cp, [&](size_t chunk, size_t, const double* p, Scratch& s) {
    Sums& acc = chunk_sums[chunk];
    ScoreUser(cp, p, pr, floor, s);
    for (uint32_t t : s.top) {
      const Entry& x = s.e[t];
      acc.exact += x.r;
      acc.exact_spend += x.q;
      acc.exact_value += x.value;
      if (x.var >= 0) acc.exact_count[static_cast<size_t>(x.var)] += 1;
    }
    if (!smooth) {
      double best = 0;
      for (size_t j = 0; j < cp.m; ++j) {
        if (!cp.available[j] || p[j] == kNotEligible) continue;
        best = std::max(best, p[j] * cp.w[j]);
        const double q = p[j] * cp.c[j];
        if (q > 0) {
          acc.sum_q += q;
          acc.num_q += 1;
        }
      }
      acc.best_value += best;
      return;
    }
    if (s.e.empty()) return;
    const Smoothed sm = SmoothUser(cp, tau, s.e);
    acc.smooth += sm.h;
    // theta-space: r_l depends on theta through e_l = -(q_l at 0, 1 at var_l).
    double u0 = 0;  // u = sum b_l e_l, component 0 (negated below)
    for (const Entry& x : s.e) {
      if (x.x == 0 && x.a == 0) continue;
      acc.spend += x.x * x.q;
      const double b = sm.softmax ? x.x / tau : x.a;
      u0 += b * x.q;
      if (x.var >= 0) acc.demand[static_cast<size_t>(x.var)] += x.x;
      if (x.a == 0) continue;
      const size_t v = x.var >= 0 ? static_cast<size_t>(x.var) : 0;
      if (cp.dense) {
        acc.hess[0] += x.a * x.q * x.q;
        if (x.var >= 0) {
          acc.hess[v] += x.a * x.q;
          acc.hess[v * cp.d] += x.a * x.q;
          acc.hess[v * cp.d + v] += x.a;
        }
      } else {
        acc.hess[0] += x.a * x.q * x.q;
        if (x.var >= 0) acc.hess[v] += x.a;
      }
    }
    if (sm.beta <= 0) return;
    const double inv_beta = 1.0 / sm.beta;
    // Subtract u u^T / beta over the support: u_0 = -sum b q, u_v = -b_l for var_l = v.
    if (cp.dense) {
      acc.hess[0] -= u0 * u0 * inv_beta;
      // The priced entries of the support, compacted first: the outer product then costs
      // (priced support)^2, not entries x priced support.
      s.uv.clear();
      s.ub.clear();
      for (const Entry& x : s.e) {
        if (x.var < 0 || x.x == 0) continue;
        s.uv.push_back(static_cast<size_t>(x.var));
        s.ub.push_back(sm.softmax ? x.x / tau : x.a);
      }
      for (size_t i = 0; i < s.uv.size(); ++i) {
        const size_t v = s.uv[i];
        const double bv = s.ub[i];
        acc.hess[v] -= u0 * bv * inv_beta;
        acc.hess[v * cp.d] -= u0 * bv * inv_beta;
        double* row = acc.hess.data() + v * cp.d;
        for (size_t l = 0; l < s.uv.size(); ++l) row[s.uv[l]] -= bv * s.ub[l] * inv_beta;
      }
    } else {
      acc.hess[0] -= u0 * u0 * inv_beta;
      for (const Entry& x : s.e) {
        if (x.var < 0 || x.x == 0) continue;
        const double bv = sm.softmax ? x.x / tau : x.a;
        acc.hess[static_cast<size_t>(x.var)] -= bv * bv * inv_beta;
      }
    }
  }));
  Evaluation ev;
  ev.theta = theta;
  ev.sums.Init(cp, smooth);
  for (const Sums& s : chunk_sums) ev.sums.Add(s);
  double fixed = theta[0] * cp.budget;
  for (size_t v = 1; v < cp.d; ++v) fixed += theta[v] * cp.stock[v];
  ev.exact_dual = fixed + ev.sums.exact;
  if (smooth) {
    ev.smooth_dual = fixed + ev.sums.smooth;
    ev.grad.assign(cp.d, 0.0);
    ev.grad[0] = cp.budget - ev.sums.spend;
    for (size_t v = 1; v < cp.d; ++v) ev.grad[v] = cp.stock[v] - ev.sums.demand[v];
    ev.hess = ev.sums.hess;
  }
  return ev;
}

bool ExactFeasible(const Campaign& cp, const Evaluation& ev) {
  bool feasible = ev.sums.exact_spend <= cp.budget;
  for (size_t v = 1; v < cp.d; ++v) feasible = feasible && ev.sums.exact_count[v] <= cp.stock[v];
  return feasible;
}

// In-place Cholesky solve of A x = b (A n x n, row-major, symmetric). False if A is not
// numerically positive definite.
bool CholeskySolve(std::vector<double>& a, std::vector<double>& b, size_t n) {
  for (size_t j = 0; j < n; ++j) {
    double diag = a[j * n + j];
    for (size_t l = 0; l < j; ++l) diag -= a[j * n + l] * a[j * n + l];
    if (!(diag > 0) || !std::isfinite(diag)) return false;
    const double ljj = std::sqrt(diag);
    a[j * n + j] = ljj;
    for (size_t i = j + 1; i < n; ++i) {
      double s = a[i * n + j];
      for (size_t l = 0; l < j; ++l) s -= a[i * n + l] * a[j * n + l];
      a[i * n + j] = s / ljj;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    double s = b[i];
    for (size_t l = 0; l < i; ++l) s -= a[i * n + l] * b[l];
    b[i] = s / a[i * n + i];
  }
  for (size_t i = n; i-- > 0;) {
    double s = b[i];
    for (size_t l = i + 1; l < n; ++l) s -= a[l * n + i] * b[l];
    b[i] = s / a[i * n + i];
  }
  return true;
}

// Controls of one continuation (see the top of the file).
struct SearchControl {
  double tau = 0;        // of the first stage
  double tau_min = 0;    // of the last
  double qbar = 1;       // mean expected cost of a pair: scale of the Levenberg-Marquardt floor
  double stage_eps = 0;  // a stage ends when Newton predicts less decrease than this
  double tolerance = 0;
  int max_passes = 1;
};

struct SearchState {
  Evaluation ev;       // at the final prices
  double bound = kInf; // least exact L seen (of this view)
  int passes = 0;      // passes over this view
  bool converged = false;
  double tau = 0;      // of the last stage
};

// Continuation from theta: stages of projected Newton on D_tau, tau divided by 4 between
// stages, until the exact choice at the prices is feasible and within the tolerance of the
// bound, or tau reaches tau_min. Never starts a pass beyond ctl.max_passes (st->passes counts).
absl::Status Search(const Campaign& cp, const std::vector<double>& theta0, const SearchControl& ctl,
                    SearchState* st) {
  double tau = ctl.tau;
  double rho = 1e-6;
  st->converged = false;
  st->tau = tau;
  // The smoothed dual and its derivatives exist only for tau > 0 (Evaluate computes no
  // gradient at tau 0). Values near the smallest doubles (weights like 1e-320) make the
  // schedule's tau underflow to 0: the search then ends at the prices it has, as when out of
  // passes, and the repair keeps the assignment feasible.
  if (st->passes >= ctl.max_passes || !(tau > 0)) {
    st->ev = Evaluation();
    st->ev.theta = theta0;
    return absl::OkStatus();
  }
  COUPOND_ASSIGN_OR_RETURN(st->ev, Evaluate(cp, theta0, tau));
  ++st->passes;
  st->bound = std::min(st->bound, st->ev.exact_dual);
  Evaluation& ev = st->ev;
  for (;;) {
    // Newton stage at this tau.
    int stage_passes = 0;
    bool stage_done = false;
    bool out_of_passes = false;
    while (!stage_done) {
      if (st->passes >= ctl.max_passes) {
        out_of_passes = true;
        break;
      }
      std::vector<size_t> free;
      for (size_t v = 0; v < cp.d; ++v) {
        if (ev.theta[v] > 0 || ev.grad[v] < 0) free.push_back(v);
      }
      const size_t nf = free.size();
      std::vector<double> step(cp.d, 0.0);
      bool solved = false;
      while (!solved && rho < 1e30) {
        std::vector<double> a(nf * nf, 0.0), rhs(nf);
        for (size_t i = 0; i < nf; ++i) {
          const size_t vi = free[i];
          const double hii = cp.dense ? ev.hess[vi * cp.d + vi] : ev.hess[vi];
          const double floor_v = (vi == 0 ? ctl.qbar * ctl.qbar : 1.0) / tau;
          if (cp.dense) {
            for (size_t l = 0; l < nf; ++l) a[i * nf + l] = ev.hess[vi * cp.d + free[l]];
          } else {
            a[i * nf + i] = hii;
          }
          a[i * nf + i] += rho * std::max(hii, floor_v);
          rhs[i] = -ev.grad[vi];
        }
        solved = CholeskySolve(a, rhs, nf);
        if (!solved) {
          rho = std::max(rho * 10, 1e-9);
          continue;
        }
        for (size_t i = 0; i < nf; ++i) step[free[i]] = rhs[i];
      }
      if (!solved) break;
      std::vector<double> trial(cp.d);
      double pred = 0;
      for (size_t v = 0; v < cp.d; ++v) {
        trial[v] = std::max(0.0, ev.theta[v] + step[v]);
        pred += ev.grad[v] * (trial[v] - ev.theta[v]);
      }
      if (-pred <= ctl.stage_eps) {
        stage_done = true;
        break;
      }
      COUPOND_ASSIGN_OR_RETURN(Evaluation next, Evaluate(cp, trial, tau));
      ++st->passes;
      ++stage_passes;
      st->bound = std::min(st->bound, next.exact_dual);
      if (next.smooth_dual <= ev.smooth_dual + 1e-4 * pred) {
        const double decrease = ev.smooth_dual - next.smooth_dual;
        ev = std::move(next);
        rho = std::max(rho / 4, 1e-9);
        if (decrease <= ctl.stage_eps) stage_done = true;
      } else {
        rho = std::max(rho * 4, 1e-6);
      }
      if (stage_passes >= 30) stage_done = true;
    }
    st->tau = tau;
    if (out_of_passes || !stage_done) return absl::OkStatus();
    // Stop when the exact choice at these prices is feasible and within tolerance, or at
    // the end of the schedule.
    if ((ExactFeasible(cp, ev) && st->bound - ev.sums.exact_value <= ctl.tolerance * st->bound) ||
        tau <= ctl.tau_min) {
      st->converged = true;
      return absl::OkStatus();
    }
    tau = std::max(tau / 4, ctl.tau_min);
    if (st->passes >= ctl.max_passes || !(tau > 0)) return absl::OkStatus();
    COUPOND_ASSIGN_OR_RETURN(ev, Evaluate(cp, ev.theta, tau));
    ++st->passes;
    st->bound = std::min(st->bound, ev.exact_dual);
  }
}

// Scales of an instance, from the prices-0 pass: mean best per-user value and mean expected
// cost of a pair, for the smoothing schedule and the Levenberg-Marquardt floor.
struct Scales {
  double vbar = 0;
  double qbar = 1;
};

// The whole search on a view, from prices 0: the prices-0 pass (if the unconstrained choice
// is feasible it is optimal and the search ends there), then the continuation from
// tau = 0.05 vbar down to 1e-5 vbar.
absl::Status SearchFromZero(const Campaign& cp, const AssignmentOptions& options, SearchState* st,
                            Scales* scales) {
  std::vector<double> theta(cp.d, 0.0);
  COUPOND_ASSIGN_OR_RETURN(st->ev, Evaluate(cp, theta, 0.0));
  ++st->passes;
  st->bound = std::min(st->bound, st->ev.exact_dual);
  scales->vbar = st->ev.sums.best_value / static_cast<double>(cp.n);
  scales->qbar = st->ev.sums.num_q > 0 ? st->ev.sums.sum_q / st->ev.sums.num_q : 1.0;
  st->tau = 0;
  st->converged = true;
  if (ExactFeasible(cp, st->ev)) return absl::OkStatus();
  SearchControl ctl;
  ctl.tau = 0.05 * scales->vbar;
  ctl.tau_min = 1e-5 * scales->vbar;
  ctl.qbar = scales->qbar;
  ctl.stage_eps = 1e-3 * options.tolerance * scales->vbar * static_cast<double>(cp.n) + 1e-300;
  ctl.tolerance = options.tolerance;
  ctl.max_passes = options.max_iterations;
  return Search(cp, theta, ctl, st);
}

// A repair candidate. Value and expected cost are p w_j and p c_j, recomputed from p.
struct Record {
  double r;
  double p;
  uint32_t user;
  uint32_t coupon;
};

bool ByUserCoupon(const Record& a, const Record& b) {
  return a.user < b.user || (a.user == b.user && a.coupon < b.coupon);
}

// The main repair order: descending reduced score, ties by (user, coupon). A strict total
// order on distinct candidates, so sorting and merging give one result.
bool ByScore(const Record& a, const Record& b) {
  if (a.r != b.r) return a.r > b.r;
  return ByUserCoupon(a, b);
}

// Merges runs that are each sorted by ByScore, pairwise in rounds (pairs in parallel).
std::vector<Record> MergeRuns(std::vector<std::vector<Record>> runs, int threads) {
  if (runs.empty()) return {};
  while (runs.size() > 1) {
    std::vector<std::vector<Record>> next((runs.size() + 1) / 2);
    ParallelFor(threads, next.size(), [&](size_t i, int) {
      if (2 * i + 1 == runs.size()) {
        next[i] = std::move(runs[2 * i]);
        return;
      }
      std::vector<Record>& a = runs[2 * i];
      std::vector<Record>& b = runs[2 * i + 1];
      next[i].resize(a.size() + b.size());
      std::merge(a.begin(), a.end(), b.begin(), b.end(), next[i].begin(), ByScore);
      std::vector<Record>().swap(a);
      std::vector<Record>().swap(b);
    });
    runs = std::move(next);
  }
  return std::move(runs[0]);
}

// The repair (see the top of the file): one pass collects each user's best few candidates at
// prices theta (and evaluates the exact L there: *exact_dual), then a deterministic greedy in
// order of reduced score admits those that keep every constraint. Memory: users x
// (k + kExtraCandidates) records.
constexpr size_t kExtraCandidates = 2;
// Up to this many candidates per user are kept by insertion into a small sorted array;
// more (k near the number of coupons) by a partial sort of the user's entries.
constexpr size_t kInsertionCandidates = 32;

absl::Status Recover(const Campaign& cp, const std::vector<double>& theta,
                     std::vector<Record>* out, int* passes, double* exact_dual) {
  const size_t keep = std::min(cp.m, cp.k + kExtraCandidates);
  const PassPrices pr(cp, theta);
  std::vector<std::vector<Record>> chunk_recs(cp.num_chunks);
  std::vector<double> chunk_exact(cp.num_chunks, 0.0);
  COUPOND_RETURN_IF_ERROR(RunPass(
      cp,
      [&](size_t chunk, size_t user, const double* p, Scratch& s) {
        const uint32_t u = static_cast<uint32_t>(user);
        // Best `keep` by (r desc, coupon asc) among the pairs with positive value.
        size_t count = 0;
        if (keep <= kInsertionCandidates) {
          Record buf[kInsertionCandidates];
          for (size_t j = 0; j < cp.m; ++j) {
            const double pj = p[j];
            if (!cp.available[j] || pj == kNotEligible || !(pj * cp.w[j] > 0)) continue;
            const double r = pj * pr.a[j] - pr.b[j];
            // Coupons come in ascending order, so an equal score never displaces a kept one.
            size_t i;
            if (count < keep) {
              i = count++;
            } else if (r > buf[keep - 1].r) {
              i = keep - 1;
            } else {
              continue;
            }
            while (i > 0 && r > buf[i - 1].r) {
              buf[i] = buf[i - 1];
              --i;
            }
            buf[i] = Record{r, pj, u, static_cast<uint32_t>(j)};
          }
          std::vector<Record>& recs = chunk_recs[chunk];
          double exact = 0;
          for (size_t t = 0; t < count; ++t) {
            if (t < cp.k && buf[t].r > 0) exact += buf[t].r;
            recs.push_back(buf[t]);
          }
          chunk_exact[chunk] += exact;
          return;
        }
        ScoreUser(cp, p, pr, -kInf, s);
        s.top.clear();
        for (size_t i = 0; i < s.e.size(); ++i) {
          if (s.e[i].value > 0) s.top.push_back(static_cast<uint32_t>(i));
        }
        auto cmp = [&s](uint32_t a, uint32_t b) { return Better(s.e[a], s.e[b]); };
        count = std::min(keep, s.top.size());
        std::partial_sort(s.top.begin(), s.top.begin() + static_cast<std::ptrdiff_t>(count),
                          s.top.end(), cmp);
        double exact = 0;
        for (size_t t = 0; t < count; ++t) {
          const Entry& x = s.e[s.top[t]];
          if (t < cp.k && x.r > 0) exact += x.r;
          chunk_recs[chunk].push_back(Record{x.r, x.p, u, x.j});
        }
        chunk_exact[chunk] += exact;
      },
      [&](size_t chunk) {
        std::sort(chunk_recs[chunk].begin(), chunk_recs[chunk].end(), ByScore);
      }));
  ++*passes;
  double fixed = theta[0] * cp.budget;
  for (size_t v = 1; v < cp.d; ++v) fixed += theta[v] * cp.stock[v];
  for (double e : chunk_exact) fixed += e;
  *exact_dual = fixed;
  std::vector<Record> cand = MergeRuns(std::move(chunk_recs), cp.threads);
  out->clear();
  // Greedy admission in a given order: a candidate enters while its user has a free slot and
  // its coupon stock and the remaining budget allow.
  std::vector<uint32_t> held(cp.n);
  std::vector<size_t> start(cp.n + 1);
  auto value_of = [&](const Record& x) { return x.p * cp.w[x.coupon]; };
  auto cost_of = [&](const Record& x) { return x.p * cp.c[x.coupon]; };
  auto greedy = [&](const std::vector<Record>& order, std::vector<Record>* chosen) {
    chosen->clear();
    std::fill(held.begin(), held.end(), 0);
    std::vector<int64_t> left = cp.limit;  // -1: unlimited
    double spend = 0;
    for (const Record& x : order) {
      const double cost = cost_of(x);
      if (held[x.user] >= cp.k || left[x.coupon] == 0 || spend + cost > cp.budget) continue;
      ++held[x.user];
      if (left[x.coupon] > 0) --left[x.coupon];
      spend += cost;
      chosen->push_back(x);
    }
    // Canonical (user, coupon) order by a counting sort on the user (at most k per user),
    // then by coupon within the user.
    start[0] = 0;
    for (size_t i = 0; i < cp.n; ++i) start[i + 1] = start[i] + held[i];
    std::vector<size_t> perm(chosen->size());
    std::fill(held.begin(), held.end(), 0);
    for (size_t t = 0; t < chosen->size(); ++t) {
      const uint32_t u = (*chosen)[t].user;
      perm[start[u] + held[u]++] = t;
    }
    for (size_t i = 0; i < cp.n; ++i) {
      if (held[i] < 2) continue;
      std::sort(perm.begin() + static_cast<std::ptrdiff_t>(start[i]),
                perm.begin() + static_cast<std::ptrdiff_t>(start[i + 1]),
                [&](size_t a, size_t b) { return (*chosen)[a].coupon < (*chosen)[b].coupon; });
    }
    // The running spend and the canonical sum differ only by rounding; if the latter exceeds
    // the budget, give back the last admitted paid items until it fits.
    std::vector<char> alive(chosen->size(), 1);
    size_t drop = chosen->size();
    double value = 0;
    for (;;) {
      double canonical = 0;
      value = 0;
      for (size_t t : perm) {
        if (!alive[t]) continue;
        canonical += cost_of((*chosen)[t]);
        value += value_of((*chosen)[t]);
      }
      if (canonical <= cp.budget) break;
      while (drop > 0 && !(alive[drop - 1] && cost_of((*chosen)[drop - 1]) > 0)) --drop;
      if (drop == 0) break;  // unreachable: an empty paid set spends 0
      alive[--drop] = 0;
    }
    std::vector<Record> sorted;
    sorted.reserve(chosen->size());
    for (size_t t : perm) {
      if (alive[t]) sorted.push_back((*chosen)[t]);
    }
    chosen->swap(sorted);
    return value;
  };
  // Order 1, the main one: descending reduced score (cand is merged in that order). At
  // optimal prices this is the Lagrangian choice with the few users on the margin of a binding
  // constraint rounded down or moved to their next candidate; non-positive scores only fill
  // slack the prices left.
  double best = greedy(cand, out);
  if (cp.n > kSmallRepairUsers) return absl::OkStatus();
  // Orders 2 and 3 matter when few users share the budget (the rounding loss is then a large
  // share of the value): value per unit of expected spend, and value. Cheap, no oracle call.
  std::vector<Record> other;
  std::sort(cand.begin(), cand.end(), [&](const Record& a, const Record& b) {
    // a.value / a.cost > b.value / b.cost, cross-multiplied (free items first).
    const double lhs = value_of(a) * cost_of(b), rhs = value_of(b) * cost_of(a);
    if (lhs != rhs) return lhs > rhs;
    if (value_of(a) != value_of(b)) return value_of(a) > value_of(b);
    return ByUserCoupon(a, b);
  });
  if (const double v = greedy(cand, &other); v > best) {
    best = v;
    out->swap(other);
  }
  std::sort(cand.begin(), cand.end(), [&](const Record& a, const Record& b) {
    if (value_of(a) != value_of(b)) return value_of(a) > value_of(b);
    return ByUserCoupon(a, b);
  });
  if (const double v = greedy(cand, &other); v > best) out->swap(other);
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateAssignmentInput(absl::Span<const AssignmentCoupon> coupons, double budget,
                                     const AssignmentOptions& options) {
  if (coupons.empty()) {
    return absl::InvalidArgumentError("coupons: empty campaign (no coupons)");
  }
  if (coupons.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("coupons: ", coupons.size(), " is too many"));
  }
  absl::flat_hash_map<absl::string_view, size_t> seen;
  for (size_t j = 0; j < coupons.size(); ++j) {
    const AssignmentCoupon& cpn = coupons[j];
    const std::string field = absl::StrCat("coupons[", j, "]");
    if (cpn.id.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ".id: empty"));
    auto [it, inserted] = seen.emplace(cpn.id, j);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".id: '", cpn.id,
                                                     "' duplicates coupons[", it->second, "].id"));
    }
    COUPOND_RETURN_IF_ERROR(CheckNonNegativeFinite(cpn.face_value, field + ".face_value"));
    COUPOND_RETURN_IF_ERROR(CheckNonNegativeFinite(cpn.weight, field + ".weight"));
    if (cpn.stock.has_value() && *cpn.stock < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".stock: ", *cpn.stock, " is negative"));
    }
  }
  COUPOND_RETURN_IF_ERROR(CheckNonNegativeFinite(budget, "budget"));
  if (options.max_coupons_per_user < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "options.max_coupons_per_user: ", options.max_coupons_per_user, " is below 1"));
  }
  if (options.threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.threads: ", options.threads, " is negative"));
  }
  if (options.max_iterations < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.max_iterations: ", options.max_iterations, " is below 1"));
  }
  if (options.search_sample_users < 0) {
    return absl::InvalidArgumentError(absl::StrCat("options.search_sample_users: ",
                                                   options.search_sample_users, " is negative"));
  }
  return CheckNonNegativeFinite(options.tolerance, "options.tolerance");
}

absl::StatusOr<AssignmentResult> SolveAssignment(absl::Span<const AssignmentCoupon> coupons,
                                                 double budget, const ProbabilityOracle& oracle,
                                                 const AssignmentOptions& options) {
  COUPOND_RETURN_IF_ERROR(ValidateAssignmentInput(coupons, budget, options));
  Campaign cp;
  cp.coupons = coupons;
  cp.oracle = &oracle;
  cp.n = oracle.num_users();
  cp.m = coupons.size();
  cp.k = static_cast<size_t>(options.max_coupons_per_user);
  cp.budget = budget;
  if (cp.n > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("oracle.num_users(): ", cp.n, " is too many"));
  }
  AssignmentResult result;
  result.issued.assign(cp.m, 0);
  result.prices.stock_prices.assign(cp.m, 0.0);
  result.converged = true;

  cp.stock.push_back(0.0);
  bool any = false;
  for (size_t j = 0; j < cp.m; ++j) {
    const AssignmentCoupon& cpn = coupons[j];
    cp.w.push_back(cpn.weight);
    cp.c.push_back(cpn.face_value);
    const bool avail = !(cpn.stock.has_value() && *cpn.stock == 0) && cpn.weight > 0 &&
                       !(budget == 0 && cpn.face_value > 0);
    cp.available.push_back(avail ? 1 : 0);
    any = any || avail;
    const bool priced = avail && cpn.stock.has_value() &&
                        static_cast<uint64_t>(*cpn.stock) < static_cast<uint64_t>(cp.n);
    cp.var.push_back(priced ? static_cast<int>(cp.d++) : -1);
    if (priced) cp.stock.push_back(static_cast<double>(*cpn.stock));
    cp.limit.push_back(cpn.stock.has_value() && static_cast<uint64_t>(*cpn.stock) < cp.n
                           ? *cpn.stock
                           : -1);
  }
  if (cp.n == 0 || !any) return result;
  cp.dense = cp.d <= kDenseHessianLimit;
  cp.threads = options.threads > 0
                   ? options.threads
                   : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  {
    const size_t per_block = std::clamp<size_t>(kBlockDoubles / cp.m, 1, kMaxUsersPerBlock);
    std::vector<Block> blocks;
    blocks.reserve((cp.n + per_block - 1) / per_block);
    for (size_t first = 0; first < cp.n; first += per_block) {
      blocks.push_back(Block{first, std::min(per_block, cp.n - first), first});
    }
    cp.SetBlocks(std::move(blocks));
  }

  // How many users to sample (0: none).
  size_t sample = 0;
  if (options.search_sample_users > 0) {
    if (static_cast<uint64_t>(options.search_sample_users) < cp.n) {
      sample = static_cast<size_t>(options.search_sample_users);
    }
  } else {
    const size_t automatic =
        std::min(kDefaultSampleUsers, std::max(kSampleRun, kMaxSampleValues / cp.m));
    if (cp.n >= kAutoSampleFactor * automatic) sample = automatic;
  }

  SearchState st;
  Scales scales;
  if (sample > 0) {
    // The sample: one run of kSampleRun consecutive users drawn uniformly from each of
    // ceil(sample / kSampleRun) equal strata of runs (fixed seed).
    Campaign sc = cp;
    const size_t runs = (cp.n + kSampleRun - 1) / kSampleRun;
    const size_t want = std::min(runs, (sample + kSampleRun - 1) / kSampleRun);
    std::vector<Block> blocks;
    blocks.reserve(want);
    size_t local = 0;
    SplitMix64 rng(0x5eed'c0de'2024'0004ULL);
    for (size_t s = 0; s < want; ++s) {
      const size_t lo = s * runs / want, hi = (s + 1) * runs / want;
      const uint64_t z = rng.Next();
      const size_t run = lo + static_cast<size_t>(z % (hi - lo));
      const size_t first = run * kSampleRun;
      const size_t count = std::min(kSampleRun, cp.n - first);
      blocks.push_back(Block{first, count, local});
      local += count;
    }
    sc.n = local;
    const double fraction = static_cast<double>(sc.n) / static_cast<double>(cp.n);
    sc.budget = fraction * cp.budget;
    for (size_t v = 1; v < cp.d; ++v) sc.stock[v] = fraction * cp.stock[v];
    sc.SetBlocks(std::move(blocks));
    // Cache the sample's probabilities when they are few enough (they always are with the
    // automatic size); otherwise every sample pass asks the oracle again.
    std::vector<double> cache;
    if (sc.n * sc.m <= kMaxSampleValues) {
      cache.resize(sc.n * sc.m);
      std::vector<absl::Status> status(sc.blocks.size());
      ParallelFor(sc.threads, sc.blocks.size(), [&](size_t b, int) {
        const Block& blk = sc.blocks[b];
        double* dst = cache.data() + blk.local * sc.m;
        absl::Status s = oracle.Fill(blk.first, blk.count, absl::MakeSpan(dst, blk.count * sc.m));
        if (s.ok()) s = CheckBlock(dst, blk.count * sc.m, blk.first, sc);
        status[b] = std::move(s);
      });
      for (absl::Status& s : status) COUPOND_RETURN_IF_ERROR(s);
      sc.cache = cache.data();
    }
    SearchState sample_state;
    COUPOND_RETURN_IF_ERROR(SearchFromZero(sc, options, &sample_state, &scales));
    result.sample_users = sc.n;
    result.sample_passes = sample_state.passes;
    bool zero = true;
    for (double t : sample_state.ev.theta) zero = zero && t == 0;
    if (zero) {
      // The sample found the unconstrained choice feasible (or had no pass to spare): check
      // that on the population, searching from prices 0 if it is not.
      COUPOND_RETURN_IF_ERROR(SearchFromZero(cp, options, &st, &scales));
    } else {
      // Continue on the population from the sample's prices at its last tau.
      SearchControl ctl;
      ctl.tau = sample_state.tau;
      ctl.tau_min = 1e-5 * scales.vbar;
      ctl.qbar = scales.qbar;
      ctl.stage_eps = 1e-3 * options.tolerance * scales.vbar * static_cast<double>(cp.n) + 1e-300;
      ctl.tolerance = options.tolerance;
      ctl.max_passes = options.max_iterations;
      // On a population much larger than the sample the sample's prices are within the reach
      // of Newton at the sample's last (smallest) tau: a stage converges in 1-3 passes, and
      // every larger tau would cost more (more entries carry smoothed mass) for nothing. On a
      // population not much larger than the sample (explicit search_sample_users) the exact
      // dual has few kinks and is too rough at that tau: continue from kFullRestart times
      // higher instead (measured on the 2,000-user GLPK instance: fewer passes, smaller gap).
      if (cp.n < kLargePopulationRatio * sc.n) ctl.tau = kFullRestart * sample_state.tau;
      COUPOND_RETURN_IF_ERROR(Search(cp, sample_state.ev.theta, ctl, &st));
    }
  } else {
    COUPOND_RETURN_IF_ERROR(SearchFromZero(cp, options, &st, &scales));
  }
  const std::vector<double> theta = st.ev.theta;
  int passes = st.passes;
  double bound = st.bound;
  result.converged = st.converged;

  // Repair prices: theta, except that a budget price within kSnap of a shared kink
  // w_j / c_j (a coupon without a stock price, whose reduced score p (w_j - lambda c_j)
  // crosses 0 at that lambda for every user at once) is moved just below the kink. Why:
  // weights and face values from a small set make r proportional to p for every user
  // (e.g. w = 1: maximise redemptions), so the dual is V-shaped with its minimum exactly at
  // the kink, and the smoothed search stops a little above it (smoothing over-demands the
  // tied options). Above the kink every tied score is negative and ranks low-probability
  // pairs first, so the greedy would fill its slots with them; just below, the same
  // candidates rank by p w, which is the LP's choice. The exact L at the repair prices
  // (computed by the repair pass) joins the bound, so the bound stays valid and is then
  // near-exact. Without a kink nearby, nothing changes.
  std::vector<double> repair_theta = theta;
  if (theta[0] > 0) {
    double best = kInf;
    for (size_t j = 0; j < cp.m; ++j) {
      if (!cp.available[j] || cp.var[j] >= 0 || !(cp.c[j] > 0)) continue;
      const double kink = cp.w[j] / cp.c[j];
      const double dist = std::abs(theta[0] - kink);
      if (dist <= kSnap * kink && dist < best) {
        best = dist;
        repair_theta[0] = kink * (1 - 1e-9);
      }
    }
  }
  std::vector<Record> recs;
  double repair_dual = kInf;
  COUPOND_RETURN_IF_ERROR(Recover(cp, repair_theta, &recs, &passes, &repair_dual));
  bound = std::min(bound, repair_dual);
  result.assignments.reserve(recs.size());
  for (const Record& r : recs) {
    result.assignments.push_back(AssignedCoupon{r.user, r.coupon, r.p});
    result.issued[r.coupon] += 1;
    result.primal_value += r.p * cp.w[r.coupon];
    result.expected_spend += r.p * cp.c[r.coupon];
  }
  result.prices.budget_price = repair_theta[0];
  for (size_t j = 0; j < cp.m; ++j) {
    if (cp.var[j] >= 0) result.prices.stock_prices[j] = repair_theta[static_cast<size_t>(cp.var[j])];
  }
  // The bound can fall below the primal only by rounding when both are optimal.
  if (bound < result.primal_value &&
      result.primal_value - bound <= 1e-9 * std::max(1.0, std::abs(bound))) {
    bound = result.primal_value;
  }
  result.dual_bound = bound;
  result.relative_gap =
      bound > 0 ? std::max(0.0, (bound - result.primal_value) / bound) : 0.0;
  result.passes = passes;
  return result;
}

absl::StatusOr<std::vector<CouponChoice>> ChooseCoupons(absl::Span<const AssignmentCoupon> coupons,
                                                        const AssignmentPrices& prices,
                                                        absl::Span<const double> probabilities,
                                                        int max_coupons_per_user) {
  if (max_coupons_per_user < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_coupons_per_user: ", max_coupons_per_user, " is below 1"));
  }
  if (probabilities.size() != coupons.size() || prices.stock_prices.size() != coupons.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "probabilities: ", probabilities.size(), " values and prices.stock_prices: ",
        prices.stock_prices.size(), " values for ", coupons.size(), " coupons"));
  }
  COUPOND_RETURN_IF_ERROR(CheckNonNegativeFinite(prices.budget_price, "prices.budget_price"));
  std::vector<CouponChoice> out;
  for (size_t j = 0; j < coupons.size(); ++j) {
    COUPOND_RETURN_IF_ERROR(CheckNonNegativeFinite(
        prices.stock_prices[j], absl::StrCat("prices.stock_prices[", j, "]")));
    const double p = probabilities[j];
    if (!(p == kNotEligible || (p >= 0.0 && p <= 1.0))) {
      return absl::InvalidArgumentError(absl::StrCat("probabilities[", j, "]: ", FormatDouble(p),
                                                     " is neither in [0, 1] nor kNotEligible"));
    }
    if (p == kNotEligible) continue;
    const double score =
        ReducedScore(coupons[j], prices.budget_price, prices.stock_prices[j], p);
    if (score > 0) out.push_back(CouponChoice{static_cast<uint32_t>(j), score});
  }
  auto cmp = [](const CouponChoice& a, const CouponChoice& b) {
    return a.score > b.score || (a.score == b.score && a.coupon < b.coupon);
  };
  const size_t k = static_cast<size_t>(max_coupons_per_user);
  if (out.size() > k) {
    std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(k), out.end(), cmp);
    out.resize(k);
  } else {
    std::sort(out.begin(), out.end(), cmp);
  }
  return out;
}

}  // namespace coupond::core
