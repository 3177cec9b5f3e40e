#include "api/convert.h"

#include <cmath>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/numeric_bounds.h"
#include "common/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace coupond::api {

core::CampaignSpec CampaignFromProto(const v1::Campaign& campaign, int64_t now_unix_seconds) {
  core::CampaignSpec spec;
  spec.campaign_id = campaign.campaign_id();
  spec.budget = campaign.budget();
  spec.max_coupons_per_user =
      campaign.has_max_coupons_per_user() ? int64_t{campaign.max_coupons_per_user()} : 1;
  spec.as_of_unix_seconds =
      campaign.as_of_unix_seconds() != 0 ? campaign.as_of_unix_seconds() : now_unix_seconds;
  spec.coupons.reserve(campaign.coupons_size());
  for (const v1::CampaignCoupon& c : campaign.coupons()) {
    core::CampaignCouponSpec coupon;
    coupon.coupon_id = c.coupon_id();
    if (c.has_value_weight()) coupon.weight = c.value_weight();
    if (c.has_stock()) coupon.stock = c.stock();
    coupon.eligible_user_ids.assign(c.eligible_user_ids().begin(), c.eligible_user_ids().end());
    spec.coupons.push_back(std::move(coupon));
  }
  return spec;
}

absl::StatusOr<size_t> KeyEligibleUserIds(const core::UserKeyer& keyer, v1::Campaign* campaign) {
  size_t raw = 0;
  for (v1::CampaignCoupon& c : *campaign->mutable_coupons()) {
    for (std::string& id : *c.mutable_eligible_user_ids()) {
      if (core::IsUserKey(id)) continue;
      COUPOND_ASSIGN_OR_RETURN(id, keyer.Key(id));
      ++raw;
    }
  }
  return raw;
}

absl::StatusOr<core::Population> PopulationFromProto(const v1::AssignRequest& request) {
  core::Population population;
  switch (request.population_case()) {
    case v1::AssignRequest::kUsers:
      population.user_ids.assign(request.users().user_ids().begin(),
                                 request.users().user_ids().end());
      return population;
    case v1::AssignRequest::kAllUsers:
      population.all_users = true;
      population.segments.assign(request.all_users().segments().begin(),
                                 request.all_users().segments().end());
      return population;
    default:
      return absl::InvalidArgumentError("population: required (users or all_users)");
  }
}

namespace {

// The checks every use of CampaignPrices shares: a budget price and stock prices in
// [0, core::kMaxPrice] (not subnormal), the stock prices for coupons of the campaign. `index` maps
// the campaign's coupon ids to their position.
absl::Status CheckPrices(const v1::CampaignPrices& prices,
                         const absl::flat_hash_map<absl::string_view, size_t>& index) {
  COUPOND_RETURN_IF_ERROR(common::CheckDoubleRange("prices.budget_price", prices.budget_price(),
                                                   0, core::kMaxPrice));
  for (const auto& [coupon_id, price] : prices.stock_prices()) {
    const std::string field = absl::StrCat("prices.stock_prices['", coupon_id.substr(0, 64), "']");
    if (!index.contains(coupon_id)) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": not a coupon of the campaign"));
    }
    COUPOND_RETURN_IF_ERROR(common::CheckDoubleRange(field, price, 0, core::kMaxPrice));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<core::AssignmentPrices> PricesFromProto(const v1::CampaignPrices& prices,
                                                       const core::CampaignPlan& plan) {
  absl::flat_hash_map<absl::string_view, size_t> index;
  for (size_t j = 0; j < plan.coupons().size(); ++j) index.emplace(plan.coupons()[j].id, j);
  COUPOND_RETURN_IF_ERROR(CheckPrices(prices, index));
  core::AssignmentPrices out;
  out.budget_price = prices.budget_price();
  out.stock_prices.assign(plan.coupons().size(), 0.0);
  for (const auto& [coupon_id, price] : prices.stock_prices()) {
    out.stock_prices[index.find(coupon_id)->second] = price;
  }
  return out;
}

