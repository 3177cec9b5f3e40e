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
#include "core/scorer.h"
#include "learn/cross_validation.h"
#include "pipeline/factor_files.h"
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

std::string Fmt(double v) { return absl::StrFormat("%.6g", v); }

struct Splits {
  TimeSplit test;        // train = the training period
  TimeSplit validation;  // over test.train: train = fit period, test = validation period
};

absl::StatusOr<Splits> MakeSplits(const learn::TrainingData& data, const PipelineOptions& o,
                                  PipelineResult* r) {
  Splits s;
  COUPOND_ASSIGN_OR_RETURN(s.test, SplitByCampaignStart(data, o.test_fraction));
  COUPOND_ASSIGN_OR_RETURN(s.validation,
                           SplitByCampaignStart(data, o.validation_fraction, s.test.train));
  r->train_examples = static_cast<int64_t>(s.test.train.size());
  r->train_positives = CountPositives(data, s.test.train);
  r->test_examples = static_cast<int64_t>(s.test.test.size());
  r->test_positives = CountPositives(data, s.test.test);
  r->fit_examples = static_cast<int64_t>(s.validation.train.size());
  r->validation_examples = static_cast<int64_t>(s.validation.test.size());
  r->validation_positives = CountPositives(data, s.validation.test);
  r->test_cutoff_day = s.test.cutoff_day;
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
  if (r->test_positives == 0 || r->test_positives == r->test_examples) {
    return absl::InvalidArgumentError(absl::StrCat(
        "test period (campaigns from day ", r->test_cutoff_day, "): a single class (",
        r->test_positives, " positives of ", r->test_examples, "); metrics are undefined"));
  }
  if (r->validation_positives == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "validation period (campaigns from day ", r->validation_cutoff_day,
        "): no positive example; early stopping and selection need some"));
  }
  return s;
}

}  // namespace

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

void ReplaceListsByNeighbours(learn::TrainingData* data, absl::Span<const uint32_t> train,
                              absl::Span<const std::string> prefixes, PipelineResult* r) {
  if (prefixes.empty()) return;
  const learn::SparseFeatures& in = data->coupon_features;
  const size_t nc = data->coupon_ids.size();
  std::vector<char> is_list(in.num_features(), 0);
  bool any = false;
  for (size_t f = 0; f < in.num_features(); ++f) {
    for (const std::string& p : prefixes) {
      if (in.names[f].compare(0, p.size(), p) == 0) {
        is_list[f] = 1;
        any = true;
      }
    }
  }
  if (!any) return;
  std::vector<char> seen(nc, 0);
  for (uint32_t i : train) seen[data->examples[i].coupon] = 1;
  // Inverted index: list value -> seen coupons carrying it.
  std::vector<std::vector<uint32_t>> carriers(in.num_features());
  std::vector<uint32_t> list_size(nc, 0);
  for (uint32_t c = 0; c < nc; ++c) {
    for (uint32_t f : in.row(c)) {
      if (!is_list[f]) continue;
      ++list_size[c];
      if (seen[c]) carriers[f].push_back(c);
    }
  }
  learn::SparseFeatures out;
  out.names = in.names;
  std::vector<int64_t> like(nc, -1);  // feature index of "like=<id>", created on demand
  auto like_feature = [&](uint32_t c) {
    if (like[c] < 0) {
      like[c] = static_cast<int64_t>(out.names.size());
      out.names.push_back(absl::StrCat("like=", data->coupon_ids[c]));
    }
    return static_cast<uint32_t>(like[c]);
  };
  std::vector<uint32_t> shared(nc, 0);
  std::vector<uint32_t> touched;
  std::vector<uint32_t> row;
  for (uint32_t c = 0; c < nc; ++c) {
    row.clear();
    for (uint32_t f : in.row(c)) {
      if (!is_list[f]) row.push_back(f);
    }
    if (list_size[c] > 0) {
      ++r->neighbour_coupons;
      int64_t best = -1;
      if (seen[c]) {
        best = c;
      } else {
        ++r->neighbour_cold_coupons;
        touched.clear();
        for (uint32_t f : in.row(c)) {
          if (!is_list[f]) continue;
          for (uint32_t o : carriers[f]) {
            if (shared[o]++ == 0) touched.push_back(o);
          }
        }
        double best_j = 0;
        std::sort(touched.begin(), touched.end());  // ties: the lowest index
        for (uint32_t o : touched) {
          const double j = static_cast<double>(shared[o]) /
                           static_cast<double>(list_size[c] + list_size[o] - shared[o]);
          if (j > best_j) {
            best_j = j;
            best = o;
          }
          shared[o] = 0;
        }
        if (best >= 0) ++r->neighbour_cold_matched;
      }
      if (best >= 0) row.push_back(like_feature(static_cast<uint32_t>(best)));
    }
    std::sort(row.begin(), row.end());
    out.AddRow(row);
  }
  data->coupon_features = std::move(out);
}

