#include "pipeline/report.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "pipeline/evaluation.h"
#include "pipeline/periods.h"

namespace coupond::pipeline {
namespace {

// ------------------------------------------------------------------ SVG helpers

constexpr double kW = 420, kH = 300;                       // one panel
constexpr double kLeft = 58, kRight = 12, kTop = 28, kBottom = 44;  // margins

struct Axis {
  double lo = 0, hi = 1;
  double ToX(double v) const { return kLeft + (v - lo) / (hi - lo) * (kW - kLeft - kRight); }
  double ToY(double v) const { return kH - kBottom - (v - lo) / (hi - lo) * (kH - kTop - kBottom); }
};

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string Text(double x, double y, const std::string& s, const char* anchor = "middle",
                 int size = 12) {
  return absl::StrFormat(
      "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" text-anchor=\"%s\" "
      "font-family=\"sans-serif\">%s</text>",
      x, y, size, anchor, Escape(s));
}

std::string Polyline(const std::vector<std::pair<double, double>>& pts, const char* color,
                     bool dashed = false, bool markers = true) {
  std::string s = "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"";
  absl::StrAppend(&s, color, "\"", dashed ? " stroke-dasharray=\"5,4\"" : "", " points=\"");
  for (const auto& [x, y] : pts) absl::StrAppendFormat(&s, "%.1f,%.1f ", x, y);
  s += "\"/>";
  if (markers) {
    for (const auto& [x, y] : pts) {
      absl::StrAppendFormat(&s, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>", x, y,
                            color);
    }
  }
  return s;
}

// Frame, ticks and labels of a panel translated by (dx, 0).
std::string Frame(const Axis& x, const Axis& y, const std::string& title,
                  const std::string& xlabel, const std::string& ylabel, int x_ticks,
                  const absl::FormatSpec<double>& xfmt, const absl::FormatSpec<double>& yfmt) {
  std::string s = absl::StrFormat(
      "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"white\" "
      "stroke=\"#444\"/>",
      kLeft, kTop, kW - kLeft - kRight, kH - kTop - kBottom);
  for (int k = 0; k <= x_ticks; ++k) {
    const double v = x.lo + (x.hi - x.lo) * k / x_ticks;
    const double px = x.ToX(v);
    absl::StrAppendFormat(&s, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                          "stroke=\"#ddd\"/>", px, kTop, px, kH - kBottom);
    s += Text(px, kH - kBottom + 16, absl::StrFormat(xfmt, v), "middle", 10);
  }
  for (int k = 0; k <= 5; ++k) {
    const double v = y.lo + (y.hi - y.lo) * k / 5;
    const double py = y.ToY(v);
    absl::StrAppendFormat(&s, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                          "stroke=\"#ddd\"/>", kLeft, py, kW - kRight, py);
    s += Text(kLeft - 4, py + 4, absl::StrFormat(yfmt, v), "end", 10);
  }
  s += Text(kW / 2, 18, title, "middle", 13);
  s += Text((kLeft + kW - kRight) / 2, kH - 8, xlabel);
  absl::StrAppendFormat(&s,
                        "<text x=\"14\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" "
                        "font-family=\"sans-serif\" transform=\"rotate(-90 14 %.1f)\">%s</text>",
                        (kTop + kH - kBottom) / 2, (kTop + kH - kBottom) / 2, Escape(ylabel));
  return s;
}

std::string Legend(double x, double y, const std::vector<std::pair<std::string, const char*>>& items) {
  std::string s;
  for (size_t k = 0; k < items.size(); ++k) {
    const double yy = y + 15.0 * static_cast<double>(k);
    absl::StrAppendFormat(&s, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                          "stroke=\"%s\" stroke-width=\"2\"/>", x, yy - 4, x + 18, yy - 4,
                          items[k].second);
    s += Text(x + 22, yy, items[k].first, "start", 10);
  }
  return s;
}

size_t BestBaseline(const PipelineResult& r) {
  size_t best = 0;
  for (size_t k = 1; k < r.evaluations.size(); ++k) {
    if (r.evaluations[k].name == "truth") continue;
    if (best == 0 || r.evaluations[k].auc > r.evaluations[best].auc) best = k;
  }
  return best;
}

// ------------------------------------------------------------------ document model

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

class Doc {
 public:
  explicit Doc(ReportFormat f) : f_(f) {}
  void H(int level, const std::string& s) {
    if (f_ == ReportFormat::kMarkdown) {
      absl::StrAppend(&out_, std::string(level, '#'), " ", s, "\n\n");
    } else {
      absl::StrAppendFormat(&out_, "<h%d>%s</h%d>\n", level, Escape(s), level);
    }
  }
  void P(const std::string& s) {
    if (f_ == ReportFormat::kMarkdown) {
      absl::StrAppend(&out_, s, "\n\n");
    } else {
      absl::StrAppend(&out_, "<p>", Escape(s), "</p>\n");
    }
  }
  void Pre(const std::string& s) {
    if (f_ == ReportFormat::kMarkdown) {
      absl::StrAppend(&out_, "```\n", s, s.empty() || s.back() == '\n' ? "" : "\n", "```\n\n");
    } else {
      absl::StrAppend(&out_, "<pre>", Escape(s), "</pre>\n");
    }
  }
  void Raw(const std::string& html) { absl::StrAppend(&out_, html, "\n\n"); }
  void T(const Table& t) {
    if (f_ == ReportFormat::kMarkdown) {
      absl::StrAppend(&out_, "| ", absl::StrJoin(t.header, " | "), " |\n|");
      for (size_t k = 0; k < t.header.size(); ++k) out_ += k == 0 ? " --- |" : " ---: |";
      out_ += "\n";
      for (const auto& row : t.rows) absl::StrAppend(&out_, "| ", absl::StrJoin(row, " | "), " |\n");
      out_ += "\n";
    } else {
      out_ += "<table>\n<tr>";
      for (const auto& h : t.header) absl::StrAppend(&out_, "<th>", Escape(h), "</th>");
      out_ += "</tr>\n";
      for (const auto& row : t.rows) {
        out_ += "<tr>";
        for (const auto& c : row) absl::StrAppend(&out_, "<td>", Escape(c), "</td>");
        out_ += "</tr>\n";
      }
      out_ += "</table>\n";
    }
  }
  std::string str() const { return out_; }