v1::CampaignPrices PricesToProto(const core::AssignmentPrices& prices,
                                 const core::CampaignPlan& plan) {
  v1::CampaignPrices out;
  out.set_campaign_id(plan.spec().campaign_id);
  out.set_model_version(plan.model().info().version);
  // A subnormal price (a search that ended a hair above 0) is sent as 0: Decide refuses
  // subnormal prices (CheckPrices), and the difference is below any score's resolution.
  const auto flush = [](double v) { return std::fpclassify(v) == FP_SUBNORMAL ? 0.0 : v; };
  out.set_budget_price(flush(prices.budget_price));
  for (size_t j = 0; j < prices.stock_prices.size() && j < plan.coupons().size(); ++j) {
    if (const double price = flush(prices.stock_prices[j]); price != 0.0) {
      (*out.mutable_stock_prices())[plan.coupons()[j].id] = price;
    }
  }
  return out;
}

v1::AssignSummary SummaryToProto(const core::AssignmentResult& result,
                                 const core::CampaignPlan& plan, double solve_seconds) {
  v1::AssignSummary s;
  s.set_campaign_id(plan.spec().campaign_id);
  s.set_model_version(plan.model().info().version);
  s.set_users_considered(plan.num_users());
  s.set_unknown_users(plan.unknown_users());
  s.set_assignments(result.assignments.size());
  double redemptions = 0;
  std::vector<double> per_coupon(plan.coupons().size(), 0.0);
  uint64_t users_assigned = 0;
  for (size_t i = 0; i < result.assignments.size(); ++i) {
    const core::AssignedCoupon& a = result.assignments[i];
    redemptions += a.probability;
    per_coupon[a.coupon] += a.probability;
    if (i == 0 || result.assignments[i - 1].user != a.user) ++users_assigned;
  }
  s.set_users_assigned(users_assigned);
  s.set_expected_redemptions(redemptions);
  s.set_expected_value(result.primal_value);
  s.set_expected_spend(result.expected_spend);
  s.set_budget(plan.spec().budget);
  s.set_dual_bound(result.dual_bound);
  s.set_relative_gap(result.relative_gap);
  s.set_converged(result.converged);
  s.set_passes(static_cast<uint32_t>(result.passes));
  *s.mutable_prices() = PricesToProto(result.prices, plan);
  for (size_t j = 0; j < plan.coupons().size(); ++j) {
    v1::CouponIssue* issue = s.add_coupons();
    issue->set_coupon_id(plan.coupons()[j].id);
    issue->set_issued(j < result.issued.size() ? result.issued[j] : 0);
    issue->set_expected_redemptions(per_coupon[j]);
  }
  s.set_solve_seconds(solve_seconds);
  return s;
}

absl::StatusOr<DecisionPolicy> DecisionPolicyFromProto(const v1::Campaign& campaign) {
  DecisionPolicy policy;
  if (!campaign.exploration().empty()) {
    absl::StatusOr<core::ExplorationPolicy> exploration =
        core::ParseExplorationPolicy(campaign.exploration());
    if (!exploration.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("campaign.exploration: ", exploration.status().message()));
    }
    policy.exploration = *exploration;
    if (policy.exploration.kind != core::ExplorationPolicy::Kind::kGreedy &&
        campaign.has_max_coupons_per_user() && campaign.max_coupons_per_user() != 1) {
      return absl::InvalidArgumentError(
          "campaign.exploration: needs max_coupons_per_user 1 (a logged decision has one action)");
    }
  }
  if (campaign.has_experiment()) {
    const v1::Experiment& in = campaign.experiment();
    core::Experiment experiment;
    experiment.id = in.experiment_id();
    experiment.salt = in.salt();
    for (int i = 0; i < in.arms_size(); ++i) {
      const v1::ExperimentArm& a = in.arms(i);
      core::ExperimentArm arm;
      arm.name = a.name();
      arm.share = a.share();
      switch (a.policy()) {
        case v1::ARM_POLICY_CONTROL: arm.policy = core::ExperimentArm::Policy::kControl; break;
        case v1::ARM_POLICY_RANDOM: arm.policy = core::ExperimentArm::Policy::kRandom; break;
        case v1::ARM_POLICY_UNSPECIFIED:  // read as MODEL, as the proto says
        case v1::ARM_POLICY_MODEL: arm.policy = core::ExperimentArm::Policy::kModel; break;
        default:
          // proto3 keeps unknown enum numbers (a newer or a hostile client): refuse them
          // rather than guess a policy for an experiment arm.
          return absl::InvalidArgumentError(absl::StrCat("campaign.experiment.arms[", i,
                                                         "].policy: unknown value ",
                                                         static_cast<int>(a.policy())));
      }
      experiment.arms.push_back(std::move(arm));
    }
    if (absl::Status s = core::ValidateExperiment(experiment); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("campaign.experiment.", s.message()));
    }
    policy.experiment = std::move(experiment);
  }
  return policy;
}

