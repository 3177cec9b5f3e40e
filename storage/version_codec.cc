#include "storage/version_codec.h"

#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "storage/keys.h"

namespace coupond::storage::internal {
namespace {

// Format written. 2 added segments (s/ rows, the sf key, an i32 segment index at the end
// of every user row, num_segments= and num_segment_features= in the manifest); 3 added a u8
// at the end of every coupon row (1: factors predicted from attributes).
constexpr int kManifestFormat = 3;
// Oldest format read: a format-1 version has no segments and shorter user rows.
constexpr int kOldestReadableFormat = 1;

void AppendFloats(std::string* out, const float* values, size_t n) {
  out->append(reinterpret_cast<const char*>(values), sizeof(float) * n);
}

bool AllFinite(const float* values, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(values[i])) return false;
  }
  return true;
}

}  // namespace

std::string EncodeUser(const core::ModelData& m, size_t row) {
  std::string v;
  v.reserve(UserValueBytes(m.dimension));
  Append(&v, m.user_bias[row]);
  AppendFloats(&v, m.user_factors.data() + row * m.dimension, m.dimension);
  Append(&v, m.user_segment.empty() ? int32_t{-1} : m.user_segment[row]);
  return v;
}

std::string EncodeSegment(const core::ModelData& m, size_t i) {
  const core::SegmentData& seg = m.segments[i];
  std::string v;
  v.reserve(SegmentValueBytes(seg.name.size(), m.dimension, seg.centroid.size()));
  Append(&v, static_cast<uint32_t>(seg.name.size()));
  v.append(seg.name);
  Append(&v, seg.prior_bias);
  AppendFloats(&v, seg.prior_factors.data(), seg.prior_factors.size());
  AppendFloats(&v, seg.centroid.data(), seg.centroid.size());
  Append(&v, seg.redemption_rate);
  Append(&v, seg.members);
  return v;
}

// u32 count, then per feature: u32 name length, name, f32 offset, f32 scale.
std::string EncodeSegmentFeatures(const core::ModelData& m) {
  std::string v;
  Append(&v, static_cast<uint32_t>(m.segment_features.size()));
  for (const core::SegmentFeature& f : m.segment_features) {
    Append(&v, static_cast<uint32_t>(f.name.size()));
    v.append(f.name);
    Append(&v, f.offset);
    Append(&v, f.scale);
  }
  return v;
}

std::string EncodeCoupon(const core::ModelData& m, size_t row) {
  std::string v;
  v.reserve(CouponValueBytes(m.dimension));
  Append(&v, m.coupon_bias[row]);
  v.append(reinterpret_cast<const char*>(m.coupon_factors.data() + row * m.dimension),
           sizeof(float) * m.dimension);
  const core::CouponAttributes& a = m.coupon_attributes[row];
  Append(&v, a.face_value);
  Append(&v, a.valid_from_unix_seconds);
  Append(&v, a.valid_until_unix_seconds);
  Append(&v, a.stock);
  Append(&v, m.coupon_predicted_from_attributes.empty() ? uint8_t{0}
                                                        : m.coupon_predicted_from_attributes[row]);
  return v;
}

std::string EncodeManifest(const core::ModelVersionInfo& info) {
  std::string metadata;
  for (const auto& [key, value] : info.metadata) {
    absl::StrAppend(&metadata, "meta.", key, "=", absl::CEscape(value), "\n");
  }
  return metadata +
         absl::StrFormat(
             "format=%d\nversion=%d\ndimension=%d\nnum_users=%d\nnum_coupons=%d\n"
             "num_predicted_coupons=%d\nnum_segments=%d\nnum_segment_features=%d\n"
             "global_bias=%.17g\ncreated_unix_seconds=%d\nchecksum=%016x\ndescription=%s\n",
             kManifestFormat, info.version, info.dimension, info.num_users, info.num_coupons,
             info.num_predicted_coupons, info.num_segments, info.num_segment_features,
             info.global_bias, info.created_unix_seconds, info.checksum,
             absl::CEscape(info.description));
}

