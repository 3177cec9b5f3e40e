#include "analysis/ab_report.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace coupond::analysis {
namespace {


// ---------------------------------------------------------------- reading

struct ReportColumn {
  std::string name;
  std::string role;  // for messages: "arm", "conversion", "value", "covariate"
  size_t index = 0;
};

absl::Status CheckOptions(const AbReportOptions& o) {
  if (o.arm_column.empty()) return absl::InvalidArgumentError("arm_column: must not be empty");
  if (o.control_arm.empty()) {
    return absl::InvalidArgumentError("control_arm: the control arm's label is required");
  }
  if (o.conversion_columns.empty() && o.value_columns.empty()) {
    return absl::InvalidArgumentError(
        "give at least one conversion column or value column to analyse");
  }
  if (!(o.confidence > 0.0 && o.confidence < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("confidence must be in (0, 1), got ", o.confidence));
  }
  return absl::OkStatus();
}

// "<file>:<line>: column '<name>': <what>".
absl::Status RowError(const pipeline::CsvReader& reader, const std::string& column,
                      absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(reader.name(), ":", reader.record().line(), ": column '", column, "': ", what));
}

// The field as a finite number, or InvalidArgument naming the column and line.
absl::StatusOr<double> ReadNumber(const pipeline::CsvReader& reader, const ReportColumn& column) {
  std::optional<absl::string_view> text = reader.record().Get(column.index);
  if (!text.has_value()) return RowError(reader, column.name, "missing value");
  double v = 0.0;
  if (!absl::SimpleAtod(*text, &v)) {
    return RowError(reader, column.name, absl::StrCat("'", *text, "' is not a number"));
  }
  if (!std::isfinite(v)) {
    return RowError(reader, column.name, absl::StrCat("'", *text, "' is not a finite number"));
  }
  return v;
}

}  // namespace

