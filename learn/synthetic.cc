#include "learn/synthetic.h"

#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace coupond::learn {
namespace {

absl::Status CheckNonNegative(double v, const char* name) {
  if (!std::isfinite(v) || v < 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", v, " is not a finite value >= 0"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<core::ModelData> GenerateSyntheticPlatform(const SyntheticPlatformOptions& o) {
  if (o.dimension < 1 || o.dimension > core::kMaxDimension) {
    return absl::InvalidArgumentError(
        absl::StrCat("dimension: ", o.dimension, " is outside [1, ", core::kMaxDimension, "]"));
  }
  if (o.num_coupons < 1) return absl::InvalidArgumentError("num_coupons: must be >= 1");
  if (o.num_users > 50'000'000) {
    return absl::InvalidArgumentError("num_users: at most 50,000,000");
  }
  if (o.num_coupons > 10'000'000) {
    return absl::InvalidArgumentError("num_coupons: at most 10,000,000");
  }
  if (!std::isfinite(o.global_bias)) {
    return absl::InvalidArgumentError("global_bias: must be finite");
  }
  for (auto [v, name] : {std::pair{o.user_bias_stddev, "user_bias_stddev"},
                         std::pair{o.coupon_bias_stddev, "coupon_bias_stddev"},
                         std::pair{o.interaction_stddev, "interaction_stddev"},
                         std::pair{o.expired_fraction, "expired_fraction"},
                         std::pair{o.out_of_stock_fraction, "out_of_stock_fraction"}}) {
    if (absl::Status s = CheckNonNegative(v, name); !s.ok()) return s;
  }
  if (o.expired_fraction > 1 || o.out_of_stock_fraction > 1) {
    return absl::InvalidArgumentError("expired_fraction, out_of_stock_fraction: must be <= 1");
  }

  // mt19937_64 is specified exactly by the standard, so ids and factors are reproducible
  // across platforms for the uniform draws; normal draws are reproducible for one
  // standard library (libstdc++ here).
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);

  const float factor_stddev = static_cast<float>(std::sqrt(o.interaction_stddev) /
                                                 std::pow(static_cast<double>(o.dimension), 0.25));
  core::ModelData m;
  m.dimension = o.dimension;
  m.global_bias = o.global_bias;
  m.description = absl::StrFormat(
      "synthetic platform seed=%d users=%d coupons=%d dimension=%d", o.seed, o.num_users,
      o.num_coupons, o.dimension);

  m.user_ids.reserve(o.num_users);
  m.user_bias.reserve(o.num_users);
  m.user_factors.reserve(size_t{o.num_users} * o.dimension);
  for (uint32_t u = 0; u < o.num_users; ++u) {
    m.user_ids.push_back(absl::StrFormat("u%07d", u + 1));
    m.user_bias.push_back(static_cast<float>(o.user_bias_stddev) * normal(rng));
    for (uint32_t k = 0; k < o.dimension; ++k) m.user_factors.push_back(factor_stddev * normal(rng));
  }

  static constexpr double kFaceValues[] = {2, 5, 10, 20, 50};
  constexpr int64_t kDay = 86400;
  m.coupon_ids.reserve(o.num_coupons);
  m.coupon_bias.reserve(o.num_coupons);
  m.coupon_factors.reserve(size_t{o.num_coupons} * o.dimension);
  m.coupon_attributes.reserve(o.num_coupons);
  for (uint32_t c = 0; c < o.num_coupons; ++c) {
    m.coupon_ids.push_back(absl::StrFormat("c%05d", c + 1));
    core::CouponAttributes a;
    a.face_value = kFaceValues[static_cast<size_t>(uniform(rng) * 5) % 5];
    // Larger discounts are redeemed more often: log-linear in face value.
    const double value_effect = 0.3 * std::log(a.face_value / 10.0);
    m.coupon_bias.push_back(
        static_cast<float>(value_effect + o.coupon_bias_stddev * normal(rng)));
    for (uint32_t k = 0; k < o.dimension; ++k) {
      m.coupon_factors.push_back(factor_stddev * normal(rng));
    }
    const double draw = uniform(rng);
    if (draw < o.out_of_stock_fraction) {
      a.stock = 0;
    } else {
      a.stock = uniform(rng) < 0.5 ? -1 : 100 + static_cast<int64_t>(uniform(rng) * 10000);
    }
    if (o.now_unix_seconds > 0) {
      const bool expired = uniform(rng) < o.expired_fraction;
      const int64_t length = (7 + static_cast<int64_t>(uniform(rng) * 60)) * kDay;
      if (expired) {
        a.valid_until_unix_seconds = o.now_unix_seconds - kDay;
        a.valid_from_unix_seconds = a.valid_until_unix_seconds - length;
      } else {
        a.valid_from_unix_seconds = o.now_unix_seconds - 3 * kDay;
        a.valid_until_unix_seconds = o.now_unix_seconds + length;
      }
      if (a.valid_from_unix_seconds < 1) a.valid_from_unix_seconds = 1;
    }
    m.coupon_attributes.push_back(a);
  }
  return m;
}

}  // namespace coupond::learn
