#include "pipeline/train_job.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "learn/cross_validation.h"
#include "pipeline/factor_files.h"
#include "pipeline/neighbour_features.h"
#include "pipeline/model_metadata.h"
#include "pipeline/segment_priors.h"
#include "storage/model_store.h"

namespace coupond::pipeline {
namespace {

double SecondsSince(absl::Time start) { return absl::ToDoubleSeconds(absl::Now() - start); }

void Say(const PipelineProgress& progress, const std::string& message) {
  if (progress.message) progress.message(message);
}

int64_t CountPositives(const learn::TrainingData& data, absl::Span<const uint32_t> idx) {
  int64_t n = 0;
  for (uint32_t i : idx) n += data.examples[i].label == 1.0f ? 1 : 0;
  return n;
}

std::vector<std::string> CampaignNames(const learn::TrainingData& data,
                                       absl::Span<const uint32_t> campaigns) {
  std::vector<std::string> names;
  names.reserve(campaigns.size());
  for (uint32_t c : campaigns) names.push_back(data.campaign_ids[c]);
  return names;
}

absl::Status ValidateOptions(const PipelineOptions& o) {
  if (!(o.test_fraction > 0 && o.test_fraction < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("test_fraction: ", o.test_fraction, " must be in (0, 1)"));
  }
  if (!(o.validation_fraction > 0 && o.validation_fraction < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("validation_fraction: ", o.validation_fraction, " must be in (0, 1)"));
  }
  if (o.grid.dimensions.empty() || o.grid.l2_factors.empty() || o.grid.learning_rates.empty()) {
    return absl::InvalidArgumentError("grid: every list must be non-empty");
  }
  if (!(o.selection_tie_tolerance >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "selection_tie_tolerance: ", o.selection_tie_tolerance, " must be >= 0"));
  }
  if (o.calibration_bins < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("calibration_bins: ", o.calibration_bins, " must be >= 1"));
  }
  if (o.predict_cold_coupons && !(std::isfinite(o.cold_coupons.l2) && o.cold_coupons.l2 > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cold_coupons.l2: ", o.cold_coupons.l2, " must be finite and > 0"));
  }
  // Checked here too, so that a bad grid fails before the LMF trains rather than after.
  if (o.feature_logistic.l2_grid.empty()) {
    return absl::InvalidArgumentError("feature_logistic.l2_grid: must be non-empty");
  }
  for (size_t k = 0; k < o.feature_logistic.l2_grid.size(); ++k) {
    const double l2 = o.feature_logistic.l2_grid[k];
    if (!(std::isfinite(l2) && l2 > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("feature_logistic.l2_grid[", k, "]: ", l2, " must be finite and > 0"));
    }
  }
  if (o.threads < 0) {
    return absl::InvalidArgumentError(absl::StrCat("threads: ", o.threads, " must be >= 0"));
  }
  if (o.source == PipelineSource::kDunnhumby && o.dunnhumby_dir.empty()) {
    return absl::InvalidArgumentError("dunnhumby_dir: required for the dunnhumby source");
  }
  if (o.source == PipelineSource::kLogs && o.logs.exposures.empty()) {
    return absl::InvalidArgumentError("logs.exposures: required for the logs source");
  }
  return absl::OkStatus();
}

learn::LmfTrainerOptions TrainerFor(const PipelineOptions& o, uint32_t dimension, float l2,
                                   float learning_rate) {
  learn::LmfTrainerOptions t = o.trainer;
  t.dimension = dimension;
  t.l2_id_factors = l2;
  t.l2_feature_factors = l2;
  t.learning_rate = learning_rate;
  t.seed = o.seed;
  t.threads = o.threads;
  return t;
}

// FailedPrecondition when the loaded data holds no example or no positive (after
// exclude_users too); for logs, with the quarantine counts by reason (CheckTrainable).
absl::Status CheckSomethingToTrainOn(const PipelineResult& r) {
  if (r.ingest.has_value()) COUPOND_RETURN_IF_ERROR(CheckTrainable(*r.ingest));
  if (r.examples == 0 || r.positives == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(r.source, ": ", r.positives, " positives among ", r.examples,
                     " examples", r.excluded_users > 0 ? " (after exclude_users)" : "",
                     "; nothing to train on"));
  }
  return absl::OkStatus();
}