absl::StatusOr<ExperimentData> ReadExperiment(pipeline::CsvReader& reader,
                                              const AbReportOptions& options) {
  COUPOND_RETURN_IF_ERROR(CheckOptions(options));
  // Resolve every column, and refuse one column in two roles (a typo that would otherwise
  // analyse the arm label or the covariate as an outcome).
  std::vector<ReportColumn> columns;
  auto add = [&](const std::string& name, const char* role) -> absl::Status {
    COUPOND_ASSIGN_OR_RETURN(size_t index, reader.RequireColumn(name));
    for (const ReportColumn& c : columns) {
      if (c.index == index) {
        return absl::InvalidArgumentError(absl::StrCat(reader.name(), ":1: column '", name,
                                                       "' is named twice (as ", c.role, " and as ",
                                                       role, ")"));
      }
    }
    columns.push_back({name, role, index});
    return absl::OkStatus();
  };
  COUPOND_RETURN_IF_ERROR(add(options.arm_column, "arm"));
  for (const std::string& c : options.conversion_columns) {
    COUPOND_RETURN_IF_ERROR(add(c, "conversion"));
  }
  for (const std::string& c : options.value_columns) COUPOND_RETURN_IF_ERROR(add(c, "value"));
  const bool has_covariate = !options.covariate_column.empty();
  if (has_covariate) COUPOND_RETURN_IF_ERROR(add(options.covariate_column, "covariate"));
  const size_t num_metrics = options.conversion_columns.size() + options.value_columns.size();

  // Rows by arm, arms in order of first appearance until the end.
  std::vector<std::string> labels;
  absl::flat_hash_map<std::string, size_t> arm_index;
  std::vector<std::vector<std::vector<double>>> values(num_metrics);  // [metric][arm][row]
  std::vector<std::vector<double>> covariate;                         // [arm][row]
  std::vector<double> row(num_metrics);
  int64_t rows = 0;
  for (;;) {
    COUPOND_ASSIGN_OR_RETURN(bool more, reader.Next());
    if (!more) break;
    const pipeline::CsvRecord& record = reader.record();
    if (!record.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(reader.name(), ":", record.line(), ": malformed record: ", record.error()));
    }
    std::optional<absl::string_view> label = record.Get(columns[0].index);
    if (!label.has_value()) return RowError(reader, columns[0].name, "empty arm label");
    for (size_t m = 0; m < num_metrics; ++m) {
      const ReportColumn& column = columns[1 + m];
      COUPOND_ASSIGN_OR_RETURN(row[m], ReadNumber(reader, column));
      if (m < options.conversion_columns.size() && row[m] != 0.0 && row[m] != 1.0) {
        return RowError(reader, column.name,
                        absl::StrCat("'", record.Text(column.index), "' is not 0 or 1"));
      }
    }
    double x = 0.0;
    if (has_covariate) {
      COUPOND_ASSIGN_OR_RETURN(x, ReadNumber(reader, columns.back()));
    }

    auto [it, inserted] = arm_index.try_emplace(std::string(*label), labels.size());
    if (inserted) {
      labels.emplace_back(*label);
      for (auto& metric : values) metric.emplace_back();
      covariate.emplace_back();
    }
    for (size_t m = 0; m < num_metrics; ++m) values[m][it->second].push_back(row[m]);
    if (has_covariate) covariate[it->second].push_back(x);
    ++rows;
  }
  if (rows == 0) return absl::InvalidArgumentError(absl::StrCat(reader.name(), ": no data rows"));
  const auto control = arm_index.find(options.control_arm);
  if (control == arm_index.end()) {
    std::vector<std::string> sorted = labels;
    std::sort(sorted.begin(), sorted.end());
    return absl::InvalidArgumentError(absl::StrCat(
        reader.name(), ": control arm '", options.control_arm, "' is not among the ", labels.size(),
        " arm(s) in column '", options.arm_column, "': '", absl::StrJoin(sorted, "', '"), "'"));
  }

  // Control first, then the treatments by label: a stable order whatever the file's.
  std::vector<size_t> order(labels.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const bool ca = a == control->second, cb = b == control->second;
    if (ca != cb) return ca;
    return labels[a] < labels[b];
  });
  ExperimentData data;
  data.source = reader.name();
  for (size_t a : order) data.arms.push_back(labels[a]);
  for (size_t m = 0; m < num_metrics; ++m) {
    ExperimentData::Metric metric;
    const bool conversion = m < options.conversion_columns.size();
    metric.name = columns[1 + m].name;
    metric.kind = conversion ? MetricKind::kConversion : MetricKind::kValue;
    for (size_t a : order) metric.by_arm.push_back(std::move(values[m][a]));
    data.metrics.push_back(std::move(metric));
  }
  if (has_covariate) {
    for (size_t a : order) data.covariate_by_arm.push_back(std::move(covariate[a]));
  }
  return data;
}

absl::StatusOr<ExperimentData> ReadExperimentCsv(const std::string& path,
                                                 const AbReportOptions& options) {
  COUPOND_RETURN_IF_ERROR(CheckOptions(options));
  COUPOND_ASSIGN_OR_RETURN(std::unique_ptr<pipeline::CsvReader> reader,
                           pipeline::CsvReader::Open(path));
  return ReadExperiment(*reader, options);
}

// ---------------------------------------------------------------- analysis

