// Off-policy evaluation and the decision log.
//
// The key test simulates a platform with known truth: contexts whose candidate coupons have
// true redemption probabilities q, a model that knows them only approximately (p = q
// perturbed, so the doubly robust estimator is not trivially exact), a logging policy that
// explores, and Bernoulli(q) outcomes. The target policy's true value is computed exactly
// from q; the 95% intervals of IPS, SNIPS and DR must cover it in at least 90 of 100 seeded
// repetitions. The rest checks identities (target = logging policy gives weight 1 and IPS =
// the mean reward; "none" is worth exactly 0), missing outcomes, arms, support diagnostics,
// the CSV round trip, and bad input. OpeSlateTest does the same for slates (campaigns that
// give up to 3 coupons): a stochastic slate log with exact slate probabilities and a greedy
// top-3 target, one-coupon exploration on a max 3 campaign, and one-coupon logs unchanged.

#include "analysis/ope.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "analysis/decision_log.h"
#include "core/exploration.h"
#include "core/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/ope_simulation.h"
#include "tests/test_util/sanitizers.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::analysis {
namespace {

using ::coupond::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
// The simulated platform (tests/test_util/ope_simulation.h).
using ::coupond::analysis::ope_sim::Context;
using ::coupond::analysis::ope_sim::Coverage;
using ::coupond::analysis::ope_sim::EpsilonGreedy;
using ::coupond::analysis::ope_sim::kMeanOrderValue;
using ::coupond::analysis::ope_sim::MakePlatform;
using ::coupond::analysis::ope_sim::RunCoverage;
using ::coupond::analysis::ope_sim::SimulateLog;
using ::coupond::analysis::ope_sim::Softmax;
using ::coupond::analysis::ope_sim::Target;

// Mean and standard error of the mean of xs.
std::pair<double, double> MeanAndSe(const std::vector<double>& xs) {
  double mean = 0.0;
  for (double x : xs) mean += x / static_cast<double>(xs.size());
  double var = 0.0;
  for (double x : xs) var += (x - mean) * (x - mean) / static_cast<double>(xs.size() - 1);
  return {mean, std::sqrt(var / static_cast<double>(xs.size()))};
}

// Under the sanitizers the OPE tests repeat fewer times (kOpeRepeats below) and check no
// statistics: the repetitions only run the same code again, and the statistical claims are
// checked in the Release run, at full size.
constexpr bool kCheckStatistics = !::coupond::testing::kSanitizedBuild;

void ExpectCoverage(const char* scenario, const Coverage& cov, double scale) {
  std::printf(
      "[%s] coverage of the true value in %d repetitions: IPS %d, SNIPS %d, DR %d "
      "(logging value's interval: %d); mean half-width IPS %.4g, DR %.4g\n",
      scenario, static_cast<int>(cov.ips_error.size()), cov.ips, cov.snips, cov.dr,
      cov.logging_covers_target, cov.ips_half_width, cov.dr_half_width);
  if (!kCheckStatistics) return;
  EXPECT_GE(cov.ips, 90) << scenario;
  EXPECT_GE(cov.snips, 90) << scenario;
  EXPECT_GE(cov.dr, 90) << scenario;
  // The intervals are informative: the target differs from the logging policy by more than
  // the noise (so covering is not automatic), and no interval is absurdly wide.
  EXPECT_LE(cov.logging_covers_target, 50) << scenario;
  EXPECT_LT(cov.ips_half_width, 0.1 * scale) << scenario;
  // The model is informative, so DR is tighter than IPS.
  EXPECT_LT(cov.dr_half_width, cov.ips_half_width) << scenario;
  // Unbiased: the mean error over the repetitions is within 4 standard errors of 0.
  const auto [ips_bias, ips_se] = MeanAndSe(cov.ips_error);
  const auto [dr_bias, dr_se] = MeanAndSe(cov.dr_error);
  EXPECT_LT(std::fabs(ips_bias), 4 * ips_se) << scenario;
  EXPECT_LT(std::fabs(dr_bias), 4 * dr_se) << scenario;
}

// The scenarios: the logging policy explores enough that its own value differs from the
// target's by more than the noise (checked in ExpectCoverage), so covering is not automatic.
// One base seed for all, chosen before looking; 1,000 repetitions of each (the study in
// bench/ope_coverage_bench.cc, figures in bench/RESULTS-ope-coverage.md) measured coverage
// 93.9-95.9% for every estimator, so a scenario falls below 90 of 100 by chance with
// probability of a few percent.
constexpr uint64_t kCoverageSeed = 2024;
constexpr int kCoverageRepeats = kCheckStatistics ? 100 : 5;

TEST(OpeCoverageTest, GreedyTargetFromSoftmaxLogging) {
  ASSERT_OK_AND_ASSIGN(const Coverage cov,
                       RunCoverage(Softmax(0.1), Target(core::ExplorationPolicy{}),
                                   OpeReward::kRedeemed, kCoverageRepeats, kCoverageSeed));
  ExpectCoverage("softmax:0.1 -> greedy", cov, 1.0);
}

TEST(OpeCoverageTest, SoftmaxTargetFromEpsilonGreedyLogging) {
  ASSERT_OK_AND_ASSIGN(const Coverage cov,
                       RunCoverage(EpsilonGreedy(0.3), Target(Softmax(0.2)), OpeReward::kRedeemed,
                                   kCoverageRepeats, kCoverageSeed));
  ExpectCoverage("epsilon_greedy:0.3 -> softmax:0.2", cov, 1.0);
}

TEST(OpeCoverageTest, GreedyTargetOrderValueReward) {
  ASSERT_OK_AND_ASSIGN(const Coverage cov,
                       RunCoverage(Softmax(0.1), Target(core::ExplorationPolicy{}),
                                   OpeReward::kOrderValue, kCoverageRepeats, kCoverageSeed));
  ExpectCoverage("softmax:0.1 -> greedy, order value", cov, kMeanOrderValue);
}

// ---- Identities ---------------------------------------------------------------------------

std::vector<LoggedDecision> SmallLog(uint64_t seed, const core::ExplorationPolicy& logging,
                                     int decisions = 500) {
  core::SplitMix64 rng(seed);
  const std::vector<Context> contexts = MakePlatform(rng, 50);
  return SimulateLog(contexts, logging, decisions, rng);
}

TEST(OpeTest, TargetEqualToTheLoggingPolicyHasUnitWeights) {
  for (const core::ExplorationPolicy& logging : {Softmax(0.05), EpsilonGreedy(0.2)}) {
    const std::vector<LoggedDecision> log = SmallLog(5, logging);
    OpeOptions options;
    options.target = Target(logging);
    ASSERT_OK_AND_ASSIGN(OpeResult r, EvaluateOffPolicy(log, options));
    EXPECT_EQ(r.used, log.size());
    EXPECT_NEAR(r.mean_weight, 1.0, 1e-12);
    EXPECT_NEAR(r.max_weight, 1.0, 1e-12);
    EXPECT_NEAR(r.effective_sample_size, static_cast<double>(log.size()), 1e-6);
    EXPECT_NEAR(r.ips.value, r.logging.value, 1e-12);
    EXPECT_NEAR(r.ips.std_error, r.logging.std_error, 1e-12);
    EXPECT_NEAR(r.snips.value, r.logging.value, 1e-12);
    EXPECT_EQ(r.unsupported_mass, 0.0);
    // The logging value is the plain mean reward.
    double redeemed = 0;
    for (const LoggedDecision& d : log) redeemed += *d.redeemed;
    EXPECT_NEAR(r.logging.value, redeemed / static_cast<double>(log.size()), 1e-12);
  }
}

TEST(OpeTest, NeverGivingIsWorthExactlyZero) {
  const std::vector<LoggedDecision> log = SmallLog(6, EpsilonGreedy(0.3));
  OpeOptions options;
  options.target = Target(TargetPolicy::Kind::kNone);
  ASSERT_OK_AND_ASSIGN(OpeResult r, EvaluateOffPolicy(log, options));
  EXPECT_EQ(r.ips.value, 0.0);
  EXPECT_EQ(r.dr.value, 0.0);
  EXPECT_EQ(r.snips.value, 0.0);
  EXPECT_EQ(r.direct.value, 0.0);
  EXPECT_EQ(r.unsupported_mass, 0.0);  // epsilon-greedy gives nothing positive propensity
  EXPECT_GT(r.logging.value, 0.0);
}

TEST(OpeTest, UniformTargetOnARandomArmHasUnitWeights) {
  // A kRandom arm: every candidate with propensity 1/n, nothing only without candidates.
  core::SplitMix64 rng(8);
  std::vector<LoggedDecision> log;
  for (int i = 0; i < 300; ++i) {
    LoggedDecision d;
    d.decision_id = absl::StrCat("r", i);
    d.arm = "random";
    const size_t n = rng.Below(4);
    for (size_t j = 0; j < n; ++j) {
      d.candidates.push_back({absl::StrCat("c", j), 0.2, 0.1, 1.0 / static_cast<double>(n)});
    }
    if (n > 0) {
      const size_t a = rng.Below(n);
      d.chosen_coupon_id = d.candidates[a].coupon_id;
      d.propensity = d.candidates[a].propensity;
    }
    d.redeemed = n > 0 && rng.Uniform() < 0.2;
    log.push_back(std::move(d));
  }
  OpeOptions options;
  options.target = Target(TargetPolicy::Kind::kUniform);
  ASSERT_OK_AND_ASSIGN(OpeResult r, EvaluateOffPolicy(log, options));
  EXPECT_NEAR(r.mean_weight, 1.0, 1e-12);
  EXPECT_NEAR(r.ips.value, r.logging.value, 1e-12);
  EXPECT_EQ(r.unsupported_mass, 0.0);
}

TEST(OpeTest, UnsupportedTargetMassIsReported) {
  // A greedy log never shows the other actions; a softmax target puts mass on them.
  const std::vector<LoggedDecision> log = SmallLog(9, core::ExplorationPolicy{});
  OpeOptions options;
  options.target = Target(Softmax(0.05));
  ASSERT_OK_AND_ASSIGN(OpeResult r, EvaluateOffPolicy(log, options));
  EXPECT_GT(r.unsupported_mass, 0.05);
  EXPECT_GT(r.decisions_with_unsupported_mass, log.size() / 2);
  EXPECT_LT(r.mean_weight, 1.0);  // the missing mass shows in the weights too
}

TEST(OpeTest, MissingOutcomesAreDroppedOrZeroed) {
  std::vector<LoggedDecision> log = SmallLog(10, Softmax(0.05), 400);
  size_t missing = 0;
  double redeemed_known = 0;
  for (size_t i = 0; i < log.size(); ++i) {
    if (i % 4 == 0) {
      log[i].redeemed.reset();
      log[i].order_value.reset();
      ++missing;
    } else {
      redeemed_known += *log[i].redeemed;
    }
  }
  OpeOptions options;
  ASSERT_OK_AND_ASSIGN(OpeResult dropped, EvaluateOffPolicy(log, options));
  EXPECT_EQ(dropped.used, log.size() - missing);
  EXPECT_EQ(dropped.dropped_missing_outcome, missing);
  EXPECT_EQ(dropped.zeroed_missing_outcome, 0u);
  EXPECT_NEAR(dropped.logging.value, redeemed_known / static_cast<double>(log.size() - missing),
              1e-12);
  options.missing_outcome = MissingOutcome::kZero;
  ASSERT_OK_AND_ASSIGN(OpeResult zeroed, EvaluateOffPolicy(log, options));
  EXPECT_EQ(zeroed.used, log.size());
  EXPECT_EQ(zeroed.zeroed_missing_outcome, missing);
  EXPECT_NEAR(zeroed.logging.value, redeemed_known / static_cast<double>(log.size()), 1e-12);
}

TEST(OpeTest, OrderValueRewardUsesTheMeanOrderValueOfRedeemedRows) {
  std::vector<LoggedDecision> log = SmallLog(11, Softmax(0.05), 600);
  double sum = 0, count = 0, total = 0;
  for (const LoggedDecision& d : log) {
    if (*d.redeemed) {
      sum += *d.order_value;
      ++count;
      total += *d.order_value;
    }
  }
  OpeOptions options;
  options.reward = OpeReward::kOrderValue;
  options.target = Target(Softmax(0.05));
  ASSERT_OK_AND_ASSIGN(OpeResult r, EvaluateOffPolicy(log, options));
  EXPECT_DOUBLE_EQ(r.mean_order_value, sum / count);
  EXPECT_NEAR(r.logging.value, total / static_cast<double>(log.size()), 1e-9);
  EXPECT_NEAR(r.ips.value, r.logging.value, 1e-9);
  // A redeemed row without an order value is a missing outcome for this reward only.
  for (LoggedDecision& d : log) {
    if (*d.redeemed) {
      d.order_value.reset();
      break;
    }
  }
  ASSERT_OK_AND_ASSIGN(r, EvaluateOffPolicy(log, options));
  EXPECT_EQ(r.dropped_missing_outcome, 1u);
  options.reward = OpeReward::kRedeemed;
  ASSERT_OK_AND_ASSIGN(r, EvaluateOffPolicy(log, options));
  EXPECT_EQ(r.dropped_missing_outcome, 0u);
}

TEST(OpeTest, ArmFilterKeepsOnlyThatArm) {
  std::vector<LoggedDecision> log = SmallLog(12, Softmax(0.05), 300);
  for (size_t i = 0; i < log.size(); i += 3) {
    // A control arm: nothing, propensity 1, every coupon at propensity 0.
    log[i].arm = "control";
    for (LoggedCandidate& c : log[i].candidates) c.propensity = 0.0;
    log[i].chosen_coupon_id.clear();
    log[i].propensity = 1.0;
    log[i].redeemed = false;
    log[i].order_value.reset();
  }
  OpeOptions options;
  ASSERT_OK_AND_ASSIGN(OpeResult all, EvaluateOffPolicy(log, options));
  EXPECT_GT(all.unsupported_mass, 0.1);  // greedy gives coupons the control arm never did
  options.arm = "model";
  ASSERT_OK_AND_ASSIGN(OpeResult model, EvaluateOffPolicy(log, options));
  EXPECT_EQ(model.skipped_other_arm, 100u);
  EXPECT_EQ(model.used, 200u);
  EXPECT_EQ(model.unsupported_mass, 0.0);
  options.arm = "no-such-arm";
  EXPECT_THAT(EvaluateOffPolicy(log, options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("300 in other arms")));
}

TEST(OpeTest, ParseTargetPolicy) {
  ASSERT_OK_AND_ASSIGN(TargetPolicy t, ParseTargetPolicy("none"));
  EXPECT_EQ(t.kind, TargetPolicy::Kind::kNone);
  ASSERT_OK_AND_ASSIGN(t, ParseTargetPolicy("uniform"));
  EXPECT_EQ(t.kind, TargetPolicy::Kind::kUniform);
  ASSERT_OK_AND_ASSIGN(t, ParseTargetPolicy("epsilon_greedy:0.1"));
  EXPECT_EQ(t.kind, TargetPolicy::Kind::kExploration);
  EXPECT_EQ(t.exploration.epsilon, 0.1);
  EXPECT_EQ(FormatTargetPolicy(t), "epsilon_greedy:0.1");
  EXPECT_THAT(ParseTargetPolicy("softmax:-2"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("temperature")));
  EXPECT_THAT(ParseTargetPolicy("best"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'best'")));
}

// ---- The file format ----------------------------------------------------------------------

TEST(DecisionLogTest, RoundTripIsExactAndFileEvaluationMatches) {
  std::vector<LoggedDecision> log = SmallLog(13, Softmax(0.05), 300);
  // Awkward but legal text: commas, quotes, a "NULL" user key, an empty arm.
  log[0].user_key = "NULL";
  log[1].campaign_id = "spring, \"vip\"";
  log[2].arm = "";
  log[3].redeemed.reset();
  coupond::testing::TempDir dir;
  const std::string path = dir.Sub("decisions.csv");
  ASSERT_OK(WriteDecisionLog(path, log));
  ASSERT_OK_AND_ASSIGN(std::vector<LoggedDecision> back, ReadDecisionLog(path));
  ASSERT_EQ(back.size(), log.size());
  for (size_t i = 0; i < log.size(); ++i) {
    const LoggedDecision& a = log[i];
    const LoggedDecision& b = back[i];
    EXPECT_EQ(a.decision_id, b.decision_id);
    EXPECT_EQ(a.unix_seconds, b.unix_seconds);
    EXPECT_EQ(a.user_key, b.user_key);
    EXPECT_EQ(a.campaign_id, b.campaign_id);
    EXPECT_EQ(a.arm, b.arm);
    EXPECT_EQ(a.model_version, b.model_version);
    EXPECT_EQ(a.prices_sequence, b.prices_sequence);
    EXPECT_EQ(a.chosen_coupon_id, b.chosen_coupon_id);
    EXPECT_EQ(a.propensity, b.propensity);
    EXPECT_EQ(a.redeemed, b.redeemed);
    EXPECT_EQ(a.order_value, b.order_value);
    ASSERT_EQ(a.candidates.size(), b.candidates.size());
    for (size_t j = 0; j < a.candidates.size(); ++j) {
      EXPECT_EQ(a.candidates[j].coupon_id, b.candidates[j].coupon_id);
      EXPECT_EQ(a.candidates[j].probability, b.candidates[j].probability);
      EXPECT_EQ(a.candidates[j].score, b.candidates[j].score);
      EXPECT_EQ(a.candidates[j].propensity, b.candidates[j].propensity);
    }
  }
  OpeOptions options;
  options.reward = OpeReward::kOrderValue;
  ASSERT_OK_AND_ASSIGN(OpeResult in_memory, EvaluateOffPolicy(log, options));
  ASSERT_OK_AND_ASSIGN(OpeResult from_file, EvaluateDecisionLog(path, options));
  EXPECT_EQ(in_memory.used, from_file.used);
  EXPECT_EQ(in_memory.dropped_missing_outcome, 1u);
  EXPECT_EQ(in_memory.ips.value, from_file.ips.value);
  EXPECT_EQ(in_memory.dr.value, from_file.dr.value);
  EXPECT_EQ(in_memory.snips.std_error, from_file.snips.std_error);
}

TEST(DecisionLogTest, WriterProducesTheDocumentedRow) {
  LoggedDecision d;
  d.decision_id = "d1";
  d.unix_seconds = 1700000000;
  d.user_key = "u9";
  d.campaign_id = "spring";
  d.arm = "model";
  d.model_version = 4;
  d.prices_sequence = 2;
  d.candidates = {{"c1", 0.25, 0.1, 0.7}, {"c2", 0.5, -0.05, 0.1}};
  d.chosen_coupon_id = "c1";
  d.propensity = 0.7;
  d.redeemed = true;
  d.order_value = 42.5;
  std::string out;
  ASSERT_OK(AppendDecisionLogRow(d, &out));
  EXPECT_EQ(out,
            "d1,1700000000,u9,spring,model,4,2,c1,0.7,1,42.5,c1:0.25:0.1:0.7;c2:0.5:-0.05:0.1"
            ",,,,,\n");  // the five optional columns, empty at their defaults
  d.candidates[1].coupon_id = "c:2";
  EXPECT_THAT(
      AppendDecisionLogRow(d, &out),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("decision 'd1': candidates[1].coupon_id: 'c:2' contains ':' or ';'")));
  d.candidates[1].coupon_id = "c;2";
  EXPECT_THAT(AppendDecisionLogRow(d, &out), StatusIs(absl::StatusCode::kInvalidArgument));
}

// One CSV row through the reader: the error, or OK.
absl::Status ReadRow(const std::string& row, LoggedDecision* d = nullptr) {
  auto input =
      std::make_unique<std::istringstream>(absl::StrCat(kDecisionLogHeader, "\n", row, "\n"));
  auto reader = DecisionLogReader::FromStream(std::move(input), "log.csv");
  if (!reader.ok()) return reader.status();
  LoggedDecision scratch;
  absl::StatusOr<bool> more = (*reader)->Next(d != nullptr ? d : &scratch);
  if (!more.ok()) return more.status();
  return *more ? absl::OkStatus() : absl::NotFoundError("no row");
}

TEST(DecisionLogTest, ReaderAcceptsAGoodRowAndNothingChosen) {
  LoggedDecision d;
  ASSERT_OK(ReadRow("d1,5,u,c,a,1,2,,0.4,0,,x:0.5:0.2:0.6", &d));
  EXPECT_EQ(d.ChosenAction(), 1u);  // nothing
  EXPECT_DOUBLE_EQ(d.NothingPropensity(), 0.4);
  EXPECT_EQ(d.redeemed, false);
  EXPECT_FALSE(d.order_value.has_value());
  // No candidates: nothing with propensity 1; no outcome yet.
  ASSERT_OK(ReadRow("d2,5,u,c,control,0,0,,1,,,", &d));
  EXPECT_TRUE(d.candidates.empty());
  EXPECT_FALSE(d.redeemed.has_value());
}

TEST(DecisionLogTest, BadRowsNameTheLineAndTheField) {
  const std::string good_tail = ",x:0.5:0.2:0.6;y:0.1:0.01:0.1";
  struct Case {
    std::string row;
    std::string message;
  };
  const std::vector<Case> cases = {
      {",5,u,c,a,1,2,x,0.6,1,," + good_tail.substr(1), "log.csv:2: decision_id: empty"},
      {"d,5,u,c,a,1,2,x,0,1,," + good_tail.substr(1), "log.csv:2: propensity: 0 is not in (0, 1]"},
      {"d,5,u,c,a,1,2,x,1.5,1,," + good_tail.substr(1), "propensity: 1.5 is not in (0, 1]"},
      {"d,5,u,c,a,1,2,x,nan,1,," + good_tail.substr(1), "log.csv:2: propensity: nan"},
      {"d,5,u,c,a,1,2,x,abc,1,," + good_tail.substr(1), "propensity: 'abc' is not a number"},
      {"d,5,u,c,a,1,2,x,0.5,1,," + good_tail.substr(1),
       "propensity: 0.5 does not match the candidates' 0.6 for 'x'"},
      {"d,5,u,c,a,1,2,,0.5,0,," + good_tail.substr(1),
       "does not match the candidates' 0.3 for nothing"},
      {"d,5,u,c,a,1,2,z,0.6,1,," + good_tail.substr(1),
       "chosen_coupon_id: 'z' is not among the candidates"},
      {"d,5,u,c,a,1,2,x,0.6,2,," + good_tail.substr(1), "redeemed: '2' is not 0, 1 or empty"},
      {"d,5,u,c,a,1,2,,0.3,1,," + good_tail.substr(1), "redeemed: 1 but no coupon was given"},
      {"d,5,u,c,a,1,2,x,0.6,1,-3," + good_tail.substr(1), "order_value: -3 is not finite and >= 0"},
      {"d,5,u,c,a,1,2,x,0.6,1,nan," + good_tail.substr(1), "order_value: nan"},
      {"d,x5,u,c,a,1,2,x,0.6,1,," + good_tail.substr(1), "unix_seconds: 'x5' is not an integer"},
      {"d,5,u,c,a,-1,2,x,0.6,1,," + good_tail.substr(1),
       "model_version: '-1' is not an integer >= 0"},
      {"d,5,u,c,a,1,,x,0.6,1,," + good_tail.substr(1),
       "prices_sequence: '' is not an integer >= 0"},
      {"d,5,u,c,a,1,2,x,0.6,1,,x:0.5:0.2:0.6;x:0.1:0.01:0.1",
       "candidates[1].coupon_id: 'x' appears twice"},
      {"d,5,u,c,a,1,2,x,0.6,1,,x:0.5:nan:0.6", "candidates[0].score: nan is not finite"},
      {"d,5,u,c,a,1,2,x,0.6,1,,x:1.5:0.2:0.6", "candidates[0].probability: 1.5 is not in [0, 1]"},
      {"d,5,u,c,a,1,2,x,0.6,1,,x:0.5:0.2:-0.6", "candidates[0].propensity: -0.6 is not in [0, 1]"},
      {"d,5,u,c,a,1,2,x,0.6,1,,x:0.5:0.2:0.6;y:0.1:0.01:0.7",
       "candidates: propensities sum to 1.3"},
      {"d,5,u,c,a,1,2,x,0.6,1,,x:0.5:0.2",
       "candidates[0]: 'x:0.5:0.2' is not coupon_id:probability:score:propensity"},
      {"d,5,u,c,a,1,2,x,0.6,1,,x:0.5:0.2:0.6;", "candidates[1]: '' is not"},
      {"d,5,u,c,a,1,2,x,0.6,1,,:0.5:0.2:0.6", "candidates[0].coupon_id: empty"},
      {"d,5,u,c,a,1,2,x,0.6", "log.csv:2: the row has 9 fields, the header 12"},
      {"d,5,u,\"c,a,1,2,x,0.6,1,," + good_tail.substr(1), "log.csv:2: "},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ReadRow(c.row), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.row;
  }
  // A propensity within the tolerance of the candidate list is accepted (other writers may
  // print fewer digits).
  EXPECT_OK(ReadRow("d,5,u,c,a,1,2,x,0.6000004,1,," + good_tail.substr(1)));
}

TEST(DecisionLogTest, HeaderMustNameEveryColumn) {
  coupond::testing::TempDir dir;
  const std::string path = dir.Sub("bad.csv");
  {
    std::ofstream out(path);
    out << "decision_id,unix_seconds,user_key,campaign_id,arm,model_version,prices_sequence,"
           "chosen_coupon_id,propensity,redeemed,order_value\n";
  }
  EXPECT_THAT(ReadDecisionLog(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no column 'candidates'")));
  EXPECT_THAT(ReadDecisionLog(dir.Sub("missing.csv")), StatusIs(absl::StatusCode::kNotFound));
  // Columns in another order, plus an extra one, are fine.
  {
    std::ofstream out(path);
    out << "candidates,extra,decision_id,unix_seconds,user_key,campaign_id,arm,model_version,"
           "prices_sequence,chosen_coupon_id,propensity,redeemed,order_value\n"
        << "x:0.5:0.2:1,?,d1,5,u,c,a,1,2,x,1,1,10\n";
  }
  ASSERT_OK_AND_ASSIGN(std::vector<LoggedDecision> back, ReadDecisionLog(path));
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].chosen_coupon_id, "x");
  EXPECT_EQ(back[0].order_value, 10.0);
}

TEST(OpeTest, BadInputToTheEvaluator) {
  std::vector<LoggedDecision> log = SmallLog(14, Softmax(0.05), 50);
  OpeOptions options;
  // A repeated decision id, in memory and in a file (with its line).
  log[7].decision_id = log[3].decision_id;
  EXPECT_THAT(EvaluateOffPolicy(log, options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("decisions[7] ('d3'): decision_id: 'd3' repeats")));
  coupond::testing::TempDir dir;
  ASSERT_OK(WriteDecisionLog(dir.Sub("dup.csv"), log));
  EXPECT_THAT(
      EvaluateDecisionLog(dir.Sub("dup.csv"), options),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dup.csv:9: decision_id: 'd3'")));
  log[7].decision_id = "d7";
  // An invalid decision in memory names its index and field.
  log[4].propensity = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THAT(EvaluateOffPolicy(log, options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("decisions[4] ('d4'): propensity: nan")));
  EXPECT_THAT(WriteDecisionLog(dir.Sub("nan.csv"), log),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("decisions[4]: decision 'd4': propensity")));
  log[4].propensity = log[4].chosen_coupon_id.empty()
                          ? log[4].NothingPropensity()
                          : log[4].candidates[*log[4].ChosenAction()].propensity;
  ASSERT_OK(EvaluateOffPolicy(log, options).status());
  // Invalid options.
  options.z = 0;
  EXPECT_THAT(EvaluateOffPolicy(log, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("z: 0")));
  options.z = 1.96;
  options.target = Target(Softmax(0));
  EXPECT_THAT(EvaluateOffPolicy(log, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("target: temperature")));
  // Too little data for an interval; an empty log.
  options.target = TargetPolicy();
  EXPECT_THAT(EvaluateOffPolicy(absl::MakeSpan(log).subspan(0, 1), options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("only 1 of 1")));
  EXPECT_THAT(EvaluateOffPolicy({}, options), StatusIs(absl::StatusCode::kFailedPrecondition));
  // An empty file (no header) is an error, not an empty log.
  { std::ofstream out(dir.Sub("empty.csv")); }
  EXPECT_THAT(EvaluateDecisionLog(dir.Sub("empty.csv"), options),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace coupond::analysis

namespace coupond::analysis {
namespace {

// A greedy slate decision of a campaign with max_coupons_per_user = 3: the three best of
// five candidates, each slot certain.
LoggedDecision SlateDecision(int i, bool redeemed) {
  LoggedDecision d;
  d.decision_id = absl::StrCat("s", i);
  d.unix_seconds = 1700000000 + i;
  d.arm = "model";
  d.model_version = 1;
  for (int j = 0; j < 5; ++j) {
    d.candidates.push_back({absl::StrCat("c", j), 0.1 * (j + 1), 0.01 * (5 - j), j == 0 ? 1.0 : 0.0});
  }
  d.chosen_coupon_id = "c0";
  d.propensity = 1.0;
  d.slots = {{"c0", 1.0}, {"c1", 1.0}, {"c2", 1.0}};
  d.slate_propensity = 1.0;
  d.max_slots = 3;
  d.redeemed = redeemed;
  return d;
}

// Every field of two results, exactly.
void ExpectSameResult(const OpeResult& a, const OpeResult& b) {
  EXPECT_EQ(a.used, b.used);
  for (auto [x, y] : {std::pair{a.logging, b.logging}, {a.ips, b.ips}, {a.snips, b.snips},
                      {a.dr, b.dr}, {a.direct, b.direct}}) {
    EXPECT_EQ(x.value, y.value);
    EXPECT_EQ(x.std_error, y.std_error);
    EXPECT_EQ(x.ci_low, y.ci_low);
    EXPECT_EQ(x.ci_high, y.ci_high);
  }
  EXPECT_EQ(a.mean_weight, b.mean_weight);
  EXPECT_EQ(a.max_weight, b.max_weight);
  EXPECT_EQ(a.effective_sample_size, b.effective_sample_size);
  EXPECT_EQ(a.unsupported_mass, b.unsupported_mass);
  EXPECT_EQ(a.decisions_with_unsupported_mass, b.decisions_with_unsupported_mass);
}

// A one-coupon log with the slate columns as coupond writes them (slots = the coupon given,
// slate_propensity = its propensity) and max_slots = `max_slots`.
std::vector<LoggedDecision> WithSlateColumns(std::vector<LoggedDecision> log, uint32_t max_slots) {
  for (LoggedDecision& d : log) {
    d.slots.clear();
    if (!d.chosen_coupon_id.empty()) d.slots.push_back({d.chosen_coupon_id, d.propensity});
    d.slate_propensity = d.propensity;
    d.max_slots = max_slots;
  }
  return log;
}

TEST(OpeSlateTest, OneCouponResultsAreUnchangedBySlateColumns) {
  const std::vector<LoggedDecision> plain = SmallLog(21, Softmax(0.1), 3000);
  for (const char* target : {"greedy", "softmax:0.05", "epsilon_greedy:0.2", "uniform", "none"}) {
    SCOPED_TRACE(target);
    OpeOptions options;
    ASSERT_OK_AND_ASSIGN(options.target, ParseTargetPolicy(target));
    ASSERT_OK_AND_ASSIGN(OpeResult base, EvaluateOffPolicy(plain, options));
    EXPECT_EQ(base.slate_decisions, 0u);
    // The one-action estimator, written out: IPS = mean of pi(a_i) / mu(a_i) r_i.
    double ips = 0.0;
    for (const LoggedDecision& d : plain) {
      const std::vector<double> pi = *TargetProbabilities(d, options.target);
      ips += pi[*d.ChosenAction()] / d.propensity * (*d.redeemed ? 1.0 : 0.0);
    }
    EXPECT_NEAR(base.ips.value, ips / static_cast<double>(plain.size()), 1e-12);
    // Recording the slate columns of max_slots 1 changes nothing, bit for bit.
    ASSERT_OK_AND_ASSIGN(OpeResult recorded,
                         EvaluateOffPolicy(WithSlateColumns(plain, 1), options));
    ExpectSameResult(base, recorded);
  }
  // A one-action target on one-coupon decisions of a max 3 campaign: the same slates, the
  // same weights.
  for (const char* target : {"softmax:0.05", "uniform", "none"}) {
    SCOPED_TRACE(target);
    OpeOptions options;
    ASSERT_OK_AND_ASSIGN(options.target, ParseTargetPolicy(target));
    ASSERT_OK_AND_ASSIGN(OpeResult base, EvaluateOffPolicy(plain, options));
    ASSERT_OK_AND_ASSIGN(OpeResult max3, EvaluateOffPolicy(WithSlateColumns(plain, 3), options));
    ExpectSameResult(base, max3);
    EXPECT_EQ(max3.slate_decisions, plain.size());
  }
}

// ---- Slates with known truth ---------------------------------------------------------------
//
// Contexts of 4 to 6 candidates with true redemption probabilities q, the model's p = q
// perturbed, and positive scores. The logging policy gives 3 coupons drawn without
// replacement by softmax over the scores (Plackett-Luce), so every 3-set has a positive
// probability, computed exactly: the sum over its 6 orders of the sequential draw
// probabilities. A slate is redeemed when any of its coupons is, each with its own q.

struct SlateContext {
  std::vector<double> q, p, score, weight;  // weight = exp(score / temperature)
};

constexpr double kSlateTemperature = 0.2;
constexpr uint32_t kSlateSize = 3;

std::vector<SlateContext> MakeSlatePlatform(core::SplitMix64& rng, int num_contexts) {
  std::vector<SlateContext> contexts(static_cast<size_t>(num_contexts));
  for (SlateContext& c : contexts) {
    const size_t n = 4 + rng.Below(3);
    for (size_t j = 0; j < n; ++j) {
      const double q = 0.02 + 0.3 * rng.Uniform();
      const double p = std::clamp(q + 0.06 * (2.0 * rng.Uniform() - 1.0), 0.001, 0.999);
      const double score = p * (0.2 + rng.Uniform());
      c.q.push_back(q);
      c.p.push_back(p);
      c.score.push_back(score);
      c.weight.push_back(std::exp(score / kSlateTemperature));
    }
  }
  return contexts;
}

// The probability that the Plackett-Luce draw gives exactly the set `slate` (any order).
double PlackettLuceSetProbability(const std::vector<double>& weight, std::vector<size_t> slate) {
  double total_weight = 0.0;
  for (double w : weight) total_weight += w;
  std::sort(slate.begin(), slate.end());
  double total = 0.0;
  do {
    double prob = 1.0, left = total_weight;
    for (size_t j : slate) {
      prob *= weight[j] / left;
      left -= weight[j];
    }
    total += prob;
  } while (std::next_permutation(slate.begin(), slate.end()));
  return total;
}

// The true value of a slate: 1 - prod (1 - q).
double TrueSlateValue(const SlateContext& c, const std::vector<size_t>& slate) {
  double none = 1.0;
  for (size_t j : slate) none *= 1.0 - c.q[j];
  return 1.0 - none;
}

// Greedy top 3 by score (all scores are positive here; ties have probability 0).
std::vector<size_t> TopThree(const SlateContext& c) {
  std::vector<size_t> order(c.score.size());
  for (size_t j = 0; j < order.size(); ++j) order[j] = j;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return c.score[a] > c.score[b]; });
  order.resize(kSlateSize);
  return order;
}

std::vector<LoggedDecision> SimulateSlateLog(const std::vector<SlateContext>& contexts,
                                             int decisions, core::SplitMix64& rng) {
  std::vector<LoggedDecision> log;
  for (int i = 0; i < decisions; ++i) {
    const size_t k = rng.Below(contexts.size());
    const SlateContext& c = contexts[k];
    double total_weight = 0.0;
    for (double w : c.weight) total_weight += w;
    LoggedDecision d;
    d.decision_id = absl::StrCat("d", i);
    d.unix_seconds = 1700000000 + i;
    d.user_key = absl::StrCat("u", k);
    d.arm = "model";
    d.model_version = 1;
    for (size_t j = 0; j < c.q.size(); ++j) {
      // A candidate's propensity: that it is the first slot.
      d.candidates.push_back(
          {absl::StrCat("k", k, "-c", j), c.p[j], c.score[j], c.weight[j] / total_weight});
    }
    std::vector<size_t> slate;
    std::vector<bool> taken(c.q.size(), false);
    double left = total_weight;
    for (uint32_t s = 0; s < kSlateSize; ++s) {
      double u = rng.Uniform() * left;
      size_t pick = c.q.size();
      for (size_t j = 0; j < c.q.size(); ++j) {
        if (taken[j]) continue;
        pick = j;  // the last one left absorbs rounding
        if (u < c.weight[j]) break;
        u -= c.weight[j];
      }
      d.slots.push_back({d.candidates[pick].coupon_id, c.weight[pick] / left});
      taken[pick] = true;
      left -= c.weight[pick];
      slate.push_back(pick);
    }
    d.chosen_coupon_id = d.slots[0].coupon_id;
    d.propensity = d.candidates[slate[0]].propensity;
    d.slate_propensity = PlackettLuceSetProbability(c.weight, slate);
    d.max_slots = kSlateSize;
    bool redeemed = false;
    for (size_t j : slate) redeemed = (rng.Uniform() < c.q[j]) || redeemed;
    d.redeemed = redeemed;
    log.push_back(std::move(d));
  }
  return log;
}

TEST(OpeSlateTest, PlackettLuceSetProbabilitiesSumToOne) {
  core::SplitMix64 rng(3);
  const SlateContext c = MakeSlatePlatform(rng, 1)[0];
  const size_t n = c.q.size();
  double total = 0.0;
  for (size_t a = 0; a < n; ++a)
    for (size_t b = a + 1; b < n; ++b)
      for (size_t e = b + 1; e < n; ++e) total += PlackettLuceSetProbability(c.weight, {a, b, e});
  EXPECT_NEAR(total, 1.0, 1e-12);
}

// Issue 12: an unbiased OPE estimate on a synthetic log with max_coupons_per_user = 3.
TEST(OpeSlateTest, GreedyTopThreeIsEstimatedWithoutBiasFromAStochasticSlateLog) {
  OpeOptions options;  // greedy target, redeemed reward
  std::vector<double> ips_error, dr_error;
  for (uint64_t seed = 1; seed <= (kCheckStatistics ? 40u : 3u); ++seed) {
    core::SplitMix64 rng(seed * 7919);
    const std::vector<SlateContext> contexts = MakeSlatePlatform(rng, 200);
    double truth = 0.0, logging_truth = 0.0;
    for (const SlateContext& c : contexts) {
      truth += TrueSlateValue(c, TopThree(c)) / static_cast<double>(contexts.size());
    }
    const std::vector<LoggedDecision> log = SimulateSlateLog(contexts, 3000, rng);
    ASSERT_OK_AND_ASSIGN(OpeResult r, EvaluateOffPolicy(log, options));
    EXPECT_EQ(r.used, log.size());
    EXPECT_EQ(r.slate_decisions, log.size());
    // A stochastic slate policy: the log tells the logged slate's probability only.
    EXPECT_EQ(r.decisions_with_unknown_support, log.size());
    EXPECT_EQ(r.unsupported_mass, 0.0);
    EXPECT_NEAR(r.mean_weight, 1.0, 0.2);  // every 3-set is supported
    if (seed == 1) {
      std::printf("slate log seed 1: truth %.4f logging %.4f IPS %.4f [%.4f, %.4f] DR %.4f "
                  "[%.4f, %.4f] ESS %.0f of %zu\n",
                  truth, r.logging.value, r.ips.value, r.ips.ci_low, r.ips.ci_high, r.dr.value,
                  r.dr.ci_low, r.dr.ci_high, r.effective_sample_size, r.used);
      EXPECT_TRUE(ope_sim::Covers(r.ips, truth));
      EXPECT_TRUE(ope_sim::Covers(r.dr, truth));
      // The logging policy earns clearly less than greedy top 3: the test is not trivial.
      for (const SlateContext& c : contexts) {
        const size_t n = c.q.size();
        for (size_t a = 0; a < n; ++a)
          for (size_t b = a + 1; b < n; ++b)
            for (size_t e = b + 1; e < n; ++e) {
              logging_truth += PlackettLuceSetProbability(c.weight, {a, b, e}) *
                               TrueSlateValue(c, {a, b, e}) / static_cast<double>(contexts.size());
            }
      }
      std::printf("slate log seed 1: true value of the logging policy %.4f\n", logging_truth);
      EXPECT_GT(truth - logging_truth, 0.01);
      EXPECT_FALSE(ope_sim::Covers(r.logging, truth));
    }
    ips_error.push_back(r.ips.value - truth);
    dr_error.push_back(r.dr.value - truth);
  }
  const auto [ips_mean, ips_se] = MeanAndSe(ips_error);
  const auto [dr_mean, dr_se] = MeanAndSe(dr_error);
  std::printf("slate log, %zu seeds: IPS error %.5f (se %.5f), DR error %.5f (se %.5f)\n",
              ips_error.size(), ips_mean, ips_se, dr_mean, dr_se);
  if (!kCheckStatistics) return;
  EXPECT_LT(std::abs(ips_mean), 3.0 * ips_se + 1e-3);
  EXPECT_LT(std::abs(dr_mean), 3.0 * dr_se + 1e-3);
  EXPECT_LT(std::abs(ips_mean), 0.01);
  EXPECT_LT(std::abs(dr_mean), 0.01);
}

// Exploration and random arms give one coupon even when the campaign allows 3; their logs
// evaluate one-action targets without bias, and a greedy 3-coupon target has no support.
TEST(OpeSlateTest, OneCouponExplorationOnAMaxThreeCampaign) {
  std::vector<double> softmax_error, uniform_error;
  for (uint64_t seed = 1; seed <= (kCheckStatistics ? 20u : 3u); ++seed) {
    core::SplitMix64 rng(seed * 104729);
    const std::vector<Context> contexts = MakePlatform(rng, 200);
    const std::vector<LoggedDecision> log =
        WithSlateColumns(SimulateLog(contexts, EpsilonGreedy(0.3), 2000, rng), 3);
    for (const char* target : {"softmax:0.05", "uniform"}) {
      OpeOptions options;
      ASSERT_OK_AND_ASSIGN(options.target, ParseTargetPolicy(target));
      const double truth = ope_sim::TrueValue(contexts, options.target, OpeReward::kRedeemed);
      ASSERT_OK_AND_ASSIGN(OpeResult r, EvaluateOffPolicy(log, options));
      EXPECT_EQ(r.slate_decisions, log.size());
      EXPECT_EQ(r.decisions_with_unknown_support, 0u);
      EXPECT_EQ(r.unsupported_mass, 0.0) << target;  // epsilon-greedy tries every action
      if (seed == 1) {
        EXPECT_TRUE(ope_sim::Covers(r.ips, truth)) << target;
        EXPECT_TRUE(ope_sim::Covers(r.dr, truth)) << target;
      }
      (std::string(target) == "uniform" ? uniform_error : softmax_error)
          .push_back(r.dr.value - truth);
    }
  }
  for (const std::vector<double>* errors : {&softmax_error, &uniform_error}) {
    if (!kCheckStatistics) break;
    const auto [mean, se] = MeanAndSe(*errors);
    EXPECT_LT(std::abs(mean), 3.0 * se + 1e-3);
    EXPECT_LT(std::abs(mean), 0.01);
  }
  // Greedy with 3 slots on the same kind of log: wherever greedy gives 2 or more coupons the
  // log has no support, and the result says how much.
  core::SplitMix64 rng(5);
  const std::vector<Context> contexts = MakePlatform(rng, 200);
  const std::vector<LoggedDecision> log =
      WithSlateColumns(SimulateLog(contexts, EpsilonGreedy(0.3), 2000, rng), 3);
  ASSERT_OK_AND_ASSIGN(OpeResult greedy, EvaluateOffPolicy(log, OpeOptions()));
  size_t two_or_more = 0;
  for (const LoggedDecision& d : log) {
    size_t positive = 0;
    for (const LoggedCandidate& c : d.candidates) positive += c.score > 0;
    two_or_more += positive >= 2;
  }
  ASSERT_GT(two_or_more, 0u);
  EXPECT_EQ(greedy.decisions_with_unsupported_mass, two_or_more);
  EXPECT_NEAR(greedy.unsupported_mass,
              static_cast<double>(two_or_more) / static_cast<double>(log.size()), 1e-12);
  EXPECT_EQ(greedy.decisions_with_unknown_support, 0u);
}

// A greedy slate log (each slate certain): greedy top 3 is the logging policy (weight 1, IPS =
// the mean reward); a one-coupon target never gives what the log gave.
TEST(OpeSlateTest, GreedySlateLog) {
  std::vector<LoggedDecision> log;
  for (int i = 0; i < 40; ++i) log.push_back(SlateDecision(i, i % 3 == 0));
  ASSERT_OK_AND_ASSIGN(OpeResult greedy, EvaluateOffPolicy(log, OpeOptions()));
  EXPECT_EQ(greedy.mean_weight, 1.0);
  EXPECT_EQ(greedy.ips.value, greedy.logging.value);
  EXPECT_EQ(greedy.unsupported_mass, 0.0);
  // DM: 1 - (1 - 0.1)(1 - 0.2)(1 - 0.3) for the top 3 (c0, c1, c2) of every decision.
  EXPECT_NEAR(greedy.direct.value, 1.0 - 0.9 * 0.8 * 0.7, 1e-12);
  OpeOptions softmax;
  ASSERT_OK_AND_ASSIGN(softmax.target, ParseTargetPolicy("softmax:0.05"));
  ASSERT_OK_AND_ASSIGN(OpeResult one, EvaluateOffPolicy(log, softmax));
  EXPECT_EQ(one.mean_weight, 0.0);
  EXPECT_EQ(one.ips.value, 0.0);
  EXPECT_EQ(one.unsupported_mass, 1.0);
  EXPECT_EQ(one.decisions_with_unsupported_mass, log.size());
  // A greedy slate of a different set (scores reordered) has weight 0.
  std::vector<LoggedDecision> other = log;
  for (LoggedDecision& d : other) d.candidates[3].score = 1.0;  // c3 now in the top 3
  ASSERT_OK_AND_ASSIGN(OpeResult moved, EvaluateOffPolicy(other, OpeOptions()));
  EXPECT_EQ(moved.mean_weight, 0.0);
  EXPECT_EQ(moved.unsupported_mass, 1.0);
  // The same through a file; the slate columns round-trip exactly.
  coupond::testing::TempDir dir;
  const std::string path = dir.Sub("slates.csv");
  ASSERT_OK(WriteDecisionLog(path, log));
  ASSERT_OK_AND_ASSIGN(std::vector<LoggedDecision> back, ReadDecisionLog(path));
  ASSERT_EQ(back.size(), log.size());
  EXPECT_EQ(back[0].max_slots, 3u);
  ASSERT_EQ(back[0].slots.size(), 3u);
  EXPECT_EQ(back[0].slots[2].coupon_id, "c2");
  EXPECT_EQ(back[0].slate_propensity, 1.0);
  ASSERT_OK_AND_ASSIGN(OpeResult from_file, EvaluateDecisionLog(path, OpeOptions()));
  ExpectSameResult(greedy, from_file);
}

TEST(OpeSlateTest, BadSlateInputNamesTheField) {
  std::vector<LoggedDecision> log;
  for (int i = 0; i < 10; ++i) log.push_back(SlateDecision(i, i % 3 == 0));
  auto check = [&](std::vector<LoggedDecision> bad, const char* message) {
    EXPECT_THAT(EvaluateOffPolicy(bad, OpeOptions()),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)))
        << message;
  };
  std::vector<LoggedDecision> bad = log;
  bad[2].slate_propensity.reset();
  check(bad, "decisions[2] ('s2'): slate_propensity: missing on a decision of max_slots 3");
  bad = log;
  bad[1].max_slots = 2;
  check(bad, "decisions[1] ('s1'): slots: 3 coupons, more than max_slots 2");
  bad = log;
  bad[1].slots.clear();
  check(bad, "decisions[1] ('s1'): slots: not recorded on a decision of max_slots 3 that gave 'c0'");
  bad = log;
  bad[3].max_slots = 1;
  bad[3].slots.resize(1);
  bad[3].slate_propensity = 0.5;
  check(bad, "decisions[3] ('s3'): slate_propensity: 0.5 differs from propensity 1");
  bad = log;
  bad[4].candidates[1].score = std::nan("");
  check(bad, "decisions[4] ('s4'): candidates[1].score: nan is not finite");
  // Through a file, naming the line: a missing slate_propensity is an empty field.
  coupond::testing::TempDir dir;
  const std::string path = dir.Sub("slates.csv");
  bad = log;
  bad[0].slate_propensity.reset();
  ASSERT_OK(WriteDecisionLog(path, bad));
  EXPECT_THAT(EvaluateDecisionLog(path, OpeOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("slates.csv:2: slate_propensity: missing")));
  // A max 3 decision that gave nothing needs no slots (control, or no positive score).
  std::vector<LoggedDecision> nothing = log;
  for (LoggedDecision& d : nothing) {
    d.chosen_coupon_id.clear();
    d.slots.clear();
    d.redeemed = false;
    d.candidates[0].propensity = 0.0;
    d.propensity = 1.0;
    for (LoggedCandidate& c : d.candidates) c.score = -1.0;
  }
  ASSERT_OK_AND_ASSIGN(OpeResult r, EvaluateOffPolicy(nothing, OpeOptions()));
  EXPECT_EQ(r.mean_weight, 1.0);  // greedy gives nothing too
  EXPECT_EQ(r.ips.value, 0.0);
}

TEST(OpeSlateTest, TruncatedDecisionsAreLeftOutAndCounted) {
  std::vector<LoggedDecision> log = SmallLog(5, Softmax(0.05), 200);
  // Truncate one: drop its last non-chosen candidate, keeping its propensity as omitted.
  LoggedDecision& t = log[0];
  size_t drop = t.candidates.size() - 1;
  if (t.candidates[drop].coupon_id == t.chosen_coupon_id) --drop;
  t.omitted_propensity = t.candidates[drop].propensity;
  t.candidates_total = t.candidates.size();
  t.candidates.erase(t.candidates.begin() + static_cast<std::ptrdiff_t>(drop));
  ASSERT_OK(ValidateLoggedDecision(t));  // "nothing" still has its propensity
  ASSERT_TRUE(t.truncated());
  ASSERT_OK_AND_ASSIGN(OpeResult r, EvaluateOffPolicy(log, OpeOptions()));
  EXPECT_EQ(r.skipped_truncated, 1u);
  EXPECT_EQ(r.used + r.skipped_truncated + r.dropped_missing_outcome, r.rows);
}

TEST(OpeSlateTest, BadSlateFieldsNameTheField) {
  LoggedDecision d = SlateDecision(1, false);
  ASSERT_OK(ValidateLoggedDecision(d));
  auto check = [](LoggedDecision bad, const char* message) {
    EXPECT_THAT(ValidateLoggedDecision(bad),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)))
        << message;
  };
  LoggedDecision bad = d;
  bad.slots[1].propensity = std::nan("");
  check(bad, "slots[1].propensity: nan is not in (0, 1]");
  bad = d;
  bad.slots[2].coupon_id = "c9";
  check(bad, "slots[2].coupon_id: 'c9' is not among the candidates");
  bad = d;
  bad.slots[2].coupon_id = "c1";
  check(bad, "slots[2].coupon_id: 'c1' appears twice");
  bad = d;
  bad.max_slots = 2;
  check(bad, "slots: 3 coupons, more than max_slots 2");
  bad = d;
  bad.max_slots = 0;
  check(bad, "max_slots: 0 is below 1");
  bad = d;
  bad.slots[0].coupon_id = "c1";
  bad.slots[1].coupon_id = "c0";
  check(bad, "slots[0].coupon_id: 'c1' is not chosen_coupon_id 'c0'");
  bad = d;
  bad.slate_propensity = 0.0;
  check(bad, "slate_propensity: 0 is not in (0, 1]");
  bad = d;
  bad.candidates_total = 2;
  check(bad, "candidates_total: 2 is below the 5 candidates listed");
  bad = d;
  bad.omitted_propensity = 0.5;  // c0 already has 1
  check(bad, "candidates: propensities sum to 1.5");
  // The optional columns, read with the full header: bad text names the column.
  auto read = [](const std::string& row) -> absl::Status {
    auto input = std::make_unique<std::istringstream>(
        absl::StrCat(kDecisionLogHeader, ",", kDecisionLogSlateHeader, "\n", row, "\n"));
    auto reader = DecisionLogReader::FromStream(std::move(input), "log.csv");
    if (!reader.ok()) return reader.status();
    LoggedDecision scratch;
    return (*reader)->Next(&scratch).status();
  };
  EXPECT_OK(read("d1,5,u,c,a,1,2,x,1,1,,x:0.5:0.2:1,x:1,1,2,,"));
  EXPECT_OK(read("d1,5,u,c,a,1,2,x,1,1,,x:0.5:0.2:1,,,,,"));  // all defaults
  EXPECT_THAT(read("d1,5,u,c,a,1,2,x,1,1,,x:0.5:0.2:1,x:1,1,two,,"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("log.csv:2: max_slots: 'two' is not an integer")));
  EXPECT_THAT(read("d1,5,u,c,a,1,2,x,1,1,,x:0.5:0.2:1,x,1,1,,"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("slots[0]: 'x' is not coupon_id:propensity")));
  EXPECT_THAT(read("d1,5,u,c,a,1,2,x,1,1,,x:0.5:0.2:1,x:1,nan,1,,"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("slate_propensity: nan")));
  EXPECT_THAT(read("d1,5,u,c,a,1,2,x,1,1,,x:0.5:0.2:1,x:1,1,1,-3,"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("candidates_total: '-3'")));
}

}  // namespace
}  // namespace coupond::analysis
