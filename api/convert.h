#ifndef COUPOND_API_CONVERT_H_
#define COUPOND_API_CONVERT_H_

// The mapping between the wire contract (coupond.v1 messages) and core's types, in one
// place, for the two edges that need it: the server's handlers and couponctl's offline
// commands (which run the same computation against a model store, without a server).
// Conversions copy fields; numeric validation is core's (CampaignPlan::Create and the
// solver), with field names that match the .proto.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/assignment.h"
#include "core/campaign.h"
#include "core/experiment.h"
#include "core/exploration.h"
#include "core/user_key.h"
#include "coupond/v1/coupon_scoring.pb.h"

namespace coupond::api {

// `now_unix_seconds` replaces an unset (0) as_of_unix_seconds.
core::CampaignSpec CampaignFromProto(const v1::Campaign& campaign, int64_t now_unix_seconds);

// InvalidArgument when no population is set. Segment names are checked against the model
// by core::CampaignPlan::Create.
absl::StatusOr<core::Population> PopulationFromProto(const v1::AssignRequest& request);

// Prices in the plan's coupon order. InvalidArgument naming the field for a price that is
// negative or non-finite, or a coupon that is not in the campaign.
absl::StatusOr<core::AssignmentPrices> PricesFromProto(const v1::CampaignPrices& prices,
                                                       const core::CampaignPlan& plan);

v1::CampaignPrices PricesToProto(const core::AssignmentPrices& prices,
                                 const core::CampaignPlan& plan);

// The summary of a solve; `solve_seconds` is the caller's measurement.
v1::AssignSummary SummaryToProto(const core::AssignmentResult& result,
                                 const core::CampaignPlan& plan, double solve_seconds);

// How Decide treats users of a campaign: its experiment (none when the campaign has no
// arms) and the model arm's exploration. InvalidArgument naming the field
// (campaign.experiment.arms[1].share, campaign.exploration, ...).
struct DecisionPolicy {
  std::optional<core::Experiment> experiment;
  core::ExplorationPolicy exploration;
};
absl::StatusOr<DecisionPolicy> DecisionPolicyFromProto(const v1::Campaign& campaign);

// The payload of a campaign's record in the model store (a serialized StoredCampaign).
// Checks everything that needs no model, so that a server can trust what it loads:
// core::ValidateCampaignSpec, DecisionPolicyFromProto, a non-empty campaign id, and prices that are finite, >= 0,
// for coupons of the campaign, and for this campaign (prices.campaign_id empty or equal;
// it is set). InvalidArgument naming the field.
absl::StatusOr<std::string> EncodeStoredCampaign(const v1::Campaign& campaign,
                                                 const v1::CampaignPrices& prices);
// Parses and checks a payload as EncodeStoredCampaign wrote it for `campaign_id`.
// DataLoss when it does not parse, InvalidArgument when a check fails.
absl::StatusOr<v1::StoredCampaign> DecodeStoredCampaign(absl::string_view campaign_id,
                                                        absl::string_view payload);

// Replaces every eligible_user_ids entry of `campaign` with its key (keys pass through
// unchanged, core/user_key.h). Every writer of a stored campaign calls it before
// EncodeStoredCampaign when the operator keys user ids, so that no raw id is at rest, and
// the server calls it at load (for records written without the secret) so that the lists
// match the keyed ids it serves. Returns how many entries were raw (0: already keyed);
// an error of UserKeyer::Key, with `campaign` partly keyed.
absl::StatusOr<size_t> KeyEligibleUserIds(const core::UserKeyer& keyer, v1::Campaign* campaign);

// Solver options from the request (0 fields take the solver's defaults).
core::AssignmentOptions SolverOptionsFromProto(const v1::AssignSolverOptions& options,
                                               int64_t max_coupons_per_user, int threads);

}  // namespace coupond::api

#endif  // COUPOND_API_CONVERT_H_