namespace {

struct Moments {
  int64_t n = 0;
  double mean = 0.0;
  double var = 0.0;  // sample variance, n - 1 denominator
};

// Two passes (mean, then squared deviations): exact enough for sums of 1e5-1e7 rows, and no
// catastrophic cancellation for values far from zero.
Moments ComputeMoments(const std::vector<const std::vector<double>*>& parts) {
  Moments m;
  double sum = 0.0;
  for (const auto* part : parts) {
    for (double v : *part) sum += v;
    m.n += static_cast<int64_t>(part->size());
  }
  m.mean = sum / static_cast<double>(m.n);
  double ss = 0.0;
  for (const auto* part : parts) {
    for (double v : *part) ss += (v - m.mean) * (v - m.mean);
  }
  m.var = m.n > 1 ? ss / static_cast<double>(m.n - 1) : 0.0;
  return m;
}

Moments ComputeMoments(const std::vector<double>& values) { return ComputeMoments({&values}); }

absl::Status CheckData(const ExperimentData& data, const AbReportOptions& options,
                       size_t* control) {
  COUPOND_RETURN_IF_ERROR(CheckOptions(options));
  const auto it = std::find(data.arms.begin(), data.arms.end(), options.control_arm);
  if (it == data.arms.end()) {
    return absl::InvalidArgumentError(absl::StrCat(data.source, ": control arm '",
                                                   options.control_arm, "' is not among the arms '",
                                                   absl::StrJoin(data.arms, "', '"), "'"));
  }
  *control = static_cast<size_t>(it - data.arms.begin());
  if (data.arms.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        data.source, ": only one arm ('", data.arms[0], "') in column '", options.arm_column,
        "'; an experiment needs a control and at least one treatment"));
  }
  if (data.metrics.empty()) return absl::InvalidArgumentError("no metric to analyse");
  const bool has_covariate = !data.covariate_by_arm.empty();
  if (has_covariate && data.covariate_by_arm.size() != data.arms.size()) {
    return absl::InvalidArgumentError("covariate_by_arm: one vector per arm expected");
  }
  for (const ExperimentData::Metric& metric : data.metrics) {
    if (metric.by_arm.size() != data.arms.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric '", metric.name, "': one vector per arm expected"));
    }
    for (size_t a = 0; a < data.arms.size(); ++a) {
      const std::vector<double>& v = metric.by_arm[a];
      if (v.size() < 2) {
        return absl::InvalidArgumentError(absl::StrCat(
            data.source, ": arm '", data.arms[a], "' has ", v.size(), " row(s) in column '",
            options.arm_column, "'; each arm needs at least 2 (for a variance)"));
      }
      if (has_covariate && data.covariate_by_arm[a].size() != v.size()) {
        return absl::InvalidArgumentError(absl::StrCat("covariate: arm '", data.arms[a], "' has ",
                                                       data.covariate_by_arm[a].size(),
                                                       " values for ", v.size(), " rows"));
      }
      for (double x : v) {
        if (!std::isfinite(x)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "metric '", metric.name, "': a non-finite value in arm '", data.arms[a], "'"));
        }
        if (metric.kind == MetricKind::kConversion && x != 0.0 && x != 1.0) {
          return absl::InvalidArgumentError(absl::StrCat("metric '", metric.name, "': conversion ",
                                                         x, " is not 0 or 1 in arm '", data.arms[a],
                                                         "'"));
        }
      }
    }
  }
  if (has_covariate) {
    for (const std::vector<double>& v : data.covariate_by_arm) {
      for (double x : v) {
        if (!std::isfinite(x)) {
          return absl::InvalidArgumentError(
              absl::StrCat("covariate '", options.covariate_column, "': a non-finite value"));
        }
      }
    }
  }
  return absl::OkStatus();
}

// The standard error of an arm's mean (for the relative lift's delta method).
double MeanStandardError(const Moments& m) { return std::sqrt(m.var / static_cast<double>(m.n)); }

// Welch comparisons of every treatment arm against the control on per-arm moments, with
// Holm-adjusted p-values.
std::vector<Comparison> WelchComparisons(const std::vector<std::string>& arms, size_t control,
                                         const std::vector<Moments>& moments, double confidence) {
  std::vector<Comparison> out;
  const Moments& c = moments[control];
  for (size_t a = 0; a < arms.size(); ++a) {
    if (a == control) continue;
    const Moments& t = moments[a];
    Comparison cmp;
    cmp.arm = arms[a];
    cmp.test = WelchTest(t.mean, t.var, t.n, c.mean, c.var, c.n, confidence);
    cmp.relative =
        RelativeLiftDelta(t.mean, MeanStandardError(t), c.mean, MeanStandardError(c), confidence);
    out.push_back(std::move(cmp));
  }
  return out;
}