// The progress line of step 6b. Its AUC is only printed when it is defined: without
// coupon attributes (no coupons.csv) no coupon is predicted and there is nothing to score.
std::string ColdCouponLine(const ColdCouponSummary& cold) {
  std::string line = absl::StrFormat(
      "coupon cold start: %d coupons predicted from their attributes (ridge over %d columns of "
      "%d trained coupons; fit RMSE %.4f, targets' RMS %.4f); %d unseen coupons without "
      "attributes; ",
      cold.fit.predicted_coupons, cold.fit.columns, cold.fit.warm_coupons, cold.fit.fit_rmse,
      cold.fit.target_rms, cold.fit.cold_without_columns);
  if (cold.test_examples == 0) {
    absl::StrAppend(&line, "no test example has a predicted coupon");
  } else if (std::isnan(cold.test_auc_predicted)) {
    absl::StrAppendFormat(&line,
                          "their %d test examples are of one class (%d positives): no AUC",
                          cold.test_examples, cold.test_positives);
  } else {
    absl::StrAppendFormat(&line, "test AUC on their %d examples %.4f (trainer's vectors: %.4f)",
                          cold.test_examples, cold.test_auc_predicted, cold.test_auc_trainer);
  }
  return line;
}

// Removes from `examples` those dated on or after `day`; returns how many.
int64_t DropFromDay(const learn::TrainingData& data, int32_t day, std::vector<uint32_t>* examples) {
  const size_t before = examples->size();
  examples->erase(std::remove_if(examples->begin(), examples->end(),
                                 [&](uint32_t i) { return data.examples[i].day >= day; }),
                  examples->end());
  return static_cast<int64_t>(before - examples->size());
}

struct Splits {
  TimeSplit test;        // train = the training period
  TimeSplit validation;  // over test.train: train = fit period, test = validation period
};

absl::StatusOr<Splits> MakeSplits(const learn::TrainingData& data, const PipelineOptions& o,
                                  PipelineResult* r) {
  Splits s;
  if (o.test_cutoff_day.has_value()) {
    COUPOND_ASSIGN_OR_RETURN(s.test, SplitAtDay(data, *o.test_cutoff_day));
  } else {
    COUPOND_ASSIGN_OR_RETURN(s.test, SplitByCampaignStart(data, o.test_fraction));
  }
  // An exposure of a training campaign dated on or after the cutoff was not seen before it
  // (canonical logs date exposures; dunnhumby dates them at their campaign's start).
  r->late_train_exposures = DropFromDay(data, s.test.cutoff_day, &s.test.train);
  if (s.test.train.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "training period (campaigns before day ", s.test.cutoff_day,
        "): no exposure dated before the cutoff"));
  }
  COUPOND_ASSIGN_OR_RETURN(s.validation,
                           SplitByCampaignStart(data, o.validation_fraction, s.test.train));
  r->late_fit_exposures = DropFromDay(data, s.validation.cutoff_day, &s.validation.train);
  r->train_examples = static_cast<int64_t>(s.test.train.size());
  r->train_positives = CountPositives(data, s.test.train);
  r->test_examples = static_cast<int64_t>(s.test.test.size());
  r->test_positives = CountPositives(data, s.test.test);
  r->fit_examples = static_cast<int64_t>(s.validation.train.size());
  r->validation_examples = static_cast<int64_t>(s.validation.test.size());
  r->validation_positives = CountPositives(data, s.validation.test);
  r->test_cutoff_day = s.test.cutoff_day;
  r->requested_test_fraction = o.test_fraction;
  r->requested_validation_fraction = o.validation_fraction;
  r->validation_cutoff_day = s.validation.cutoff_day;
  r->test_campaigns = CampaignNames(data, s.test.test_campaigns);
  r->validation_campaigns = CampaignNames(data, s.validation.test_campaigns);
  std::vector<char> seen_user(data.user_ids.size(), 0), seen_coupon(data.coupon_ids.size(), 0);
  for (uint32_t i : s.test.train) {
    seen_user[data.examples[i].user] = 1;
    seen_coupon[data.examples[i].coupon] = 1;
  }
  for (uint32_t i : s.test.test) {
    r->test_examples_unseen_user += seen_user[data.examples[i].user] ? 0 : 1;
    r->test_examples_unseen_coupon += seen_coupon[data.examples[i].coupon] ? 0 : 1;
  }
  // With logs, what cleaning removed is often why a period lacks positives (a redemption
  // window too short for the logs quarantines them as outside_window).
  const std::string quarantined =
      r->ingest.has_value() && !QuarantineByReason(*r->ingest).empty()
          ? absl::StrCat(" (quarantined rows: ", QuarantineByReason(*r->ingest), ")")
          : std::string();
  const bool empty_locked_test = o.test_cutoff_day.has_value() && r->test_examples == 0;
  if (!empty_locked_test && (r->test_positives == 0 || r->test_positives == r->test_examples)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "test period (campaigns from day ", r->test_cutoff_day, "): a single class (",
        r->test_positives, " positives of ", r->test_examples, "); metrics are undefined",
        quarantined));
  }
  if (r->validation_positives == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "validation period (campaigns from day ", r->validation_cutoff_day,
        "): no positive example; early stopping and selection need some", quarantined));
  }
  return s;
}

