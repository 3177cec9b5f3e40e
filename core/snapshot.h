#ifndef COUPOND_CORE_SNAPSHOT_H_
#define COUPOND_CORE_SNAPSHOT_H_

// An immutable, query-ready model version. The server holds one (via shared_ptr) per loaded
// version; every request takes a reference for its whole duration, so a newer version can
// be swapped in without disturbing requests in flight.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/kernel.h"
#include "core/model.h"
#include "core/segment_encoding.h"

namespace coupond::core {

// What the store's manifest records about a version.
struct ModelVersionInfo {
  uint64_t version = 0;
  uint32_t dimension = 0;
  uint64_t num_users = 0;
  uint64_t num_coupons = 0;
  // User segments (ModelData::segments) and the dimensions of their space
  // (ModelData::segment_features); 0 and 0 for a model without segments.
  uint64_t num_segments = 0;
  uint32_t num_segment_features = 0;
  // Coupons whose factors were predicted from their attributes (cold start); format 3.
  uint64_t num_predicted_coupons = 0;
  double global_bias = 0.0;
  int64_t created_unix_seconds = 0;
  // XXH3-64 over the version's stored rows (see storage/model_store.h).
  uint64_t checksum = 0;
  std::string description;
  // ModelData::metadata as published.
  std::map<std::string, std::string> metadata;
};

// The manifest fields `model` itself determines, for version `version`: dimension, the user,
// coupon, segment, segment-feature and predicted-coupon counts, and the global bias (what
// ModelSnapshot::Create checks against the model, and what ModelStore::Publish records).
// created_unix_seconds, checksum, description and metadata are left for the caller.
ModelVersionInfo DescribeModel(const ModelData& model, uint64_t version);

// Thread-safe: all methods are const and the object never changes after Create.
class ModelSnapshot {
 public:
  // Validates `model` (ValidateModelData) and builds the lookup tables and the kernel's
  // coupon layout. `info` describes the version; its counts and dimension must match.
  static absl::StatusOr<std::shared_ptr<const ModelSnapshot>> Create(
      ModelData model, ModelVersionInfo info);

  const ModelVersionInfo& info() const { return info_; }
  uint32_t dimension() const { return info_.dimension; }
  double global_bias() const { return info_.global_bias; }
  // When Create finished building this snapshot (the server reports it as the load time).
  absl::Time built_at() const { return built_at_; }

  size_t num_users() const { return user_ids_.size(); }
  std::optional<uint32_t> FindUser(absl::string_view user_id) const;
  // REQUIRES: row < num_users() for the accessors below.
  const std::string& user_id(uint32_t row) const { return user_ids_[row]; }
  const float* user_factors(uint32_t row) const {
    return user_factors_.data() + size_t{row} * info_.dimension;
  }
  float user_bias(uint32_t row) const { return user_bias_[row]; }
  // The user's index into segment(), or -1 when it has none (always -1 without segments).
  int32_t user_segment(uint32_t row) const {
    return user_segment_.empty() ? -1 : user_segment_[row];
  }

  // User segments for cold start (see core/model.h); none when num_segments() == 0.
  size_t num_segments() const { return segments_.size(); }
  // REQUIRES: i < num_segments().
  const SegmentData& segment(size_t i) const { return segments_[i]; }
  // The dimensions a user is encoded in before taking the nearest segment centroid.
  const std::vector<SegmentFeature>& segment_features() const { return segment_features_; }
  // The attribute columns of segment_features(), for placing a new user by its attributes
  // (core/user_resolution.h).
  const SegmentAttributeIndex& segment_attributes() const { return segment_attributes_; }

  size_t num_coupons() const { return coupon_ids_.size(); }
  std::optional<uint32_t> FindCoupon(absl::string_view coupon_id) const;
  // REQUIRES: row < num_coupons() for the accessors below.
  const std::string& coupon_id(uint32_t row) const { return coupon_ids_[row]; }
  float coupon_bias(uint32_t row) const { return coupon_bias_[row]; }
  const CouponAttributes& coupon_attributes(uint32_t row) const {
    return coupon_attributes_[row];
  }
  // True when the coupon's bias and factors were predicted from its attributes at training
  // time (coupon cold start; ModelData::coupon_predicted_from_attributes).
  bool coupon_predicted_from_attributes(uint32_t row) const {
    return !coupon_predicted_.empty() && coupon_predicted_[row] != 0;
  }
  // Coupon factors in the kernel's padded layout.
  const FactorMatrix& coupon_factors() const { return coupon_factors_; }

  // Approximate heap bytes held by the snapshot.
  size_t memory_bytes() const;

  // What memory_bytes() will be for a version, from its manifest alone, before loading it
  // (the server checks it against the memory it may use before loading a second version).
  // Ids are assumed to fit std::string's inline buffer (15 bytes with libstdc++, as the
  // usual "u0001234" ids do); longer ids add their length each, which this cannot know.
  // Exact for the numeric parts (factor panels, biases, hash tables, cold-start flags).
  static size_t EstimateMemoryBytes(const ModelVersionInfo& info);

  // Snapshots alive in this process right now (all versions). The server reports it so
  // that an operator (and a test) can see old versions being freed after a swap.
  static int64_t LiveCount() { return live_count_.load(std::memory_order_relaxed); }

  ~ModelSnapshot() { live_count_.fetch_sub(1, std::memory_order_relaxed); }
  ModelSnapshot(const ModelSnapshot&) = delete;
  ModelSnapshot& operator=(const ModelSnapshot&) = delete;

 private:
  ModelSnapshot() { live_count_.fetch_add(1, std::memory_order_relaxed); }

  static inline std::atomic<int64_t> live_count_{0};

  ModelVersionInfo info_;
  absl::Time built_at_;
  std::vector<std::string> user_ids_;
  std::vector<float> user_bias_;
  std::vector<float> user_factors_;
  absl::flat_hash_map<absl::string_view, uint32_t> user_index_;  // views into user_ids_
  std::vector<int32_t> user_segment_;  // empty, or one per user
  std::vector<SegmentData> segments_;
  std::vector<SegmentFeature> segment_features_;
  SegmentAttributeIndex segment_attributes_;

  std::vector<std::string> coupon_ids_;
  std::vector<float> coupon_bias_;
  std::vector<CouponAttributes> coupon_attributes_;
  std::vector<uint8_t> coupon_predicted_;  // empty, or one per coupon
  FactorMatrix coupon_factors_;
  absl::flat_hash_map<absl::string_view, uint32_t> coupon_index_;  // views into coupon_ids_
};

}  // namespace coupond::core

#endif  // COUPOND_CORE_SNAPSHOT_H_