void AdjustHolm(std::vector<Comparison>* comparisons) {
  std::vector<double> p;
  for (const Comparison& c : *comparisons) p.push_back(c.test.p_value);
  const std::vector<double> adjusted = HolmAdjust(p);
  for (size_t i = 0; i < comparisons->size(); ++i) (*comparisons)[i].p_holm = adjusted[i];
}

absl::StatusOr<MetricReport> AnalyzeMetric(const ExperimentData& data,
                                           const ExperimentData::Metric& metric, size_t control,
                                           const AbReportOptions& options) {
  MetricReport report;
  report.name = metric.name;
  report.kind = metric.kind;
  const bool conversion = metric.kind == MetricKind::kConversion;
  std::vector<Moments> moments;
  std::vector<const std::vector<double>*> all;
  auto summarise = [&](const std::string& arm, const Moments& m) -> absl::Status {
    if (!std::isfinite(m.mean) || !std::isfinite(m.var)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric '", metric.name,
                       "': values too large (their variance overflows double precision)"));
    }
    ArmStats s;
    s.arm = arm;
    s.n = m.n;
    s.mean = m.mean;
    s.sd = std::sqrt(m.var);
    if (conversion) {
      s.successes = std::llround(m.mean * static_cast<double>(m.n));
      s.ci = WilsonInterval(s.successes, s.n, options.confidence);
    } else {
      s.ci = MeanInterval(s.mean, s.sd, s.n, options.confidence);
    }
    report.arms.push_back(std::move(s));
    return absl::OkStatus();
  };
  // Table order: control, treatments, overall.
  for (size_t a = 0; a < data.arms.size(); ++a) {
    moments.push_back(ComputeMoments(metric.by_arm[a]));
    all.push_back(&metric.by_arm[a]);
  }
  COUPOND_RETURN_IF_ERROR(summarise(data.arms[control], moments[control]));
  for (size_t a = 0; a < data.arms.size(); ++a) {
    if (a != control) COUPOND_RETURN_IF_ERROR(summarise(data.arms[a], moments[a]));
  }
  const Moments overall = ComputeMoments(all);
  COUPOND_RETURN_IF_ERROR(summarise("overall", overall));

  if (conversion) {
    const ArmStats& c = report.arms[0];
    for (size_t i = 1; i + 1 < report.arms.size(); ++i) {
      const ArmStats& t = report.arms[i];
      Comparison cmp;
      cmp.arm = t.arm;
      cmp.test = TwoProportionTest(t.successes, t.n, c.successes, c.n, options.confidence);
      const auto se = [](const ArmStats& s) {
        return std::sqrt(s.mean * (1.0 - s.mean) / static_cast<double>(s.n));
      };
      cmp.relative = RelativeLiftDelta(t.mean, se(t), c.mean, se(c), options.confidence);
      report.comparisons.push_back(std::move(cmp));
    }
  } else {
    report.comparisons = WelchComparisons(data.arms, control, moments, options.confidence);
  }
  AdjustHolm(&report.comparisons);

  if (!data.covariate_by_arm.empty()) {
    // theta over all rows pooled: under randomisation X is independent of the arm, so the
    // pooled slope is consistent, and one theta for every arm keeps the adjusted difference
    // unbiased (the adjustment term has expectation zero in every arm).
    std::vector<const std::vector<double>*> xs;
    for (const auto& x : data.covariate_by_arm) xs.push_back(&x);
    const Moments mx = ComputeMoments(xs);
    double sxy = 0.0;
    for (size_t a = 0; a < data.arms.size(); ++a) {
      const std::vector<double>& y = metric.by_arm[a];
      const std::vector<double>& x = data.covariate_by_arm[a];
      for (size_t i = 0; i < y.size(); ++i) sxy += (x[i] - mx.mean) * (y[i] - overall.mean);
    }
    if (!(mx.var > 0.0) || !std::isfinite(mx.var)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "covariate '", options.covariate_column,
          std::isfinite(mx.var) ? "' is constant: CUPED needs a covariate that varies"
                                : "': values too large (their variance overflows double)"));
    }
    CupedAdjustment cuped;
    cuped.covariate = options.covariate_column;
    cuped.theta = sxy / static_cast<double>(mx.n - 1) / mx.var;
    std::vector<std::vector<double>> adjusted(data.arms.size());
    std::vector<Moments> adjusted_moments;
    std::vector<const std::vector<double>*> adjusted_all;
    for (size_t a = 0; a < data.arms.size(); ++a) {
      const std::vector<double>& y = metric.by_arm[a];
      const std::vector<double>& x = data.covariate_by_arm[a];
      adjusted[a].resize(y.size());
      for (size_t i = 0; i < y.size(); ++i) adjusted[a][i] = y[i] - cuped.theta * (x[i] - mx.mean);
      adjusted_moments.push_back(ComputeMoments(adjusted[a]));
      adjusted_all.push_back(&adjusted[a]);
    }
    const Moments adjusted_overall = ComputeMoments(adjusted_all);
    cuped.variance_reduction = overall.var > 0.0 ? 1.0 - adjusted_overall.var / overall.var : 0.0;
    cuped.comparisons = WelchComparisons(data.arms, control, adjusted_moments, options.confidence);
    AdjustHolm(&cuped.comparisons);
    for (size_t i = 0; i < cuped.comparisons.size(); ++i) {
      const double se = report.comparisons[i].test.standard_error;
      const double ratio = cuped.comparisons[i].test.standard_error / se;
      cuped.comparisons[i].variance_reduction = se > 0.0 ? 1.0 - ratio * ratio : std::numeric_limits<double>::quiet_NaN();
    }
    report.cuped = std::move(cuped);
  }
  return report;
}

}  // namespace

