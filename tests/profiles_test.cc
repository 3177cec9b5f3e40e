#include "pipeline/profiles.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::pipeline {
namespace {

using ::coupond::testing::StatusIs;

// Users 0-9 "active" (10 exposures, 5 redemptions, attribute A), users 10-19 "idle"
// (10 exposures, none redeemed, attribute B), users 20-21 cold (no examples).
learn::TrainingData Data() {
  learn::TrainingData d;
  d.coupon_ids = {"c"};
  d.coupon_attributes.resize(1);
  d.coupon_features.AddRow({});
  d.campaign_ids = {"k"};
  d.user_features.names = {"segment=A", "segment=B"};
  for (uint32_t u = 0; u < 22; ++u) {
    d.user_ids.push_back(absl::StrCat("u", u));
    if (u < 10) {
      d.user_features.AddRow({0});
    } else if (u < 20) {
      d.user_features.AddRow({1});
    } else {
      d.user_features.AddRow({});
    }
    if (u >= 20) continue;
    for (int i = 0; i < 10; ++i) {
      learn::Example e;
      e.user = u;
      e.day = 10 * i;
      e.label = (u < 10 && i % 2 == 1) ? 1.0f : 0.0f;
      d.examples.push_back(e);
    }
  }
  return d;
}

TEST(ProfilesTest, CountsRatesAndRecency) {
  const learn::TrainingData d = Data();
  ASSERT_OK_AND_ASSIGN(Profiles p, BuildProfiles(d));
  EXPECT_EQ(p.as_of_day, 91);
  EXPECT_EQ(p.horizon_days, 91);
  EXPECT_DOUBLE_EQ(p.global_rate, 50.0 / 200.0);
  EXPECT_EQ(p.users[0].exposures, 10);
  EXPECT_EQ(p.users[0].redemptions, 5);
  EXPECT_DOUBLE_EQ(p.users[0].redemption_rate, (5 + 10 * 0.25) / 20);
  EXPECT_EQ(p.users[0].days_since_redemption, 1);  // last redemption day 90
  EXPECT_EQ(p.users[10].days_since_redemption, 91);  // never: the horizon
  EXPECT_EQ(p.users[10].days_since_exposure, 1);
  EXPECT_EQ(p.users[21].exposures, 0);
  EXPECT_DOUBLE_EQ(p.users[21].redemption_rate, 0.25);

  ProfileOptions as_of;
  as_of.as_of_day = 50;  // only days 0..40 count
  ASSERT_OK_AND_ASSIGN(Profiles early, BuildProfiles(d, {}, as_of));
  EXPECT_EQ(early.users[0].exposures, 5);
  EXPECT_EQ(early.users[0].redemptions, 2);
  EXPECT_EQ(early.users[0].days_since_redemption, 20);  // day 30

  const std::vector<uint32_t> bad = {100000};
  EXPECT_THAT(BuildProfiles(d, bad), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ProfilesTest, SegmentsSeparateBehaviourAndSeedColdStart) {
  const learn::TrainingData d = Data();
  SegmentOptions options;
  options.kmeans.k = 3;
  options.min_attribute_users = 2;
  ASSERT_OK_AND_ASSIGN(Segmentation seg, SegmentUsers(d, {}, options));
  EXPECT_EQ(seg.column_names.size(), 7u);  // 5 numeric + segment=A, segment=B
  ASSERT_EQ(seg.user_segment.size(), 22u);
  for (uint32_t u = 1; u < 10; ++u) EXPECT_EQ(seg.user_segment[u], seg.user_segment[0]);
  for (uint32_t u = 11; u < 20; ++u) EXPECT_EQ(seg.user_segment[u], seg.user_segment[10]);
  EXPECT_EQ(seg.user_segment[21], seg.user_segment[20]);
  EXPECT_NE(seg.user_segment[0], seg.user_segment[10]);
  EXPECT_NE(seg.user_segment[0], seg.user_segment[20]);
  const SegmentStats& active = seg.segments[seg.user_segment[0]];
  EXPECT_EQ(active.users, 10);
  EXPECT_EQ(active.redemptions, 50);
  EXPECT_GT(active.redemption_rate, seg.segments[seg.user_segment[10]].redemption_rate);
  // A new user like the active ones lands in their segment.
  UserProfile newcomer = seg.profiles.users[3];
  const uint32_t attribute_a[] = {0};
  EXPECT_EQ(seg.Assign(newcomer, attribute_a), seg.user_segment[0]);

  options.kmeans.k = 23;
  EXPECT_THAT(SegmentUsers(d, {}, options), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace coupond::pipeline
