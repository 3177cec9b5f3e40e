#ifndef COUPOND_PIPELINE_REPORT_H_
#define COUPOND_PIPELINE_REPORT_H_

// The human-readable report of a pipeline run: one self-contained Markdown file with inline
// SVG plots (drawn here by hand; no dependency, no external file), readable in any Markdown
// viewer that renders HTML blocks, or in a browser when saved as .html (see RenderReport).
//
// Contents: a summary line per model (test AUC, log loss, ECE: the trained model, each
// baseline, and the truth when known), the data and its cleaning (ingest/quarantine counts
// or the adapter's), the splits, the user segments, the hyperparameter grid with the chosen
// point, the LMF against the feature-logistic baseline on validation and test with the one
// published and why, the training curve (validation AUC and train/validation log loss by epoch), the
// reliability diagram (model and best baseline against the diagonal) and the reliability
// table, and the published version.

#include <string>

#include "absl/status/status.h"
#include "pipeline/train_job.h"

namespace coupond::pipeline {

enum class ReportFormat { kMarkdown, kHtml };

// The report as text. kHtml wraps the same content in a minimal HTML page (tables as
// <table>), for viewers that do not render HTML inside Markdown.
std::string RenderReport(const PipelineResult& result,
                         ReportFormat format = ReportFormat::kMarkdown);

// The one-line summaries of the report ("model: AUC 0.8312, log loss 0.02031, ECE ..."),
// one per evaluation, for CLIs.
std::string SummaryLines(const PipelineResult& result);

// The LMF beside the feature-logistic baseline on the validation and test periods, and which
// of the two the run published and why (PipelineResult::publish_reason), for CLIs; "" when
// the run has no feature-logistic baseline.
std::string ModelVsBaselineLines(const PipelineResult& result);

// SVG plots (exposed for tests): the reliability diagram of evaluations[0] and of the best
// baseline (highest AUC) against the diagonal; the training curve.
std::string CalibrationSvg(const PipelineResult& result);
std::string TrainingCurveSvg(const PipelineResult& result);

// Writes RenderReport to `path`; the format follows the extension (".html"/".htm": HTML,
// else Markdown). Unavailable when the file cannot be written.
absl::Status WriteReport(const PipelineResult& result, const std::string& path);

}  // namespace coupond::pipeline

#endif  // COUPOND_PIPELINE_REPORT_H_