absl::StatusOr<AbReport> AnalyzeExperiment(const ExperimentData& data,
                                           const AbReportOptions& options) {
  size_t control = 0;
  COUPOND_RETURN_IF_ERROR(CheckData(data, options, &control));
  AbReport report;
  report.source = data.source;
  report.arm_column = options.arm_column;
  report.control_arm = options.control_arm;
  report.confidence = options.confidence;
  for (const auto& rows : data.metrics[0].by_arm) report.rows += static_cast<int64_t>(rows.size());
  for (const ExperimentData::Metric& metric : data.metrics) {
    COUPOND_ASSIGN_OR_RETURN(MetricReport m, AnalyzeMetric(data, metric, control, options));
    report.metrics.push_back(std::move(m));
  }
  return report;
}

// ---------------------------------------------------------------- formatting

absl::StatusOr<AbReportFormat> ParseAbReportFormat(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "text") return AbReportFormat::kText;
  if (lower == "markdown" || lower == "md") return AbReportFormat::kMarkdown;
  if (lower == "csv") return AbReportFormat::kCsv;
  return absl::InvalidArgumentError(
      absl::StrCat("format: expected text, markdown or csv, got '", name, "'"));
}

namespace {

// A table rendered either as aligned plain text or as Markdown. The first column is
// left-aligned, the others right-aligned.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

