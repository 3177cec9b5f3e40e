#include "pipeline/periods.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace coupond::pipeline {

std::vector<PeriodShare> PeriodShares(const PipelineResult& r) {
  const int64_t total = r.fit_examples + r.validation_examples + r.test_examples;
  auto make = [&](const char* name, int64_t examples, int64_t positives, std::string campaigns,
                  std::string requested) {
    PeriodShare p;
    p.name = name;
    p.examples = examples;
    p.positives = positives;
    p.share = total > 0 ? static_cast<double>(examples) / static_cast<double>(total) : 0.0;
    p.base_rate =
        examples > 0 ? static_cast<double>(positives) / static_cast<double>(examples) : 0.0;
    p.campaigns = std::move(campaigns);
    p.requested = std::move(requested);
    return p;
  };
  const int64_t train = r.fit_examples + r.validation_examples;
  const double validation_of_train =
      train > 0 ? static_cast<double>(r.validation_examples) / static_cast<double>(train) : 0.0;
  std::vector<PeriodShare> periods;
  periods.push_back(make("fit", r.fit_examples, r.train_positives - r.validation_positives,
                         absl::StrCat("before day ", r.validation_cutoff_day), ""));
  periods.push_back(make(
      "validation", r.validation_examples, r.validation_positives,
      absl::StrCat("from day ", r.validation_cutoff_day, " to ", r.test_cutoff_day - 1),
      absl::StrFormat("requested %g%% of the training period, got %.1f%%",
                      100 * r.requested_validation_fraction, 100 * validation_of_train)));
  periods.push_back(make("test", r.test_examples, r.test_positives,
                         absl::StrCat("from day ", r.test_cutoff_day),
                         absl::StrFormat("requested %g%%", 100 * r.requested_test_fraction)));
  return periods;
}

std::string PeriodLines(const PipelineResult& r) {
  std::string out;
  for (const PeriodShare& p : PeriodShares(r)) {
    absl::StrAppendFormat(&out, "%s period: %d examples, %.1f%% of the rows%s, %d positives "
                          "(%.3f%%), campaigns %s\n",
                          p.name, p.examples, 100 * p.share,
                          p.requested.empty() ? "" : absl::StrCat(" (", p.requested, ")"),
                          p.positives, 100 * p.base_rate, p.campaigns);
  }
  return out;
}

std::vector<std::string> ShiftWarnings(const PipelineResult& r) {
  const PeriodShare* high = nullptr;
  const PeriodShare* low = nullptr;
  const std::vector<PeriodShare> periods = PeriodShares(r);
  for (const PeriodShare& p : periods) {
    if (p.examples == 0) continue;
    if (high == nullptr || p.base_rate > high->base_rate) high = &p;
    if (low == nullptr || p.base_rate < low->base_rate) low = &p;
  }
  if (high == nullptr || high->positives == 0) return {};
  if (low->base_rate > 0 && high->base_rate <= kShiftWarningRatio * low->base_rate) return {};
  const std::string ratio =
      low->base_rate > 0 ? absl::StrFormat("%.1fx", high->base_rate / low->base_rate)
                         : std::string("no positive in one");
  return {absl::StrFormat(
      "base rate shift: %s period %.3f%% vs %s period %.3f%% (%s; more than %gx apart): a "
      "model fitted on the earlier periods is likely miscalibrated on the later ones",
      high->name, 100 * high->base_rate, low->name, 100 * low->base_rate, ratio,
      kShiftWarningRatio)};
}

}  // namespace coupond::pipeline
