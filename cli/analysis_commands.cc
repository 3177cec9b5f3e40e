#include "cli/analysis_commands.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "analysis/ab_report.h"
#include "analysis/sample_size.h"
#include "cli/cli_util.h"

namespace coupond::couponctl {
namespace {

std::string WithCommas(int64_t n) {
  std::string digits = absl::StrCat(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

int AbReportCommand(const AbReportFlags& flags) {
  if (flags.input.empty()) return Usage("ab-report: --input is required");
  if (flags.control.empty()) return Usage("ab-report: --control is required");
  if (flags.conversion_columns.empty() && flags.value_columns.empty()) {
    return Usage("ab-report: give --conversion_column and/or --value_column");
  }
  if (!(flags.alpha > 0.0 && flags.alpha < 1.0))
    return Usage("ab-report: --alpha must be in (0, 1)");
  auto format = analysis::ParseAbReportFormat(flags.format);
  if (!format.ok()) return Fail(format.status());

  analysis::AbReportOptions options;
  options.arm_column = flags.arm_column;
  options.conversion_columns = flags.conversion_columns;
  options.value_columns = flags.value_columns;
  options.control_arm = flags.control;
  options.covariate_column = flags.covariate_column;
  options.confidence = 1.0 - flags.alpha;
  auto data = analysis::ReadExperimentCsv(flags.input, options);
  if (!data.ok()) return Fail(data.status());
  auto report = analysis::AnalyzeExperiment(*data, options);
  if (!report.ok()) return Fail(report.status());
  const std::string text = analysis::FormatAbReport(*report, *format);
  if (flags.out.empty()) {
    std::fputs(text.c_str(), stdout);
    return 0;
  }
  std::ofstream out(flags.out, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Fail(absl::UnavailableError(absl::StrCat("cannot write ", flags.out)));
  std::printf("ab-report: %zu metric(s) over %s rows written to %s\n", report->metrics.size(),
              WithCommas(report->rows).c_str(), flags.out.c_str());
  return 0;
}

int SampleSizeCommand(const SampleSizeFlags& flags) {
  const bool proportions = flags.baseline_rate != 0.0;
  const bool means = flags.sd != 0.0 || flags.delta != 0.0;
  if (proportions == means) {
    return Usage(
        "sample-size: give --baseline_rate with --relative_lift or --absolute_lift, "
        "or --sd with --delta");
  }
  absl::StatusOr<analysis::SampleSize> n;
  if (proportions) {
    analysis::ProportionSampleSizeOptions o;
    o.baseline_rate = flags.baseline_rate;
    o.relative_lift = flags.relative_lift;
    o.absolute_lift = flags.absolute_lift;
    o.alpha = flags.alpha;
    o.power = flags.power;
    o.arms = flags.arms;
    n = analysis::ProportionSampleSize(o);
  } else {
    analysis::MeanSampleSizeOptions o;
    o.sd = flags.sd;
    o.delta = flags.delta;
    o.alpha = flags.alpha;
    o.power = flags.power;
    o.arms = flags.arms;
    n = analysis::MeanSampleSize(o);
  }
  if (!n.ok()) return Fail(n.status());
  if (proportions) {
    std::printf(
        "two-sided two-proportion z test: p0 %.6g -> p1 %.6g (absolute %+.6g, relative "
        "%+.2f%%)\n",
        n->p0, n->p1, n->p1 - n->p0, 100.0 * (n->p1 / n->p0 - 1.0));
  } else {
    std::printf("two-sided two-sample test of means: sd %.6g, delta %+.6g (%.4g sd)\n", flags.sd,
                flags.delta, flags.delta / flags.sd);
  }
  if (n->comparisons > 1) {
    std::printf(
        "alpha %.4g over %d treatment-vs-control comparisons (Bonferroni): %.4g each, "
        "z %.4f\n",
        flags.alpha, n->comparisons, n->alpha_per_comparison, n->z_alpha);
  } else {
    std::printf("alpha %.4g: z %.4f\n", flags.alpha, n->z_alpha);
  }
  std::printf("power %.4g: z %.4f\n", flags.power, n->z_beta);
  std::printf("n per arm: %s (formula %.1f); total over %d arms: %s\n",
              WithCommas(n->per_arm).c_str(), n->exact, flags.arms, WithCommas(n->total).c_str());
  return 0;
}

}  // namespace coupond::couponctl
