#include "pipeline/segment_priors.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/scorer.h"
#include "core/snapshot.h"
#include "core/user_resolution.h"

namespace coupond::pipeline {

const char* PriorBiasName(PriorBias rule) {
  return rule == PriorBias::kMean ? "mean" : "calibrated";
}

absl::Status AttachSegments(const Segmentation& seg, const learn::TrainingData& data,
                            absl::Span<const uint32_t> train, core::ModelData* m,
                            PriorBias rule) {
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
  // Prior vectors: means over the members with a training exposure, in double (a member
  // without one, e.g. first seen after the cutoff, has no trained vector to learn from). A
  // segment without such members falls back to all its members; without members (k-means
  // refills empty clusters, so only defensively) it gets zeros: the global bias alone.
  std::vector<char> trained(n, 0);
  for (uint32_t i : train) {
    if (i < data.examples.size() && data.examples[i].user < n) trained[data.examples[i].user] = 1;
  }
  std::vector<double> bias_sum(k, 0.0), factor_sum(k * d, 0.0);
  std::vector<double> all_bias_sum(k, 0.0), all_factor_sum(k * d, 0.0);
  std::vector<uint64_t> members(k, 0), trained_members(k, 0);
  m->user_segment.assign(n, -1);
  for (size_t u = 0; u < n; ++u) {
    const uint32_t c = seg.user_segment[u];
    if (c >= k) continue;  // none (KMeans assigns every point; kept defensive)
    m->user_segment[u] = static_cast<int32_t>(c);
    ++members[c];
    all_bias_sum[c] += m->user_bias[u];
    for (size_t x = 0; x < d; ++x) all_factor_sum[c * d + x] += m->user_factors[u * d + x];
    if (!trained[u]) continue;
    ++trained_members[c];
    bias_sum[c] += m->user_bias[u];
    for (size_t x = 0; x < d; ++x) factor_sum[c * d + x] += m->user_factors[u * d + x];
  }
  for (size_t c = 0; c < k; ++c) {
    if (trained_members[c] > 0) continue;
    trained_members[c] = members[c];
    bias_sum[c] = all_bias_sum[c];
    for (size_t x = 0; x < d; ++x) factor_sum[c * d + x] = all_factor_sum[c * d + x];
  }
  m->segments.clear();
  for (size_t c = 0; c < k; ++c) {
    core::SegmentData s;
    s.name = absl::StrCat("segment-", c);
    s.centroid.assign(seg.clusters.centroids.begin() + static_cast<ptrdiff_t>(c * features),
                      seg.clusters.centroids.begin() + static_cast<ptrdiff_t>((c + 1) * features));
    const double count = static_cast<double>(std::max<uint64_t>(trained_members[c], 1));
    s.prior_bias = static_cast<float>(bias_sum[c] / count);
    s.prior_factors.resize(d);
    for (size_t x = 0; x < d; ++x) {
      s.prior_factors[x] = static_cast<float>(factor_sum[c * d + x] / count);
    }
    s.redemption_rate = seg.segments[c].redemption_rate;
    s.members = members[c];
    m->segments.push_back(std::move(s));
  }
  m->metadata["segments.k"] = absl::StrCat(k);
  m->metadata["segments.prior_bias"] = PriorBiasName(rule);
  if (rule == PriorBias::kMean) return core::ValidateModelData(*m);
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
  return core::ValidateModelData(*m);
}

absl::StatusOr<std::vector<int32_t>> PlaceAsNewUsers(const core::ModelData& m,
                                                     const learn::TrainingData& data) {
  COUPOND_ASSIGN_OR_RETURN(std::shared_ptr<const core::ModelSnapshot> snapshot,
                           core::ModelSnapshot::Create(m, core::DescribeModel(m, 1)));
  std::vector<int32_t> placed(data.user_ids.size(), -1);
  std::vector<core::UserAttribute> attributes;
  for (size_t u = 0; u < data.user_ids.size(); ++u) {
    if (u + 1 >= data.user_features.offsets.size()) break;  // no feature rows (none kept)
    attributes.clear();
    for (uint32_t f : data.user_features.row(u)) {
      const absl::string_view feature = data.user_features.names[f];
      const size_t eq = feature.find('=');
      if (eq == absl::string_view::npos) continue;
      attributes.push_back({feature.substr(0, eq), feature.substr(eq + 1)});
    }
    placed[u] = core::NearestSegment(*snapshot, attributes);
  }
  return placed;
}

double PriorLogLoss(const core::ModelData& m, absl::Span<const int32_t> segment_of_user,
                    const learn::TrainingData& data, absl::Span<const uint32_t> examples,
                    int64_t* scored_out) {
  const size_t d = m.dimension;
  double loss = 0;
  int64_t scored = 0;
  for (uint32_t i : examples) {
    if (i >= data.examples.size()) continue;
    const learn::Example& e = data.examples[i];
    if (e.user >= segment_of_user.size() || e.coupon >= m.num_coupons()) continue;
    const int32_t c = segment_of_user[e.user];
    if (c < 0 || static_cast<size_t>(c) >= m.segments.size()) continue;
    const core::SegmentData& prior = m.segments[static_cast<size_t>(c)];
    const float* y = &m.coupon_factors[size_t{e.coupon} * d];
    double logit =
        double{m.global_bias} + double{prior.prior_bias} + double{m.coupon_bias[e.coupon]};
    for (size_t x = 0; x < d; ++x) logit += double{prior.prior_factors[x]} * double{y[x]};
    const double p = std::clamp(core::Sigmoid(logit), 1e-7, 1.0 - 1e-7);
    loss -= e.label == 1.0f ? std::log(p) : std::log1p(-p);
    ++scored;
  }
  if (scored_out != nullptr) *scored_out = scored;
  return scored > 0 ? loss / static_cast<double>(scored) : std::nan("");
}

absl::StatusOr<PriorBiasChoice> ChoosePriorBias(const Segmentation& seg,
                                                const learn::TrainingData& data,
                                                absl::Span<const uint32_t> fit,
                                                absl::Span<const uint32_t> validation,
                                                const core::ModelData& fit_model) {
  PriorBiasChoice choice;
  core::ModelData calibrated = fit_model;
  COUPOND_RETURN_IF_ERROR(AttachSegments(seg, data, fit, &calibrated, PriorBias::kCalibrated));
  core::ModelData mean = fit_model;
  COUPOND_RETURN_IF_ERROR(AttachSegments(seg, data, fit, &mean, PriorBias::kMean));
  // The two rules share the segments' centroids, so one placement serves both.
  COUPOND_ASSIGN_OR_RETURN(std::vector<int32_t> placed, PlaceAsNewUsers(calibrated, data));
  choice.calibrated_log_loss =
      PriorLogLoss(calibrated, placed, data, validation, &choice.examples);
  choice.mean_log_loss = PriorLogLoss(mean, placed, data, validation);
  // NaN (nothing scored) compares false: kCalibrated stays.
  if (choice.mean_log_loss < choice.calibrated_log_loss) choice.rule = PriorBias::kMean;
  return choice;
}

std::optional<float> CalibratedPriorBias(const core::ModelData& model,
                                         absl::Span<const float> prior_factors,
                                         absl::Span<const std::pair<uint32_t, uint32_t>> exposures,
                                         double target_rate) {
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

}  // namespace coupond::pipeline
