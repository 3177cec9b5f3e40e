#include "core/exploration.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace coupond::core {

absl::Status ValidateExplorationPolicy(const ExplorationPolicy& policy) {
  // Written so that NaN fails (every comparison with NaN is false).
  if (!(policy.epsilon >= 0.0 && policy.epsilon <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("epsilon: ", policy.epsilon, " is not in [0, 1]"));
  }
  if (!(policy.temperature > 0.0 && std::isfinite(policy.temperature))) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature: ", policy.temperature, " is not finite and > 0"));
  }
  switch (policy.kind) {
    case ExplorationPolicy::Kind::kGreedy:
    case ExplorationPolicy::Kind::kEpsilonGreedy:
    case ExplorationPolicy::Kind::kSoftmax:
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("kind: ", static_cast<int>(policy.kind), " is not a known policy"));
}

namespace {

// Index of the greedy action among n + 1: the first coupon with the largest score when that
// score is > 0, else n (nothing). Strict comparisons: ties go to the lowest index, and a
// score of exactly 0 does not beat nothing (as in ChooseCoupons, which needs score > 0).
size_t GreedyAction(absl::Span<const double> scores) {
  size_t best = scores.size();
  double best_score = 0.0;
  for (size_t j = 0; j < scores.size(); ++j) {
    if (scores[j] > best_score) {
      best = j;
      best_score = scores[j];
    }
  }
  return best;
}

// Shortest text that reads back as the same double, so Parse(Format(p)) == p.
std::string ShortestDouble(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

}  // namespace

absl::StatusOr<std::vector<double>> ActionProbabilities(absl::Span<const double> scores,
                                                        const ExplorationPolicy& policy) {
  if (absl::Status s = ValidateExplorationPolicy(policy); !s.ok()) return s;
  for (size_t j = 0; j < scores.size(); ++j) {
    if (!std::isfinite(scores[j])) {
      return absl::InvalidArgumentError(
          absl::StrCat("scores[", j, "]: ", scores[j], " is not finite"));
    }
  }
  const size_t n = scores.size();
  std::vector<double> p(n + 1, 0.0);
  switch (policy.kind) {
    case ExplorationPolicy::Kind::kGreedy:
      p[GreedyAction(scores)] = 1.0;
      break;
    case ExplorationPolicy::Kind::kEpsilonGreedy: {
      const double uniform = policy.epsilon / static_cast<double>(n + 1);
      std::fill(p.begin(), p.end(), uniform);
      p[GreedyAction(scores)] += 1.0 - policy.epsilon;
      break;
    }
    case ExplorationPolicy::Kind::kSoftmax: {
      // Shift by the largest score (nothing's 0 included) so every exponent is <= 0: no
      // overflow for any finite score, and the largest term is exactly 1, so the sum is >= 1
      // and the division is safe. (s - m) / T may underflow to -inf, whose exp is 0.
      double m = 0.0;
      for (double s : scores) m = std::max(m, s);
      double sum = 0.0;
      for (size_t j = 0; j < n; ++j) {
        p[j] = std::exp((scores[j] - m) / policy.temperature);
        sum += p[j];
      }
      p[n] = std::exp((0.0 - m) / policy.temperature);
      sum += p[n];
      for (double& v : p) v /= sum;
      break;
    }
  }
  return p;
}

size_t SampleAction(absl::Span<const double> probabilities, double u01) {
  double cumulative = 0.0;
  size_t last_positive = 0;
  for (size_t a = 0; a < probabilities.size(); ++a) {
    if (!(probabilities[a] > 0.0)) continue;
    last_positive = a;
    cumulative += probabilities[a];
    if (u01 < cumulative) return a;
  }
  return last_positive;
}

absl::StatusOr<ExplorationPolicy> ParseExplorationPolicy(absl::string_view text) {
  ExplorationPolicy policy;
  absl::string_view rest = text;
  double value = 0.0;
  if (rest == "greedy") {
    policy.kind = ExplorationPolicy::Kind::kGreedy;
    return policy;
  }
  if (absl::ConsumePrefix(&rest, "epsilon_greedy:")) {
    if (!absl::SimpleAtod(rest, &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("policy '", text, "': epsilon '", rest, "' is not a number"));
    }
    policy.kind = ExplorationPolicy::Kind::kEpsilonGreedy;
    policy.epsilon = value;
  } else if (absl::ConsumePrefix(&rest, "softmax:")) {
    if (!absl::SimpleAtod(rest, &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("policy '", text, "': temperature '", rest, "' is not a number"));
    }
    policy.kind = ExplorationPolicy::Kind::kSoftmax;
    policy.temperature = value;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "policy '", text, "' is not greedy, epsilon_greedy:EPSILON or softmax:TEMPERATURE"));
  }
  if (absl::Status s = ValidateExplorationPolicy(policy); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("policy '", text, "': ", s.message()));
  }
  return policy;
}

std::string FormatExplorationPolicy(const ExplorationPolicy& policy) {
  switch (policy.kind) {
    case ExplorationPolicy::Kind::kGreedy:
      return "greedy";
    case ExplorationPolicy::Kind::kEpsilonGreedy:
      return absl::StrCat("epsilon_greedy:", ShortestDouble(policy.epsilon));
    case ExplorationPolicy::Kind::kSoftmax:
      return absl::StrCat("softmax:", ShortestDouble(policy.temperature));
  }
  return "unknown";
}

}  // namespace coupond::core
