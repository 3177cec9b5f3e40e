// ValidateModelData: what a model version must satisfy before it can be stored or served.

#include <limits>

#include "core/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/models.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::core {
namespace {

using ::coupond::testing::StatusIs;
using ::coupond::testing::TinyModel;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

TEST(ValidateModelDataTest, AcceptsConsistentModel) {
  EXPECT_OK(ValidateModelData(TinyModel(3, 4, 5)));
}

TEST(ValidateModelDataTest, AcceptsModelWithoutUsers) {
  // A model may know no users yet: everyone gets the population prior.
  EXPECT_OK(ValidateModelData(TinyModel(0, 2, 3)));
}

TEST(ValidateModelDataTest, RejectsDimensionOutOfRange) {
  ModelData m = TinyModel(1, 1, 1);
  m.dimension = 0;
  EXPECT_THAT(ValidateModelData(m), StatusIs(kInvalid, HasSubstr("dimension")));
  m.dimension = kMaxDimension + 1;
  EXPECT_THAT(ValidateModelData(m), StatusIs(kInvalid, HasSubstr("dimension")));
}

TEST(ValidateModelDataTest, RejectsMismatchedSizes) {
  ModelData m = TinyModel(2, 2, 3);
  m.user_factors.pop_back();
  EXPECT_THAT(ValidateModelData(m), StatusIs(kInvalid, HasSubstr("user_factors")));
  m = TinyModel(2, 2, 3);
  m.coupon_bias.push_back(0);
  EXPECT_THAT(ValidateModelData(m), StatusIs(kInvalid, HasSubstr("coupon_bias")));
  m = TinyModel(2, 2, 3);
  m.coupon_attributes.pop_back();
  EXPECT_THAT(ValidateModelData(m), StatusIs(kInvalid, HasSubstr("coupon_attributes")));
}

TEST(ValidateModelDataTest, RejectsEmptyDuplicateAndOverlongIds) {
  ModelData m = TinyModel(3, 2, 2);
  m.user_ids[1] = "";
  EXPECT_THAT(ValidateModelData(m), StatusIs(kInvalid, HasSubstr("user_ids[1]: empty")));
  m = TinyModel(3, 2, 2);
  m.user_ids[2] = "u0";
  EXPECT_THAT(ValidateModelData(m), StatusIs(kInvalid, HasSubstr("user_ids[2]: duplicate")));
  m = TinyModel(3, 2, 2);
  m.coupon_ids[1] = std::string(kMaxIdBytes + 1, 'x');
  EXPECT_THAT(ValidateModelData(m), StatusIs(kInvalid, HasSubstr("coupon_ids[1]")));
}

TEST(ValidateModelDataTest, RejectsNonFiniteNumbersNamingTheRow) {
  ModelData m = TinyModel(3, 2, 4);
  m.user_factors[1 * 4 + 2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT(ValidateModelData(m),
              StatusIs(kInvalid, HasSubstr("user_factors: non-finite value nan for 'u1'")));
  m = TinyModel(3, 2, 4);
  m.coupon_bias[0] = std::numeric_limits<float>::infinity();
  EXPECT_THAT(ValidateModelData(m), StatusIs(kInvalid, HasSubstr("coupon_bias")));
  m = TinyModel(3, 2, 4);
  m.global_bias = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THAT(ValidateModelData(m), StatusIs(kInvalid, HasSubstr("global_bias")));
}

TEST(ValidateModelDataTest, RejectsBadAttributes) {
  ModelData m = TinyModel(1, 2, 2);
  m.coupon_attributes[1].face_value = -1;
  EXPECT_THAT(ValidateModelData(m), StatusIs(kInvalid, HasSubstr("face_value")));
  m = TinyModel(1, 2, 2);
  m.coupon_attributes[0].stock = -2;
  EXPECT_THAT(ValidateModelData(m), StatusIs(kInvalid, HasSubstr("stock")));
  m = TinyModel(1, 2, 2);
  m.coupon_attributes[0].valid_from_unix_seconds = 100;
  m.coupon_attributes[0].valid_until_unix_seconds = 100;
  EXPECT_THAT(ValidateModelData(m), StatusIs(kInvalid, HasSubstr("valid_until")));
}

TEST(ValidateModelDataTest, MetadataKeysMustBeSimple) {
  ModelData m = TinyModel(1, 1, 1);
  m.metadata["eval.auc"] = "0.8";
  EXPECT_OK(ValidateModelData(m));
  m.metadata["bad key"] = "x";
  EXPECT_THAT(ValidateModelData(m), StatusIs(kInvalid, HasSubstr("metadata: bad key")));
}

TEST(CouponAttributesTest, ActivityFollowsWindowAndStock) {
  CouponAttributes a;
  EXPECT_TRUE(a.IsActiveAt(0));  // open window, unlimited stock
  a.valid_from_unix_seconds = 100;
  a.valid_until_unix_seconds = 200;
  EXPECT_FALSE(a.IsActiveAt(99));
  EXPECT_TRUE(a.IsActiveAt(100));   // from is inclusive
  EXPECT_TRUE(a.IsActiveAt(199));
  EXPECT_FALSE(a.IsActiveAt(200));  // until is exclusive
  a.stock = 0;
  EXPECT_FALSE(a.IsActiveAt(150));
}

}  // namespace
}  // namespace coupond::core
