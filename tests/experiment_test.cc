// Experiment arm assignment: determinism, uniformity of the split, independence between
// salts, how many users move when shares change, and validation naming the field.

#include "core/experiment.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/chi_square.h"
#include "tests/test_util/status_matchers.h"
#include "xxhash.h"

namespace coupond::core {
namespace {

using ::coupond::testing::ChiSquareCritical;
using ::coupond::testing::ChiSquareStatistic;
using ::coupond::testing::StatusIs;
using ::testing::HasSubstr;

constexpr int kUsers = 100000;

ExperimentArm Arm(std::string name, double share,
                  ExperimentArm::Policy policy = ExperimentArm::Policy::kModel) {
  ExperimentArm arm;
  arm.name = std::move(name);
  arm.share = share;
  arm.policy = policy;
  return arm;
}

Experiment ThreeArms(std::string salt = "spring-2024") {
  Experiment e;
  e.id = "exp-1";
  e.salt = std::move(salt);
  e.arms = {Arm("control", 0.5, ExperimentArm::Policy::kControl),
            Arm("random", 0.3, ExperimentArm::Policy::kRandom), Arm("model", 0.2)};
  return e;
}

std::string UserId(int i) { return absl::StrCat("user-", i); }

TEST(ExperimentTest, ValidExperimentPasses) { EXPECT_OK(ValidateExperiment(ThreeArms())); }

TEST(ExperimentTest, AssignmentIsDeterministicAndDocumentedHash) {
  const Experiment e = ThreeArms();
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(ArmIndex(e, UserId(i)), ArmIndex(e, UserId(i)));
    // The position is the documented formula, so other tools can reproduce it.
    const uint64_t seed = XXH3_64bits(e.salt.data(), e.salt.size());
    const std::string id = UserId(i);
    const uint64_t h = XXH3_64bits_withSeed(id.data(), id.size(), seed);
    EXPECT_EQ(ExperimentPosition(e.salt, id), static_cast<double>(h >> 11) / 9007199254740992.0);
  }
  // The library is XXH3 as specified: its published value for the empty input.
  EXPECT_EQ(XXH3_64bits(nullptr, 0), 0x2D06800538D394C2ULL);
  // The salt keys the position.
  EXPECT_NE(ExperimentPosition("salt", "alice"), ExperimentPosition("salt2", "alice"));
  // Empty ids get an arm too.
  EXPECT_LT(ArmIndex(e, ""), 3u);
}

TEST(ExperimentTest, SplitIsUniform) {
  const Experiment e = ThreeArms();
  // Two id patterns: sequential names and numeric strings.
  for (int pattern = 0; pattern < 2; ++pattern) {
    std::vector<double> counts(3, 0.0);
    for (int i = 0; i < kUsers; ++i) {
      counts[ArmIndex(e, pattern == 0 ? UserId(i) : absl::StrCat(1000000 + i))] += 1;
    }
    const std::vector<double> expected = {0.5 * kUsers, 0.3 * kUsers, 0.2 * kUsers};
    const double chi2 = ChiSquareStatistic(counts, expected);
    EXPECT_LT(chi2, ChiSquareCritical(2)) << "pattern " << pattern << " chi2 = " << chi2;
  }
  // Positions are uniform on [0, 1) at a finer grain too: 20 equal bins.
  std::vector<double> bins(20, 0.0);
  for (int i = 0; i < kUsers; ++i)
    bins[static_cast<size_t>(ExperimentPosition("s", UserId(i)) * 20)] += 1;
  EXPECT_LT(ChiSquareStatistic(bins, std::vector<double>(20, kUsers / 20.0)),
            ChiSquareCritical(19));
}

TEST(ExperimentTest, SplitsWithDifferentSaltsAreIndependent) {
  const Experiment a = ThreeArms("salt-a");
  const Experiment b = ThreeArms("salt-b");
  std::vector<std::vector<double>> table(3, std::vector<double>(3, 0.0));
  std::vector<double> rows(3, 0.0), cols(3, 0.0);
  for (int i = 0; i < kUsers; ++i) {
    const size_t x = ArmIndex(a, UserId(i));
    const size_t y = ArmIndex(b, UserId(i));
    table[x][y] += 1;
    rows[x] += 1;
    cols[y] += 1;
  }
  std::vector<double> observed, expected;
  for (size_t x = 0; x < 3; ++x) {
    for (size_t y = 0; y < 3; ++y) {
      observed.push_back(table[x][y]);
      expected.push_back(rows[x] * cols[y] / kUsers);
    }
  }
  const double chi2 = ChiSquareStatistic(observed, expected);
  EXPECT_LT(chi2, ChiSquareCritical(4)) << "chi2 = " << chi2;
  // Sanity of the statistic: the same salt twice is maximally dependent.
  std::vector<double> same(9, 0.0);
  for (int i = 0; i < kUsers; ++i) same[ArmIndex(a, UserId(i)) * 3 + ArmIndex(a, UserId(i))] += 1;
  EXPECT_GT(ChiSquareStatistic(same, expected), 1000.0);
}

TEST(ExperimentTest, GrowingANeighbouringArmMovesOnlyTheMinimum) {
  // Two arms, 50/50 -> 60/40: exactly the users whose position lies in [0.5, 0.6) move, all
  // from arm 1 to arm 0; about 10% of users.
  Experiment before;
  before.salt = "ramp";
  before.arms = {Arm("treatment", 0.5), Arm("control", 0.5, ExperimentArm::Policy::kControl)};
  Experiment after = before;
  after.arms[0].share = 0.6;
  after.arms[1].share = 0.4;
  int moved = 0;
  for (int i = 0; i < kUsers; ++i) {
    const size_t x = ArmIndex(before, UserId(i));
    const size_t y = ArmIndex(after, UserId(i));
    const double u = ExperimentPosition(before.salt, UserId(i));
    if (x != y) {
      ++moved;
      EXPECT_EQ(x, 1u);
      EXPECT_EQ(y, 0u);
    }
    EXPECT_EQ(x != y, u >= 0.5 && u < 0.6) << "position " << u;
  }
  EXPECT_NEAR(moved, 0.1 * kUsers, 4 * std::sqrt(0.1 * 0.9 * kUsers));

  // Three arms, one boundary moves (0.5/0.3/0.2 -> 0.5/0.4/0.1): only model -> random moves;
  // control keeps every user.
  const Experiment three = ThreeArms();
  Experiment grown = three;
  grown.arms[1].share = 0.4;
  grown.arms[2].share = 0.1;
  moved = 0;
  for (int i = 0; i < kUsers; ++i) {
    const size_t x = ArmIndex(three, UserId(i));
    const size_t y = ArmIndex(grown, UserId(i));
    if (x != y) {
      ++moved;
      EXPECT_EQ(x, 2u);
      EXPECT_EQ(y, 1u);
    }
  }
  EXPECT_NEAR(moved, 0.1 * kUsers, 4 * std::sqrt(0.1 * 0.9 * kUsers));

  // Renaming arms and changing their policy moves nobody.
  Experiment renamed = three;
  renamed.arms[0].name = "holdout";
  renamed.arms[2].policy = ExperimentArm::Policy::kRandom;
  for (int i = 0; i < 1000; ++i)
    EXPECT_EQ(ArmIndex(three, UserId(i)), ArmIndex(renamed, UserId(i)));
}

TEST(ExperimentTest, ZeroShareArmsGetNobody) {
  Experiment e;
  e.salt = "z";
  e.arms = {Arm("closed", 0.0), Arm("a", 0.7), Arm("closed-too", 0.0), Arm("b", 0.3),
            Arm("last-closed", 0.0)};
  ASSERT_OK(ValidateExperiment(e));
  std::vector<int> counts(5, 0);
  for (int i = 0; i < 20000; ++i) ++counts[ArmIndex(e, UserId(i))];
  EXPECT_EQ(counts[0], 0);
  EXPECT_EQ(counts[2], 0);
  EXPECT_EQ(counts[4], 0);
  EXPECT_EQ(counts[1] + counts[3], 20000);
}

TEST(ExperimentTest, SharesSummingJustBelowOneLeaveNoUserUnassigned) {
  Experiment e;
  e.salt = "s";
  e.arms = {Arm("a", 0.5), Arm("b", 0.5 - 5e-10), Arm("c", 0.0)};
  ASSERT_OK(ValidateExperiment(e));
  for (int i = 0; i < 10000; ++i) EXPECT_LT(ArmIndex(e, UserId(i)), 2u);
}

TEST(ExperimentTest, InvalidExperimentsNameTheField) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Experiment e = ThreeArms();
  e.salt = "";
  EXPECT_THAT(ValidateExperiment(e),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("salt: empty")));
  e = ThreeArms();
  e.arms.clear();
  EXPECT_THAT(ValidateExperiment(e),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("arms: none")));
  e = ThreeArms();
  e.arms[1].name = "";
  EXPECT_THAT(ValidateExperiment(e),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("arms[1].name: empty")));
  e = ThreeArms();
  e.arms[2].name = "control";
  EXPECT_THAT(ValidateExperiment(e),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("arms[2].name: 'control' repeats arms[0]")));
  for (double bad : {-0.1, nan, std::numeric_limits<double>::infinity()}) {
    e = ThreeArms();
    e.arms[0].share = bad;
    EXPECT_THAT(ValidateExperiment(e),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("arms[0].share: ")));
  }
  e = ThreeArms();
  e.arms[2].share = 0.25;
  EXPECT_THAT(ValidateExperiment(e), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("arms: shares sum to 1.05, not 1")));
  e = ThreeArms();
  e.arms[2].share = 0.2 + 1e-8;  // beyond the 1e-9 tolerance
  EXPECT_THAT(ValidateExperiment(e),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("shares sum")));
  e = ThreeArms();
  e.arms[2].policy = static_cast<ExperimentArm::Policy>(17);
  EXPECT_THAT(ValidateExperiment(e),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("arms[2].policy: 17")));
}

TEST(ExperimentTest, ArmPolicyNamesRoundTrip) {
  for (auto p : {ExperimentArm::Policy::kControl, ExperimentArm::Policy::kRandom,
                 ExperimentArm::Policy::kModel}) {
    ASSERT_OK_AND_ASSIGN(ExperimentArm::Policy back, ParseArmPolicy(ArmPolicyName(p)));
    EXPECT_EQ(back, p);
  }
  EXPECT_THAT(ParseArmPolicy("Model"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'Model'")));
}

}  // namespace
}  // namespace coupond::core