// The data as known at each cutoff: nothing observed on or after a cutoff reaches what is
// fitted before it. `data` itself keeps every label; only the test evaluation reads it.
struct Views {
  // As of the test cutoff: training-period labels censored at it (CensorLabelsAt), coupon
  // features as of it, step 2b's neighbours from the training period. Everything fitted for
  // publication (profiles, segments and priors, baselines, the final LMF, cold start) reads
  // this.
  learn::TrainingData train;
  // As of the validation cutoff for selection: the fit period's labels censored at it (the
  // validation period's at the test cutoff), coupon features as of it, neighbours from the
  // fit period. Grid points and the feature-logistic L2 are fitted and compared on this.
  learn::TrainingData select;
};

Views MakeViews(const learn::TrainingData& data, const LoadedData& loaded, const Splits& s,
                const PipelineOptions& o, PipelineResult* r) {
  Views v;
  v.train = data;
  r->censored_train_positives = CensorLabelsAt(s.test.cutoff_day, s.test.train, &v.train);
  if (loaded.coupon_features_as_of) {
    v.train.coupon_features = loaded.coupon_features_as_of(s.test.cutoff_day);
  }
  v.select = v.train;
  r->censored_fit_positives =
      CensorLabelsAt(s.validation.cutoff_day, s.validation.train, &v.select);
  if (loaded.coupon_features_as_of) {
    v.select.coupon_features = loaded.coupon_features_as_of(s.validation.cutoff_day);
  }
  PipelineResult ignored;
  ReplaceListsByNeighbours(&v.select, s.validation.train, o.neighbour_list_prefixes, &ignored);
  ReplaceListsByNeighbours(&v.train, s.test.train, o.neighbour_list_prefixes, r);
  return v;
}

// Steps 6: evaluations of the baselines (and truth) on the test period, appended to r.
// The feature-logistic baseline chooses its L2 on select_data (fit -> validation period) and
// is refitted on final_data's `final_train` examples, as the LMF is; returned for step 7.
// The baselines are fitted on train_data's training period; `data` only gives the test
// labels. Without test examples (a locked, empty test period) nothing is evaluated.
absl::StatusOr<FeatureLogisticModel> EvaluateReferences(
    const learn::TrainingData& data, const learn::TrainingData& train_data,
    const learn::TrainingData& select_data, const learn::TrainingData& final_data,
    absl::Span<const uint32_t> final_train, const Splits& s, const PipelineOptions& o,
    const PipelineProgress& progress, PipelineResult* r) {
  const bool have_test = !s.test.test.empty();
  COUPOND_ASSIGN_OR_RETURN(Baselines baselines,
                           FitBaselines(train_data, s.test.train, o.baselines));
  for (BaselineKind kind : kAllBaselines) {
    if (!have_test) break;
    std::vector<float> p = baselines.Predict(kind, data, s.test.test);
    COUPOND_ASSIGN_OR_RETURN(Evaluation e, Evaluate(BaselineName(kind), p, data, s.test.test,
                                                    o.calibration_bins));
    r->evaluations.push_back(std::move(e));
  }
  FeatureLogisticSummary fl;
  COUPOND_ASSIGN_OR_RETURN(fl.selection,
                           SelectFeatureLogisticL2(select_data, s.validation.train,
                                                   s.validation.test, o.feature_logistic));
  for (const FeatureLogisticGridPoint& g : fl.selection.grid) {
    Say(progress, absl::StrFormat("feature logistic l2=%g: validation log loss %.5f, AUC %.4f "
                                  "(%d Newton iterations)",
                                  g.l2, g.validation_log_loss, g.validation_auc,
                                  g.newton_iterations));
  }
  fl.l2 = fl.selection.grid[fl.selection.chosen].l2;
  COUPOND_ASSIGN_OR_RETURN(FeatureLogisticModel model,
                           FitFeatureLogistic(final_data, final_train, fl.l2, o.feature_logistic));
  fl.active_features = model.active_features;
  fl.newton_iterations = model.newton_iterations;
  if (have_test) {
    const std::vector<float> p = model.Predict(final_data, s.test.test);
    COUPOND_ASSIGN_OR_RETURN(Evaluation e, Evaluate(kFeatureLogisticName, p, data, s.test.test,
                                                    o.calibration_bins));
    fl.evaluation = r->evaluations.size();
    r->evaluations.push_back(std::move(e));
  }
  r->feature_logistic = std::move(fl);
  if (have_test && !o.truth_factors.empty()) {
    COUPOND_ASSIGN_OR_RETURN(core::ModelData truth, ReadFactorFiles(o.truth_factors));
    if (o.user_keyer != nullptr) COUPOND_RETURN_IF_ERROR(core::PseudonymiseUsers(*o.user_keyer, &truth));
    std::vector<float> p = PredictWithModel(truth, data, s.test.test);
    COUPOND_ASSIGN_OR_RETURN(Evaluation e,
                             Evaluate("truth", p, data, s.test.test, o.calibration_bins));
    r->evaluations.push_back(std::move(e));
  }
  return model;
}

}  // namespace

