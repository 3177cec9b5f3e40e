#ifndef COUPOND_PIPELINE_TRAIN_JOB_H_
#define COUPOND_PIPELINE_TRAIN_JOB_H_

// The nightly offline job: behaviour logs -> a trained, evaluated, published model.
//
//   1. load      canonical CSV logs (pipeline/ingest.h, with quarantine and report) or the
//                dunnhumby adapter (pipeline/dunnhumby.h);
//   2. split     by time: the latest campaigns (test_fraction of the examples, or those
//                starting on or after test_cutoff_day) are the TEST period; the latest
//                campaigns of the rest (validation_fraction of it) are the VALIDATION
//                period; the rest is the FIT period (SplitByCampaignStart, twice). The test
//                period is read only in step 6, once, after every choice.
//                Nothing observed on or after a cutoff reaches what is fitted before it:
//                everything fitted for publication (steps 3, 5, 6's baselines, 6b, 7's
//                priors) sees the training period AS KNOWN AT THE TEST CUTOFF: a positive
//                whose first redemption (Example::label_day) is on or after the cutoff is a
//                negative there (CensorLabelsAt), an exposure of a training campaign dated
//                on or after it is left out, and coupon features that come from campaigns
//                (dunnhumby's campaign_type and product lists; LoadedData::
//                coupon_features_as_of) come from earlier campaigns only. Selection (step
//                4, the feature-logistic L2, step 7's choice) sees the fit period as known at
//                the VALIDATION cutoff and the validation period as known at the test
//                cutoff. PipelineResult::censored_* and late_* count what was hidden;
//   2b. neighbours  coupons described by long attribute lists (dunnhumby's product lists,
//                a "products" column of coupons.csv) get one compact feature instead:
//                "like=<id>" of the coupon SEEN IN THE TRAINING PERIOD whose list overlaps
//                theirs most (Jaccard; a seen coupon is its own neighbour), and the long
//                lists are dropped. Why: the trainer sums a coupon's feature embeddings, so
//                ~90 product rows per coupon swamp everything else, while a coupon never
//                offered before (79% of dunnhumby's test examples) still resembles, through
//                its products, one that was. Chosen on the VALIDATION period (dunnhumby's
//                campaigns 13-17, fitted on the campaigns before them, same grid: best
//                validation log loss 0.01899 with like=, 0.02355 with the lists;
//                docs/pipeline.md, "Which choice was made on which period"). Off:
//                neighbour_list_prefixes empty (couponctl --like_neighbours=false).
//                Uses coupon metadata and training-period exposures only
//                (pipeline/neighbour_features.h);
//   3. profile   user profiles and k-means segments from the training period (fit +
//                validation) only, as of the test cutoff day: only users with training
//                examples are standardised and clustered; the others are placed in their
//                nearest segment as a new user would be;
//   4. select    every point of the hyperparameter grid is trained on the fit period with
//                early stopping on the validation period; the point with the lowest
//                validation log loss wins (log loss, as the trainer's early stopping:
//                the assignment solver consumes the probabilities, so calibration counts;
//                points within selection_tie_tolerance of it are tied, and the tie goes to
//                the highest validation AUC).
//                Alternatively (SelectionMethod::kPairFolds) learn::CrossValidateLmf over
//                the training period, folds by (user, coupon) pair.
//   4b. prior    the segment priors' bias rule (calibrated or mean; pipeline/
//                segment_priors.h): the chosen point's fit-period model gets segments
//                fitted on the fit period as of the validation cutoff, each validation
//                example is scored with its user's segment prior, as a new user would be,
//                and the rule with the lower log loss is published (ChoosePriorBias);
//   5. train     the chosen point is retrained on the WHOLE training period (fit +
//                validation) for the number of epochs early stopping chose in step 4
//                (refit_on_training_period, default), because the latest campaigns before
//                the test period are the most informative ones; else the step-4 model is
//                kept as is;
//   6. evaluate  the model materialised over every user and coupon of the data, after
//                6b, scored by id as the server scores it (pipeline/evaluation.h), the baselines
//                (pipeline/baselines.h, fitted on the training period) and, when given, the
//                TRUE probabilities (simulated data) on the test period: AUC, log loss, ECE
//                and a reliability table. Among the baselines, the feature-logistic one
//                (pipeline/feature_logistic.h: one-hot user and coupon attributes, L2 chosen
//                on the validation period, refitted as the LMF is);
//   6b. coupon cold start  coupons without a training example that carry attributes get a
//                bias and factors predicted from them by a ridge regression fitted on the
//                trained coupons (pipeline/coupon_cold_start.h), marked in
//                ModelData::coupon_predicted_from_attributes (predict_cold_coupons);
//   7. publish   the model over every user and coupon of the data, with provenance and
//                metrics in ModelData::metadata and the step-3 segments (centroids, their
//                encoding, each user's segment, and per segment the prior cold start uses:
//                the mean factors of its members and a calibrated bias;
//                pipeline/segment_priors.h), into the model store when store_path is set.
//                The model published is the LMF, or the feature-logistic baseline (an LMF
//                with biases only) when its VALIDATION log loss is lower than the chosen grid
//                point's (publish_better_on_validation); PipelineResult::published_model and
//                publish_reason say which and why. The test period plays no part in it.
// Users named in PipelineOptions::exclude_users are removed right after step 1, with their
// examples: no step sees them and the published model does not know them (a hold-out of
// whole users, e.g. to evaluate user cold start on them).
// Every choice (hyperparameters, epochs, the feature-logistic L2, LMF or baseline) is made
// on the validation period; segments, baselines and priors are fitted on the training
// period as known at the test cutoff. Deterministic: equal inputs and options give the same
// model, report figures and published bytes on every run and for every `threads` (the
// trainer's fixed shards, learn/lmf_trainer.h; k-means and every other step are
// single-threaded and seeded).
//
// Thread-compatible; the trainer uses `threads` threads (0 = all cores).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/model.h"
#include "core/snapshot.h"
#include "core/user_key.h"
#include "learn/lmf_trainer.h"
#include "learn/training_data.h"
#include "pipeline/baselines.h"
#include "pipeline/coupon_cold_start.h"
#include "pipeline/dunnhumby.h"
#include "pipeline/evaluation.h"
#include "pipeline/feature_logistic.h"
#include "pipeline/ingest.h"
#include "pipeline/profiles.h"
#include "pipeline/segment_priors.h"

