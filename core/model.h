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
// Longest user or coupon id accepted, in bytes.
inline constexpr size_t kMaxIdBytes = 256;

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

  // Free-form provenance (e.g. "synthetic seed=42"), recorded in the manifest.
  std::string description;
  // Provenance recorded in the manifest beside it: the training data's checksum,
  // hyperparameters, evaluation metrics ("train.dimension" -> "32", "eval.auc" -> "0.83").
  // Keys: non-empty, [A-Za-z0-9_.-]; values: any text.
  std::map<std::string, std::string> metadata;

  size_t num_users() const { return user_ids.size(); }
  size_t num_coupons() const { return coupon_ids.size(); }
};

// OK when `model` is internally consistent: dimension in range, every array sized to match
// the ids, ids unique/non-empty/short enough, every number finite, face values >= 0,
// stock >= -1, validity windows non-empty. Otherwise InvalidArgument naming the first
// offending field and row.
absl::Status ValidateModelData(const ModelData& model);

}  // namespace coupond::core

#endif  // COUPOND_CORE_MODEL_H_
