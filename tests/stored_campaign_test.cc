// The payload of a stored campaign (api::EncodeStoredCampaign / DecodeStoredCampaign): what
// a publisher may store, and what a server refuses to load.

#include <cmath>
#include <limits>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "api/convert.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/extreme_values.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::api {
namespace {

using ::coupond::testing::ExtremeDoubles;
using ::coupond::testing::ExtremeInt64s;
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

// Every numeric field of a campaign and its prices has a finite range (issue 15: a
// value_weight of 1e308 gave an Assign summary of "Infinity"). The checks here are the ones
// Assign, Decide and the store share (core::ValidateCampaignSpec, api::CheckPrices): each
// extreme value is INVALID_ARGUMENT naming the field, and each range's ends are accepted.
TEST(CampaignBoundsTest, ExtremeNumbersAreRefusedNamingTheField) {
  struct DoubleField {
    const char* name;  // the message's field prefix
    double largest;
    std::function<void(v1::Campaign&, v1::CampaignPrices&, double)> set;
  };
  const std::vector<DoubleField> doubles = {
      {"campaign.budget", 1e12, [](v1::Campaign& c, v1::CampaignPrices&, double v) { c.set_budget(v); }},
      {"campaign.coupons[1].value_weight", 1e6,
       [](v1::Campaign& c, v1::CampaignPrices&, double v) { c.mutable_coupons(1)->set_value_weight(v); }},
      {"prices.budget_price", 1e12,
       [](v1::Campaign&, v1::CampaignPrices& p, double v) { p.set_budget_price(v); }},
      {"prices.stock_prices['c2']", 1e12,
       [](v1::Campaign&, v1::CampaignPrices& p, double v) { (*p.mutable_stock_prices())["c2"] = v; }},
  };
  for (const DoubleField& f : doubles) {
    for (double ok : {0.0, 1e-300, 0.5, f.largest}) {
      v1::Campaign c = SpringCampaign();
      v1::CampaignPrices p = SomePrices();
      f.set(c, p, ok);
      EXPECT_THAT(EncodeStoredCampaign(c, p).status(), IsOk()) << f.name << " = " << ok;
    }
    std::vector<double> bad = ExtremeDoubles();
    bad.push_back(std::nextafter(f.largest, 1e300));
    for (double v : bad) {
      v1::Campaign c = SpringCampaign();
      v1::CampaignPrices p = SomePrices();
      f.set(c, p, v);
      EXPECT_THAT(EncodeStoredCampaign(c, p).status(),
                  StatusIs(absl::StatusCode::kInvalidArgument, StartsWith(absl::StrCat(f.name, ": "))))
          << f.name << " = " << v;
    }
  }
  // The message says the value and the range.
  {
    v1::Campaign huge = SpringCampaign();
    huge.mutable_coupons(0)->set_value_weight(1e308);
    EXPECT_THAT(EncodeStoredCampaign(huge, SomePrices()).status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         StartsWith("campaign.coupons[0].value_weight: 1e+308 is out of range [0, 1e+06]")));
    v1::Campaign tiny = SpringCampaign();
    tiny.set_budget(5e-324);
    EXPECT_THAT(EncodeStoredCampaign(tiny, SomePrices()).status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         StartsWith("campaign.budget: 4.94066e-324 is subnormal")));
  }

  // Integers: stock in [0, 1e12], times in [0, year 9999], max_coupons_per_user in [1, 1000].
  struct IntField {
    const char* name;
    int64_t smallest, largest;
    std::function<void(v1::Campaign&, int64_t)> set;
  };
  const std::vector<IntField> ints = {
      {"campaign.coupons[0].stock", 0, 1'000'000'000'000,
       [](v1::Campaign& c, int64_t v) { c.mutable_coupons(0)->set_stock(v); }},
      {"campaign.as_of_unix_seconds", 1, 253'402'300'799,  // 0 means now
       [](v1::Campaign& c, int64_t v) { c.set_as_of_unix_seconds(v); }},
  };
  for (const IntField& f : ints) {
    for (int64_t ok : {f.smallest, f.largest}) {
      v1::Campaign c = SpringCampaign();
      f.set(c, ok);
      EXPECT_THAT(EncodeStoredCampaign(c, SomePrices()).status(), IsOk()) << f.name << " = " << ok;
    }
    std::vector<int64_t> bad = ExtremeInt64s();
    bad.push_back(f.largest + 1);
    for (int64_t v : bad) {
      v1::Campaign c = SpringCampaign();
      f.set(c, v);
      EXPECT_THAT(EncodeStoredCampaign(c, SomePrices()).status(),
                  StatusIs(absl::StatusCode::kInvalidArgument, StartsWith(absl::StrCat(f.name, ": "))))
          << f.name << " = " << v;
    }
  }
  for (uint32_t k : {1u, 1000u}) {
    v1::Campaign c = SpringCampaign();
    c.set_max_coupons_per_user(k);
    EXPECT_THAT(EncodeStoredCampaign(c, SomePrices()).status(), IsOk()) << k;
  }
  for (uint32_t k : {0u, 1001u, 4'294'967'295u}) {  // 0: must be positive
    v1::Campaign c = SpringCampaign();
    c.set_max_coupons_per_user(k);
    EXPECT_THAT(EncodeStoredCampaign(c, SomePrices()).status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         StartsWith(absl::StrCat("campaign.max_coupons_per_user: ", k,
                                                 " is out of range [1, 1000]"))));
  }

  // Experiment shares: fractions in [0, 1]; exploration parameters: epsilon in [0, 1],
  // temperature finite and > 0 (0 must be positive).
  auto with_experiment = [](double share) {
    v1::Campaign c = SpringCampaign();
    v1::Experiment* e = c.mutable_experiment();
    e->set_experiment_id("e");
    e->set_salt("s");
    v1::ExperimentArm* a = e->add_arms();
    a->set_name("all");
    a->set_share(share);
    return c;
  };
  EXPECT_THAT(EncodeStoredCampaign(with_experiment(1.0), SomePrices()).status(), IsOk());
  for (double v : ExtremeDoubles()) {
    EXPECT_THAT(EncodeStoredCampaign(with_experiment(v), SomePrices()).status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         StartsWith("campaign.experiment.arms[0].share: ")))
        << v;
  }
  for (const char* bad : {"softmax:0", "softmax:-1", "softmax:nan", "softmax:inf", "softmax:1e999",
                          "epsilon_greedy:1.5", "epsilon_greedy:-0.1", "epsilon_greedy:nan"}) {
    v1::Campaign c = SpringCampaign();
    c.set_exploration(bad);
    EXPECT_THAT(EncodeStoredCampaign(c, SomePrices()).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("campaign.exploration: ")))
        << bad;
  }
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