  std::string Render(AbReportFormat format) const {
    std::string out;
    if (format == AbReportFormat::kMarkdown) {
      out += absl::StrCat("| ", absl::StrJoin(header_, " | "), " |\n|");
      for (size_t i = 0; i < header_.size(); ++i) out += i == 0 ? " --- |" : " ---: |";
      out += "\n";
      for (const auto& row : rows_) out += absl::StrCat("| ", absl::StrJoin(row, " | "), " |\n");
      return out;
    }
    std::vector<size_t> width(header_.size(), 0);
    auto measure = [&](const std::vector<std::string>& row) {
      for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    };
    measure(header_);
    for (const auto& row : rows_) measure(row);
    auto line = [&](const std::vector<std::string>& row) {
      std::string s = "  ";
      for (size_t i = 0; i < row.size(); ++i) {
        const std::string pad(width[i] - row[i].size(), ' ');
        s += i == 0 ? row[i] + pad : pad + row[i];
        if (i + 1 < row.size()) s += "  ";
      }
      return s + "\n";
    };
    out += line(header_);
    for (const auto& row : rows_) out += line(row);
    return out;
  }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

std::string WithCommas(int64_t n) {
  std::string digits = absl::StrCat(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string Num(double v, int decimals, bool sign = false) {
  if (std::isnan(v)) return "n/a";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return sign ? absl::StrFormat("%+.*f", decimals, v) : absl::StrFormat("%.*f", decimals, v);
}

std::string Percent(double v) {
  return std::isnan(v) ? "n/a" : absl::StrFormat("%+.1f%%", 100 * v);
}

std::string PValue(double p) {
  if (std::isnan(p)) return "n/a";
  if (p < 1e-300) return "<1e-300";
  return p < 0.001 ? absl::StrFormat("%.2e", p) : absl::StrFormat("%.4f", p);
}

std::string Bracket(const std::string& a, const std::string& b) {
  return absl::StrCat("[", a, ", ", b, "]");
}

// Decimals for a metric's numbers: rates to 5 places (0.00573 matters), values to 4.
int Decimals(MetricKind kind) { return kind == MetricKind::kConversion ? 5 : 4; }

std::string ComparisonTable(const std::vector<Comparison>& comparisons, MetricKind kind, bool welch,
                            bool cuped, const std::string& control, int level,
                            AbReportFormat format) {
  const int d = Decimals(kind);
  std::vector<std::string> header = {absl::StrCat("vs ", control),
                                     "lift",
                                     absl::StrCat(level, "% CI", welch ? " (Welch)" : " (Wald)"),
                                     "relative",
                                     absl::StrCat(level, "% CI (delta)"),
                                     welch ? "t" : "z"};
  if (welch) header.push_back("df");
  header.insert(header.end(), {"p", "p Holm"});
  if (cuped) header.push_back("var. reduction");
  Table table(std::move(header));
  for (const Comparison& c : comparisons) {
    std::vector<std::string> row = {
        c.arm,
        Num(c.test.difference, d, true),
        Bracket(Num(c.test.ci.lower, d, true), Num(c.test.ci.upper, d, true)),
        Percent(c.relative.estimate),
        Bracket(Percent(c.relative.ci.lower), Percent(c.relative.ci.upper)),
        Num(c.test.statistic, 2)};
    if (welch) row.push_back(Num(c.test.df, 0));
    row.insert(row.end(), {PValue(c.test.p_value), PValue(c.p_holm)});
    if (cuped) row.push_back(Percent(c.variance_reduction));
    table.Add(std::move(row));
  }
  return table.Render(format);
}

std::string FormatReadable(const AbReport& report, AbReportFormat format) {
  const bool md = format == AbReportFormat::kMarkdown;
  const int level = static_cast<int>(std::lround(100 * report.confidence));
  std::string out = absl::StrFormat(
      "%sA/B report: %s, %s rows, arms in column '%s', control '%s', %d%% intervals\n\n",
      md ? "### " : "", report.source, WithCommas(report.rows), report.arm_column,
      report.control_arm, level);
  const char* methods[] = {
      "rates: Wilson score intervals; lift: unpooled Wald interval, pooled two-proportion z test",
      "means: Student t intervals; lift: Welch t test and interval (Welch-Satterthwaite df)",
      "relative lift: delta method on the log ratio (normal quantile)",
      "p Holm: Holm-Bonferroni over each metric's treatment-vs-control comparisons"};
  for (const char* line : methods) out += absl::StrCat(md ? "- " : "  ", line, "\n");
  out += "\n";
  for (const MetricReport& m : report.metrics) {
    const bool conversion = m.kind == MetricKind::kConversion;
    const int d = Decimals(m.kind);
    out += absl::StrFormat("%s%s (%s)\n\n", md ? "#### " : "== ", m.name,
                           conversion ? "conversion rate" : "mean value");
    std::vector<std::string> header = {"arm", "n"};
    if (conversion) {
      header.insert(header.end(), {"conversions", "rate", absl::StrCat(level, "% CI (Wilson)")});
    } else {
      header.insert(header.end(), {"mean", absl::StrCat(level, "% CI (t)"), "sd"});
    }
    Table arms(std::move(header));
    for (const ArmStats& s : m.arms) {
      std::vector<std::string> row = {s.arm, WithCommas(s.n)};
      if (conversion) {
        row.insert(row.end(), {WithCommas(s.successes), Num(s.mean, d),
                               Bracket(Num(s.ci.lower, d), Num(s.ci.upper, d))});
      } else {
        row.insert(row.end(),
                   {Num(s.mean, d), Bracket(Num(s.ci.lower, d), Num(s.ci.upper, d)), Num(s.sd, d)});
      }
      arms.Add(std::move(row));
    }
    out += arms.Render(format) + "\n";
    out += ComparisonTable(m.comparisons, m.kind, /*welch=*/!conversion, /*cuped=*/false,
                           report.control_arm, level, format);
    out += "\n";
    if (m.cuped.has_value()) {
      out += absl::StrFormat(
          "CUPED on '%s': theta %.6g, variance reduction %.2f%% (1 - var(Y')/var(Y), all "
          "rows); Welch on Y' = Y - theta (X - mean X)\n\n",
          m.cuped->covariate, m.cuped->theta, 100 * m.cuped->variance_reduction);
      out += ComparisonTable(m.cuped->comparisons, m.kind, /*welch=*/true, /*cuped=*/true,
                             report.control_arm, level, format);
      out += "\n";
    }
  }
  return out;
}

std::string FormatCsv(const AbReport& report) {
  std::string out =
      "metric,kind,section,arm,n,conversions,estimate,ci_lower,ci_upper,sd,relative_lift,"
      "relative_ci_lower,relative_ci_upper,statistic,df,p_value,p_holm,variance_reduction\n";
  auto num = [](double v) { return std::isnan(v) ? std::string() : absl::StrFormat("%.10g", v); };
  auto field = [&](absl::string_view text) {
    std::string s;
    pipeline::AppendCsvField(text, &s);
    return s;
  };
  for (const MetricReport& m : report.metrics) {
    const std::string kind = m.kind == MetricKind::kConversion ? "conversion" : "value";
    for (const ArmStats& s : m.arms) {
      out += absl::StrJoin(
          {field(m.name), kind, std::string(s.arm == "overall" ? "overall" : "arm"), field(s.arm),
           absl::StrCat(s.n),
           m.kind == MetricKind::kConversion ? absl::StrCat(s.successes) : std::string(),
           num(s.mean), num(s.ci.lower), num(s.ci.upper), num(s.sd), std::string(), std::string(),
           std::string(), std::string(), std::string(), std::string(), std::string(),
           std::string()},
          ",");
      out += "\n";
    }
    auto comparisons = [&](const std::vector<Comparison>& list, const char* section) {
      for (const Comparison& c : list) {
        out += absl::StrJoin(
            {field(m.name), kind, std::string(section), field(c.arm), std::string(), std::string(),
             num(c.test.difference), num(c.test.ci.lower), num(c.test.ci.upper), std::string(),
             num(c.relative.estimate), num(c.relative.ci.lower), num(c.relative.ci.upper),
             num(c.test.statistic), num(c.test.df), num(c.test.p_value), num(c.p_holm),
             num(c.variance_reduction)},
            ",");
        out += "\n";
      }
    };
    comparisons(m.comparisons, "lift");
    if (m.cuped.has_value()) comparisons(m.cuped->comparisons, "cuped_lift");
  }
  return out;
}

}  // namespace

std::string FormatAbReport(const AbReport& report, AbReportFormat format) {
  return format == AbReportFormat::kCsv ? FormatCsv(report) : FormatReadable(report, format);
}

}  // namespace coupond::analysis