void ChoosePublishedModel(const PipelineOptions& o, PipelineResult* r) {
  r->published_model = PublishedModel::kLmf;
  if (!r->feature_logistic.has_value() || r->grid.empty()) {
    r->publish_reason = "the LMF (no feature-logistic baseline to compare)";
    return;
  }
  const FeatureLogisticGridPoint& fl =
      r->feature_logistic->selection.grid[r->feature_logistic->selection.chosen];
  const GridPointRun& lmf = r->grid[r->chosen];
  const std::string figures = absl::StrFormat(
      "validation log loss: LMF %.5f, feature logistic %.5f", lmf.validation_log_loss,
      fl.validation_log_loss);
  if (r->selection != SelectionMethod::kTimeValidation) {
    r->publish_reason = absl::StrCat(
        "the LMF: with k-fold selection its validation figure is a cross-validation mean, not "
        "comparable with the baseline's on the validation period");
  } else if (!o.publish_better_on_validation) {
    r->publish_reason =
        absl::StrCat("the LMF: publish_better_on_validation is off (", figures, ")");
  } else if (fl.validation_log_loss < lmf.validation_log_loss) {
    r->published_model = PublishedModel::kFeatureLogistic;
    r->publish_reason =
        absl::StrCat("the feature-logistic baseline: lower validation log loss (", figures, ")");
  } else {
    r->publish_reason = absl::StrCat("the LMF: its validation log loss is not above the "
                                     "feature-logistic baseline's (", figures, ")");
  }
}

int64_t RemoveUsers(learn::TrainingData* data, absl::Span<const std::string> ids) {
  if (ids.empty()) return 0;
  absl::flat_hash_map<absl::string_view, char> drop;
  for (const std::string& id : ids) drop.emplace(id, 1);
  const size_t n = data->user_ids.size();
  std::vector<int64_t> new_index(n, -1);
  std::vector<std::string> kept_ids;
  learn::SparseFeatures kept_features;
  kept_features.names = data->user_features.names;
  const bool has_features = data->user_features.rows() == n;
  int64_t removed = 0;
  for (size_t u = 0; u < n; ++u) {
    if (drop.contains(data->user_ids[u])) {
      ++removed;
      continue;
    }
    new_index[u] = static_cast<int64_t>(kept_ids.size());
    kept_ids.push_back(std::move(data->user_ids[u]));
    if (has_features) kept_features.AddRow(data->user_features.row(u));
  }
  if (removed == 0) return 0;
  std::vector<learn::Example> kept_examples;
  kept_examples.reserve(data->examples.size());
  for (const learn::Example& e : data->examples) {
    if (new_index[e.user] < 0) continue;
    learn::Example k = e;
    k.user = static_cast<uint32_t>(new_index[e.user]);
    kept_examples.push_back(k);
  }
  data->user_ids = std::move(kept_ids);
  if (has_features) data->user_features = std::move(kept_features);
  data->examples = std::move(kept_examples);
  return removed;
}

absl::StatusOr<LoadedData> LoadPipelineData(const PipelineOptions& o) {
  COUPOND_RETURN_IF_ERROR(ValidateOptions(o));
  LoadedData out;
  if (o.source == PipelineSource::kDunnhumby) {
    COUPOND_ASSIGN_OR_RETURN(DunnhumbyData d, LoadDunnhumby(o.dunnhumby_dir, o.dunnhumby));
    const DunnhumbyStats& s = d.stats;
    out.source = absl::StrCat("dunnhumby ", o.dunnhumby_dir);
    int64_t positives = 0;
    for (const learn::Example& e : d.data.examples) positives += e.label == 1.0f ? 1 : 0;
    out.load_summary = absl::StrFormat(
        "dunnhumby %s: %d candidates (household, campaign, coupon), %d positives\n"
        "  %d exposures (%d duplicate); %d redemption rows (%d repeat, %d unmatched, %d outside "
        "their campaign's days)\n"
        "  %d households with demographics (%d exposed); input xxh3 %016x",
        o.dunnhumby_dir, d.data.examples.size(), positives, s.exposures, s.duplicate_exposures,
        s.redemption_rows, s.repeat_redemptions, s.unmatched_redemptions,
        s.redemptions_outside_campaign, s.households_with_demographics,
        s.exposed_households_with_demographics, s.input_checksum);
    out.checksum = s.input_checksum;
    // Coupon features come from the campaigns that carried each coupon: a cutoff keeps
    // only those of earlier campaigns (DunnhumbyCouponFeatures).
    auto meta = std::make_shared<DunnhumbyData>();
    meta->data.coupon_ids = d.data.coupon_ids;
    meta->coupon_rows = std::move(d.coupon_rows);
    meta->campaign_start_day = std::move(d.campaign_start_day);
    meta->campaign_type = std::move(d.campaign_type);
    out.coupon_features_as_of = [meta, options = o.dunnhumby](int32_t before_day) {
      return DunnhumbyCouponFeatures(*meta, before_day, options);
    };
    out.data = std::move(d.data);
  } else {
    COUPOND_ASSIGN_OR_RETURN(IngestResult ingested, IngestLogs(o.logs, o.ingest));
    out.source = absl::StrCat("logs ", o.logs.exposures);
    out.load_summary = ingested.report.ToString();
    out.checksum = ingested.report.input_checksum;
    out.ingest = std::move(ingested.report);
    out.data = std::move(ingested.data);
  }
  if (o.user_keyer != nullptr) {
    COUPOND_RETURN_IF_ERROR(learn::PseudonymiseUsers(*o.user_keyer, &out.data));
  }
  return out;
}


