#include "pipeline/profiles.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace coupond::pipeline {
namespace {

constexpr int kNumeric = 5;

void NumericRow(const UserProfile& p, float* out) {
  out[0] = static_cast<float>(std::log1p(static_cast<double>(p.exposures)));
  out[1] = static_cast<float>(std::log1p(static_cast<double>(p.redemptions)));
  out[2] = static_cast<float>(p.redemption_rate);
  out[3] = static_cast<float>(p.days_since_redemption);
  out[4] = static_cast<float>(p.days_since_exposure);
}

}  // namespace

absl::StatusOr<Profiles> BuildProfiles(const learn::TrainingData& data,
                                       absl::Span<const uint32_t> examples,
                                       const ProfileOptions& options) {
  if (!(options.rate_prior_strength >= 0)) {
    return absl::InvalidArgumentError("ProfileOptions.rate_prior_strength: must be >= 0");
  }
  std::vector<uint32_t> all;
  if (examples.empty()) {
    all.reserve(data.examples.size());
    for (size_t i = 0; i < data.examples.size(); ++i) all.push_back(static_cast<uint32_t>(i));
    examples = all;
  }
  int32_t max_day = std::numeric_limits<int32_t>::min();
  for (uint32_t i : examples) {
    if (i >= data.examples.size() || data.examples[i].user >= data.user_ids.size()) {
      return absl::InvalidArgumentError(absl::StrCat("examples: index ", i, " out of range"));
    }
    max_day = std::max(max_day, data.examples[i].day);
  }
  Profiles out;
  out.as_of_day = options.as_of_day.value_or(examples.empty() ? 0 : max_day + 1);
  const size_t n = data.user_ids.size();
  std::vector<int32_t> last_redemption(n, std::numeric_limits<int32_t>::min());
  std::vector<int32_t> last_exposure(n, std::numeric_limits<int32_t>::min());
  out.users.assign(n, UserProfile{});
  int32_t earliest = out.as_of_day;
  int64_t counted = 0, positives = 0;
  for (uint32_t i : examples) {
    const learn::Example& e = data.examples[i];
    if (e.day >= out.as_of_day) continue;
    UserProfile& p = out.users[e.user];
    ++p.exposures;
    ++counted;
    earliest = std::min(earliest, e.day);
    last_exposure[e.user] = std::max(last_exposure[e.user], e.day);
    // A redemption on or after as_of_day was not yet seen then (Example::label_day).
    if (e.label == 1.0f && e.label_day < out.as_of_day) {
      ++p.redemptions;
      ++positives;
      last_redemption[e.user] = std::max(last_redemption[e.user], e.day);
    }
  }
  out.horizon_days = out.as_of_day - earliest;
  out.global_rate = counted > 0 ? static_cast<double>(positives) / counted : 0.0;
  const double s = options.rate_prior_strength;
  for (size_t u = 0; u < n; ++u) {
    UserProfile& p = out.users[u];
    const double denom = static_cast<double>(p.exposures) + s;
    p.redemption_rate = denom > 0 ? (p.redemptions + s * out.global_rate) / denom : out.global_rate;
    p.days_since_redemption = last_redemption[u] == std::numeric_limits<int32_t>::min()
                                  ? out.horizon_days
                                  : out.as_of_day - last_redemption[u];
    p.days_since_exposure = last_exposure[u] == std::numeric_limits<int32_t>::min()
                                ? out.horizon_days
                                : out.as_of_day - last_exposure[u];
  }
  return out;
}

std::vector<float> Segmentation::Encode(const UserProfile& profile,
                                        absl::Span<const uint32_t> features) const {
  float numeric[kNumeric];
  NumericRow(profile, numeric);
  std::vector<float> row(column_names.size(), 0.0f);
  for (size_t j = 0; j < num_numeric() && j < kNumeric; ++j) {
    row[j] = (numeric[j] - mean[j]) / scale[j];
  }
  for (uint32_t f : features) {
    auto it = std::lower_bound(attribute_feature.begin(), attribute_feature.end(), f);
    if (it != attribute_feature.end() && *it == f) {
      row[num_numeric() + (it - attribute_feature.begin())] = attribute_weight;
    }
  }
  return row;
}

