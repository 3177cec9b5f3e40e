#ifndef COUPOND_ANALYSIS_AB_REPORT_H_
#define COUPOND_ANALYSIS_AB_REPORT_H_

// The analysis of a randomised experiment (A/B or multi-arm) from one row per unit: which
// arm the unit was in, its 0/1 conversion outcomes and/or numeric value outcomes, and
// optionally a pre-period covariate. This is what `couponctl ab-report` prints.
//
// Per metric:
//   - per arm and overall: n, the rate (conversions) with a Wilson score interval, or the mean
//     (values) with a Student t interval on n - 1 df, and the standard deviation;
//   - per treatment arm against the control: the absolute lift (difference) with an
//     unpooled Wald interval (rates) or a Welch interval (means; Welch-Satterthwaite df,
//     Student t quantile); the relative lift (ratio - 1) with a delta-method interval on the
//     log ratio; the two-sided p-value of the pooled two-proportion z test (rates) or of
//     Welch's t test (means); and Holm-Bonferroni adjusted p-values over the
//     treatment-vs-control comparisons of that metric;
//   - with a covariate, CUPED (Deng, Xu, Kohavi and Walker, WSDM 2013):
//     Y' = Y - theta (X - mean X) with theta = cov(Y, X) / var(X) over all rows pooled,
//     and the same comparisons on Y' (Welch; Y' of a 0/1 metric is no longer 0/1), with the
//     variance reduction 1 - var(Y') / var(Y).
// The formulas are in analysis/stats.h.
//
// Thread safety: every function is thread-compatible (pure, or owns its reader).

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "analysis/stats.h"
#include "pipeline/csv.h"

namespace coupond::analysis {

enum class MetricKind {
  kConversion,  // every value is 0 or 1; analysed as a rate
  kValue,       // any finite number; analysed as a mean
};

struct AbReportOptions {
  // Column holding each row's arm label (any non-empty text). Default "arm".
  std::string arm_column = "arm";
  // 0/1 outcome columns, each analysed as a rate, in this order. Default none.
  std::vector<std::string> conversion_columns;
  // Numeric outcome columns, each analysed as a mean, after the conversions. Default none.
  // At least one conversion or value column is REQUIRED.
  std::vector<std::string> value_columns;
  // The control arm's label, exactly as in the data. REQUIRED.
  std::string control_arm;
  // A numeric pre-period covariate for CUPED; empty (the default) for no adjustment.
  std::string covariate_column;
  // Two-sided level of every interval, in (0, 1). Default 0.95.
  double confidence = 0.95;
};

// The rows of an experiment, by arm. Built by ReadExperiment, or directly (tests).
struct ExperimentData {
  struct Metric {
    std::string name;
    MetricKind kind = MetricKind::kValue;
    std::vector<std::vector<double>> by_arm;  // [arm][row], arms as in `arms`
  };
  std::string source;             // file name, for messages and the report title
  std::vector<std::string> arms;  // ReadExperiment: control first, then the rest by label
  std::vector<Metric> metrics;    // conversions first, then values, in option order
  std::vector<std::vector<double>> covariate_by_arm;  // [arm][row]; empty without one
};

// Reads the experiment from `reader` (which must have a header).
// InvalidArgument "<file>:<line>: ..." naming the column for: a missing column, a column
// named twice (for two roles), a malformed CSV record, an empty arm label, a missing
// (empty or null) outcome or covariate, one that is not a number or is NaN/inf, a
// conversion that is not 0 or 1; and "<file>: ..." for no data rows or an unknown control
// arm (the message lists the arms found). An empty file fails in the reader ("empty file,
// expected a header"). Only one arm, or an arm with fewer than 2 rows, is refused by
// AnalyzeExperiment (data built in memory goes through it too).
absl::StatusOr<ExperimentData> ReadExperiment(pipeline::CsvReader& reader,
                                              const AbReportOptions& options);
// Opens `path` (NotFound when it cannot be opened) and reads it.
absl::StatusOr<ExperimentData> ReadExperimentCsv(const std::string& path,
                                                 const AbReportOptions& options);

// Summary of one arm (or of all rows: arm "overall").
struct ArmStats {
  std::string arm;
  int64_t n = 0;
  int64_t successes = 0;  // conversions: rows with outcome 1; values: 0
  double mean = 0.0;      // the rate, or the mean value
  double sd = 0.0;        // sample standard deviation (n - 1 denominator)
  Interval ci;            // Wilson (conversions) or Student t (values)
};

// One treatment arm against the control.
struct Comparison {
  std::string arm;        // the treatment arm
  TestResult test;        // difference, its SE and interval, statistic, df, p-value
  RelativeLift relative;  // NaN when a mean is <= 0
  double p_holm = 1.0;    // Holm-adjusted over this metric's comparisons (of its section)
  // CUPED comparisons: 1 - (SE adjusted / SE unadjusted)^2. NaN elsewhere.
  double variance_reduction = std::numeric_limits<double>::quiet_NaN();
};

struct CupedAdjustment {
  std::string covariate;
  double theta = 0.0;                   // cov(Y, X) / var(X), all rows
  double variance_reduction = 0.0;      // 1 - var(Y') / var(Y), all rows
  std::vector<Comparison> comparisons;  // on Y', in the order of the unadjusted ones
};

struct MetricReport {
  std::string name;
  MetricKind kind = MetricKind::kValue;
  std::vector<ArmStats> arms;           // control, then the treatments, then "overall"
  std::vector<Comparison> comparisons;  // one per treatment arm
  std::optional<CupedAdjustment> cuped;
};

struct AbReport {
  std::string source;
  std::string arm_column;
  std::string control_arm;
  double confidence = 0.95;
  int64_t rows = 0;
  std::vector<MetricReport> metrics;
};

// Analyses `data`. InvalidArgument for: fewer than two arms, an unknown control arm, an arm
// with fewer than 2 rows, metric or covariate vectors whose sizes disagree with the arms,
// a non-finite value, a conversion that is not 0 or 1, values whose variance overflows
// double ("too large"), a constant covariate (CUPED needs it to vary), or a confidence
// outside (0, 1).
absl::StatusOr<AbReport> AnalyzeExperiment(const ExperimentData& data,
                                           const AbReportOptions& options);

enum class AbReportFormat { kText, kMarkdown, kCsv };
// "text", "markdown" (or "md"), "csv"; InvalidArgument otherwise.
absl::StatusOr<AbReportFormat> ParseAbReportFormat(absl::string_view name);

// The report as an aligned plain-text table per metric, Markdown tables, or one long CSV
// (a row per arm, lift and CUPED lift, with a `section` column).
std::string FormatAbReport(const AbReport& report, AbReportFormat format);

}  // namespace coupond::analysis

#endif  // COUPOND_ANALYSIS_AB_REPORT_H_