// Reads formats kOldestReadableFormat..kManifestFormat.
absl::StatusOr<core::ModelVersionInfo> DecodeManifest(uint64_t version, absl::string_view text,
                                                      int* format_out) {
  auto bad = [version](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("manifest of version ", version, ": ", what));
  };
  core::ModelVersionInfo info;
  int fields = 0;          // the 9 fields of every format
  int segment_fields = 0;  // the 2 fields format 2 added
  int format = 0;
  bool format_ok = false;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) return bad(absl::StrCat("line without '=': ", line));
    const absl::string_view key = line.substr(0, eq);
    const absl::string_view value = line.substr(eq + 1);
    bool ok = true;
    if (key == "format") {
      ok = absl::SimpleAtoi(value, &format);
      if (ok && (format < kOldestReadableFormat || format > kManifestFormat)) {
        return bad(absl::StrCat("format ", format, " is not supported (this reader reads ",
                                kOldestReadableFormat, " to ", kManifestFormat, ")"));
      }
      format_ok = ok;
    } else if (key == "version") {
      ok = absl::SimpleAtoi(value, &info.version);
    } else if (key == "dimension") {
      ok = absl::SimpleAtoi(value, &info.dimension);
    } else if (key == "num_users") {
      ok = absl::SimpleAtoi(value, &info.num_users);
    } else if (key == "num_coupons") {
      ok = absl::SimpleAtoi(value, &info.num_coupons);
    } else if (key == "num_predicted_coupons") {
      // Optional (format 3 writers before it existed did not write it): not counted.
      if (!absl::SimpleAtoi(value, &info.num_predicted_coupons)) {
        return bad(absl::StrCat("bad value for '", key, "': ", value));
      }
      continue;
    } else if (key == "num_segments" || key == "num_segment_features") {
      ok = key == "num_segments" ? absl::SimpleAtoi(value, &info.num_segments)
                                 : absl::SimpleAtoi(value, &info.num_segment_features);
      if (!ok) return bad(absl::StrCat("bad value for '", key, "': ", value));
      ++segment_fields;
      continue;
    } else if (key == "global_bias") {
      ok = absl::SimpleAtod(value, &info.global_bias) && std::isfinite(info.global_bias);
    } else if (key == "created_unix_seconds") {
      ok = absl::SimpleAtoi(value, &info.created_unix_seconds);
    } else if (key == "checksum") {
      ok = absl::SimpleHexAtoi(value, &info.checksum);
    } else if (key == "description") {
      std::string error;
      ok = absl::CUnescape(value, &info.description, &error);
    } else if (absl::StartsWith(key, "meta.")) {
      std::string error, unescaped;
      if (!absl::CUnescape(value, &unescaped, &error)) {
        return bad(absl::StrCat("bad value for '", key, "'"));
      }
      info.metadata[std::string(key.substr(5))] = std::move(unescaped);
      continue;  // optional: not counted among the required fields
    } else {
      continue;  // Fields added by later writers are ignored by this reader.
    }
    if (!ok) return bad(absl::StrCat("bad value for '", key, "': ", value));
    ++fields;
  }
  if (!format_ok || fields != 9 || (format >= 2 && segment_fields != 2)) {
    return bad("missing fields (truncated manifest?)");
  }
  if (format < 2 && segment_fields != 0) {
    return bad("format 1 carries no segments, yet the manifest counts them");
  }
  if (info.num_segments > core::kMaxSegments ||
      info.num_segment_features > core::kMaxSegmentFeatures ||
      (info.num_segments == 0) != (info.num_segment_features == 0)) {
    return bad(absl::StrCat(info.num_segments, " segments over ", info.num_segment_features,
                            " segment features (both 0, or 1..", core::kMaxSegments, " and 1..",
                            core::kMaxSegmentFeatures, ")"));
  }
  if (info.version != version) {
    return bad(absl::StrCat("records version ", info.version, " under the key of ", version));
  }
  if (info.dimension < 1 || info.dimension > core::kMaxDimension) {
    return bad(
        absl::StrCat("dimension ", info.dimension, " is outside [1, ", core::kMaxDimension, "]"));
  }
  if (format_out != nullptr) *format_out = format;
  return info;
}