absl::StatusOr<Segmentation> SegmentUsers(const learn::TrainingData& data,
                                          absl::Span<const uint32_t> examples,
                                          const SegmentOptions& options) {
  if (data.user_features.rows() != data.user_ids.size()) {
    return absl::InvalidArgumentError("SegmentUsers: user_features must have a row per user");
  }
  Segmentation seg;
  COUPOND_ASSIGN_OR_RETURN(seg.profiles, BuildProfiles(data, examples, options.profile));
  const size_t n = data.user_ids.size();
  seg.attribute_weight = options.attribute_weight;
  seg.column_names = {"log_exposures", "log_redemptions", "redemption_rate",
                      "days_since_redemption", "days_since_exposure"};
  // Only the users with a counted example (before as_of_day) shape the segments: they are
  // standardised and clustered; every other user (e.g. one first seen in the test period)
  // is placed afterwards in the nearest segment, as a new user would be (Assign).
  std::vector<uint32_t> fitted;
  for (uint32_t u = 0; u < n; ++u) {
    if (seg.profiles.users[u].exposures > 0) fitted.push_back(u);
  }
  if (fitted.empty()) {
    return absl::InvalidArgumentError(
        "SegmentUsers: no user has an example before as_of_day; nothing to cluster");
  }
  const size_t m = fitted.size();
  // One-hot columns for features common enough among those users.
  std::vector<int64_t> holders(data.user_features.num_features(), 0);
  for (uint32_t u : fitted) {
    for (uint32_t f : data.user_features.row(u)) ++holders[f];
  }
  for (uint32_t f = 0; f < holders.size(); ++f) {
    if (holders[f] >= options.min_attribute_users) {
      seg.attribute_feature.push_back(f);
      seg.column_names.push_back(data.user_features.names[f]);
    }
  }
  // Standardise the numeric columns (scale 1 when constant).
  const size_t dim = seg.column_names.size();
  std::vector<float> raw(m * kNumeric);
  for (size_t k = 0; k < m; ++k) {
    float numeric[kNumeric];
    NumericRow(seg.profiles.users[fitted[k]], numeric);
    std::copy(numeric, numeric + kNumeric, raw.begin() + static_cast<ptrdiff_t>(k * kNumeric));
  }
  seg.mean.assign(kNumeric, 0.0f);
  seg.scale.assign(kNumeric, 1.0f);
  for (int j = 0; j < kNumeric; ++j) {
    double sum = 0, sq = 0;
    for (size_t k = 0; k < m; ++k) sum += raw[k * kNumeric + j];
    const double mean = sum / m;
    for (size_t k = 0; k < m; ++k) {
      const double d = raw[k * kNumeric + j] - mean;
      sq += d * d;
    }
    const double sd = std::sqrt(sq / m);
    seg.mean[j] = static_cast<float>(mean);
    seg.scale[j] = sd > 1e-12 ? static_cast<float>(sd) : 1.0f;
  }
  std::vector<float> matrix;
  matrix.reserve(m * dim);
  for (uint32_t u : fitted) {
    const std::vector<float> row = seg.Encode(seg.profiles.users[u], data.user_features.row(u));
    matrix.insert(matrix.end(), row.begin(), row.end());
  }
  COUPOND_ASSIGN_OR_RETURN(seg.clusters, learn::KMeans(matrix, dim, options.kmeans));
  seg.user_segment.assign(n, 0);
  for (size_t k = 0; k < m; ++k) seg.user_segment[fitted[k]] = seg.clusters.assignment[k];
  for (uint32_t u = 0, k = 0; u < n; ++u) {
    if (k < m && fitted[k] == u) {
      ++k;
      continue;
    }
    seg.user_segment[u] = seg.Assign(seg.profiles.users[u], data.user_features.row(u));
  }
  seg.segments.assign(seg.clusters.k, SegmentStats{});
  for (size_t u = 0; u < n; ++u) {
    SegmentStats& s = seg.segments[seg.user_segment[u]];
    ++s.users;
    s.exposures += seg.profiles.users[u].exposures;
    s.redemptions += seg.profiles.users[u].redemptions;
  }
  const double prior = options.profile.rate_prior_strength;
  for (SegmentStats& s : seg.segments) {
    const double denom = static_cast<double>(s.exposures) + prior;
    s.redemption_rate = denom > 0 ? (s.redemptions + prior * seg.profiles.global_rate) / denom
                                  : seg.profiles.global_rate;
  }
  return seg;
}

}  // namespace coupond::pipeline