 private:
  ReportFormat f_;
  std::string out_;
};

std::string Pct(int64_t part, int64_t whole) {
  return whole == 0 ? "-" : absl::StrFormat("%.1f%%", 100.0 * static_cast<double>(part) /
                                                          static_cast<double>(whole));
}

// Which bias the published segment priors carry, and what it was chosen on.
std::string PriorBiasLine(const PipelineResult& r) {
  if (!r.prior_bias_choice.has_value()) {
    return absl::StrCat("segment priors (user cold start): ", PriorBiasName(r.prior_bias),
                        " bias, as configured (not chosen on validation)");
  }
  const PriorBiasChoice& c = *r.prior_bias_choice;
  if (c.examples == 0) {
    return absl::StrCat("segment priors (user cold start): ", PriorBiasName(c.rule),
                        " bias, the default: no validation example's user could be placed in "
                        "a segment by attributes alone, so there was nothing to choose on");
  }
  return absl::StrFormat(
      "segment priors (user cold start): %s bias, chosen on the validation period (%d of its "
      "examples, each user placed in a segment by attributes alone and scored with its "
      "prior, as a new user: log loss calibrated %.5f, mean %.5f)",
      PriorBiasName(c.rule), c.examples, c.calibrated_log_loss, c.mean_log_loss);
}

}  // namespace

std::string SummaryLines(const PipelineResult& r) {
  std::string s;
  for (const Evaluation& e : r.evaluations) {
    absl::StrAppendFormat(&s, "%-32s test AUC %.4f   log loss %.5f   ECE %.5f\n",
                          absl::StrCat(e.name, ":"), e.auc, e.log_loss,
                          e.calibration.expected_calibration_error);
  }
  return s;
}

std::string ModelVsBaselineLines(const PipelineResult& r) {
  if (!r.feature_logistic.has_value() || r.evaluations.empty()) return "";
  const FeatureLogisticSummary& fl = *r.feature_logistic;
  const FeatureLogisticGridPoint& flv = fl.selection.grid[fl.selection.chosen];
  const Evaluation& flt = r.evaluations[fl.evaluation];
  const Evaluation& m = r.evaluations[0];
  std::string s;
  if (!r.grid.empty()) {
    const GridPointRun& g = r.grid[r.chosen];
    absl::StrAppendFormat(&s,
                          "LMF:              validation log loss %.5f  AUC %.4f   test log loss "
                          "%.5f  AUC %.4f\n",
                          g.validation_log_loss, g.validation_auc, m.log_loss, m.auc);
  }
  absl::StrAppendFormat(&s,
                        "feature logistic: validation log loss %.5f  AUC %.4f   test log loss "
                        "%.5f  AUC %.4f   (l2 %g chosen on validation; %d attribute features)\n",
                        flv.validation_log_loss, flv.validation_auc, flt.log_loss, flt.auc, fl.l2,
                        fl.active_features);
  if (!r.publish_reason.empty()) absl::StrAppend(&s, "published: ", r.publish_reason, "\n");
  if (r.segments.has_value()) absl::StrAppend(&s, PriorBiasLine(r), "\n");
  return s;
}

std::string CalibrationSvg(const PipelineResult& r) {
  if (r.evaluations.empty()) return "";
  const size_t best = BestBaseline(r);
  double hi = 0;
  auto extend = [&](const Evaluation& e) {
    for (const learn::CalibrationBin& b : e.quantile_bins) {
      hi = std::max({hi, b.mean_predicted, b.observed_rate});
    }
  };
  extend(r.evaluations[0]);
  if (best > 0) extend(r.evaluations[best]);
  hi = hi > 0 ? std::min(1.0, hi * 1.08) : 1.0;
  Axis ax{0, hi}, ay{0, hi};
  std::string s = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "viewBox=\"0 0 %.0f %.0f\">",
      kW, kH, kW, kH);
  s += Frame(ax, ay, "Reliability (test period, equal-count bins)", "mean predicted probability",
             "observed redemption rate", 4, "%.3g", "%.3g");
  s += Polyline({{ax.ToX(0), ay.ToY(0)}, {ax.ToX(hi), ay.ToY(hi)}}, "#999", true, false);
  auto curve = [&](const Evaluation& e, const char* color) {
    std::vector<std::pair<double, double>> pts;
    for (const learn::CalibrationBin& b : e.quantile_bins) {
      pts.emplace_back(ax.ToX(b.mean_predicted), ay.ToY(b.observed_rate));
    }
    s += Polyline(pts, color);
  };
  std::vector<std::pair<std::string, const char*>> legend = {{"perfect calibration", "#999"},
                                                             {r.evaluations[0].name, "#1f77b4"}};
  if (best > 0) {
    curve(r.evaluations[best], "#ff7f0e");
    legend.emplace_back(r.evaluations[best].name, "#ff7f0e");
  }
  curve(r.evaluations[0], "#1f77b4");
  s += Legend(kLeft + 8, kTop + 16, legend);
  s += "</svg>";
  return s;
}