namespace coupond::pipeline {

enum class PipelineSource { kLogs, kDunnhumby };

enum class SelectionMethod {
  kTimeValidation,  // fit period -> validation period (default)
  kPairFolds,       // learn::CrossValidateLmf over the training period
};

// The grid searched in step 4. Every combination is trained once. Each list non-empty.
// Defaults: small dimensions and strong L2, which suit sparse, rare-event logs (a
// redemption rate well under 1%); widen it for dense data.
struct HyperparameterGrid {
  std::vector<uint32_t> dimensions = {1, 4};
  std::vector<float> l2_factors = {1e-3f, 1e-2f};  // sets l2_id_factors and l2_feature_factors
  std::vector<float> learning_rates = {1e-3f, 3e-3f};
};

struct PipelineOptions {
  PipelineSource source = PipelineSource::kLogs;
  LogPaths logs;                 // kLogs
  IngestOptions ingest;          // kLogs
  std::string dunnhumby_dir;     // kDunnhumby
  DunnhumbyOptions dunnhumby;    // kDunnhumby

  // Share of examples in the test period (latest campaigns), in (0, 1). Default 0.2.
  double test_fraction = 0.2;
  // When set, the test period is locked to the campaigns starting on or after this day
  // (test_fraction is then not used): adding or removing later rows does not move it, and it
  // may be empty (the model is then trained and published without test figures).
  // Default nullopt: by test_fraction.
  std::optional<int32_t> test_cutoff_day;
  // Share of the training period held out as the validation period, in (0, 1). Default 0.2.
  double validation_fraction = 0.2;

