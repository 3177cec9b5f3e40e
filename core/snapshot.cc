#include "core/snapshot.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"

namespace coupond::core {

ModelVersionInfo DescribeModel(const ModelData& model, uint64_t version) {
  ModelVersionInfo info;
  info.version = version;
  info.dimension = model.dimension;
  info.num_users = model.num_users();
  info.num_coupons = model.num_coupons();
  info.num_segments = model.num_segments();
  info.num_segment_features = static_cast<uint32_t>(model.segment_features.size());
  info.num_predicted_coupons = static_cast<uint64_t>(
      std::count(model.coupon_predicted_from_attributes.begin(),
                 model.coupon_predicted_from_attributes.end(), uint8_t{1}));
  info.global_bias = model.global_bias;
  return info;
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> ModelSnapshot::Create(
    ModelData model, ModelVersionInfo info) {
  COUPOND_RETURN_IF_ERROR(ValidateModelData(model));
  if (info.dimension != model.dimension || info.num_users != model.num_users() ||
      info.num_coupons != model.num_coupons() || info.num_segments != model.num_segments() ||
      info.num_segment_features != model.segment_features.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model version ", info.version, ": manifest says dimension ", info.dimension, ", ",
        info.num_users, " users, ", info.num_coupons, " coupons, ", info.num_segments,
        " segments over ", info.num_segment_features, " features; data has dimension ",
        model.dimension, ", ", model.num_users(), " users, ", model.num_coupons(), " coupons, ",
        model.num_segments(), " segments over ", model.segment_features.size(), " features"));
  }
  info.global_bias = model.global_bias;

  // make_shared cannot reach the private constructor.
  std::shared_ptr<ModelSnapshot> s(new ModelSnapshot());
  s->info_ = std::move(info);
  COUPOND_ASSIGN_OR_RETURN(s->coupon_factors_,
                           FactorMatrix::Create(model.coupon_factors, model.num_coupons(),
                                                model.dimension));
  s->user_ids_ = std::move(model.user_ids);
  s->user_bias_ = std::move(model.user_bias);
  s->user_factors_ = std::move(model.user_factors);
  s->coupon_ids_ = std::move(model.coupon_ids);
  s->coupon_bias_ = std::move(model.coupon_bias);
  s->coupon_attributes_ = std::move(model.coupon_attributes);
  s->user_segment_ = std::move(model.user_segment);
  s->segments_ = std::move(model.segments);
  s->segment_features_ = std::move(model.segment_features);
  s->segment_attributes_ = SegmentAttributeIndex::Build(s->segment_features_);
  s->coupon_predicted_ = std::move(model.coupon_predicted_from_attributes);

  // The maps hold views into the id vectors, which are never modified after this point.
  s->user_index_.reserve(s->user_ids_.size());
  for (size_t i = 0; i < s->user_ids_.size(); ++i) {
    s->user_index_.emplace(s->user_ids_[i], static_cast<uint32_t>(i));
  }
  s->coupon_index_.reserve(s->coupon_ids_.size());
  for (size_t i = 0; i < s->coupon_ids_.size(); ++i) {
    s->coupon_index_.emplace(s->coupon_ids_[i], static_cast<uint32_t>(i));
  }
  s->built_at_ = absl::Now();
  return std::shared_ptr<const ModelSnapshot>(std::move(s));
}

std::optional<uint32_t> ModelSnapshot::FindUser(absl::string_view user_id) const {
  auto it = user_index_.find(user_id);
  if (it == user_index_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint32_t> ModelSnapshot::FindCoupon(absl::string_view coupon_id) const {
  auto it = coupon_index_.find(coupon_id);
  if (it == coupon_index_.end()) return std::nullopt;
  return it->second;
}

namespace {

// absl::flat_hash_map's capacity after reserve(n): the smallest 2^k - 1 whose 7/8 load
// holds n (GrowthToLowerboundCapacity, then NormalizeCapacity, in raw_hash_set.h).
size_t SwissTableCapacity(size_t n) {
  if (n == 0) return 0;
  const size_t lower_bound = n + (n - 1) / 7;
  size_t capacity = 1;
  while (capacity < lower_bound) capacity = capacity * 2 + 1;
  return capacity;
}

// sizeof(std::string) plus its capacity for an id that fits the inline buffer, as
// memory_bytes() counts it.
constexpr size_t kInlineIdBytes = sizeof(std::string) + 15;

}  // namespace

size_t ModelSnapshot::EstimateMemoryBytes(const ModelVersionInfo& info) {
  const size_t d = info.dimension;
  const size_t users = info.num_users;
  const size_t coupons = info.num_coupons;
  constexpr size_t kIndexSlot = 1 + sizeof(std::pair<absl::string_view, uint32_t>);
  size_t bytes = users * (1 + d) * sizeof(float)  // bias, factors
                 + users * kInlineIdBytes + SwissTableCapacity(users) * kIndexSlot;
  if (info.num_segments > 0) bytes += users * sizeof(int32_t);  // each user's segment
  const size_t panels = (coupons + FactorMatrix::kPanelRows - 1) / FactorMatrix::kPanelRows;
  bytes += panels * FactorMatrix::kPanelRows * d * sizeof(float)  // padded factor panels
           + coupons * (sizeof(float) + sizeof(CouponAttributes))
           + coupons * kInlineIdBytes + SwissTableCapacity(coupons) * kIndexSlot;
  // One flag per coupon when some coupon's factors were predicted from its attributes.
  if (info.num_predicted_coupons > 0) bytes += coupons;
  bytes += info.num_segments * (sizeof(SegmentData) + 15 +
                                (info.num_segment_features + d) * sizeof(float));
  bytes += info.num_segment_features * (sizeof(SegmentFeature) + 15);
  return bytes;
}

size_t ModelSnapshot::memory_bytes() const {
  size_t bytes = user_bias_.capacity() * sizeof(float) +
                 user_factors_.capacity() * sizeof(float) +
                 coupon_bias_.capacity() * sizeof(float) +
                 coupon_attributes_.capacity() * sizeof(CouponAttributes) +
                 coupon_factors_.memory_bytes() +
                 user_segment_.capacity() * sizeof(int32_t) +
                 coupon_predicted_.capacity() + segment_attributes_.memory_bytes();
  for (const SegmentData& seg : segments_) {
    bytes += sizeof(SegmentData) + seg.name.capacity() +
             (seg.centroid.capacity() + seg.prior_factors.capacity()) * sizeof(float);
  }
  for (const SegmentFeature& f : segment_features_) {
    bytes += sizeof(SegmentFeature) + f.name.capacity();
  }
  for (const std::string& id : user_ids_) bytes += sizeof(std::string) + id.capacity();
  for (const std::string& id : coupon_ids_) bytes += sizeof(std::string) + id.capacity();
  // Swiss tables: one control byte plus one slot per bucket.
  bytes += user_index_.capacity() * (1 + sizeof(std::pair<absl::string_view, uint32_t>));
  bytes += coupon_index_.capacity() * (1 + sizeof(std::pair<absl::string_view, uint32_t>));
  return bytes;
}

}  // namespace coupond::core