std::string TrainingCurveSvg(const PipelineResult& r) {
  const auto& h = r.training_curve;
  if (h.empty()) return "";
  const double epochs = static_cast<double>(std::max<size_t>(2, h.size()));
  Axis ax{1, epochs};
  double auc_lo = 1, auc_hi = 0, ll_lo = std::numeric_limits<double>::infinity(), ll_hi = 0;
  for (const learn::LmfEpochStats& e : h) {
    if (std::isfinite(e.validation_auc)) {
      auc_lo = std::min(auc_lo, e.validation_auc);
      auc_hi = std::max(auc_hi, e.validation_auc);
    }
    for (double v : {e.train_log_loss, e.validation_log_loss}) {
      if (std::isfinite(v)) {
        ll_lo = std::min(ll_lo, v);
        ll_hi = std::max(ll_hi, v);
      }
    }
  }
  if (auc_hi < auc_lo) auc_lo = 0.5, auc_hi = 1.0;
  if (!(ll_hi > ll_lo)) ll_lo = 0, ll_hi = std::max(ll_hi, 1e-3) * 1.1;
  const double auc_pad = std::max(0.005, 0.1 * (auc_hi - auc_lo));
  const double ll_pad = 0.1 * (ll_hi - ll_lo);
  Axis ay_auc{auc_lo - auc_pad, auc_hi + auc_pad}, ay_ll{std::max(0.0, ll_lo - ll_pad), ll_hi + ll_pad};
  const int ticks = static_cast<int>(std::min<double>(epochs - 1, 10));
  std::string s = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "viewBox=\"0 0 %.0f %.0f\">",
      2 * kW, kH, 2 * kW, kH);
  std::vector<std::pair<double, double>> auc, tr, va;
  for (const learn::LmfEpochStats& e : h) {
    if (std::isfinite(e.validation_auc)) auc.emplace_back(ax.ToX(e.epoch), ay_auc.ToY(e.validation_auc));
    if (std::isfinite(e.train_log_loss)) tr.emplace_back(ax.ToX(e.epoch), ay_ll.ToY(e.train_log_loss));
    if (std::isfinite(e.validation_log_loss)) va.emplace_back(ax.ToX(e.epoch), ay_ll.ToY(e.validation_log_loss));
  }
  s += "<g>";
  s += Frame(ax, ay_auc, "Validation AUC by epoch", "epoch", "AUC", ticks, "%.0f", "%.3f");
  s += Polyline(auc, "#1f77b4");
  s += "</g>";
  absl::StrAppendFormat(&s, "<g transform=\"translate(%.0f,0)\">", kW);
  s += Frame(ax, ay_ll, "Log loss by epoch", "epoch", "log loss", ticks, "%.0f", "%.4f");
  s += Polyline(tr, "#2ca02c");
  s += Polyline(va, "#d62728");
  s += Legend(kW - kRight - 120, kTop + 16, {{"train", "#2ca02c"}, {"validation", "#d62728"}});
  s += "</g>";
  // The best epoch of the selection run.
  const GridPointRun* chosen = r.grid.empty() ? nullptr : &r.grid[r.chosen];
  if (chosen != nullptr && chosen->best_epoch >= 1) {
    const double x = ax.ToX(chosen->best_epoch);
    absl::StrAppendFormat(&s, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                          "stroke=\"#888\" stroke-dasharray=\"3,3\"/>", x, kTop, x, kH - kBottom);
    s += Text(x + 3, kTop + 12, "best", "start", 10);
  }
  s += "</svg>";
  return s;
}