std::optional<float> CalibratedPriorBias(
    const core::ModelData& model, absl::Span<const float> prior_factors,
    absl::Span<const std::pair<uint32_t, uint32_t>> exposures, double target_rate) {
  if (exposures.empty() || !(target_rate > 0.0 && target_rate < 1.0)) return std::nullopt;
  const size_t d = model.dimension;
  // The prior's logit offsets without b_s.
  std::vector<double> offsets;
  offsets.reserve(exposures.size());
  for (const auto& exposure : exposures) {
    const uint32_t c = exposure.second;
    const float* y = &model.coupon_factors[size_t{c} * d];
    double dot = 0;
    for (size_t x = 0; x < d; ++x) dot += double{prior_factors[x]} * double{y[x]};
    offsets.push_back(model.global_bias + double{model.coupon_bias[c]} + dot);
  }
  // The prior's mean probability increases strictly with b_s: bisect. |b_s| <= 60 covers
  // every rate a double can tell from 0 or 1 here.
  double lo = -60, hi = 60;
  while (hi - lo > 1e-9) {
    const double mid = 0.5 * (lo + hi);
    double mean = 0;
    for (double o : offsets) mean += core::Sigmoid(mid + o);
    (mean / static_cast<double>(offsets.size()) < target_rate ? lo : hi) = mid;
  }
  return static_cast<float>(0.5 * (lo + hi));
}