  // Step 2b: coupon features whose names start with one of these prefixes are the lists
  // compared; empty = step 2b off. Default {"product=", "products="} (dunnhumby's and the
  // canonical logs' multi-value column). Coupons without such features are left as they are.
  std::vector<std::string> neighbour_list_prefixes = {"product=", "products="};

  HyperparameterGrid grid;
  SelectionMethod selection = SelectionMethod::kTimeValidation;
  int cv_folds = 3;              // kPairFolds only. Default 3.
  // Grid points whose validation log loss is within this RELATIVE margin of the lowest are
  // tied (differences that small are noise at a few hundred validation positives); among
  // tied points the highest validation AUC wins. >= 0. Default 0.005.
  double selection_tie_tolerance = 0.005;
  // Every trainer option the grid does not set (epochs, patience, l2_biases, side
  // features...). Its seed and threads are overridden by `seed` and `threads` below.
  // Defaults: the trainer's, except epochs 40 and l2_biases 1e-3 (see the grid's note).
  learn::LmfTrainerOptions trainer = DefaultTrainerOptions();
  bool refit_on_training_period = true;  // step 5. Default true.

  // Ids of users removed from the data after loading, with every example of theirs (see
  // the file comment). Ids the data does not have are ignored. Default: none.
  std::vector<std::string> exclude_users;

  bool segment_users = true;     // step 3. Default true.
  SegmentOptions segments;       // its profile.as_of_day is set to the test cutoff
  // Step 4b: how the segment priors' bias is set (pipeline/segment_priors.h). Default
  // nullopt: chosen on the validation period (ChoosePriorBias; kCalibrated with kPairFolds
  // selection, which has no validation period). Set, the choice is skipped.
  std::optional<PriorBias> prior_bias;
  BaselineOptions baselines;
  // The feature-logistic baseline (pipeline/feature_logistic.h), fitted in every run; its
  // L2 grid is searched on the validation period.
  FeatureLogisticOptions feature_logistic;
  // Step 7: publish the feature-logistic baseline instead of the LMF when its validation log
  // loss is lower than the chosen grid point's (kTimeValidation only: with kPairFolds the
  // two figures are not on the same examples, and the LMF is published). Default true.
  bool publish_better_on_validation = true;
  // Step 6b. Default true. Off: an unseen coupon keeps the trainer's vector, the sum of its
  // features' embeddings (and is not marked as predicted).
  bool predict_cold_coupons = true;
  CouponColdStartOptions cold_coupons;
  int calibration_bins = 10;     // reliability table bins. Default 10.

  // Factor files (pipeline/factor_files.h) of the TRUE model the logs were simulated from;
  // when set, the truth is evaluated beside the model. Default "": none.
  std::string truth_factors;
  // Model store to publish into; "" = do not publish. Default "".
  std::string store_path;
  std::string description;       // ModelData::description; "" = generated.

  // When set, every user id of the loaded data is replaced by its key (core/user_key.h)
  // before anything else, so the published model holds no raw id. Default null: raw ids.
  std::shared_ptr<const core::UserKeyer> user_keyer;

  uint64_t seed = 42;            // trainer, k-means. Default 42.
  int threads = 0;               // trainer threads; 0 = all cores. Does not change results.