std::string RenderReport(const PipelineResult& r, ReportFormat format) {
  Doc doc(format);
  doc.H(1, "coupond training pipeline report");
  doc.P(absl::StrCat("Source: ", r.source, ". Data checksum (XXH3-64): ",
                     absl::StrFormat("%016x", r.data_checksum), "."));
  doc.H(2, "Summary (test period)");
  for (const std::string& w : ShiftWarnings(r)) doc.P(absl::StrCat("Warning: ", w, "."));
  doc.Pre(SummaryLines(r));
  {
    Table t;
    t.header = {"model", "test AUC", "log loss", "ECE", "AUC vs model", "log loss vs model"};
    for (const Evaluation& e : r.evaluations) {
      const Evaluation& m = r.evaluations[0];
      t.rows.push_back({e.name, absl::StrFormat("%.4f", e.auc), absl::StrFormat("%.5f", e.log_loss),
                        absl::StrFormat("%.5f", e.calibration.expected_calibration_error),
                        absl::StrFormat("%+.4f", e.auc - m.auc),
                        absl::StrFormat("%+.5f", e.log_loss - m.log_loss)});
    }
    doc.T(t);
  }
  if (!r.publish_reason.empty() && !r.grid.empty()) {
    doc.P(absl::StrCat("Model published: ", r.publish_reason, "."));
  }
  if (r.published.has_value()) {
    doc.P(absl::StrFormat("Published as version %d (%d users, %d coupons, d = %d, checksum %016x).",
                          r.published->version, r.published->num_users,
                          r.published->num_coupons, r.published->dimension,
                          r.published->checksum));
  } else if (r.model.dimension > 0) {
    doc.P("Not published (no store given).");
  }

  doc.H(2, "Data and cleaning");
  doc.Pre(r.load_summary);
  if (r.ingest.has_value()) {
    Table t;
    t.header = {"file", "rows read", "kept", "duplicates", "quarantined", "reasons"};
    const std::pair<const char*, const FileReport*> files[] = {
        {"exposures", &r.ingest->exposures}, {"redemptions", &r.ingest->redemptions},
        {"users", &r.ingest->users}, {"coupons", &r.ingest->coupons}};
    for (const auto& [name, f] : files) {
      std::vector<std::string> reasons;
      for (const auto& [reason, n] : f->quarantined) reasons.push_back(absl::StrCat(reason, " ", n));
      t.rows.push_back({name, absl::StrCat(f->rows_read), absl::StrCat(f->kept),
                        absl::StrCat(f->duplicates), absl::StrCat(f->quarantined_total()),
                        reasons.empty() ? "-" : absl::StrJoin(reasons, ", ")});
    }
    doc.T(t);
  }
  {
    Table t;
    t.header = {"period", "examples", "share of rows", "positives", "rate", "campaigns"};
    const std::vector<PeriodShare> periods = PeriodShares(r);
    const std::string labels[] = {"fit (training period, before validation)",
                                  "validation (training period)", "test"};
    const std::string campaigns[] = {periods[0].campaigns, absl::StrJoin(r.validation_campaigns, ", "),
                                     absl::StrJoin(r.test_campaigns, ", ")};
    for (size_t k = 0; k < periods.size(); ++k) {
      const PeriodShare& p = periods[k];
      t.rows.push_back({labels[k], absl::StrCat(p.examples),
                        absl::StrFormat("%.1f%%%s", 100 * p.share,
                                        p.requested.empty() ? "" : absl::StrCat(" (", p.requested, ")")),
                        absl::StrCat(p.positives),
                        p.examples == 0 ? std::string("-") : absl::StrFormat("%.3f%%", 100 * p.base_rate),
                        campaigns[k]});
    }
    doc.T(t);
    doc.P("Periods are whole campaigns by start day, so their shares of the rows can differ from "
          "the requested fractions.");
    doc.P(absl::StrFormat(
        "Which choice was made on which period: the test period is a locked final hold-out, "
        "read once, after every choice. Chosen on the validation period: the grid point and "
        "its epochs, the feature-logistic L2, the segment priors' bias rule, and which model "
        "is published. Fitted on the "
        "training period as known on day %d (the test cutoff): profiles, segments and their "
        "priors, the baselines, coupon cold start and the final model. What the cutoffs hid: "
        "%d training-period redemptions on or after day %d and %d fit-period ones on or after "
        "day %d (negatives where fitted before them); %d training-campaign exposures dated on or "
        "after the test cutoff, and %d on or after the validation cutoff, left out.",
        r.test_cutoff_day, r.censored_train_positives, r.test_cutoff_day,
        r.censored_fit_positives, r.validation_cutoff_day, r.late_train_exposures,
        r.late_fit_exposures));
    doc.P(absl::StrCat(r.users, " users, ", r.coupons, " coupons, ", r.campaigns,
                       " campaigns. Test examples whose coupon never occurs in the training "
                       "period: ", Pct(r.test_examples_unseen_coupon, r.test_examples),
                       "; whose user never does: ", Pct(r.test_examples_unseen_user, r.test_examples),
                       "."));
    if (r.neighbour_coupons > 0) {
      doc.P(absl::StrCat(
          "Coupon attribute lists (products) of ", r.neighbour_coupons,
          " coupons replaced by their nearest training-period coupon (Jaccard overlap): ",
          r.neighbour_cold_matched, " of the ", r.neighbour_cold_coupons,
          " coupons never offered in the training period share a value with one that was."));
    }
  }
  if (r.segments.has_value()) {
    doc.H(2, "User segments (training period)");
    Table t;
    t.header = {"segment", "users", "exposures", "redemptions", "rate"};
    for (size_t k = 0; k < r.segments->segments.size(); ++k) {
      const SegmentStats& s = r.segments->segments[k];
      t.rows.push_back({absl::StrCat(k), absl::StrCat(s.users), absl::StrCat(s.exposures),
                        absl::StrCat(s.redemptions), absl::StrFormat("%.3f%%", 100 * s.redemption_rate)});
    }
    doc.P(absl::StrCat("k-means, k = ", r.segments->k, ", over ", r.segments->column_names.size(),
                       " profile columns."));
    doc.T(t);
    doc.P(PriorBiasLine(r));
  }
  if (!r.grid.empty()) {
    doc.H(2, r.selection == SelectionMethod::kPairFolds
                 ? absl::StrCat("Hyperparameters (chosen by ", r.cv_folds,
                                "-fold cross-validation over the training period)")
                 : std::string("Hyperparameters (chosen on the validation period)"));
    const learn::LmfTrainerOptions& c = r.chosen_options;
    doc.P(absl::StrFormat(
        "Chosen: dimension %d, L2 (factors) %g, learning rate %g, L2 (biases) %g; final model "
        "trained %d epochs. Lowest validation log loss wins; the test period is not used.",
        c.dimension, c.l2_id_factors, c.learning_rate, c.l2_biases, r.final_epochs));
    Table t;
    t.header = {"dimension", "L2 factors", "learning rate", "best epoch", "validation log loss",
                "validation AUC", ""};
    for (size_t k = 0; k < r.grid.size(); ++k) {
      const GridPointRun& g = r.grid[k];
      t.rows.push_back({absl::StrCat(g.dimension), absl::StrFormat("%g", g.l2_factors),
                        absl::StrFormat("%g", g.learning_rate), absl::StrCat(g.best_epoch),
                        absl::StrFormat("%.5f", g.validation_log_loss),
                        absl::StrFormat("%.4f", g.validation_auc), k == r.chosen ? "chosen" : ""});
    }
    doc.T(t);
  }
  if (r.feature_logistic.has_value() && !r.evaluations.empty()) {
    const FeatureLogisticSummary& fl = *r.feature_logistic;
    doc.H(2, "LMF vs feature-logistic baseline");
    doc.P(absl::StrFormat(
        "The baseline is a logistic regression on one-hot user and coupon attributes (%d "
        "features carried by training examples) with L2; its L2 is chosen on the validation "
        "period (fitted on the fit period, lowest validation log loss), then it is refitted as "
        "the LMF is. The model published is the one with the lower validation log loss; the "
        "test period plays no part in that choice.",
        fl.active_features));
    Table t;
    t.header = {"model", "validation log loss", "validation AUC", "test log loss", "test AUC",
                ""};
    const bool lmf_published = r.published_model == PublishedModel::kLmf;
    if (!r.grid.empty()) {
      const GridPointRun& g = r.grid[r.chosen];
      t.rows.push_back({"LMF (chosen grid point)", absl::StrFormat("%.5f", g.validation_log_loss),
                        absl::StrFormat("%.4f", g.validation_auc),
                        absl::StrFormat("%.5f", r.evaluations[0].log_loss),
                        absl::StrFormat("%.4f", r.evaluations[0].auc),
                        lmf_published ? "published" : ""});
    }
    const FeatureLogisticGridPoint& v = fl.selection.grid[fl.selection.chosen];
    t.rows.push_back({absl::StrFormat("feature logistic (L2 %g)", fl.l2),
                      absl::StrFormat("%.5f", v.validation_log_loss),
                      absl::StrFormat("%.4f", v.validation_auc),
                      absl::StrFormat("%.5f", r.evaluations[fl.evaluation].log_loss),
                      absl::StrFormat("%.4f", r.evaluations[fl.evaluation].auc),
                      lmf_published || r.grid.empty() ? "" : "published"});
    doc.T(t);
    if (!r.publish_reason.empty()) doc.P(absl::StrCat("Published: ", r.publish_reason, "."));
    Table g;
    g.header = {"L2", "validation log loss", "validation AUC", "Newton iterations", ""};
    for (size_t k = 0; k < fl.selection.grid.size(); ++k) {
      const FeatureLogisticGridPoint& p = fl.selection.grid[k];
      g.rows.push_back({absl::StrFormat("%g", p.l2), absl::StrFormat("%.5f", p.validation_log_loss),
                        absl::StrFormat("%.4f", p.validation_auc),
                        absl::StrCat(p.newton_iterations),
                        k == fl.selection.chosen ? "chosen" : ""});
    }
    doc.T(g);
  }
  if (!r.training_curve.empty()) {
    doc.H(2, "Training curve (chosen point, fit period -> validation period)");
    doc.Raw(TrainingCurveSvg(r));
    Table t;
    t.header = {"epoch", "train log loss", "validation log loss", "validation AUC", "seconds"};
    for (const learn::LmfEpochStats& e : r.training_curve) {
      t.rows.push_back({absl::StrCat(e.epoch), absl::StrFormat("%.5f", e.train_log_loss),
                        absl::StrFormat("%.5f", e.validation_log_loss),
                        absl::StrFormat("%.4f", e.validation_auc),
                        absl::StrFormat("%.1f", absl::ToDoubleSeconds(e.elapsed))});
    }
    doc.T(t);
  }
  if (!r.evaluations.empty()) {
    doc.H(2, "Calibration (test period)");
    doc.Raw(CalibrationSvg(r));
    Table t;
    t.header = {"bin (predicted)", "examples", "mean predicted", "observed rate"};
    for (const learn::CalibrationBin& b : r.evaluations[0].calibration.bins) {
      t.rows.push_back({absl::StrFormat("[%.2f, %.2f)", b.lower, b.upper), absl::StrCat(b.count),
                        absl::StrFormat("%.5f", b.mean_predicted),
                        absl::StrFormat("%.5f", b.observed_rate)});
    }
    doc.P(absl::StrCat("Reliability table of ", r.evaluations[0].name,
                       " (equal-width bins); the plot uses equal-count bins."));
    doc.T(t);
  }
  doc.H(2, "Timings");
  doc.P(absl::StrFormat("load + split %.2f s, profiles + selection %.2f s, final training %.2f s, "
                        "evaluation %.2f s, materialise + publish %.2f s.",
                        r.load_seconds, r.select_seconds, r.train_seconds, r.evaluate_seconds,
                        r.publish_seconds));
  if (format == ReportFormat::kMarkdown) return doc.str();
  return absl::StrCat(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>coupond pipeline report</title>"
      "<style>body{font-family:sans-serif;max-width:900px;margin:auto}"
      "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style>"
      "</head><body>\n",
      doc.str(), "</body></html>\n");
}

absl::Status WriteReport(const PipelineResult& result, const std::string& path) {
  const bool html = absl::EndsWithIgnoreCase(path, ".html") || absl::EndsWithIgnoreCase(path, ".htm");
  const std::string text = RenderReport(result, html ? ReportFormat::kHtml : ReportFormat::kMarkdown);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return absl::UnavailableError(absl::StrCat(path, ": cannot open for writing: ", std::strerror(errno)));
  }
  const size_t written = std::fwrite(text.data(), 1, text.size(), f);
  const bool close_failed = std::fclose(f) != 0;
  if (written != text.size() || close_failed) {
    return absl::UnavailableError(absl::StrCat(path, ": write failed"));
  }
  return absl::OkStatus();
}

}  // namespace coupond::pipeline
