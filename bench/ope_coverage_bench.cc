// The coverage study of the off-policy estimators' 95% intervals: how often IPS, SNIPS and
// DR cover the true value of a target policy, over many seeded repetitions of a simulated
// platform with known truth (tests/test_util/ope_simulation.h: 200 contexts, 2,000 logged
// decisions per repetition, the model's p = the true q +- 0.06). The baseline in the same run
// is the logging policy's own interval: it should NOT cover the target's value (the
// scenarios differ by more than the noise), so the estimators' coverage is not automatic.
//
// The unit tests (tests/ope_test.cc, OpeCoverageTest) run three of these scenarios with 100
// repetitions and require 90; this study is what those thresholds rest on (results:
// bench/RESULTS-ope-coverage.md). Exits non-zero when an estimator covers less than
// --min_coverage of the repetitions.
//
//   build/release/bench/ope_coverage_bench --repetitions=1000 --seed=77

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "analysis/ope.h"
#include "core/exploration.h"
#include "tests/test_util/ope_simulation.h"

ABSL_FLAG(int, repetitions, 1000, "Seeded repetitions per scenario (at least 1).");
ABSL_FLAG(uint64_t, seed, 77, "Base seed; repetition r uses seed + r * 1000003.");
ABSL_FLAG(double, min_coverage, 0.93,
          "Fail (exit 1) when an estimator covers the truth in less than this fraction.");

namespace {

using ::coupond::analysis::OpeReward;
using ::coupond::analysis::TargetPolicy;
using ::coupond::analysis::ope_sim::Coverage;
using ::coupond::analysis::ope_sim::EpsilonGreedy;
using ::coupond::analysis::ope_sim::RunCoverage;
using ::coupond::analysis::ope_sim::Softmax;
using ::coupond::analysis::ope_sim::Target;

struct Scenario {
  const char* name;
  coupond::core::ExplorationPolicy logging;
  TargetPolicy target;
  OpeReward reward;
};

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Coverage of the OPE estimators' 95% intervals on a simulated platform with known truth.");
  absl::ParseCommandLine(argc, argv);
  const int repetitions = absl::GetFlag(FLAGS_repetitions);
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  const double min_coverage = absl::GetFlag(FLAGS_min_coverage);
  if (repetitions < 1) {
    std::fprintf(stderr, "--repetitions must be at least 1\n");
    return 2;
  }
  const std::vector<Scenario> scenarios = {
      {"softmax:0.1 -> greedy", Softmax(0.1), Target(coupond::core::ExplorationPolicy{}),
       OpeReward::kRedeemed},
      {"epsilon_greedy:0.3 -> softmax:0.2", EpsilonGreedy(0.3), Target(Softmax(0.2)),
       OpeReward::kRedeemed},
      {"softmax:0.1 -> greedy, order value", Softmax(0.1),
       Target(coupond::core::ExplorationPolicy{}), OpeReward::kOrderValue},
      {"softmax:0.1 -> epsilon_greedy:0.1", Softmax(0.1), Target(EpsilonGreedy(0.1)),
       OpeReward::kRedeemed},
      {"epsilon_greedy:0.5 -> softmax:0.05", EpsilonGreedy(0.5), Target(Softmax(0.05)),
       OpeReward::kRedeemed},
  };
  std::printf("coverage of the true value by 95%% intervals, %d repetitions per scenario, seed %llu\n",
              repetitions, static_cast<unsigned long long>(seed));
  std::printf("%-36s %8s %8s %8s %16s %9s\n", "scenario (logging -> target)", "IPS", "SNIPS", "DR",
              "logging (base)", "seconds");
  bool ok = true;
  for (const Scenario& s : scenarios) {
    const auto start = std::chrono::steady_clock::now();
    const absl::StatusOr<Coverage> c = RunCoverage(s.logging, s.target, s.reward, repetitions, seed);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!c.ok()) {
      std::fprintf(stderr, "[%s] %s\n", s.name, c.status().ToString().c_str());
      return 1;
    }
    const double n = repetitions;
    std::printf("%-36s %7.1f%% %7.1f%% %7.1f%% %15.1f%% %9.2f\n", s.name, 100.0 * c->ips / n,
                100.0 * c->snips / n, 100.0 * c->dr / n, 100.0 * c->logging_covers_target / n,
                seconds);
    for (const int covered : {c->ips, c->snips, c->dr}) {
      if (covered < min_coverage * n) ok = false;
    }
  }
  if (!ok) {
    std::printf("FAIL: an estimator covered less than %.1f%% of the repetitions\n",
                100.0 * min_coverage);
    return 1;
  }
  return 0;
}