namespace {

// Steps 6: evaluations of the baselines (and truth) on the test period, appended to r.
absl::Status EvaluateReferences(const learn::TrainingData& data, const Splits& s,
                                const PipelineOptions& o, PipelineResult* r) {
  COUPOND_ASSIGN_OR_RETURN(Baselines baselines, FitBaselines(data, s.test.train, o.baselines));
  for (BaselineKind kind : kAllBaselines) {
    std::vector<float> p = baselines.Predict(kind, data, s.test.test);
    COUPOND_ASSIGN_OR_RETURN(Evaluation e, Evaluate(BaselineName(kind), p, data, s.test.test,
                                                    o.calibration_bins));
    r->evaluations.push_back(std::move(e));
  }
  if (!o.truth_factors.empty()) {
    COUPOND_ASSIGN_OR_RETURN(core::ModelData truth, ReadFactorFiles(o.truth_factors));
    if (o.user_keyer != nullptr) COUPOND_RETURN_IF_ERROR(core::PseudonymiseUsers(*o.user_keyer, &truth));
    std::vector<float> p = PredictWithModel(truth, data, s.test.test);
    COUPOND_ASSIGN_OR_RETURN(Evaluation e,
                             Evaluate("truth", p, data, s.test.test, o.calibration_bins));
    r->evaluations.push_back(std::move(e));
  }
  return absl::OkStatus();
}

// Puts `seg` (computed over the users of `data`) into `m`, materialised over the same users
// in the same order: the centroids with the encoding of their space, each user's segment,
// and per segment the prior cold start uses: the mean factors of its members, and a bias
// calibrated so that the prior's mean probability over the members' training exposures is
// their (shrunk) redemption rate there (CalibratedPriorBias; the mean bias when the
// segment has no training exposures or the period no positive).
absl::Status AttachSegments(const Segmentation& seg, const learn::TrainingData& data,
                            absl::Span<const uint32_t> train, core::ModelData* m) {
  const size_t n = m->user_ids.size();
  if (seg.user_segment.size() != n || data.user_ids.size() != n ||
      !std::equal(data.user_ids.begin(), data.user_ids.end(), m->user_ids.begin())) {
    return absl::InternalError(absl::StrCat("segments cover ", seg.user_segment.size(),
                                            " users, the model ", n,
                                            " (expected the data's users, in order)"));
  }
  const size_t k = static_cast<size_t>(seg.clusters.k);
  const size_t features = seg.column_names.size();
  const size_t d = m->dimension;
  if (seg.clusters.centroids.size() != k * features || seg.segments.size() != k ||
      seg.attribute_feature.size() + seg.num_numeric() != features) {
    return absl::InternalError("segmentation: centroids, stats and columns disagree");
  }
  if (features > seg.num_numeric() &&
      !(std::isfinite(seg.attribute_weight) && seg.attribute_weight != 0.0f)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "segments.attribute_weight: ", seg.attribute_weight,
        " cannot be published (the stored encoding divides by it); use a non-zero weight"));
  }
  // Numeric columns are standardised ((raw - mean) / scale); one-hot columns hold
  // attribute_weight for 1, which is (1 - 0) / (1 / attribute_weight).
  m->segment_features.clear();
  for (size_t j = 0; j < features; ++j) {
    core::SegmentFeature f;
    f.name = seg.column_names[j];
    if (j < seg.num_numeric()) {
      f.offset = seg.mean[j];
      f.scale = seg.scale[j];
    } else {
      f.offset = 0.0f;
      f.scale = 1.0f / seg.attribute_weight;
    }
    m->segment_features.push_back(std::move(f));
  }
  // Prior vectors: means over the members, in double. A segment without members (k-means
  // refills empty clusters, so only defensively) gets zeros: the global bias alone.
  std::vector<double> bias_sum(k, 0.0), factor_sum(k * d, 0.0);
  std::vector<uint64_t> members(k, 0);
  m->user_segment.assign(n, -1);
  for (size_t u = 0; u < n; ++u) {
    const uint32_t c = seg.user_segment[u];
    if (c >= k) continue;  // none (KMeans assigns every point; kept defensive)
    m->user_segment[u] = static_cast<int32_t>(c);
    ++members[c];
    bias_sum[c] += m->user_bias[u];
    for (size_t x = 0; x < d; ++x) factor_sum[c * d + x] += m->user_factors[u * d + x];
  }
  m->segments.clear();
  for (size_t c = 0; c < k; ++c) {
    core::SegmentData s;
    s.name = absl::StrCat("segment-", c);
    s.centroid.assign(seg.clusters.centroids.begin() + static_cast<ptrdiff_t>(c * features),
                      seg.clusters.centroids.begin() + static_cast<ptrdiff_t>((c + 1) * features));
    const double count = static_cast<double>(std::max<uint64_t>(members[c], 1));
    s.prior_bias = static_cast<float>(bias_sum[c] / count);
    s.prior_factors.resize(d);
    for (size_t x = 0; x < d; ++x) {
      s.prior_factors[x] = static_cast<float>(factor_sum[c * d + x] / count);
    }
    s.redemption_rate = seg.segments[c].redemption_rate;
    s.members = members[c];
    m->segments.push_back(std::move(s));
  }
  // Calibrate each prior's bias to its members' redemption rate in the training period,
  // over their training exposures (every one up to kCalibrationExposures per segment, else
  // an even stride through them). The rate is shrunk toward the overall training rate by
  // kPriorExposures pseudo-exposures, so a segment with few exposures does not get an
  // extreme prior.
  constexpr size_t kCalibrationExposures = 50000;
  constexpr double kPriorExposures = 1000;
  std::vector<size_t> exposures_of(k, 0);
  std::vector<double> positives_of(k, 0.0);
  double positives = 0, exposures = 0;
  for (uint32_t i : train) {
    const learn::Example& e = data.examples[i];
    positives += e.label;
    ++exposures;
    if (e.user >= n || e.coupon >= m->num_coupons() || m->user_segment[e.user] < 0) continue;
    ++exposures_of[m->user_segment[e.user]];
    positives_of[m->user_segment[e.user]] += e.label;
  }
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> sample(k);
  std::vector<size_t> seen(k, 0);
  for (uint32_t i : train) {
    const learn::Example& e = data.examples[i];
    if (e.user >= n || e.coupon >= m->num_coupons() || m->user_segment[e.user] < 0) continue;
    const size_t c = static_cast<size_t>(m->user_segment[e.user]);
    const size_t stride = (exposures_of[c] + kCalibrationExposures - 1) / kCalibrationExposures;
    if (seen[c]++ % stride == 0) sample[c].emplace_back(e.user, e.coupon);
  }
  const double overall = exposures > 0 ? positives / exposures : 0.0;
  for (size_t c = 0; c < k; ++c) {
    const double rate = (positives_of[c] + kPriorExposures * overall) /
                        (static_cast<double>(exposures_of[c]) + kPriorExposures);
    const std::optional<float> calibrated =
        CalibratedPriorBias(*m, m->segments[c].prior_factors, sample[c], rate);
    if (calibrated.has_value()) m->segments[c].prior_bias = *calibrated;
  }
  m->metadata["segments.k"] = absl::StrCat(k);
  return core::ValidateModelData(*m);
}

