// The payload of a stored campaign (api::EncodeStoredCampaign / DecodeStoredCampaign): what
// a publisher may store, and what a server refuses to load.

#include <cmath>
#include <limits>
#include <string>

#include "api/convert.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::api {
namespace {

using ::coupond::testing::IsOk;
using ::coupond::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

v1::Campaign SpringCampaign() {
  v1::Campaign c;
  c.set_campaign_id("spring");
  c.set_budget(100);
  c.add_coupons()->set_coupon_id("c1");
  c.add_coupons()->set_coupon_id("c2");
  return c;
}

v1::CampaignPrices SomePrices() {
  v1::CampaignPrices p;
  p.set_model_version(7);
  p.set_budget_price(0.25);
  (*p.mutable_stock_prices())["c2"] = 0.5;
  (*p.mutable_stock_prices())["c1"] = 0.125;
  return p;
}

TEST(StoredCampaignTest, RoundTripsAndFillsInThePricesCampaignId) {
  auto payload = EncodeStoredCampaign(SpringCampaign(), SomePrices());
  ASSERT_THAT(payload.status(), IsOk());
  auto stored = DecodeStoredCampaign("spring", *payload);
  ASSERT_THAT(stored.status(), IsOk());
  EXPECT_EQ(stored->campaign().coupons_size(), 2);
  EXPECT_EQ(stored->prices().campaign_id(), "spring");
  EXPECT_EQ(stored->prices().budget_price(), 0.25);
  EXPECT_EQ(stored->prices().stock_prices().at("c2"), 0.5);
  EXPECT_EQ(stored->prices().model_version(), 7u);
  // Deterministic bytes (map order fixed): equal content, equal payload.
  for (int i = 0; i < 20; ++i) {
    auto again = EncodeStoredCampaign(SpringCampaign(), SomePrices());
    ASSERT_THAT(again.status(), IsOk());
    EXPECT_EQ(*again, *payload);
  }
}

TEST(StoredCampaignTest, RefusesWhatADecisionCouldNotUse) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  auto encode_with = [](auto edit_campaign, auto edit_prices) {
    v1::Campaign c = SpringCampaign();
    v1::CampaignPrices p = SomePrices();
    edit_campaign(c);
    edit_prices(p);
    return EncodeStoredCampaign(c, p).status();
  };
  auto same = [](auto&) {};
  EXPECT_THAT(encode_with([](v1::Campaign& c) { c.clear_campaign_id(); }, same),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("campaign.campaign_id")));
  EXPECT_THAT(encode_with([](v1::Campaign& c) { c.clear_coupons(); }, [](v1::CampaignPrices& p) { p.clear_stock_prices(); }),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("campaign.coupons")));
  EXPECT_THAT(encode_with([&](v1::Campaign& c) { c.set_budget(nan); }, same),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("campaign.budget")));
  EXPECT_THAT(encode_with([](v1::Campaign& c) { c.add_coupons()->set_coupon_id("c1"); }, same),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("campaign.coupons[2].coupon_id: duplicate of campaign.coupons[0]")));
  EXPECT_THAT(encode_with([&](v1::Campaign& c) { c.mutable_coupons(0)->set_value_weight(-inf); }, same),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("campaign.coupons[0].value_weight")));
  EXPECT_THAT(encode_with(same, [&](v1::CampaignPrices& p) { p.set_budget_price(nan); }),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("prices.budget_price")));
  EXPECT_THAT(encode_with(same, [](v1::CampaignPrices& p) { (*p.mutable_stock_prices())["c9"] = 1; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("prices.stock_prices['c9']: not a coupon of the campaign")));
  EXPECT_THAT(encode_with(same, [](v1::CampaignPrices& p) { (*p.mutable_stock_prices())["c1"] = -1; }),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("prices.stock_prices['c1']")));
  EXPECT_THAT(encode_with(same, [](v1::CampaignPrices& p) { p.set_campaign_id("autumn"); }),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("prices.campaign_id")));
}

TEST(StoredCampaignTest, DecodeRefusesGarbageAndRecordsOfAnotherCampaign) {
  EXPECT_THAT(DecodeStoredCampaign("spring", std::string("\xff\xff\xff", 3)).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("does not parse")));
  auto payload = EncodeStoredCampaign(SpringCampaign(), SomePrices());
  ASSERT_THAT(payload.status(), IsOk());
  EXPECT_THAT(DecodeStoredCampaign("autumn", *payload).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("names campaign 'spring'")));
  // An empty payload parses as an empty message: no campaign id, so not this campaign's.
  EXPECT_THAT(DecodeStoredCampaign("spring", "").status(),
              StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace coupond::api

namespace coupond::api {
namespace {

// proto3 keeps enum numbers it does not know; an arm's policy is never guessed from one.
TEST(DecisionPolicyFromProtoTest, UnknownArmPoliciesAreRefusedNamingTheArm) {
  v1::Campaign c;
  c.set_campaign_id("spring");
  c.set_budget(100);
  c.add_coupons()->set_coupon_id("c1");
  v1::Experiment* e = c.mutable_experiment();
  e->set_experiment_id("exp");
  e->set_salt("s1");
  v1::ExperimentArm* control = e->add_arms();
  control->set_name("control");
  control->set_share(0.5);
  control->set_policy(v1::ARM_POLICY_CONTROL);
  v1::ExperimentArm* model = e->add_arms();
  model->set_name("model");
  model->set_share(0.5);
  model->set_policy(v1::ARM_POLICY_UNSPECIFIED);  // read as MODEL
  ASSERT_OK_AND_ASSIGN(DecisionPolicy policy, DecisionPolicyFromProto(c));
  ASSERT_TRUE(policy.experiment.has_value());
  EXPECT_EQ(policy.experiment->arms[1].policy, core::ExperimentArm::Policy::kModel);
  for (int unknown : {99, -1}) {
    model->set_policy(static_cast<v1::ArmPolicy>(unknown));
    EXPECT_THAT(DecisionPolicyFromProto(c),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         StartsWith(absl::StrCat("campaign.experiment.arms[1].policy: unknown value ",
                                                 unknown))));
  }
}

}  // namespace
}  // namespace coupond::api
