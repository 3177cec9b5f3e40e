#include "pipeline/report.h"

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pipeline/evaluation.h"
#include "pipeline/simulate.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::pipeline {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1)) ++n;
  return n;
}

// A real (small) run, so that the report is checked against real figures.
class ReportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new coupond::testing::TempDir();
    SimulationOptions s;
    s.platform.num_users = 300;
    s.platform.num_coupons = 40;
    s.days = 10;
    s.coupons_per_exposure = 4;
    s.dirty_rows = 3;
    auto sim = SimulateLogs(s, dir_->Sub("logs"));
    ASSERT_TRUE(sim.ok()) << sim.status();
    PipelineOptions o;
    o.logs = sim->paths;
    o.truth_factors = sim->truth_dir;
    o.grid.dimensions = {2};
    o.grid.l2_factors = {1e-2f};
    o.grid.learning_rates = {1e-2f};
    o.trainer.epochs = 4;
    o.segments.kmeans.k = 3;
    o.threads = 1;
    auto r = RunPipeline(o);
    ASSERT_TRUE(r.ok()) << r.status();
    result_ = new PipelineResult(*std::move(r));
  }
  static void TearDownTestSuite() {
    delete result_;
    delete dir_;
  }
  static coupond::testing::TempDir* dir_;
  static PipelineResult* result_;
};
coupond::testing::TempDir* ReportTest::dir_ = nullptr;
PipelineResult* ReportTest::result_ = nullptr;

TEST_F(ReportTest, MarkdownHasBothPlotsTheMetricsAndTheChoices) {
  const PipelineResult& r = *result_;
  const std::string md = RenderReport(r);
  EXPECT_EQ(Count(md, "<svg"), 2);
  EXPECT_EQ(Count(md, "</svg>"), 2);
  EXPECT_THAT(md, HasSubstr("Reliability"));
  EXPECT_THAT(md, HasSubstr("Validation AUC by epoch"));
  // Metrics table: every evaluation with its AUC and log loss as printed.
  for (const Evaluation& e : r.evaluations) {
    EXPECT_THAT(md, HasSubstr(absl::StrFormat("| %s | %.4f | %.5f |", e.name, e.auc, e.log_loss)));
  }
  EXPECT_THAT(md, HasSubstr("| truth |"));
  // Ingest and quarantine counts, hyperparameters, splits.
  EXPECT_THAT(md, HasSubstr(absl::StrCat("| exposures | ", r.ingest->exposures.rows_read, " |")));
  EXPECT_THAT(md, HasSubstr("missing_value"));
  EXPECT_THAT(md, HasSubstr("Chosen: dimension 2, L2 (factors) 0.01, learning rate 0.01"));
  EXPECT_THAT(md, HasSubstr("| test | "));
  // Which choice on which period, and what the cutoffs hid.
  EXPECT_THAT(md, HasSubstr("the test period is a locked final hold-out"));
  EXPECT_THAT(md, HasSubstr(absl::StrFormat("What the cutoffs hid: %d training-period "
                                            "redemptions on or after day %d",
                                            r.censored_train_positives, r.test_cutoff_day)));
  // The LMF beside the feature-logistic baseline, validation and test, and the one published.
  ASSERT_TRUE(r.feature_logistic.has_value());
  const FeatureLogisticSummary& fl = *r.feature_logistic;
  const FeatureLogisticGridPoint& flv = fl.selection.grid[fl.selection.chosen];
  const Evaluation& flt = r.evaluations[fl.evaluation];
  EXPECT_THAT(md, HasSubstr("## LMF vs feature-logistic baseline"));
  EXPECT_THAT(md, HasSubstr(absl::StrFormat("| feature logistic (L2 %g) | %.5f | %.4f | %.5f | %.4f |",
                                            fl.l2, flv.validation_log_loss, flv.validation_auc,
                                            flt.log_loss, flt.auc)));
  EXPECT_THAT(md, HasSubstr(absl::StrFormat("| LMF (chosen grid point) | %.5f | %.4f | %.5f | %.4f |",
                                            r.grid[r.chosen].validation_log_loss,
                                            r.grid[r.chosen].validation_auc,
                                            r.evaluations[0].log_loss, r.evaluations[0].auc)));
  EXPECT_FALSE(r.publish_reason.empty());
  EXPECT_THAT(md, HasSubstr(absl::StrCat("Model published: ", r.publish_reason, ".")));
  EXPECT_EQ(Count(md, "| published |"), 1);
  EXPECT_THAT(ModelVsBaselineLines(r), HasSubstr(absl::StrCat("published: ", r.publish_reason)));
  // The calibration plot draws the diagonal and the best baseline.
  const std::string svg = CalibrationSvg(r);
  EXPECT_THAT(svg, HasSubstr("perfect calibration"));
  EXPECT_THAT(svg, HasSubstr("stroke-dasharray"));
  EXPECT_EQ(Count(TrainingCurveSvg(r), "<polyline"), 3);  // AUC, train loss, validation loss
}

TEST_F(ReportTest, HtmlIsAPageWithTables) {
  const std::string html = RenderReport(*result_, ReportFormat::kHtml);
  EXPECT_THAT(html, HasSubstr("<!DOCTYPE html>"));
  EXPECT_THAT(html, HasSubstr("<table>"));
  EXPECT_EQ(Count(html, "<svg"), 2);
  EXPECT_THAT(html, Not(HasSubstr("| --- |")));
}

TEST_F(ReportTest, WriteReportPicksTheFormatByExtension) {
  ASSERT_OK(WriteReport(*result_, dir_->Sub("r.md")));
  ASSERT_OK(WriteReport(*result_, dir_->Sub("r.html")));
  std::ifstream md(dir_->Sub("r.md")), html(dir_->Sub("r.html"));
  std::stringstream a, b;
  a << md.rdbuf();
  b << html.rdbuf();
  EXPECT_EQ(a.str(), RenderReport(*result_));
  EXPECT_THAT(b.str(), HasSubstr("<!DOCTYPE html>"));
  EXPECT_THAT(WriteReport(*result_, "/nonexistent-dir/r.md"),
              coupond::testing::StatusIs(absl::StatusCode::kUnavailable, HasSubstr("/nonexistent-dir/r.md")));
}

TEST_F(ReportTest, SummaryLinesOnePerEvaluation) {
  const std::string s = SummaryLines(*result_);
  EXPECT_EQ(Count(s, "\n"), static_cast<int>(result_->evaluations.size()));
  EXPECT_THAT(s, HasSubstr("truth:"));
}

}  // namespace
}  // namespace coupond::pipeline