void AddMetadata(const PipelineOptions& o, const PipelineResult& r, core::ModelData* m) {
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
  md["train.learning_rate"] = Fmt(t.learning_rate);
  md["train.l2_factors"] = Fmt(t.l2_id_factors);
  md["train.l2_biases"] = Fmt(t.l2_biases);
  md["train.epochs"] = absl::StrCat(r.final_epochs);
  md["train.seed"] = absl::StrCat(o.seed);
  md["train.selection"] =
      o.selection == SelectionMethod::kTimeValidation ? "time_validation" : "pair_folds";
  md["train.refit_on_training_period"] = o.refit_on_training_period ? "true" : "false";
  md["train.grid_points"] = absl::StrCat(r.grid.size());
  md["features.neighbour_coupons"] = absl::StrCat(r.neighbour_coupons);
  md["features.neighbour_cold_matched"] =
      absl::StrCat(r.neighbour_cold_matched, "/", r.neighbour_cold_coupons);
  if (r.excluded_users > 0) md["data.excluded_users"] = absl::StrCat(r.excluded_users);
  if (r.cold_coupons.has_value()) {
    md["cold_start.predicted_coupons"] = absl::StrCat(r.cold_coupons->fit.predicted_coupons);
    md["cold_start.l2"] = Fmt(o.cold_coupons.l2);
  }
  if (!r.grid.empty()) {
    md["select.validation_log_loss"] = Fmt(r.grid[r.chosen].validation_log_loss);
    md["select.validation_auc"] = Fmt(r.grid[r.chosen].validation_auc);
  }
  if (!r.evaluations.empty()) {
    const Evaluation& e = r.evaluations[0];
    md["eval.auc"] = Fmt(e.auc);
    md["eval.log_loss"] = Fmt(e.log_loss);
    md["eval.ece"] = Fmt(e.calibration.expected_calibration_error);
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
      md[absl::StrCat("eval.", key, ".auc")] = Fmt(r.evaluations[k].auc);
      md[absl::StrCat("eval.", key, ".log_loss")] = Fmt(r.evaluations[k].log_loss);
    }
  }
}

}  // namespace

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

std::vector<float> PredictWithModel(const core::ModelData& model, const learn::TrainingData& data,
                                    absl::Span<const uint32_t> examples) {
  absl::flat_hash_map<std::string, uint32_t> user_row, coupon_row;
  for (uint32_t u = 0; u < model.user_ids.size(); ++u) user_row[model.user_ids[u]] = u;
  for (uint32_t c = 0; c < model.coupon_ids.size(); ++c) coupon_row[model.coupon_ids[c]] = c;
  // Data index -> model row (or -1), once per entity.
  std::vector<int64_t> um(data.user_ids.size(), -1), cm(data.coupon_ids.size(), -1);
  for (size_t u = 0; u < data.user_ids.size(); ++u) {
    auto it = user_row.find(data.user_ids[u]);
    if (it != user_row.end()) um[u] = it->second;
  }
  for (size_t c = 0; c < data.coupon_ids.size(); ++c) {
    auto it = coupon_row.find(data.coupon_ids[c]);
    if (it != coupon_row.end()) cm[c] = it->second;
  }
  const size_t d = model.dimension;
  std::vector<float> p;
  p.reserve(examples.size());
  for (uint32_t i : examples) {
    const learn::Example& e = data.examples[i];
    double z = model.global_bias;
    const int64_t u = um[e.user];
    const int64_t c = cm[e.coupon];
    if (u >= 0) z += model.user_bias[u];
    if (c >= 0) z += model.coupon_bias[c];
    if (u >= 0 && c >= 0) {
      for (size_t k = 0; k < d; ++k) {
        z += double{model.user_factors[u * d + k]} * double{model.coupon_factors[c * d + k]};
      }
    }
    p.push_back(static_cast<float>(1.0 / (1.0 + std::exp(-z))));
  }
  return p;
}