namespace {

absl::Status CheckStoredCampaign(const v1::StoredCampaign& stored) {
  const v1::Campaign& campaign = stored.campaign();
  if (campaign.campaign_id().empty()) {
    return absl::InvalidArgumentError("campaign.campaign_id: required for a stored campaign");
  }
  COUPOND_RETURN_IF_ERROR(core::ValidateCampaignSpec(CampaignFromProto(campaign, 0)));
  COUPOND_RETURN_IF_ERROR(DecisionPolicyFromProto(campaign).status());
  const v1::CampaignPrices& prices = stored.prices();
  if (prices.campaign_id() != campaign.campaign_id()) {
    return absl::InvalidArgumentError(absl::StrCat("prices.campaign_id: '", prices.campaign_id().substr(0, 128),
                                                   "' differs from campaign.campaign_id '",
                                                   campaign.campaign_id(), "'"));
  }
  absl::flat_hash_map<absl::string_view, size_t> index;
  for (int j = 0; j < campaign.coupons_size(); ++j) {
    index.emplace(campaign.coupons(j).coupon_id(), static_cast<size_t>(j));
  }
  COUPOND_RETURN_IF_ERROR(CheckPrices(prices, index));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> EncodeStoredCampaign(const v1::Campaign& campaign,
                                                 const v1::CampaignPrices& prices) {
  v1::StoredCampaign stored;
  *stored.mutable_campaign() = campaign;
  *stored.mutable_prices() = prices;
  if (stored.prices().campaign_id().empty()) {
    stored.mutable_prices()->set_campaign_id(campaign.campaign_id());
  }
  COUPOND_RETURN_IF_ERROR(CheckStoredCampaign(stored));
  std::string payload;
  // Deterministic: equal campaigns give equal bytes (map order fixed), so a record's
  // checksum identifies its content.
  {
    google::protobuf::io::StringOutputStream stream(&payload);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    if (!stored.SerializeToCodedStream(&coded)) {
      return absl::InternalError("serializing the stored campaign failed");
    }
  }
  return payload;
}

absl::StatusOr<v1::StoredCampaign> DecodeStoredCampaign(absl::string_view campaign_id,
                                                        absl::string_view payload) {
  v1::StoredCampaign stored;
  if (!stored.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::DataLossError(absl::StrCat("stored campaign '", campaign_id,
                                            "': the record does not parse as a StoredCampaign"));
  }
  if (stored.campaign().campaign_id() != campaign_id) {
    return absl::DataLossError(absl::StrCat("stored campaign '", campaign_id, "': its record names campaign '",
                                            stored.campaign().campaign_id().substr(0, 128), "'"));
  }
  if (absl::Status s = CheckStoredCampaign(stored); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("stored campaign '", campaign_id, "': ", s.message()));
  }
  return stored;
}

core::AssignmentOptions SolverOptionsFromProto(const v1::AssignSolverOptions& options,
                                               int64_t max_coupons_per_user, int threads) {
  core::AssignmentOptions out;
  out.max_coupons_per_user = static_cast<int>(max_coupons_per_user);
  out.threads = threads;
  if (options.max_iterations() != 0) out.max_iterations = static_cast<int>(options.max_iterations());
  if (options.tolerance() != 0) out.tolerance = options.tolerance();
  return out;
}

}  // namespace coupond::api