absl::Status VersionDataLoss(uint64_t version, absl::string_view what) {
  return absl::DataLossError(absl::StrCat("version ", version, ": ", what));
}

// Appends a user or coupon row's leading part (id, bias, `d` factors) read from `p`, which
// it advances past them. Returns whether the bias and the factors are all finite.
bool TakeFactorRow(absl::string_view id, uint32_t d, const char*& p, std::vector<std::string>* ids,
                   std::vector<float>* bias, std::vector<float>* factors) {
  const size_t base = factors->size();
  ids->emplace_back(id);
  bias->push_back(Take<float>(p));
  factors->resize(base + d);
  std::memcpy(factors->data() + base, p, sizeof(float) * d);
  p += sizeof(float) * d;
  return std::isfinite(bias->back()) && AllFinite(factors->data() + base, d);
}

absl::Status DecodeCouponRow(const core::ModelVersionInfo& info, int format, absl::string_view id,
                             absl::string_view value, core::ModelData* m, bool* any_predicted) {
  const char* p = value.data();
  const bool factors_finite =
      TakeFactorRow(id, info.dimension, p, &m->coupon_ids, &m->coupon_bias, &m->coupon_factors);
  core::CouponAttributes a;
  a.face_value = Take<double>(p);
  a.valid_from_unix_seconds = Take<int64_t>(p);
  a.valid_until_unix_seconds = Take<int64_t>(p);
  a.stock = Take<int64_t>(p);
  m->coupon_attributes.push_back(a);
  if (!factors_finite || !std::isfinite(a.face_value)) {
    return VersionDataLoss(info.version, absl::StrCat("coupon '", id, "': non-finite number"));
  }
  if (format >= 3) {  // format 3 added the predicted-from-attributes flag
    const uint8_t predicted = Take<uint8_t>(p);
    if (predicted > 1) {
      return VersionDataLoss(info.version,
                             absl::StrCat("coupon '", id, "': predicted-from-attributes flag ",
                                          static_cast<int>(predicted), " is not 0 or 1"));
    }
    *any_predicted = *any_predicted || predicted == 1;
    m->coupon_predicted_from_attributes.push_back(predicted);
  }
  return absl::OkStatus();
}

absl::Status DecodeSegmentRow(const core::ModelVersionInfo& info, absl::string_view id,
                              absl::string_view value, core::ModelData* m) {
  const uint32_t d = info.dimension;
  const size_t num_features = info.num_segment_features;
  const size_t index = m->segments.size();
  if (id != absl::StrFormat("%06d", index)) {
    return VersionDataLoss(
        info.version,
        absl::StrCat("segment row '", absl::CHexEscape(id), "' where segment ", index,
                     " belongs (rows must be numbered 0..", info.num_segments, "-1)"));
  }
  uint32_t name_bytes = 0;
  if (value.size() >= sizeof(name_bytes)) {
    std::memcpy(&name_bytes, value.data(), sizeof(name_bytes));
  }
  if (value.size() < sizeof(name_bytes) || name_bytes > core::kMaxIdBytes ||
      value.size() != SegmentValueBytes(name_bytes, d, num_features)) {
    return VersionDataLoss(info.version,
                           absl::StrCat("segment ", index, ": value is ", value.size(),
                                        " bytes, which does not fit dimension ", d, " and ",
                                        num_features, " segment features (truncated?)"));
  }
  const char* p = value.data() + sizeof(name_bytes);
  core::SegmentData seg;
  seg.name.assign(p, name_bytes);
  p += name_bytes;
  seg.prior_bias = Take<float>(p);
  seg.prior_factors.resize(d);
  std::memcpy(seg.prior_factors.data(), p, sizeof(float) * d);
  p += sizeof(float) * d;
  seg.centroid.resize(num_features);
  std::memcpy(seg.centroid.data(), p, sizeof(float) * num_features);
  p += sizeof(float) * num_features;
  seg.redemption_rate = Take<double>(p);
  seg.members = Take<uint64_t>(p);
  if (!std::isfinite(seg.prior_bias) || !AllFinite(seg.prior_factors.data(), d) ||
      !AllFinite(seg.centroid.data(), num_features) ||
      !(seg.redemption_rate >= 0.0 && seg.redemption_rate <= 1.0)) {
    return VersionDataLoss(info.version,
                           absl::StrCat("segment ", index, " '", seg.name,
                                        "': non-finite number or redemption rate outside [0, 1]"));
  }
  m->segments.push_back(std::move(seg));
  return absl::OkStatus();
}

