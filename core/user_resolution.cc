#include "core/user_resolution.h"

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

namespace coupond::core {

int32_t NearestSegment(const ModelSnapshot& model, absl::Span<const UserAttribute> attributes,
                       uint32_t* matched_out, uint32_t* ignored_out) {
  uint32_t matched = 0, ignored = 0;
  // The encoded values of every column of every matched attribute: (feature, value).
  std::vector<std::pair<uint32_t, double>> encoded;
  std::vector<uint32_t> seen;  // attributes already matched (first one wins)
  const SegmentAttributeIndex& index = model.segment_attributes();
  const std::vector<SegmentFeature>& features = model.segment_features();
  for (const UserAttribute& a : attributes) {
    const std::optional<SegmentAttributeIndex::Column> column =
        model.num_segments() == 0 ? std::nullopt : index.Find(a.name, a.value);
    if (!column.has_value() ||
        std::find(seen.begin(), seen.end(), column->attribute) != seen.end()) {
      ++ignored;
      continue;
    }
    ++matched;
    seen.push_back(column->attribute);
    for (uint32_t j : index.columns(column->attribute)) {
      const double raw = j == column->feature ? 1.0 : 0.0;
      encoded.emplace_back(j, (raw - features[j].offset) / features[j].scale);
    }
  }
  if (matched_out != nullptr) *matched_out = matched;
  if (ignored_out != nullptr) *ignored_out = ignored;
  if (matched == 0) return -1;
  int32_t best = -1;
  double best_distance = std::numeric_limits<double>::infinity();
  for (size_t s = 0; s < model.num_segments(); ++s) {
    const std::vector<float>& centroid = model.segment(s).centroid;
    double distance = 0.0;
    for (const auto& [j, e] : encoded) {
      const double diff = e - centroid[j];
      distance += diff * diff;
    }
    // Strictly smaller: ties keep the lowest index. Centroids are finite (validated), so
    // every distance is too and some segment is always chosen.
    if (distance < best_distance) {
      best_distance = distance;
      best = static_cast<int32_t>(s);
    }
  }
  return best;
}

ResolvedUser ResolveUser(const ModelSnapshot& model, absl::string_view user_id,
                         absl::Span<const UserAttribute> attributes) {
  ResolvedUser r;
  if (const std::optional<uint32_t> row = model.FindUser(user_id)) {
    r.source = UserSource::kKnownUser;
    r.row = row;
    r.bias = model.user_bias(*row);
    r.factors = model.user_factors(*row);
    return r;
  }
  r.segment = NearestSegment(model, attributes, &r.matched_attributes, &r.ignored_attributes);
  if (r.segment >= 0) {
    const SegmentData& s = model.segment(static_cast<size_t>(r.segment));
    r.source = UserSource::kSegmentPrior;
    r.bias = s.prior_bias;
    r.factors = s.prior_factors.data();
  }
  return r;
}

}  // namespace coupond::core
