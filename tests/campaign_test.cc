// CampaignPlan: a campaign resolved against a model — validation naming the field,
// eligibility, probabilities against the double reference, cancellation.

#include "core/campaign.h"

#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/models.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::core {
namespace {

using ::coupond::testing::ReferenceProbability;
using ::coupond::testing::StatusIs;
using ::coupond::testing::TinyModel;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class CampaignPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = TinyModel(6, 5, 4);
    data_.coupon_attributes[2].valid_until_unix_seconds = 100;  // expired at t=1000
    data_.coupon_attributes[3].stock = 7;
    ModelVersionInfo info;
    info.version = 3;
    info.dimension = 4;
    info.num_users = 6;
    info.num_coupons = 5;
    auto s = ModelSnapshot::Create(data_, info);
    ASSERT_TRUE(s.ok()) << s.status();
    model_ = *s;
  }
  CampaignSpec Spec() {
    CampaignSpec spec;
    spec.campaign_id = "spring";
    spec.budget = 10;
    spec.as_of_unix_seconds = 1000;
    for (const char* id : {"c0", "c2", "c3"}) spec.coupons.push_back({id, 1.0, std::nullopt, {}});
    return spec;
  }
  absl::StatusOr<std::unique_ptr<CampaignPlan>> Plan(const CampaignSpec& spec,
                                                     Population population = {true, {}}) {
    return CampaignPlan::Create(model_, spec, std::move(population));
  }
  ModelData data_;
  std::shared_ptr<const ModelSnapshot> model_;
};

TEST_F(CampaignPlanTest, ProbabilitiesMatchTheReferenceAndInactiveCouponsAreIneligible) {
  ASSERT_OK_AND_ASSIGN(auto plan, Plan(Spec()));
  ASSERT_EQ(plan->num_users(), 6u);
  std::vector<double> p(6 * 3);
  ASSERT_OK(plan->Fill(0, 6, absl::MakeSpan(p)));
  for (int u = 0; u < 6; ++u) {
    EXPECT_NEAR(p[u * 3 + 0], ReferenceProbability(data_, u, 0), 1e-6);
    EXPECT_EQ(p[u * 3 + 1], kNotEligible);  // c2 expired
    EXPECT_NEAR(p[u * 3 + 2], ReferenceProbability(data_, u, 3), 1e-6);
  }
  // Face values and stock come from the model.
  EXPECT_EQ(plan->coupons()[0].face_value, data_.coupon_attributes[0].face_value);
  EXPECT_EQ(plan->coupons()[2].stock, 7);
  EXPECT_FALSE(plan->coupons()[0].stock.has_value());  // unlimited
}

TEST_F(CampaignPlanTest, ExplicitPopulationWithUnknownUsersUsesThePrior) {
  ASSERT_OK_AND_ASSIGN(auto plan, Plan(Spec(), {false, {"u4", "newcomer"}}));
  EXPECT_EQ(plan->unknown_users(), 1u);
  EXPECT_TRUE(plan->known_user(0));
  EXPECT_FALSE(plan->known_user(1));
  EXPECT_EQ(plan->user_id(1), "newcomer");
  std::vector<double> p(2 * 3);
  ASSERT_OK(plan->Fill(0, 2, absl::MakeSpan(p)));
  EXPECT_NEAR(p[0], ReferenceProbability(data_, 4, 0), 1e-6);
  EXPECT_NEAR(p[3], ReferenceProbability(data_, -1, 0), 1e-6);
}

TEST_F(CampaignPlanTest, EligibleUserListsRestrictACoupon) {
  CampaignSpec spec = Spec();
  spec.coupons[0].eligible_user_ids = {"u1", "u5", "someone-else"};
  ASSERT_OK_AND_ASSIGN(auto plan, Plan(spec));
  std::vector<double> p(6 * 3);
  ASSERT_OK(plan->Fill(0, 6, absl::MakeSpan(p)));
  for (int u = 0; u < 6; ++u) {
    if (u == 1 || u == 5) {
      EXPECT_NE(p[u * 3], kNotEligible) << u;
    } else {
      EXPECT_EQ(p[u * 3], kNotEligible) << u;
    }
  }
}

TEST_F(CampaignPlanTest, CancelStopsLaterFills) {
  ASSERT_OK_AND_ASSIGN(auto plan, Plan(Spec()));
  plan->Cancel();
  std::vector<double> p(3);
  EXPECT_THAT(plan->Fill(0, 1, absl::MakeSpan(p)), StatusIs(absl::StatusCode::kCancelled));
}

TEST_F(CampaignPlanTest, BadCampaignsNameTheField) {
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  CampaignSpec spec = Spec();
  spec.coupons.push_back({"nope", 1.0, std::nullopt, {}});
  EXPECT_THAT(Plan(spec), StatusIs(kInvalid, StartsWith("campaign.coupons[3].coupon_id: 'nope' is not in model version 3")));
  spec = Spec();
  spec.coupons.push_back({"c0", 1.0, std::nullopt, {}});
  EXPECT_THAT(Plan(spec), StatusIs(kInvalid, StartsWith("campaign.coupons[3].coupon_id: duplicate of campaign.coupons[0]")));
  spec = Spec();
  spec.coupons[1].weight = -2;
  EXPECT_THAT(Plan(spec), StatusIs(kInvalid, StartsWith("campaign.coupons[1].value_weight")));
  spec = Spec();
  spec.coupons[1].weight = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THAT(Plan(spec), StatusIs(kInvalid, StartsWith("campaign.coupons[1].value_weight")));
  spec = Spec();
  spec.coupons[2].stock = -1;
  EXPECT_THAT(Plan(spec), StatusIs(kInvalid, StartsWith("campaign.coupons[2].stock")));
  spec = Spec();
  spec.budget = std::numeric_limits<double>::infinity();
  EXPECT_THAT(Plan(spec), StatusIs(kInvalid, StartsWith("campaign.budget")));
  spec = Spec();
  spec.max_coupons_per_user = 0;
  EXPECT_THAT(Plan(spec), StatusIs(kInvalid, StartsWith("campaign.max_coupons_per_user")));
  spec = Spec();
  spec.coupons.clear();
  EXPECT_THAT(Plan(spec), StatusIs(kInvalid, StartsWith("campaign.coupons: at least one")));
  EXPECT_THAT(Plan(Spec(), {false, {"u1", "u2", "u1"}}),
              StatusIs(kInvalid, StartsWith("users.user_ids[2]: duplicate of users.user_ids[0]")));
  EXPECT_THAT(Plan(Spec(), {false, {""}}), StatusIs(kInvalid, StartsWith("users.user_ids[0]: empty")));
}

TEST_F(CampaignPlanTest, SolvesEndToEndWithinBudgetAndStock) {
  CampaignSpec spec = Spec();
  spec.budget = 3.0;
  ASSERT_OK_AND_ASSIGN(auto plan, Plan(spec));
  ASSERT_OK_AND_ASSIGN(AssignmentResult r,
                       SolveAssignment(plan->coupons(), spec.budget, *plan, AssignmentOptions()));
  EXPECT_LE(r.expected_spend, spec.budget + 1e-9);
  EXPECT_LE(r.issued[2], 7);
  EXPECT_EQ(r.issued[1], 0);  // expired coupon never assigned
  EXPECT_GE(r.dual_bound, r.primal_value - 1e-9);
}

}  // namespace
}  // namespace coupond::core