absl::StatusOr<Evaluation> Evaluate(const std::string& name, absl::Span<const float> predictions,
                                    const learn::TrainingData& data,
                                    absl::Span<const uint32_t> examples, int calibration_bins) {
  std::vector<float> labels;
  labels.reserve(examples.size());
  for (uint32_t i : examples) labels.push_back(data.examples[i].label);
  Evaluation e;
  e.name = name;
  COUPOND_ASSIGN_OR_RETURN(e.auc, learn::RocAuc(predictions, labels));
  COUPOND_ASSIGN_OR_RETURN(e.log_loss, learn::LogLoss(predictions, labels));
  COUPOND_ASSIGN_OR_RETURN(e.calibration,
                           learn::Calibration(predictions, labels, calibration_bins));
  std::vector<uint32_t> order(predictions.size());
  for (uint32_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return predictions[a] < predictions[b]; });
  const size_t n = order.size();
  const size_t bins = std::min<size_t>(static_cast<size_t>(calibration_bins), n);
  for (size_t b = 0; b < bins; ++b) {
    const size_t lo = b * n / bins, hi = (b + 1) * n / bins;
    learn::CalibrationBin bin;
    bin.lower = predictions[order[lo]];
    bin.upper = predictions[order[hi - 1]];
    bin.count = hi - lo;
    double sp = 0, sy = 0;
    for (size_t k = lo; k < hi; ++k) {
      sp += predictions[order[k]];
      sy += labels[order[k]];
    }
    bin.mean_predicted = sp / static_cast<double>(bin.count);
    bin.observed_rate = sy / static_cast<double>(bin.count);
    e.quantile_bins.push_back(bin);
  }
  return e;
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
  if (data.examples.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(r.source, ": no examples after cleaning"));
  }

  // 2. split
  COUPOND_ASSIGN_OR_RETURN(Splits s, MakeSplits(data, o, &r));
  // Selection sees the fit period as its "training period": its neighbours come from the
  // fit period only, as the final model's come from the whole training period.
  learn::TrainingData select_data;
  {
    PipelineResult ignored;
    select_data = data;
    ReplaceListsByNeighbours(&select_data, s.validation.train, o.neighbour_list_prefixes,
                             &ignored);
  }
  ReplaceListsByNeighbours(&data, s.test.train, o.neighbour_list_prefixes, &r);
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
    COUPOND_ASSIGN_OR_RETURN(Segmentation seg, SegmentUsers(data, s.test.train, so));
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

  // 5. train
  start = absl::Now();
  learn::LmfModel model;
  const bool refit = o.refit_on_training_period || o.selection == SelectionMethod::kPairFolds;
  // Without the refit the final model is the fit-period one, with fit-period neighbours.
  const learn::TrainingData& final_data = refit ? data : select_data;
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
    Say(progress,
        absl::StrFormat("coupon cold start: %d coupons predicted from their attributes (ridge "
                        "over %d columns of %d trained coupons; fit RMSE %.4f, targets' RMS "
                        "%.4f); %d unseen coupons without attributes; test AUC on their %d "
                        "examples %.4f (trainer's vectors: %.4f)",
                        cold.fit.predicted_coupons, cold.fit.columns, cold.fit.warm_coupons,
                        cold.fit.fit_rmse, cold.fit.target_rms, cold.fit.cold_without_columns,
                        cold.test_examples, cold.test_auc_predicted, cold.test_auc_trainer));
    r.cold_coupons = cold;
  }
  Say(progress, "evaluating on the test period");
  {
    const std::vector<float> p = PredictWithModel(r.model, final_data, s.test.test);
    COUPOND_ASSIGN_OR_RETURN(Evaluation e,
                             Evaluate("model", p, data, s.test.test, o.calibration_bins));
    r.evaluations.push_back(std::move(e));
  }
  COUPOND_RETURN_IF_ERROR(EvaluateReferences(data, s, o, &r));
  r.evaluate_seconds = SecondsSince(start);

  // 7. publish
  start = absl::Now();
  r.model.description =
      o.description.empty()
          ? absl::StrFormat("LMF d=%d trained on %s (%d examples, test AUC %.4f)",
                            r.chosen_options.dimension, r.source, r.train_examples,
                            r.evaluations[0].auc)
          : o.description;
  AddMetadata(o, r, &r.model);
  if (segmentation.has_value()) {
    COUPOND_RETURN_IF_ERROR(AttachSegments(*segmentation, data, s.test.train, &r.model));
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
  COUPOND_ASSIGN_OR_RETURN(Splits s, MakeSplits(data, o, &r));
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
  COUPOND_RETURN_IF_ERROR(EvaluateReferences(data, s, o, &r));
  return r;
}

}  // namespace coupond::pipeline
