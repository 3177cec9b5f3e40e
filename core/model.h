#ifndef COUPOND_CORE_MODEL_H_
#define COUPOND_CORE_MODEL_H_

// The plain, mutable form of one model version: what the offline jobs produce, what the
// store persists, and what a ModelSnapshot is built from.
//
// The model is logistic matrix factorisation:
//   p(u, c) = sigmoid(global_bias + user_bias[u] + coupon_bias[c] + <x_u, y_c>).

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace coupond::core {

// Largest latent dimension accepted anywhere (store, files, snapshot). Far above any useful
// model; it bounds memory a corrupted or hostile header can make us allocate.
inline constexpr uint32_t kMaxDimension = 4096;
// Largest magnitude of a bias or factor a model may hold (global, user, coupon and segment
// prior biases and factors), checked by ValidateModelData. Trained (L2-regularised) LMF
// values are O(1), so this is never near. Why it exists: it is what makes every served
// number finite. A logit is at most 3 x 10^6 + kMaxDimension x 10^12 < 5 x 10^15 in
// magnitude, far inside float's range (3.4e38) however the kernel orders its sums, so Score's
// logits are finite, its probabilities are in [0, 1], and Decide's scores p (w - lambda c) - mu
// are finite for the bounded weights and prices of core/campaign.h.
inline constexpr double kMaxModelMagnitude = 1e6;
// Longest user or coupon id accepted, in bytes. Also the limit for segment names and
// segment feature names.
inline constexpr size_t kMaxIdBytes = 256;
// Most user segments a model may carry (the store numbers them with 6 digits).
inline constexpr size_t kMaxSegments = 100000;
// Most dimensions of the segmentation's feature space (bounds allocation as kMaxDimension).
inline constexpr size_t kMaxSegmentFeatures = 65536;

// Business attributes of a coupon, carried with the model so that the server can judge
// which coupons are active without another data source.
struct CouponAttributes {
  // Face value paid by the platform when the coupon is redeemed, in currency units. >= 0.
  double face_value = 0.0;
  // Start of the validity window, seconds since the Unix epoch, inclusive. 0: no lower bound.
  int64_t valid_from_unix_seconds = 0;
  // End of the validity window, seconds since the Unix epoch, exclusive. 0: no upper bound.
  int64_t valid_until_unix_seconds = 0;
  // Coupons left to issue. -1: unlimited; 0: out of stock (never active).
  int64_t stock = -1;

  // True when the coupon may be offered at time `t` (inside its window, stock left).
  bool IsActiveAt(int64_t t) const {
    if (stock == 0) return false;
    if (valid_from_unix_seconds != 0 && t < valid_from_unix_seconds) return false;
    if (valid_until_unix_seconds != 0 && t >= valid_until_unix_seconds) return false;
    return true;
  }
  friend bool operator==(const CouponAttributes&, const CouponAttributes&) = default;
};

// One dimension of the space user segments live in. A user (new or known) is placed in a
// segment by encoding it into this space and taking the nearest centroid (Euclidean):
//   encoded = (raw - offset) / scale
// where `raw` is, for a profile column (pipeline/profiles.h: "log_exposures",
// "log_redemptions", "redemption_rate", "days_since_redemption", "days_since_exposure"),
// that profile value; for any other name, a user attribute ("age=25-34"), 1 when the user
// has it and 0 otherwise. Names alone would not do: the centroids are in a standardised,
// weighted space, so a server needs the offsets and scales to encode a request the same way
// the pipeline encoded its users. A new user's request carries attributes only: the server
// compares over the columns of those attributes alone (core/user_resolution.h).
struct SegmentFeature {
  std::string name;     // unique among the model's segment features, 1..kMaxIdBytes bytes
  float offset = 0.0f;  // finite
  float scale = 1.0f;   // finite, non-zero
  friend bool operator==(const SegmentFeature&, const SegmentFeature&) = default;
};

// One user segment (a k-means cluster of user profiles) and the prior that cold start uses
// for a new user placed in it.
struct SegmentData {
  // Unique among the model's segments, 1..kMaxIdBytes bytes (e.g. "segment-3").
  std::string name;
  // The cluster centre in the encoded space: one value per ModelData::segment_features.
  std::vector<float> centroid;
  // Mean user bias and mean user factors (size: dimension) of the segment's members, in the
  // model's latent space: the stand-in for a new user's missing b_u and x_u.
  float prior_bias = 0.0f;
  std::vector<float> prior_factors;
  // Observed redemption rate of the members (shrunk towards the global rate), in [0, 1].
  double redemption_rate = 0.0;
  // Users in the segment when it was computed (may include users the model does not carry).
  uint64_t members = 0;
  friend bool operator==(const SegmentData&, const SegmentData&) = default;
};

struct ModelData {
  // Latent dimension d, 1..kMaxDimension.
  uint32_t dimension = 0;
  // Global bias b (the logit of the base redemption rate).
  double global_bias = 0.0;

  // One entry per user; ids unique, non-empty, at most kMaxIdBytes.
  std::vector<std::string> user_ids;
  std::vector<float> user_bias;     // size: users
  std::vector<float> user_factors;  // size: users * dimension, row-major

  // One entry per coupon; ids unique, non-empty, at most kMaxIdBytes.
  std::vector<std::string> coupon_ids;
  std::vector<float> coupon_bias;     // size: coupons
  std::vector<float> coupon_factors;  // size: coupons * dimension, row-major
  std::vector<CouponAttributes> coupon_attributes;  // size: coupons
  // Coupon cold start. Empty, or one per coupon: 1 when the coupon had no training data and
  // its bias and factors were PREDICTED from its attributes by a model fitted at training
  // time (pipeline/coupon_cold_start.h), 0 when they were trained. Empty means every coupon
  // has 0 (the store reads a version without predicted coupons back as empty).
  std::vector<uint8_t> coupon_predicted_from_attributes;

  // User segments for cold start; empty = the model has none. At most kMaxSegments.
  std::vector<SegmentData> segments;
  // The dimensions of the segments' centroids (see SegmentFeature). Non-empty exactly when
  // `segments` is; at most kMaxSegmentFeatures.
  std::vector<SegmentFeature> segment_features;
  // Empty, or one per user: the index of the user's segment in `segments`, -1 = none.
  // Empty means every user has -1 (the store reads a version in which no user has a segment
  // back as empty).
  std::vector<int32_t> user_segment;

  // Free-form provenance (e.g. "synthetic seed=42"), recorded in the manifest.
  std::string description;
  // Provenance recorded in the manifest beside it: the training data's checksum,
  // hyperparameters, evaluation metrics ("train.dimension" -> "32", "eval.auc" -> "0.83").
  // Keys: non-empty, [A-Za-z0-9_.-]; values: any text.
  std::map<std::string, std::string> metadata;

  size_t num_users() const { return user_ids.size(); }
  size_t num_coupons() const { return coupon_ids.size(); }
  size_t num_segments() const { return segments.size(); }
};

// OK when `model` is internally consistent: dimension in range, every array sized to match
// the ids, ids unique/non-empty/short enough, every number finite, face values >= 0,
// stock >= -1, validity windows non-empty; segments as documented on their fields (counts,
// sizes, names, finite numbers, rates in [0, 1], user_segment indices in [-1, segments));
// coupon_predicted_from_attributes empty or one 0/1 per coupon.
// Otherwise InvalidArgument naming the first offending field and row.
absl::Status ValidateModelData(const ModelData& model);

}  // namespace coupond::core

#endif  // COUPOND_CORE_MODEL_H_
