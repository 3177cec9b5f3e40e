#include "core/model.h"

#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace coupond::core {
namespace {

absl::Status CheckIds(const std::vector<std::string>& ids, const char* field) {
  absl::flat_hash_set<absl::string_view> seen;
  seen.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string& id = ids[i];
    if (id.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "]: empty id"));
    }
    if (id.size() > kMaxIdBytes) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "]: id is ", id.size(),
                                                     " bytes, limit ", kMaxIdBytes));
    }
    if (!seen.insert(id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", i, "]: duplicate id '", id, "'"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckFinite(const std::vector<float>& values, size_t row_width,
                         const std::vector<std::string>& ids, const char* field) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i]) || std::fabs(values[i]) > kMaxModelMagnitude) {
      const size_t row = i / row_width;
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": ", std::isfinite(values[i]) ? "out-of-range" : "non-finite", " value ",
          values[i], " for '", ids[row], "' (row ", row, ", column ", i % row_width,
          "; limit +-", kMaxModelMagnitude, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSize(size_t actual, size_t expected, const char* field) {
  if (actual != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": has ", actual, " values, expected ", expected));
  }
  return absl::OkStatus();
}

// Names (of segments or segment features): non-empty, short enough, unique.
template <typename T>
absl::Status CheckNames(const std::vector<T>& items, const char* field) {
  absl::flat_hash_set<absl::string_view> seen;
  seen.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string& name = items[i].name;
    if (name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "].name: empty"));
    }
    if (name.size() > kMaxIdBytes) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "].name: ", name.size(),
                                                     " bytes, limit ", kMaxIdBytes));
    }
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", i, "].name: duplicate '", name, "'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSegments(const ModelData& model) {
  const size_t k = model.segments.size();
  const size_t f = model.segment_features.size();
  if (k > kMaxSegments) {
    return absl::InvalidArgumentError(
        absl::StrCat("segments: ", k, " segments, limit ", kMaxSegments));
  }
  if (f > kMaxSegmentFeatures) {
    return absl::InvalidArgumentError(
        absl::StrCat("segment_features: ", f, " features, limit ", kMaxSegmentFeatures));
  }
  if (k == 0 && f != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("segment_features: ", f, " features but no segments"));
  }
  if (k != 0 && f == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("segment_features: empty, but the model has ", k, " segments"));
  }
  COUPOND_RETURN_IF_ERROR(CheckNames(model.segment_features, "segment_features"));
  for (size_t j = 0; j < f; ++j) {
    const SegmentFeature& sf = model.segment_features[j];
    if (!std::isfinite(sf.offset) || !std::isfinite(sf.scale) || sf.scale == 0.0f) {
      return absl::InvalidArgumentError(absl::StrCat(
          "segment_features[", j, "] '", sf.name, "': offset ", sf.offset, ", scale ", sf.scale,
          " (both finite, scale non-zero)"));
    }
  }
  COUPOND_RETURN_IF_ERROR(CheckNames(model.segments, "segments"));
  for (size_t i = 0; i < k; ++i) {
    const SegmentData& seg = model.segments[i];
    const std::string where = absl::StrCat("segments[", i, "] '", seg.name, "'");
    if (seg.centroid.size() != f) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".centroid: has ", seg.centroid.size(),
                                                     " values, expected ", f,
                                                     " (one per segment feature)"));
    }
    if (seg.prior_factors.size() != model.dimension) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".prior_factors: has ", seg.prior_factors.size(),
                       " values, expected ", model.dimension, " (the dimension)"));
    }
    auto all_finite = [](const std::vector<float>& v) {
      return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
    };
    auto all_bounded = [](const std::vector<float>& v) {
      return std::all_of(v.begin(), v.end(),
                         [](float x) { return std::fabs(x) <= kMaxModelMagnitude; });
    };
    if (!all_finite(seg.centroid)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".centroid: non-finite value"));
    }
    if (!std::isfinite(seg.prior_bias) || !all_finite(seg.prior_factors)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".prior: non-finite value"));
    }
    if (!(std::fabs(seg.prior_bias) <= kMaxModelMagnitude) || !all_bounded(seg.prior_factors)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".prior: value beyond +-", kMaxModelMagnitude));
    }
    if (!(seg.redemption_rate >= 0.0 && seg.redemption_rate <= 1.0)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".redemption_rate: ",
                                                     seg.redemption_rate, " is not in [0, 1]"));
    }
  }
  if (!model.user_segment.empty()) {
    if (absl::Status s = CheckSize(model.user_segment.size(), model.user_ids.size(),
                                   "user_segment");
        !s.ok()) {
      return s;
    }
    for (size_t u = 0; u < model.user_segment.size(); ++u) {
      const int32_t seg = model.user_segment[u];
      if (seg < -1 || (seg >= 0 && static_cast<size_t>(seg) >= k)) {
        return absl::InvalidArgumentError(
            absl::StrCat("user_segment: ", seg, " for '", model.user_ids[u], "' (row ", u,
                         ") is not -1 or a segment index below ", k));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateModelData(const ModelData& model) {
  if (model.dimension < 1 || model.dimension > kMaxDimension) {
    return absl::InvalidArgumentError(absl::StrCat("dimension: ", model.dimension,
                                                   " is outside [1, ", kMaxDimension, "]"));
  }
  if (!std::isfinite(model.global_bias)) {
    return absl::InvalidArgumentError(
        absl::StrCat("global_bias: non-finite value ", model.global_bias));
  }
  if (!(std::fabs(model.global_bias) <= kMaxModelMagnitude)) {
    return absl::InvalidArgumentError(absl::StrCat("global_bias: out-of-range value ",
                                                   model.global_bias, " (limit +-",
                                                   kMaxModelMagnitude, ")"));
  }
  const size_t d = model.dimension;
  const size_t users = model.user_ids.size();
  const size_t coupons = model.coupon_ids.size();
  if (absl::Status s = CheckSize(model.user_bias.size(), users, "user_bias"); !s.ok()) return s;
  if (absl::Status s = CheckSize(model.user_factors.size(), users * d, "user_factors"); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckSize(model.coupon_bias.size(), coupons, "coupon_bias"); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckSize(model.coupon_factors.size(), coupons * d, "coupon_factors");
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckSize(model.coupon_attributes.size(), coupons, "coupon_attributes");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckIds(model.user_ids, "user_ids"); !s.ok()) return s;
  if (absl::Status s = CheckIds(model.coupon_ids, "coupon_ids"); !s.ok()) return s;
  if (absl::Status s = CheckFinite(model.user_bias, 1, model.user_ids, "user_bias"); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckFinite(model.user_factors, d, model.user_ids, "user_factors");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckFinite(model.coupon_bias, 1, model.coupon_ids, "coupon_bias");
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckFinite(model.coupon_factors, d, model.coupon_ids, "coupon_factors");
      !s.ok()) {
    return s;
  }
  for (const auto& [key, value] : model.metadata) {
    const bool key_ok =
        !key.empty() && key.size() <= 128 &&
        std::all_of(key.begin(), key.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        });
    if (!key_ok) {
      return absl::InvalidArgumentError(absl::StrCat("metadata: bad key '", key.substr(0, 64),
                                                     "' (use [A-Za-z0-9_.-], 1..128 bytes)"));
    }
  }
  COUPOND_RETURN_IF_ERROR(ValidateSegments(model));
  if (!model.coupon_predicted_from_attributes.empty()) {
    if (absl::Status s = CheckSize(model.coupon_predicted_from_attributes.size(), coupons,
                                   "coupon_predicted_from_attributes");
        !s.ok()) {
      return s;
    }
    for (size_t i = 0; i < coupons; ++i) {
      const uint8_t flag = model.coupon_predicted_from_attributes[i];
      if (flag > 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("coupon_predicted_from_attributes: ", static_cast<int>(flag), " for '",
                         model.coupon_ids[i], "' (row ", i, ") is not 0 or 1"));
      }
    }
  }
  for (size_t i = 0; i < coupons; ++i) {
    const CouponAttributes& a = model.coupon_attributes[i];
    const std::string& id = model.coupon_ids[i];
    if (!std::isfinite(a.face_value) || a.face_value < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "coupon_attributes.face_value: ", a.face_value, " for '", id, "' is not >= 0"));
    }
    if (a.stock < -1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "coupon_attributes.stock: ", a.stock, " for '", id, "' (use -1 for unlimited)"));
    }
    if (a.valid_from_unix_seconds < 0 || a.valid_until_unix_seconds < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("coupon_attributes.valid_*: negative time for '", id, "'"));
    }
    if (a.valid_until_unix_seconds != 0 &&
        a.valid_until_unix_seconds <= a.valid_from_unix_seconds) {
      return absl::InvalidArgumentError(absl::StrCat(
          "coupon_attributes.valid_until: ", a.valid_until_unix_seconds, " for '", id,
          "' is not after valid_from ", a.valid_from_unix_seconds));
    }
  }
  return absl::OkStatus();
}

}  // namespace coupond::core
