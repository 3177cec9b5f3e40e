// The synthetic platform: reproducible, valid, and with the documented statistics.

#include "learn/synthetic.h"

#include <cmath>

#include "core/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::learn {
namespace {

using ::coupond::testing::StatusIs;

TEST(SyntheticPlatformTest, IsValidAndReproducible) {
  SyntheticPlatformOptions o;
  o.num_users = 500;
  o.num_coupons = 40;
  o.dimension = 8;
  ASSERT_OK_AND_ASSIGN(core::ModelData a, GenerateSyntheticPlatform(o));
  ASSERT_OK_AND_ASSIGN(core::ModelData b, GenerateSyntheticPlatform(o));
  EXPECT_OK(core::ValidateModelData(a));
  EXPECT_EQ(a.user_ids, b.user_ids);
  EXPECT_EQ(a.user_factors, b.user_factors);
  EXPECT_EQ(a.coupon_factors, b.coupon_factors);
  EXPECT_EQ(a.coupon_attributes, b.coupon_attributes);
  o.seed = 43;
  ASSERT_OK_AND_ASSIGN(core::ModelData c, GenerateSyntheticPlatform(o));
  EXPECT_NE(a.user_factors, c.user_factors);
}

TEST(SyntheticPlatformTest, InteractionHasRequestedSpread) {
  SyntheticPlatformOptions o;
  o.num_users = 2000;
  o.num_coupons = 50;
  o.dimension = 32;
  o.interaction_stddev = 1.0;
  ASSERT_OK_AND_ASSIGN(core::ModelData m, GenerateSyntheticPlatform(o));
  double sum = 0, sum_sq = 0;
  size_t n = 0;
  for (size_t u = 0; u < m.num_users(); ++u) {
    for (size_t c = 0; c < m.num_coupons(); ++c) {
      double dot = 0;
      for (uint32_t k = 0; k < m.dimension; ++k) {
        dot += double{m.user_factors[u * m.dimension + k]} * m.coupon_factors[c * m.dimension + k];
      }
      sum += dot;
      sum_sq += dot * dot;
      ++n;
    }
  }
  const double mean = sum / n;
  const double stddev = std::sqrt(sum_sq / n - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.1);
  EXPECT_NEAR(stddev, 1.0, 0.15);
}

TEST(SyntheticPlatformTest, PlacesValidityWindowsAroundNow) {
  SyntheticPlatformOptions o;
  o.num_users = 10;
  o.num_coupons = 400;
  o.now_unix_seconds = 1'750'000'000;
  ASSERT_OK_AND_ASSIGN(core::ModelData m, GenerateSyntheticPlatform(o));
  int active = 0, expired = 0, out_of_stock = 0;
  for (const core::CouponAttributes& a : m.coupon_attributes) {
    if (a.stock == 0) ++out_of_stock;
    if (a.valid_until_unix_seconds <= o.now_unix_seconds) ++expired;
    if (a.IsActiveAt(o.now_unix_seconds)) ++active;
  }
  EXPECT_NEAR(expired / 400.0, o.expired_fraction, 0.05);
  EXPECT_NEAR(out_of_stock / 400.0, o.out_of_stock_fraction, 0.04);
  EXPECT_GT(active, 300);
}

TEST(SyntheticPlatformTest, RejectsBadOptions) {
  SyntheticPlatformOptions o;
  o.dimension = 0;
  EXPECT_THAT(GenerateSyntheticPlatform(o),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("dimension")));
  o = {};
  o.num_coupons = 0;
  EXPECT_THAT(GenerateSyntheticPlatform(o),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("num_coupons")));
  o = {};
  o.user_bias_stddev = std::nan("");
  EXPECT_THAT(GenerateSyntheticPlatform(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                                     ::testing::HasSubstr("user_bias_stddev")));
}

}  // namespace
}  // namespace coupond::learn