absl::StatusOr<PipelineResult> RunPipeline(const PipelineOptions& o,
                                           const PipelineProgress& progress) {
  COUPOND_RETURN_IF_ERROR(ValidateOptions(o));
  PipelineResult r;
  // 1. load
  absl::Time start = absl::Now();
  Say(progress, "loading data");
  COUPOND_ASSIGN_OR_RETURN(LoadedData loaded, LoadPipelineData(o));
  learn::TrainingData& data = loaded.data;
  r.source = loaded.source;
  r.load_summary = loaded.load_summary;
  r.ingest = loaded.ingest;
  r.data_checksum = loaded.checksum;
  r.excluded_users = RemoveUsers(&data, o.exclude_users);
  if (r.excluded_users > 0) {
    Say(progress, absl::StrCat("excluded ", r.excluded_users, " users and their examples"));
  }
  r.users = static_cast<int64_t>(data.user_ids.size());
  r.coupons = static_cast<int64_t>(data.coupon_ids.size());
  r.campaigns = static_cast<int64_t>(data.campaign_ids.size());
  r.examples = static_cast<int64_t>(data.examples.size());
  for (const learn::Example& e : data.examples) r.positives += e.label == 1.0f ? 1 : 0;
  COUPOND_RETURN_IF_ERROR(CheckSomethingToTrainOn(r));

  // 2. split, and the data as known at each cutoff (Views): selection sees the fit period
  // as its "training period" (labels, coupon features and neighbours as of the validation
  // cutoff), the final fits the training period as of the test cutoff.
  COUPOND_ASSIGN_OR_RETURN(Splits s, MakeSplits(data, o, &r));
  Views views = MakeViews(data, loaded, s, o, &r);
  const learn::TrainingData& train_data = views.train;
  const learn::TrainingData& select_data = views.select;
  const bool have_test = !s.test.test.empty();
  if (CountPositives(select_data, s.validation.test) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "validation period (campaigns from day ", r.validation_cutoff_day,
        "): no positive redeemed before the test cutoff (day ", r.test_cutoff_day, "; ",
        r.validation_positives, " redeemed on or after it, unseen at the cutoff); early "
        "stopping and selection need some"));
  }
  Say(progress, absl::StrFormat(
                    "cutoffs: %d training-period redemptions on or after day %d and %d fit-period "
                    "ones on or after day %d are unseen (negatives) where fitted before them; "
                    "%d (%d) training-campaign exposures dated after them left out",
                    r.censored_train_positives, r.test_cutoff_day, r.censored_fit_positives,
                    r.validation_cutoff_day, r.late_train_exposures, r.late_fit_exposures));
  if (r.neighbour_coupons > 0) {
    Say(progress, absl::StrFormat("neighbours: %d coupons' lists replaced; %d of %d coupons "
                                  "unseen in training matched a seen one",
                                  r.neighbour_coupons, r.neighbour_cold_matched,
                                  r.neighbour_cold_coupons));
  }
  r.load_seconds = SecondsSince(start);
  Say(progress, absl::StrFormat(
                    "split: training period %d examples (fit %d + validation %d from day %d), "
                    "test %d examples from day %d (%d positives)",
                    r.train_examples, r.fit_examples, r.validation_examples,
                    r.validation_cutoff_day, r.test_examples, r.test_cutoff_day, r.test_positives));

  // 3. profiles and segments (training period only)
  start = absl::Now();
  std::optional<Segmentation> segmentation;
  if (o.segment_users) {
    SegmentOptions so = o.segments;
    so.profile.as_of_day = s.test.cutoff_day;
    so.kmeans.seed = o.seed;
    COUPOND_ASSIGN_OR_RETURN(Segmentation seg, SegmentUsers(train_data, s.test.train, so));
    SegmentSummary summary;
    summary.k = seg.clusters.k;
    summary.segments = seg.segments;
    summary.column_names = seg.column_names;
    r.segments = std::move(summary);
    Say(progress, absl::StrCat("segments: k = ", seg.clusters.k, " over ", seg.user_segment.size(),
                               " users"));
    segmentation = std::move(seg);
  }

  // 4. select
  // The fit-period models of the grid, kept for step 4b's chosen one.
  std::vector<learn::LmfModel> grid_models;
  const bool choose_prior = segmentation.has_value() && !o.prior_bias.has_value() &&
                            o.selection == SelectionMethod::kTimeValidation;
  if (o.selection == SelectionMethod::kTimeValidation) {
    for (uint32_t dim : o.grid.dimensions) {
      for (float l2 : o.grid.l2_factors) {
        for (float lr : o.grid.learning_rates) {
          const learn::LmfTrainerOptions t = TrainerFor(o, dim, l2, lr);
          const std::string run =
              absl::StrFormat("select d=%d l2=%g lr=%g", dim, l2, lr);
          learn::LmfProgressCallback cb = nullptr;
          if (progress.epoch) {
            cb = [&](const learn::LmfEpochStats& st) { progress.epoch(run, st); };
          }
          COUPOND_ASSIGN_OR_RETURN(
              learn::LmfTrainResult tr,
              learn::TrainLmf(select_data, s.validation.train, s.validation.test, t, cb));
          GridPointRun g;
          g.dimension = dim;
          g.l2_factors = l2;
          g.learning_rate = lr;
          g.best_epoch = tr.best_epoch;
          const learn::LmfEpochStats& best = tr.history[tr.best_epoch - 1];
          g.validation_log_loss = best.validation_log_loss;
          g.validation_auc = best.validation_auc;
          g.history = std::move(tr.history);
          if (choose_prior) grid_models.push_back(std::move(tr.model));
          Say(progress, absl::StrFormat("%s: best epoch %d, validation log loss %.5f, AUC %.4f",
                                        run, g.best_epoch, g.validation_log_loss,
                                        g.validation_auc));
          r.grid.push_back(std::move(g));
        }
      }
    }
  } else {
    r.selection = SelectionMethod::kPairFolds;
    r.cv_folds = o.cv_folds;
    learn::CrossValidationOptions cv;
    cv.folds = o.cv_folds;
    cv.dimensions = o.grid.dimensions;
    cv.l2_factors = o.grid.l2_factors;
    cv.learning_rates = o.grid.learning_rates;
    cv.base = TrainerFor(o, o.grid.dimensions[0], o.grid.l2_factors[0], o.grid.learning_rates[0]);
    cv.seed = o.seed;
    COUPOND_ASSIGN_OR_RETURN(
        learn::CrossValidationResult res,
        learn::CrossValidateLmf(data, s.test.train, cv, [&](const learn::GridPointResult& g) {
          Say(progress, absl::StrFormat("cv d=%d l2=%g lr=%g: mean log loss %.5f, AUC %.4f",
                                        g.dimension, g.l2_factors, g.learning_rate,
                                        g.mean_log_loss, g.mean_auc));
        }));
    for (const learn::GridPointResult& g : res.grid) {
      GridPointRun run;
      run.dimension = g.dimension;
      run.l2_factors = g.l2_factors;
      run.learning_rate = g.learning_rate;
      run.validation_log_loss = g.mean_log_loss;
      run.validation_auc = g.mean_auc;
      int epochs = 0;
      for (const learn::FoldMetrics& f : g.folds) epochs += f.best_epoch;
      run.best_epoch = std::max(1, static_cast<int>(std::lround(
                                       static_cast<double>(epochs) /
                                       static_cast<double>(std::max<size_t>(1, g.folds.size())))));
      r.grid.push_back(std::move(run));
    }
  }
  size_t lowest = 0;
  for (size_t k = 1; k < r.grid.size(); ++k) {
    if (r.grid[k].validation_log_loss < r.grid[lowest].validation_log_loss) lowest = k;
  }
  r.chosen = lowest;
  const double tied_below =
      r.grid[lowest].validation_log_loss * (1.0 + o.selection_tie_tolerance);
  for (size_t k = 0; k < r.grid.size(); ++k) {
    if (r.grid[k].validation_log_loss <= tied_below &&
        r.grid[k].validation_auc > r.grid[r.chosen].validation_auc) {
      r.chosen = k;
    }
  }
  const GridPointRun& chosen = r.grid[r.chosen];
  r.training_curve = chosen.history;
  r.chosen_options =
      TrainerFor(o, chosen.dimension, chosen.l2_factors, chosen.learning_rate);
  r.select_seconds = SecondsSince(start);
  Say(progress, absl::StrFormat("chosen: d=%d l2=%g lr=%g (validation log loss %.5f), %d epochs",
                                chosen.dimension, chosen.l2_factors, chosen.learning_rate,
                                chosen.validation_log_loss, chosen.best_epoch));

  // 4b. the segment priors' bias rule, on the validation period
  r.prior_bias = o.prior_bias.value_or(PriorBias::kCalibrated);
  if (choose_prior) {
    SegmentOptions so = o.segments;
    so.profile.as_of_day = s.validation.cutoff_day;
    so.kmeans.seed = o.seed;
    COUPOND_ASSIGN_OR_RETURN(Segmentation fit_segments,
                             SegmentUsers(select_data, s.validation.train, so));
    COUPOND_ASSIGN_OR_RETURN(core::ModelData fit_model,
                             learn::MaterializeLmfModel(grid_models[r.chosen], select_data));
    COUPOND_ASSIGN_OR_RETURN(PriorBiasChoice choice,
                             ChoosePriorBias(fit_segments, select_data, s.validation.train,
                                             s.validation.test, fit_model));
    r.prior_bias = choice.rule;
    r.prior_bias_choice = choice;
    Say(progress, choice.examples == 0
                      ? std::string("segment priors: calibrated bias (no validation user could "
                                    "be placed by attributes alone)")
                      : absl::StrFormat("segment priors: %s bias (validation log loss as new "
                                        "users: calibrated %.5f, mean %.5f, %d examples)",
                                        PriorBiasName(choice.rule), choice.calibrated_log_loss,
                                        choice.mean_log_loss, choice.examples));
  }
  grid_models.clear();
  r.select_seconds = SecondsSince(start);  // selection and 4b

  // 5. train
  start = absl::Now();
  learn::LmfModel model;
  const bool refit = o.refit_on_training_period || o.selection == SelectionMethod::kPairFolds;
  // Without the refit the final model is the fit-period one, with fit-period neighbours.
  const learn::TrainingData& final_data = refit ? train_data : select_data;
  {
    learn::LmfTrainerOptions t = r.chosen_options;
    absl::Span<const uint32_t> train = s.validation.train;
    absl::Span<const uint32_t> validation = s.validation.test;
    if (refit) {
      t.epochs = chosen.best_epoch;
      train = s.test.train;
      validation = {};
    }
    learn::LmfProgressCallback cb = nullptr;
    if (progress.epoch) {
      cb = [&](const learn::LmfEpochStats& st) { progress.epoch("final", st); };
    }
    COUPOND_ASSIGN_OR_RETURN(learn::LmfTrainResult tr,
                             learn::TrainLmf(final_data, train, validation, t, cb));
    r.final_epochs = refit ? t.epochs : tr.best_epoch;
    model = std::move(tr.model);
  }
  r.train_seconds = SecondsSince(start);

  // 6. materialise, coupon cold start (6b), evaluate the model as it will be served
  start = absl::Now();
  COUPOND_ASSIGN_OR_RETURN(r.model, learn::MaterializeLmfModel(model, final_data));
  if (o.predict_cold_coupons) {
    const absl::Span<const uint32_t> trained_on = refit ? s.test.train : s.validation.train;
    // The served predictions with the trainer's own vectors for unseen coupons, to report
    // what the regression changed.
    const std::vector<float> before = PredictWithModel(r.model, final_data, s.test.test);
    ColdCouponSummary cold;
    COUPOND_ASSIGN_OR_RETURN(cold.fit,
                             PredictColdCoupons(final_data, trained_on, o.cold_coupons, &r.model));
    const std::vector<float> after = PredictWithModel(r.model, final_data, s.test.test);
    std::vector<float> sub_before, sub_after, sub_labels, labels;
    for (size_t k = 0; k < s.test.test.size(); ++k) {
      const learn::Example& e = data.examples[s.test.test[k]];
      labels.push_back(e.label);
      if (r.model.coupon_predicted_from_attributes[e.coupon] == 0) continue;
      sub_before.push_back(before[k]);
      sub_after.push_back(after[k]);
      sub_labels.push_back(e.label);
      cold.test_positives += e.label == 1.0f ? 1 : 0;
    }
    cold.test_examples = static_cast<int64_t>(sub_labels.size());
    auto auc_or_nan = [](absl::Span<const float> p, absl::Span<const float> y) {
      const absl::StatusOr<double> auc = learn::RocAuc(p, y);
      return auc.ok() ? *auc : std::numeric_limits<double>::quiet_NaN();
    };
    cold.test_auc_trainer = auc_or_nan(sub_before, sub_labels);
    cold.test_auc_predicted = auc_or_nan(sub_after, sub_labels);
    cold.model_auc_trainer = auc_or_nan(before, labels);
    Say(progress, ColdCouponLine(cold));
    r.cold_coupons = cold;
  }
  if (have_test) {
    Say(progress, "evaluating on the test period (read once, after every choice)");
    const std::vector<float> p = PredictWithModel(r.model, final_data, s.test.test);
    COUPOND_ASSIGN_OR_RETURN(Evaluation e,
                             Evaluate("model", p, data, s.test.test, o.calibration_bins));
    r.evaluations.push_back(std::move(e));
  }
  const absl::Span<const uint32_t> final_train = refit ? s.test.train : s.validation.train;
  COUPOND_ASSIGN_OR_RETURN(
      FeatureLogisticModel feature_logistic,
      EvaluateReferences(data, train_data, select_data, final_data, final_train, s, o,
                         progress, &r));
  r.evaluate_seconds = SecondsSince(start);

  // 7. publish (the LMF or the feature-logistic baseline, by validation log loss)
  start = absl::Now();
  ChoosePublishedModel(o, &r);
  Say(progress, absl::StrCat("publishing ", r.publish_reason));
  if (r.published_model == PublishedModel::kFeatureLogistic) {
    COUPOND_ASSIGN_OR_RETURN(r.model, FeatureLogisticAsModel(feature_logistic, final_data));
    r.model.description =
        o.description.empty()
            ? absl::StrFormat("feature-logistic baseline (l2 %g) trained on %s (%d examples, "
                              "%s; chosen over the LMF on validation log loss)",
                              r.feature_logistic->l2, r.source, r.train_examples,
                              have_test ? absl::StrFormat(
                                              "test AUC %.4f",
                                              r.evaluations[r.feature_logistic->evaluation].auc)
                                        : std::string("no test period"))
            : o.description;
  } else {
    r.model.description =
        o.description.empty()
            ? absl::StrFormat("LMF d=%d trained on %s (%d examples, %s)",
                              r.chosen_options.dimension, r.source, r.train_examples,
                              have_test ? absl::StrFormat("test AUC %.4f", r.evaluations[0].auc)
                                        : std::string("no test period"))
            : o.description;
  }
  AddPipelineMetadata(o, r, &r.model);
  if (segmentation.has_value()) {
    COUPOND_RETURN_IF_ERROR(
        AttachSegments(*segmentation, train_data, s.test.train, &r.model, r.prior_bias));
  }
  if (!o.store_path.empty()) {
    Say(progress, absl::StrCat("publishing into ", o.store_path));
    COUPOND_ASSIGN_OR_RETURN(std::unique_ptr<storage::ModelStore> store,
                             storage::ModelStore::OpenForWrite(o.store_path));
    COUPOND_ASSIGN_OR_RETURN(core::ModelVersionInfo info, store->Publish(r.model));
    r.published = std::move(info);
  }
  r.publish_seconds = SecondsSince(start);
  return r;
}

