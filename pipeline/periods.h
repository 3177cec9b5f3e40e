#ifndef COUPOND_PIPELINE_PERIODS_H_
#define COUPOND_PIPELINE_PERIODS_H_

// The three periods of a pipeline run (fit, validation, test; pipeline/train_job.h step 2)
// as a reader needs them: each one's share of the rows and base rate, and a warning when
// the base rate shifts between them.
//
// Why: periods are whole campaigns by start day, so a period's real share of the rows can
// be far from the requested fraction (one large campaign on the last day makes a "20%" test
// period hold a third of the rows), and a redemption rate that changes across time makes
// the model, fitted on the earlier periods, miscalibrated on the later ones. Both must be
// visible in the CLI's output and in the report, not discovered later.

#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/train_job.h"

namespace coupond::pipeline {

struct PeriodShare {
  std::string name;          // "fit", "validation", "test"
  int64_t examples = 0, positives = 0;
  double share = 0;          // of every example of the run (fit + validation + test); 0 when none
  double base_rate = 0;      // positives / examples; 0 when no example
  std::string campaigns;     // which campaigns, by start day: "before day 20", "from day 24"
  std::string requested;     // the requested fraction, "" for the fit period
};

// Fit, validation and test, in that order, from the counts MakeSplits stored in `result`.
std::vector<PeriodShare> PeriodShares(const PipelineResult& result);

// One line per period for CLIs, e.g.
//   "test period: 2500 examples, 25.0% of the rows (requested 20%), 100 positives (4.000%), campaigns from day 24"
std::string PeriodLines(const PipelineResult& result);

// A base rate ratio above this between two periods is a shift worth a warning. 2.
inline constexpr double kShiftWarningRatio = 2.0;

// Empty, or one warning naming the periods with the highest and the lowest base rate
// when they differ by more than kShiftWarningRatio (a period without a positive next to one
// with some counts as an infinite ratio). Periods without an example are skipped.
std::vector<std::string> ShiftWarnings(const PipelineResult& result);

}  // namespace coupond::pipeline

#endif  // COUPOND_PIPELINE_PERIODS_H_