absl::Status DecodeSegmentFeatures(const core::ModelVersionInfo& info, absl::string_view value,
                                   core::ModelData* m) {
  const size_t num_features = info.num_segment_features;
  // Bounds-checked reader over `value`.
  absl::string_view rest = value;
  auto take = [&rest](void* out, size_t n) {
    if (rest.size() < n) return false;
    std::memcpy(out, rest.data(), n);
    rest.remove_prefix(n);
    return true;
  };
  auto damaged = [&](absl::string_view what) {
    return VersionDataLoss(info.version, absl::StrCat("segment features: ", what));
  };
  uint32_t count = 0;
  if (!take(&count, sizeof(count))) return damaged("truncated");
  if (count != num_features) {
    return damaged(absl::StrCat(count, " features, the manifest says ", num_features));
  }
  m->segment_features.reserve(num_features);
  for (size_t j = 0; j < num_features; ++j) {
    uint32_t name_bytes = 0;
    if (!take(&name_bytes, sizeof(name_bytes)) || name_bytes > core::kMaxIdBytes ||
        rest.size() < name_bytes) {
      return damaged(absl::StrCat("feature ", j, ": truncated or bad name length"));
    }
    core::SegmentFeature f;
    f.name.assign(rest.data(), name_bytes);
    rest.remove_prefix(name_bytes);
    if (!take(&f.offset, sizeof(f.offset)) || !take(&f.scale, sizeof(f.scale))) {
      return damaged(absl::StrCat("feature ", j, " '", f.name, "': truncated"));
    }
    if (!std::isfinite(f.offset) || !std::isfinite(f.scale) || f.scale == 0.0f) {
      return damaged(
          absl::StrCat("feature ", j, " '", f.name, "': non-finite offset or scale, or scale 0"));
    }
    m->segment_features.push_back(std::move(f));
  }
  if (!rest.empty()) {
    return damaged(absl::StrCat(rest.size(), " bytes after the last feature"));
  }
  return absl::OkStatus();
}

absl::Status DecodeUserRow(const core::ModelVersionInfo& info, int format, absl::string_view id,
                           absl::string_view value, core::ModelData* m, bool* any_segment) {
  const char* p = value.data();
  if (!TakeFactorRow(id, info.dimension, p, &m->user_ids, &m->user_bias, &m->user_factors)) {
    return VersionDataLoss(info.version, absl::StrCat("user '", id, "': non-finite number"));
  }
  if (format >= 2) {  // format 2 added the segment index
    const int32_t segment = Take<int32_t>(p);
    if (segment < -1 || (segment >= 0 && static_cast<uint64_t>(segment) >= info.num_segments)) {
      return VersionDataLoss(info.version, absl::StrCat("user '", id, "': segment index ", segment,
                                                        " is not -1 or below the manifest's ",
                                                        info.num_segments, " segments"));
    }
    *any_segment = *any_segment || segment >= 0;
    m->user_segment.push_back(segment);
  }
  return absl::OkStatus();
}

}  // namespace coupond::storage::internal
