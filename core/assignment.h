#ifndef COUPOND_CORE_ASSIGNMENT_H_
#define COUPOND_CORE_ASSIGNMENT_H_

// Budget-constrained coupon assignment (issue 4).
//
// Users i, the campaign's coupons j. Coupon j has a face value c_j (paid only when redeemed),
// a value weight w_j and an optional stock s_j. A model gives p_ij, the probability that user
// i redeems coupon j. Choose x_ij in {0, 1} to
//
//   maximise   sum_ij x_ij p_ij w_j
//   subject to sum_ij x_ij p_ij c_j <= B            (expected spend within the budget)
//              sum_i  x_ij          <= s_j          (stock, for coupons that have one)
//              sum_j  x_ij          <= k            (at most k coupons per user)
//              x_ij = 0 where user i is not eligible for coupon j.
//
// SolveAssignment relaxes the budget and stock constraints with prices (lambda for the budget,
// mu_j per stocked coupon); at given prices every user independently takes the top-k eligible
// coupons by reduced score  p_ij (w_j - lambda c_j) - mu_j  among the positive ones. The batch
// solver searches the prices, repairs the resulting choice into an assignment that satisfies
// every constraint exactly, and reports a dual bound. ChooseCoupons makes the same decision
// online, for one user, from the exported prices.
//
// Pure computation: no I/O, no protobuf. Probabilities are pulled through ProbabilityOracle,
// so memory stays linear in users x k (plus a few buffers of users-per-block x coupons, and
// for a sampled search a cache of at most 2^22 sampled probabilities).

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace coupond::core {

// What a ProbabilityOracle writes for a (user, coupon) pair the user may not receive
// (coupon outside its validity window, user not in the coupon's user or segment list, ...).
inline constexpr double kNotEligible = -1.0;

// One coupon of the campaign.
struct AssignmentCoupon {
  // Non-empty and unique within the campaign.
  std::string id;
  // c_j: what the campaign pays when the coupon is redeemed. Finite, >= 0.
  double face_value = 0.0;
  // w_j: value of one redemption. Default 1 (the objective counts expected redemptions);
  // set it to the expected order value to maximise expected revenue. Finite, >= 0.
  double weight = 1.0;
  // s_j: how many may be issued. Unset means unlimited. >= 0 when set.
  std::optional<int64_t> stock;
};

// Supplies p_ij on demand, a block of users at a time, so that the solver never holds the
// users x coupons matrix. An implementation typically scores the block with the model's
// factors (SIMD kernel) and writes kNotEligible where eligibility rules exclude a pair.
//
// Thread safety: Fill is called concurrently from several threads, on disjoint user ranges,
// and several times for the same user (the solver streams over users once per dual
// iteration). It must be thread-safe and return the same values every time.
class ProbabilityOracle {
 public:
  virtual ~ProbabilityOracle() = default;

  // Number of users; users are 0 .. num_users()-1.
  virtual size_t num_users() const = 0;

  // Writes the probabilities of users [first_user, first_user + count) for every coupon of the
  // campaign (in the order of the coupons passed to SolveAssignment), row-major:
  //   out[(u - first_user) * num_coupons + j].
  // Each value is a probability in [0, 1] or kNotEligible. A non-OK status aborts the solve
  // and is returned by it unchanged.
  // REQUIRES: first_user + count <= num_users(), out.size() == count * num_coupons.
  virtual absl::Status Fill(size_t first_user, size_t count, absl::Span<double> out) const = 0;
};

// A ProbabilityOracle over an in-memory users x coupons matrix (row-major). For tests,
// benchmarks and small campaigns: its memory is users x coupons. Thread-safe (read-only).
class DenseProbabilityOracle final : public ProbabilityOracle {
 public:
  // REQUIRES: probabilities.size() == num_users * num_coupons.
  DenseProbabilityOracle(size_t num_users, size_t num_coupons, std::vector<double> probabilities)
      : num_users_(num_users), num_coupons_(num_coupons), p_(std::move(probabilities)) {}

  size_t num_users() const override { return num_users_; }
  absl::Status Fill(size_t first_user, size_t count, absl::Span<double> out) const override;

 private:
  size_t num_users_;
  size_t num_coupons_;
  std::vector<double> p_;
};

struct AssignmentOptions {
  // At most this many coupons per user (k). >= 1. Default 1.
  int max_coupons_per_user = 1;
  // Worker threads for the passes over users. 0 (the default) means
  // std::thread::hardware_concurrency(). The result is bit-identical for every value.
  int threads = 0;
  // Upper limit on the passes over users (each pass calls the oracle once per user) spent on
  // the price search; the repair adds one more. >= 1. Default 200. Typical searches take
  // 30-80 passes without sampling and 2-6 full passes after a sampled search (which is
  // limited separately, by the same number, in passes over its sample); 1 gives the repaired
  // unconstrained choice (prices 0).
  int max_iterations = 200;
  // The price search stops once (dual_bound - primal_value) <= tolerance * dual_bound.
  // Finite, >= 0. Default 1e-4. A gap below the integrality gap of the instance is not
  // reachable; the search then ends at max_iterations or when the prices stop improving.
  double tolerance = 1e-4;
  // Sampled price search (large populations). The prices are first searched on a fixed
  // pseudo-random sample of about this many users (short runs of consecutive users drawn
  // uniformly, stratified over the population; budget and stocks scaled by the sampled
  // fraction), then refined by a few passes over the whole population, whose exact dual
  // values alone make the reported bound; the repair pass is unchanged. Every constraint
  // still holds exactly and dual_bound stays a valid upper bound: sampling only decides
  // where the full passes start.
  // 0 (the default): automatic, a sample of 16,384 users when the population has at least
  // 4 times as many (fewer users when 16,384 x coupons probabilities would exceed 2^22
  // values), otherwise no sampling. A value >= the number of users disables sampling.
  // >= 0. Results stay bit-identical for every `threads`.
  int64_t search_sample_users = 0;
};

// Prices of the relaxed constraints, in the campaign's coupon order. With them a user's
// decision needs only its own probabilities (ChooseCoupons).
struct AssignmentPrices {
  // lambda >= 0: value given up per unit of expected spend.
  double budget_price = 0.0;
  // mu_j >= 0: value given up per coupon j issued; 0 for coupons without binding stock.
  std::vector<double> stock_prices;
};

struct AssignedCoupon {
  uint32_t user = 0;
  uint32_t coupon = 0;        // index into the campaign's coupons
  double probability = 0.0;   // p_ij as the oracle gave it
};

struct AssignmentResult {
  // Sorted by (user, coupon). Satisfies every constraint exactly: eligibility, at most k per
  // user, issued[j] <= stock_j, expected_spend <= budget.
  std::vector<AssignedCoupon> assignments;
  // Per coupon, how many were assigned.
  std::vector<int64_t> issued;
  // sum of p_ij w_j and of p_ij c_j over `assignments`, summed in their order.
  double primal_value = 0.0;
  double expected_spend = 0.0;
  // L(lambda, mu) = lambda B + sum_j mu_j s_j + sum_i (best per-user choice at the prices):
  // an upper bound on the LP relaxation's optimum, hence on the integer optimum (the lowest
  // value found during the search, up to floating-point rounding).
  double dual_bound = 0.0;
  // (dual_bound - primal_value) / dual_bound, 0 when dual_bound is 0.
  double relative_gap = 0.0;
  // The prices the repair used, for ChooseCoupons: those at the end of the search, except
  // that a budget price within 0.2% of a kink w_j / c_j shared by every user (a coupon
  // without a stock price) is moved just below it (see assignment.cc, "Repair").
  AssignmentPrices prices;
  // Passes over the whole population (oracle calls per user), repair included.
  int passes = 0;
  // Sampled search (options.search_sample_users): users in the sample (0: no sampling) and
  // passes over the sample. The sample's probabilities are fetched from the oracle once.
  size_t sample_users = 0;
  int sample_passes = 0;
  // True when the search stopped because the gap reached options.tolerance or the prices
  // converged, false when it ran out of max_iterations.
  bool converged = false;
};

// Solves the assignment for all of oracle's users.
//
// Errors (InvalidArgument, naming the field): no coupons; empty or duplicate coupon id;
// negative or non-finite face value, weight or budget; negative stock; options out of range;
// a value from the oracle that is neither a probability in [0, 1] nor kNotEligible: NaN
// included. A NaN probability is an error, not a 0, because it means a broken model, and
// silently assigning nothing would hide it. Errors of the oracle are returned unchanged.
// Internal when a computed value (expected value or spend, dual bound, gap, a price) is not
// finite: never the case for inputs within the campaign bounds (core/campaign.h), possible
// for a direct caller's extreme weights or budget; the result is then withheld rather than
// carrying an Infinity or NaN.
// Degenerate instances (no users, budget 0 with only paid coupons, all stock 0, all weights 0)
// give an empty assignment and an OK status. Coupons with face value 0 cost nothing and may
// be assigned even with budget 0.
//
// Deterministic: equal inputs give bit-identical results for any options.threads.
// Thread-safe as far as the oracle is.
absl::StatusOr<AssignmentResult> SolveAssignment(absl::Span<const AssignmentCoupon> coupons,
                                                 double budget,
                                                 const ProbabilityOracle& oracle,
                                                 const AssignmentOptions& options = {});

// Checks coupons, budget and options as SolveAssignment does (the same messages).
absl::Status ValidateAssignmentInput(absl::Span<const AssignmentCoupon> coupons, double budget,
                                     const AssignmentOptions& options);

// p (w - lambda c) - mu: the reduced score by which ChooseCoupons ranks a coupon (and the
// solver prices users), in one place so every caller computes it identically.
inline double ReducedScore(const AssignmentCoupon& coupon, double budget_price,
                           double stock_price, double probability) {
  return probability * (coupon.weight - budget_price * coupon.face_value) - stock_price;
}

struct CouponChoice {
  uint32_t coupon = 0;   // index into the campaign's coupons
  double score = 0.0;    // p_j (w_j - lambda c_j) - mu_j, > 0
};

// The stateless online decision for one user: the (at most) max_coupons_per_user eligible
// coupons with the largest positive reduced score p_j (w_j - lambda c_j) - mu_j, by
// descending score (ties by coupon index); empty when no score is positive. Prices from
// SolveAssignment keep the campaign near its budget and stock in expectation; the caller's
// stock counters remain the hard limit online.
// InvalidArgument when the sizes disagree, a price is negative or non-finite, a probability
// is neither in [0, 1] nor kNotEligible, or max_coupons_per_user < 1. Thread-safe.
absl::StatusOr<std::vector<CouponChoice>> ChooseCoupons(
    absl::Span<const AssignmentCoupon> coupons, const AssignmentPrices& prices,
    absl::Span<const double> probabilities, int max_coupons_per_user = 1);

}  // namespace coupond::core

#endif  // COUPOND_CORE_ASSIGNMENT_H_
