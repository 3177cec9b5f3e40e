#include "pipeline/periods.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coupond::pipeline {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Counts as MakeSplits stores them: fit = training period minus validation.
PipelineResult Counts(int64_t fit, int64_t fit_pos, int64_t val, int64_t val_pos, int64_t test,
                      int64_t test_pos) {
  PipelineResult r;
  r.fit_examples = fit;
  r.validation_examples = val;
  r.validation_positives = val_pos;
  r.train_examples = fit + val;
  r.train_positives = fit_pos + val_pos;
  r.test_examples = test;
  r.test_positives = test_pos;
  r.examples = fit + val + test;
  r.validation_cutoff_day = 20;
  r.test_cutoff_day = 24;
  r.requested_test_fraction = 0.2;
  r.requested_validation_fraction = 0.2;
  return r;
}

TEST(PeriodsTest, SharesAreOfEveryRowAndNameTheRequestedFractions) {
  // One big campaign on the last start day: the "20%" test period holds 34% of the rows.
  const PipelineResult r = Counts(500, 5, 160, 2, 340, 4);
  const std::vector<PeriodShare> p = PeriodShares(r);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].name, "fit");
  EXPECT_DOUBLE_EQ(p[0].share, 0.5);
  EXPECT_EQ(p[0].positives, 5);
  EXPECT_DOUBLE_EQ(p[0].base_rate, 0.01);
  EXPECT_EQ(p[0].campaigns, "before day 20");
  EXPECT_DOUBLE_EQ(p[1].share, 0.16);
  EXPECT_EQ(p[1].campaigns, "from day 20 to 23");
  EXPECT_EQ(p[1].requested, "requested 20% of the training period, got 24.2%");
  EXPECT_DOUBLE_EQ(p[2].share, 0.34);
  EXPECT_EQ(p[2].requested, "requested 20%");
  EXPECT_EQ(PeriodLines(r),
            "fit period: 500 examples, 50.0% of the rows, 5 positives (1.000%), campaigns "
            "before day 20\n"
            "validation period: 160 examples, 16.0% of the rows (requested 20% of the training "
            "period, got 24.2%), 2 positives (1.250%), campaigns from day 20 to 23\n"
            "test period: 340 examples, 34.0% of the rows (requested 20%), 4 positives "
            "(1.176%), campaigns from day 24\n");
  EXPECT_THAT(ShiftWarnings(r), IsEmpty());  // 1.0%, 1.25%, 1.18%: no shift
}

TEST(PeriodsTest, ShiftWarningAboveTwiceTheBaseRate) {
  // The case: 0.93% in training, 6.2% in test.
  EXPECT_THAT(ShiftWarnings(Counts(10000, 93, 2000, 19, 3000, 186)),
              ElementsAre("base rate shift: test period 6.200% vs fit period 0.930% "
                          "(6.7x; more than 2x apart): a model fitted on the earlier periods is "
                          "likely miscalibrated on the later ones"));
  // Exactly 2x is not more than 2x; just above is.
  EXPECT_THAT(ShiftWarnings(Counts(1000, 10, 1000, 10, 1000, 20)), IsEmpty());
  EXPECT_THAT(ShiftWarnings(Counts(1000, 10, 1000, 10, 1000, 21)),
              ElementsAre(HasSubstr("test period 2.100% vs fit period 1.000% (2.1x")));
  // A drop counts as much as a rise.
  EXPECT_THAT(ShiftWarnings(Counts(1000, 90, 1000, 80, 1000, 10)),
              ElementsAre(HasSubstr("fit period 9.000% vs test period 1.000% (9.0x")));
  // A period without a positive beside one with some: no finite ratio, still a shift.
  EXPECT_THAT(ShiftWarnings(Counts(1000, 0, 1000, 10, 1000, 10)),
              ElementsAre(HasSubstr("vs fit period 0.000% (no positive in one;")));
  // No positive anywhere, or no example at all: nothing to compare.
  EXPECT_THAT(ShiftWarnings(Counts(1000, 0, 1000, 0, 1000, 0)), IsEmpty());
  EXPECT_THAT(ShiftWarnings(Counts(0, 0, 0, 0, 0, 0)), IsEmpty());
  // An empty period is skipped, not a zero rate.
  EXPECT_THAT(ShiftWarnings(Counts(0, 0, 1000, 10, 1000, 12)), IsEmpty());
}

}  // namespace
}  // namespace coupond::pipeline
