// ValidateModelData: what a model version must satisfy before it can be stored or served.

#include <limits>
#include <string>

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

// TinyModel plus two segments over three features, every user in one of them.
ModelData SegmentedModel(uint32_t users, uint32_t dim) {
  ModelData m = TinyModel(users, 2, dim);
  m.segment_features = {{"log_exposures", 1.5f, 0.75f},
                        {"redemption_rate", 0.01f, 0.02f},
                        {"age=25-34", 0.0f, 2.0f}};
  for (int i = 0; i < 2; ++i) {
    SegmentData s;
    s.name = "segment-" + std::to_string(i);
    s.centroid = {0.5f * static_cast<float>(i), -0.25f, 0.5f};
    s.prior_bias = -0.1f * static_cast<float>(i);
    s.prior_factors.assign(dim, 0.125f * static_cast<float>(i + 1));
    s.redemption_rate = 0.02 * (i + 1);
    s.members = users;
    m.segments.push_back(std::move(s));
  }
  for (uint32_t u = 0; u < users; ++u) m.user_segment.push_back(static_cast<int32_t>(u % 2));
  return m;
}

TEST(ValidateModelDataTest, AcceptsSegmentsAndUsersWithoutOne) {
  ModelData m = SegmentedModel(4, 3);
  EXPECT_OK(ValidateModelData(m));
  m.user_segment[1] = -1;  // a user without a segment
  EXPECT_OK(ValidateModelData(m));
  m.user_segment.clear();  // nobody has one
  EXPECT_OK(ValidateModelData(m));
}

TEST(ValidateModelDataTest, RejectsInconsistentSegmentSizes) {
  {
    ModelData m = SegmentedModel(4, 3);
    m.segments[1].centroid.pop_back();
    EXPECT_THAT(ValidateModelData(m),
                StatusIs(kInvalid, HasSubstr("segments[1] 'segment-1'.centroid: has 2 values, "
                                             "expected 3")));
  }
  {
    ModelData m = SegmentedModel(4, 3);
    m.segments[0].prior_factors.push_back(0.0f);
    EXPECT_THAT(ValidateModelData(m),
                StatusIs(kInvalid, HasSubstr("segments[0] 'segment-0'.prior_factors: has 4")));
  }
  {
    ModelData m = SegmentedModel(4, 3);
    m.user_segment.pop_back();
    EXPECT_THAT(ValidateModelData(m), StatusIs(kInvalid, HasSubstr("user_segment: has 3")));
  }
  {
    ModelData m = SegmentedModel(4, 3);
    m.segment_features.clear();
    for (SegmentData& s : m.segments) s.centroid.clear();
    EXPECT_THAT(ValidateModelData(m),
                StatusIs(kInvalid, HasSubstr("segment_features: empty, but the model has 2")));
  }
  {
    ModelData m = TinyModel(2, 2, 2);
    m.segment_features = {{"log_exposures", 0.0f, 1.0f}};
    EXPECT_THAT(ValidateModelData(m),
                StatusIs(kInvalid, HasSubstr("segment_features: 1 features but no segments")));
  }
}

TEST(ValidateModelDataTest, RejectsUserSegmentOutOfRange) {
  ModelData m = SegmentedModel(4, 3);
  m.user_segment[2] = 2;
  EXPECT_THAT(ValidateModelData(m),
              StatusIs(kInvalid, HasSubstr("user_segment: 2 for 'u2' (row 2) is not -1 or a "
                                           "segment index below 2")));
  m.user_segment[2] = -2;
  EXPECT_THAT(ValidateModelData(m), StatusIs(kInvalid, HasSubstr("user_segment: -2")));
  // Without segments, only -1 is allowed.
  ModelData plain = TinyModel(2, 2, 2);
  plain.user_segment = {-1, 0};
  EXPECT_THAT(ValidateModelData(plain), StatusIs(kInvalid, HasSubstr("user_segment: 0")));
  plain.user_segment = {-1, -1};
  EXPECT_OK(ValidateModelData(plain));
}

TEST(ValidateModelDataTest, RejectsBadSegmentNumbersAndNames) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  {
    ModelData m = SegmentedModel(2, 2);
    m.segments[1].centroid[0] = nan;
    EXPECT_THAT(ValidateModelData(m),
                StatusIs(kInvalid, HasSubstr("segments[1] 'segment-1'.centroid: non-finite")));
  }
  {
    ModelData m = SegmentedModel(2, 2);
    m.segments[0].prior_factors[1] = std::numeric_limits<float>::infinity();
    EXPECT_THAT(ValidateModelData(m), StatusIs(kInvalid, HasSubstr(".prior: non-finite")));
  }
  {
    ModelData m = SegmentedModel(2, 2);
    m.segments[0].redemption_rate = 1.5;
    EXPECT_THAT(ValidateModelData(m),
                StatusIs(kInvalid, HasSubstr(".redemption_rate: 1.5 is not in [0, 1]")));
  }
  {
    ModelData m = SegmentedModel(2, 2);
    m.segment_features[2].scale = 0.0f;
    EXPECT_THAT(ValidateModelData(m),
                StatusIs(kInvalid, HasSubstr("segment_features[2] 'age=25-34'")));
  }
  {
    ModelData m = SegmentedModel(2, 2);
    m.segments[1].name = "segment-0";
    EXPECT_THAT(ValidateModelData(m),
                StatusIs(kInvalid, HasSubstr("segments[1].name: duplicate 'segment-0'")));
    m.segments[1].name.clear();
    EXPECT_THAT(ValidateModelData(m), StatusIs(kInvalid, HasSubstr("segments[1].name: empty")));
  }
  {
    ModelData m = SegmentedModel(2, 2);
    m.segment_features[1].name = std::string(kMaxIdBytes + 1, 'x');
    EXPECT_THAT(ValidateModelData(m),
                StatusIs(kInvalid, HasSubstr("segment_features[1].name: 257 bytes")));
  }
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