  static learn::LmfTrainerOptions DefaultTrainerOptions() {
    learn::LmfTrainerOptions o;
    o.epochs = 40;
    o.l2_biases = 1e-3f;
    return o;
  }
};

// One grid point's selection run.
struct GridPointRun {
  uint32_t dimension = 0;
  float l2_factors = 0.0f;
  float learning_rate = 0.0f;
  double validation_log_loss = 0.0;  // at best_epoch (kPairFolds: mean held-out)
  double validation_auc = 0.0;
  int best_epoch = 0;
  std::vector<learn::LmfEpochStats> history;  // kTimeValidation only
};

struct SegmentSummary {
  int k = 0;
  std::vector<SegmentStats> segments;
  std::vector<std::string> column_names;
};

// Step 6b and what it changed on the test period.
struct ColdCouponSummary {
  CouponColdStartReport fit;
  // Test examples whose coupon got predicted vectors, and their positives.
  int64_t test_examples = 0, test_positives = 0;
  // AUC on those examples with the predicted vectors, and with the trainer's own vectors
  // (the sum of the coupon's feature embeddings); NaN when they have one class.
  double test_auc_predicted = 0.0, test_auc_trainer = 0.0;
  // AUC of the whole test period with the trainer's vectors (evaluations[0] is with the
  // predicted ones: the model as served).
  double model_auc_trainer = 0.0;
};

// The name of the feature-logistic baseline's Evaluation.
inline constexpr char kFeatureLogisticName[] = "feature logistic (one-hot attributes)";

// The feature-logistic baseline of a run: its L2 search on the validation period (fitted on
// the fit period, as the LMF's grid) and the final fit (on the data the final LMF was
// trained on, with the chosen L2).
struct FeatureLogisticSummary {
  FeatureLogisticSelection selection;
  double l2 = 0.0;
  int active_features = 0;
  int newton_iterations = 0;  // of the final fit
  size_t evaluation = 0;      // its test figures: PipelineResult::evaluations[evaluation]
};

enum class PublishedModel { kLmf, kFeatureLogistic };

struct PipelineResult {
  std::string source;             // "logs <dir>" / "dunnhumby <dir>"
  std::string load_summary;       // IngestReport::ToString() or the adapter's counts
  std::optional<IngestReport> ingest;  // kLogs only
  uint64_t data_checksum = 0;
  int64_t users = 0, coupons = 0, campaigns = 0, examples = 0, positives = 0;

  // Splits (example counts and positives).
  int64_t train_examples = 0, train_positives = 0;
  int64_t fit_examples = 0, validation_examples = 0, validation_positives = 0;
  int64_t test_examples = 0, test_positives = 0;
  int32_t test_cutoff_day = 0, validation_cutoff_day = 0;
  // What the cutoffs hid (nothing from after a cutoff reaches what is fitted before it):
  // training-period positives redeemed on or after the test cutoff (negatives for every
  // fit: profiles, segments, baselines, priors, the LMF), fit-period positives redeemed on
  // or after the validation cutoff (negatives for selection), and training-campaign
  // exposures dated on or after the test (validation) cutoff, left out of training
  // (of selection's fit).
  int64_t censored_train_positives = 0, censored_fit_positives = 0;
  int64_t late_train_exposures = 0, late_fit_exposures = 0;
  // PipelineOptions::test_fraction and validation_fraction: the shares asked for. Periods
  // are whole campaigns, so the real shares differ (pipeline/periods.h).
  double requested_test_fraction = 0, requested_validation_fraction = 0;
  std::vector<std::string> test_campaigns, validation_campaigns;
  // Test examples whose coupon (user) has no example in the training period.
  int64_t test_examples_unseen_coupon = 0, test_examples_unseen_user = 0;

  // Step 2b: coupons whose lists were replaced; of those never seen in the training
  // period, how many found a neighbour sharing at least one list value.
  int64_t neighbour_coupons = 0, neighbour_cold_coupons = 0, neighbour_cold_matched = 0;

  std::optional<SegmentSummary> segments;
  // Step 4b: the segment priors' bias rule published, and the validation figures it was
  // chosen on (prior_bias_choice: unset when the rule was given or there was no validation
  // period to choose on).
  PriorBias prior_bias = PriorBias::kCalibrated;
  std::optional<PriorBiasChoice> prior_bias_choice;
  // Users of options.exclude_users found (and removed) in the data.
  int64_t excluded_users = 0;
  // Step 6b, when it ran.
  std::optional<ColdCouponSummary> cold_coupons;