absl::StatusOr<PipelineResult> EvaluateStoredModel(const PipelineOptions& o,
                                                   const std::string& store_path,
                                                   uint64_t version,
                                                   const PipelineProgress& progress) {
  COUPOND_RETURN_IF_ERROR(ValidateOptions(o));
  PipelineResult r;
  Say(progress, "loading data");
  COUPOND_ASSIGN_OR_RETURN(LoadedData loaded, LoadPipelineData(o));
  const learn::TrainingData& data = loaded.data;
  r.source = loaded.source;
  r.load_summary = loaded.load_summary;
  r.ingest = loaded.ingest;
  r.data_checksum = loaded.checksum;
  r.examples = static_cast<int64_t>(data.examples.size());
  for (const learn::Example& e : data.examples) r.positives += e.label == 1.0f ? 1 : 0;
  COUPOND_RETURN_IF_ERROR(CheckSomethingToTrainOn(r));
  COUPOND_ASSIGN_OR_RETURN(Splits s, MakeSplits(data, o, &r));
  if (s.test.test.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "test_cutoff_day: ", r.test_cutoff_day, " leaves no test example to evaluate on"));
  }
  const Views views = MakeViews(data, loaded, s, o, &r);
  COUPOND_ASSIGN_OR_RETURN(std::unique_ptr<storage::ModelStore> store,
                           storage::ModelStore::OpenForRead(store_path));
  if (version == 0) {
    COUPOND_ASSIGN_OR_RETURN(core::ModelVersionInfo latest, store->LatestVersion());
    version = latest.version;
  }
  Say(progress, absl::StrCat("reading version ", version, " of ", store_path));
  COUPOND_ASSIGN_OR_RETURN(r.model, store->ReadVersion(version));
  std::vector<float> p = PredictWithModel(r.model, data, s.test.test);
  COUPOND_ASSIGN_OR_RETURN(
      Evaluation e, Evaluate(absl::StrCat("model v", version), p, data, s.test.test,
                             o.calibration_bins));
  r.evaluations.push_back(std::move(e));
  // The stored version is not replaced: the baselines are only evaluated, fitted as a
  // pipeline run fits them (on the data as known at the cutoffs).
  COUPOND_RETURN_IF_ERROR(EvaluateReferences(data, views.train, views.select, views.train,
                                             s.test.train, s, o, progress, &r)
                              .status());
  r.publish_reason = "nothing (evaluation of a stored version)";
  return r;
}

}  // namespace coupond::pipeline
