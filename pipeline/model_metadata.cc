#include "pipeline/model_metadata.h"

#include <cctype>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace coupond::pipeline {
namespace {

std::string MetadataNumber(double v) { return absl::StrFormat("%.6g", v); }

}  // namespace

void AddPipelineMetadata(const PipelineOptions& o, const PipelineResult& r,
                         core::ModelData* m) {
  auto& md = m->metadata;
  md["data.source"] = r.source;
  md["data.xxh3"] = absl::StrFormat("%016x", r.data_checksum);
  md["data.examples"] = absl::StrCat(r.examples);
  md["data.positives"] = absl::StrCat(r.positives);
  md["split.test_cutoff_day"] = absl::StrCat(r.test_cutoff_day);
  md["split.validation_cutoff_day"] = absl::StrCat(r.validation_cutoff_day);
  md["split.train_examples"] = absl::StrCat(r.train_examples);
  md["split.test_examples"] = absl::StrCat(r.test_examples);
  const learn::LmfTrainerOptions& t = r.chosen_options;
  md["train.dimension"] = absl::StrCat(t.dimension);
  md["train.learning_rate"] = MetadataNumber(t.learning_rate);
  md["train.l2_factors"] = MetadataNumber(t.l2_id_factors);
  md["train.l2_biases"] = MetadataNumber(t.l2_biases);
  md["train.epochs"] = absl::StrCat(r.final_epochs);
  md["train.seed"] = absl::StrCat(o.seed);
  md["train.shards"] = absl::StrCat(t.shards);
  md["train.selection"] =
      o.selection == SelectionMethod::kTimeValidation ? "time_validation" : "pair_folds";
  md["train.refit_on_training_period"] = o.refit_on_training_period ? "true" : "false";
  md["train.grid_points"] = absl::StrCat(r.grid.size());
  md["features.neighbour_coupons"] = absl::StrCat(r.neighbour_coupons);
  md["features.neighbour_cold_matched"] =
      absl::StrCat(r.neighbour_cold_matched, "/", r.neighbour_cold_coupons);
  if (r.excluded_users > 0) md["data.excluded_users"] = absl::StrCat(r.excluded_users);
  // The baseline's coupon biases come from its own attribute weights, not from step 6b.
  if (r.cold_coupons.has_value() && r.published_model == PublishedModel::kLmf) {
    md["cold_start.predicted_coupons"] = absl::StrCat(r.cold_coupons->fit.predicted_coupons);
    md["cold_start.l2"] = MetadataNumber(o.cold_coupons.l2);
  }
  if (!r.grid.empty()) {
    md["select.validation_log_loss"] = MetadataNumber(r.grid[r.chosen].validation_log_loss);
    md["select.validation_auc"] = MetadataNumber(r.grid[r.chosen].validation_auc);
  }
  md["publish.model"] =
      r.published_model == PublishedModel::kFeatureLogistic ? "feature_logistic" : "lmf";
  md["publish.reason"] = r.publish_reason;
  if (r.feature_logistic.has_value()) {
    const FeatureLogisticSummary& fl = *r.feature_logistic;
    md["feature_logistic.l2"] = MetadataNumber(fl.l2);
    md["feature_logistic.validation_log_loss"] =
        MetadataNumber(fl.selection.grid[fl.selection.chosen].validation_log_loss);
    md["feature_logistic.validation_auc"] =
        MetadataNumber(fl.selection.grid[fl.selection.chosen].validation_auc);
  }
  if (!r.evaluations.empty()) {
    // eval.* are the figures of the model published (the LMF's are evaluations[0]).
    const Evaluation& e = r.published_model == PublishedModel::kFeatureLogistic &&
                                  r.feature_logistic->evaluation < r.evaluations.size()
                              ? r.evaluations[r.feature_logistic->evaluation]
                              : r.evaluations[0];
    md["eval.auc"] = MetadataNumber(e.auc);
    md["eval.log_loss"] = MetadataNumber(e.log_loss);
    md["eval.ece"] = MetadataNumber(e.calibration.expected_calibration_error);
    for (size_t k = 1; k < r.evaluations.size(); ++k) {
      std::string key;
      for (char c : r.evaluations[k].name) {
        if (std::isalnum(static_cast<unsigned char>(c))) {
          key.push_back(c);
        } else if (!key.empty() && key.back() != '_') {
          key.push_back('_');
        }
      }
      while (!key.empty() && key.back() == '_') key.pop_back();
      md[absl::StrCat("eval.", key, ".auc")] = MetadataNumber(r.evaluations[k].auc);
      md[absl::StrCat("eval.", key, ".log_loss")] = MetadataNumber(r.evaluations[k].log_loss);
    }
  }
}

}  // namespace coupond::pipeline