  std::vector<GridPointRun> grid;
  size_t chosen = 0;                    // into grid
  // How the grid point was chosen (PipelineOptions::selection) and, for k-fold, k.
  SelectionMethod selection = SelectionMethod::kTimeValidation;
  int cv_folds = 0;
  learn::LmfTrainerOptions chosen_options;
  int final_epochs = 0;
  // The chosen point's selection run, per epoch: train loss, validation loss and AUC.
  std::vector<learn::LmfEpochStats> training_curve;

  // evaluations[0] is the model (the LMF, or the stored version); then the baselines in
  // kAllBaselines order; then the feature-logistic baseline; then "truth" when
  // options.truth_factors was set.
  std::vector<Evaluation> evaluations;
  std::optional<FeatureLogisticSummary> feature_logistic;

  // Which model `model` is (and was published, with a store): the LMF, or the feature-
  // logistic baseline when it had the lower validation log loss; and why, in words.
  PublishedModel published_model = PublishedModel::kLmf;
  std::string publish_reason;

  core::ModelData model;                 // materialised, with metadata (published_model)
  std::optional<core::ModelVersionInfo> published;

  double load_seconds = 0, select_seconds = 0, train_seconds = 0, evaluate_seconds = 0,
         publish_seconds = 0;
};

// Progress for long runs: `message` for each stage, `epoch` after every training epoch
// (selection runs and the final run). Either may be null. Called on the calling thread.
struct PipelineProgress {
  std::function<void(const std::string&)> message;
  std::function<void(const std::string& run, const learn::LmfEpochStats&)> epoch;
};

// Runs steps 1-7. Errors: those of the loaders, of the split (e.g. too few campaigns for
// a test and a validation period), of the trainer, and of the store; InvalidArgument for
// bad options (naming the field) or a test period of one class.
absl::StatusOr<PipelineResult> RunPipeline(const PipelineOptions& options,
                                           const PipelineProgress& progress = {});

// Step 7's choice, from `result`'s grid, chosen point and feature_logistic (set by
// RunPipeline): sets result->published_model and result->publish_reason. The feature-
// logistic baseline is chosen when its validation log loss is strictly lower than the chosen
// grid point's (ties keep the LMF): both were fitted on the fit period and scored on the same
// validation examples, so no test figure is read. The LMF is kept with kPairFolds selection
// (its figure is a cross-validation mean, not comparable), when publish_better_on_validation
// is off, or without a feature-logistic summary.
void ChoosePublishedModel(const PipelineOptions& options, PipelineResult* result);

// The data of a pipeline run (step 1 only), for `couponctl ingest` and evaluation.
struct LoadedData {
  learn::TrainingData data;
  std::string source;
  std::string load_summary;
  std::optional<IngestReport> ingest;
  uint64_t checksum = 0;
  // Coupon features as known on a day (a row per coupon of `data`), for sources whose
  // features come from campaigns (dunnhumby: DunnhumbyCouponFeatures). Null when they are
  // static coupon metadata (coupons.csv).
  std::function<learn::SparseFeatures(int32_t before_day)> coupon_features_as_of;
};
absl::StatusOr<LoadedData> LoadPipelineData(const PipelineOptions& options);

// Removes the users whose ids are in `ids` from `data`: their rows (ids, features) and
// every example of theirs; the other users keep their order, examples are re-indexed.
// Returns how many users were removed (ids not in the data are ignored).
int64_t RemoveUsers(learn::TrainingData* data, absl::Span<const std::string> ids);

// Evaluates a published model (e.g. one imported with `couponctl publish --factors`) on the
// test period of `options`' data, beside the baselines: steps 1, 2 and 6 only. The result
// holds the splits and evaluations; grid, training curve and model stay empty.
absl::StatusOr<PipelineResult> EvaluateStoredModel(const PipelineOptions& options,
                                                   const std::string& store_path,
                                                   uint64_t version,
                                                   const PipelineProgress& progress = {});

}  // namespace coupond::pipeline

#endif  // COUPOND_PIPELINE_TRAIN_JOB_H_
