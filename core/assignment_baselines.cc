#include "core/assignment_baselines.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "common/status_macros.h"

namespace coupond::core {
namespace {

// Walks users in `order`, asking `pick` for a coupon index (or -1), and books it while the
// budget allows.
template <typename Pick>
absl::StatusOr<PolicyOutcome> Run(const char* name, absl::Span<const AssignmentCoupon> coupons,
                                  double budget, const ProbabilityOracle& oracle,
                                  const std::vector<size_t>& order, Pick&& pick) {
  COUPOND_RETURN_IF_ERROR(ValidateAssignmentInput(coupons, budget, AssignmentOptions()));
  PolicyOutcome out;
  out.policy = name;
  const size_t m = coupons.size();
  std::vector<int64_t> left(m);
  for (size_t j = 0; j < m; ++j) left[j] = coupons[j].stock.value_or(INT64_MAX);
  std::vector<double> p(m);
  for (size_t u : order) {
    COUPOND_RETURN_IF_ERROR(oracle.Fill(u, 1, absl::MakeSpan(p)));
    const int j = pick(p, left);
    if (j < 0) continue;
    const double cost = p[j] * coupons[j].face_value;
    if (out.expected_spend + cost > budget) break;  // the budget has run out
    out.expected_spend += cost;
    out.expected_value += p[j] * coupons[j].weight;
    out.expected_redemptions += p[j];
    --left[j];
    ++out.assignments;
  }
  return out;
}

}  // namespace

absl::StatusOr<PolicyOutcome> GreedyHighestProbabilityPolicy(
    absl::Span<const AssignmentCoupon> coupons, double budget, const ProbabilityOracle& oracle) {
  std::vector<size_t> order(oracle.num_users());
  std::iota(order.begin(), order.end(), size_t{0});
  return Run("greedy: highest probability until the budget runs out", coupons, budget, oracle,
             order, [](const std::vector<double>& p, const std::vector<int64_t>& left) {
               int best = -1;
               for (size_t j = 0; j < p.size(); ++j) {
                 if (p[j] == kNotEligible || left[j] <= 0) continue;
                 if (best < 0 || p[j] > p[best]) best = static_cast<int>(j);
               }
               return best;
             });
}

absl::StatusOr<PolicyOutcome> RandomPolicy(absl::Span<const AssignmentCoupon> coupons,
                                           double budget, const ProbabilityOracle& oracle,
                                           uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<size_t> order(oracle.num_users());
  std::iota(order.begin(), order.end(), size_t{0});
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<int> eligible;
  return Run("random coupon until the budget runs out", coupons, budget, oracle, order,
             [&](const std::vector<double>& p, const std::vector<int64_t>& left) {
               eligible.clear();
               for (size_t j = 0; j < p.size(); ++j) {
                 if (p[j] != kNotEligible && left[j] > 0) eligible.push_back(static_cast<int>(j));
               }
               if (eligible.empty()) return -1;
               return eligible[std::uniform_int_distribution<size_t>(0, eligible.size() - 1)(rng)];
             });
}

}  // namespace coupond::core
