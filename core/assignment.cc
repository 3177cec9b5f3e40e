#include "core/assignment.h"

// How the solver works (see assignment.h for the problem). SolveAssignment validates the
// instance, reduces it (assignment_pass.h: the view of an instance and the pass over its
// users, which is where determinism is kept), searches the prices (assignment_dual.cc),
// optionally on a sample first (below), and repairs the choice at those prices into an
// assignment that satisfies every constraint exactly (assignment_repair.cc).
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
// then 1-3 full passes and the repair pass. Only exact L values of full passes enter the
// reported bound; the sample's own dual values bound nothing and are discarded. The sample is
// drawn with a fixed seed.

#include <algorithm>
#include <cmath>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "core/assignment_dual.h"
#include "core/assignment_pass.h"
#include "core/assignment_repair.h"
#include "core/parallel.h"
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

using assignment_internal::Block;
using assignment_internal::Campaign;
using assignment_internal::CheckBlock;
using assignment_internal::FormatDouble;
using assignment_internal::kInf;
using assignment_internal::Record;
using assignment_internal::Repair;
using assignment_internal::Scales;
using assignment_internal::Search;
using assignment_internal::SearchControl;
using assignment_internal::SearchFromZero;
using assignment_internal::SearchState;

// Probability rows per oracle call: at most this many doubles per block.
constexpr size_t kBlockDoubles = 16384;
constexpr size_t kMaxUsersPerBlock = 256;
// Above this many dual variables the Newton system keeps only the Hessian's diagonal.
constexpr size_t kDenseHessianLimit = 256;
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

absl::Status CheckNonNegativeFinite(double v, absl::string_view field) {
  if (!std::isfinite(v)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", FormatDouble(v), " is not finite"));
  }
  if (v < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", FormatDouble(v), " is negative"));
  }
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

namespace {

// The last check before a result leaves the solver: no Infinity or NaN may reach a client.
// Bounded inputs (the campaign bounds in core/campaign.h) keep every value finite, so this
// fires only on a bug or on unbounded inputs from a direct caller; it costs a few
// comparisons per solve.
absl::StatusOr<AssignmentResult> CheckFiniteResult(AssignmentResult result) {
  const auto non_finite = [](absl::string_view what, double v) {
    return absl::InternalError(absl::StrCat(
        "assignment: the solve produced a non-finite ", what, " (", v,
        "); refusing to send it (inputs too large for double arithmetic, or a solver bug)"));
  };
  if (!std::isfinite(result.primal_value)) return non_finite("expected_value", result.primal_value);
  if (!std::isfinite(result.expected_spend)) return non_finite("expected_spend", result.expected_spend);
  if (!std::isfinite(result.dual_bound)) return non_finite("dual_bound", result.dual_bound);
  if (!std::isfinite(result.relative_gap)) return non_finite("relative_gap", result.relative_gap);
  if (!std::isfinite(result.prices.budget_price)) {
    return non_finite("budget_price", result.prices.budget_price);
  }
  for (size_t j = 0; j < result.prices.stock_prices.size(); ++j) {
    if (!std::isfinite(result.prices.stock_prices[j])) {
      return non_finite(absl::StrCat("stock price of coupon ", j), result.prices.stock_prices[j]);
    }
  }
  return result;
}

}  // namespace

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
      internal::ParallelFor(sc.threads, sc.blocks.size(), [&](size_t b, int) {
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
  COUPOND_RETURN_IF_ERROR(Repair(cp, repair_theta, &recs, &passes, &repair_dual));
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
  return CheckFiniteResult(std::move(result));
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
