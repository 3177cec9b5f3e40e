#include "server/scoring_service.h"

#include "absl/strings/string_view.h"
#include <algorithm>
#include <optional>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "api/convert.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"
#include "core/campaign.h"
#include "core/experiment.h"
#include "core/exploration.h"
#include "core/scorer.h"
#include "spdlog/spdlog.h"

namespace coupond::server {
namespace {

std::string NewRequestId() {
  thread_local absl::InsecureBitGen gen;
  return absl::StrFormat("%016x", absl::Uniform<uint64_t>(gen));
}

absl::Status NoModel() {
  return absl::UnavailableError("no model version loaded yet; retry later");
}

// 128 random bits, hex: unique across replicas without coordination.
std::string NewDecisionId() {
  thread_local absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen));
}

// The loaded record of a stored campaign, held by the caller for its whole call (like the
// snapshot); NotFound naming campaign_id when none is loaded.
absl::StatusOr<std::shared_ptr<const LoadedCampaign>> FindStoredCampaign(
    const ModelManager& models, const std::string& campaign_id) {
  const std::shared_ptr<const CampaignBook> book = models.Campaigns();
  auto it = book->find(campaign_id);
  if (it == book->end()) {
    return absl::NotFoundError(absl::StrCat("campaign_id: no stored campaign '", campaign_id,
                                            "' is loaded (see ListCampaigns)"));
  }
  return it->second;
}

std::string RequestIdOrNew(const std::string& request_id) {
  return request_id.empty() ? NewRequestId() : request_id;
}

}  // namespace

absl::Status ScoringService::DoScore(const v1::ScoreRequest& request,
                                     v1::ScoreResponse* response) const {
  response->set_request_id(RequestIdOrNew(request.request_id()));
  if (absl::Status s = ValidateScoreRequest(request, options_.limits); !s.ok()) return s;
  const std::shared_ptr<const core::ModelSnapshot> model = models_->Current();
  if (model == nullptr) return NoModel();

  std::vector<absl::string_view> candidates(request.coupon_ids().begin(),
                                           request.coupon_ids().end());
  // A stored campaign's coupons: looked up when its book entry was built, for this model
  // version unless a swap happened in between (then looked up here, once).
  std::shared_ptr<const LoadedCampaign> stored;
  std::optional<core::ResolvedCoupons> resolved_here;
  const core::ResolvedCoupons* resolved = nullptr;
  if (!request.campaign_id().empty()) {
    COUPOND_ASSIGN_OR_RETURN(stored, FindStoredCampaign(*models_, request.campaign_id()));
    if (stored->candidates != nullptr &&
        stored->candidates->model_version == model->info().version) {
      resolved = stored->candidates.get();
    } else {
      // Gathered (no contiguous copy): this list serves one call.
      resolved_here = core::ResolveCoupons(*model, CampaignCouponIds(stored->stored.campaign()));
      resolved = &*resolved_here;
    }
    response->set_campaign_id(stored->campaign_id);
    response->set_campaign_sequence(stored->sequence);
  }
  std::vector<core::UserAttribute> attributes;
  attributes.reserve(request.user_attributes().size());
  for (const auto& [name, value] : request.user_attributes()) {
    attributes.push_back(core::UserAttribute{name, value});
  }
  COUPOND_ASSIGN_OR_RETURN(const std::string user_key, UserKey(request.user_id()));
  core::ScoreQuery query;
  query.user_id = user_key;
  query.user_attributes = attributes;
  query.coupon_ids = candidates;
  query.resolved = resolved;
  query.as_of_unix_seconds = request.as_of_unix_seconds() != 0 ? request.as_of_unix_seconds()
                                                               : absl::ToUnixSeconds(absl::Now());
  query.top_k = request.top_k();
  const core::ScoreResult result = core::ScoreCoupons(*model, query);

  response->set_model_version(model->info().version);
  switch (result.user_source) {
    case core::UserSource::kKnownUser:
      response->set_user_resolution(v1::USER_RESOLUTION_KNOWN_USER);
      break;
    case core::UserSource::kSegmentPrior:
      response->set_user_resolution(v1::USER_RESOLUTION_SEGMENT_PRIOR);
      response->set_segment(model->segment(static_cast<size_t>(result.segment)).name);
      break;
    case core::UserSource::kPopulationPrior:
      response->set_user_resolution(v1::USER_RESOLUTION_POPULATION_PRIOR);
      break;
  }
  response->set_ignored_user_attributes(result.ignored_attributes);
  response->set_candidates_scored(static_cast<uint32_t>(result.candidates_scored));
  response->mutable_scores()->Reserve(static_cast<int>(result.scores.size()));
  for (const core::ScoredCoupon& s : result.scores) {
    v1::CouponScore* out = response->add_scores();
    out->set_coupon_id(model->coupon_id(s.coupon_row));
    out->set_probability(s.probability);
    out->set_logit(s.logit);
    out->set_predicted_from_attributes(model->coupon_predicted_from_attributes(s.coupon_row));
  }
  // The reported indices are positions in the request's list or the campaign's.
  auto candidate_id = [&request, &stored](uint32_t i) -> const std::string& {
    return stored != nullptr ? stored->stored.campaign().coupons(static_cast<int>(i)).coupon_id()
                             : request.coupon_ids(static_cast<int>(i));
  };
  for (uint32_t i : result.unknown_coupons) response->add_unknown_coupon_ids(candidate_id(i));
  for (uint32_t i : result.inactive_coupons) response->add_inactive_coupon_ids(candidate_id(i));
  return absl::OkStatus();
}

absl::Status ScoringService::DoGetModelInfo(const v1::GetModelInfoRequest& request,
                                            v1::GetModelInfoResponse* response) const {
  response->set_request_id(RequestIdOrNew(request.request_id()));
  if (absl::Status s = ValidateGetModelInfoRequest(request, options_.limits); !s.ok()) return s;
  const std::shared_ptr<const core::ModelSnapshot> model = models_->Current();
  if (model == nullptr) return NoModel();
  const core::ModelVersionInfo& info = model->info();
  v1::ModelInfo* out = response->mutable_model();
  out->set_version(info.version);
  out->set_dimension(info.dimension);
  out->set_num_users(info.num_users);
  out->set_num_coupons(info.num_coupons);
  out->set_num_segments(static_cast<uint32_t>(info.num_segments));
  out->set_global_bias(info.global_bias);
  out->set_created_unix_seconds(info.created_unix_seconds);
  out->set_checksum(absl::StrFormat("%016x", info.checksum));
  out->set_loaded_unix_seconds(absl::ToUnixSeconds(model->built_at()));
  out->set_description(info.description);
  out->mutable_metadata()->insert(info.metadata.begin(), info.metadata.end());
  response->set_live_snapshots(static_cast<uint32_t>(core::ModelSnapshot::LiveCount()));
  response->set_snapshot_bytes(model->memory_bytes());
  return absl::OkStatus();
}

absl::Status ScoringService::DoDecide(const v1::DecideRequest& request,
                                      v1::DecideResponse* response) const {
  response->set_request_id(RequestIdOrNew(request.request_id()));
  if (absl::Status s = ValidateDecideRequest(request, options_.limits); !s.ok()) return s;
  std::shared_ptr<const core::ModelSnapshot> model = models_->Current();
  if (model == nullptr) return NoModel();
  response->set_model_version(model->info().version);

  // The campaign and its prices: from the request, or the stored campaign it names. The
  // book entry is held for the whole call, like the snapshot.
  const v1::Campaign* campaign = &request.campaign();
  const v1::CampaignPrices* prices = &request.prices();
  std::shared_ptr<const LoadedCampaign> stored;
  if (!request.campaign_id().empty()) {
    COUPOND_ASSIGN_OR_RETURN(stored, FindStoredCampaign(*models_, request.campaign_id()));
    campaign = &stored->stored.campaign();
    prices = &stored->stored.prices();
    response->set_campaign_id(stored->campaign_id);
    response->set_campaign_sequence(stored->sequence);
  }
  response->set_prices_model_version(prices->model_version());

  const int64_t now = absl::ToUnixSeconds(absl::Now());
  COUPOND_ASSIGN_OR_RETURN(const std::string user_key, UserKey(request.user_id()));
  core::Population one;
  one.user_ids.push_back(user_key);
  if (!request.user_attributes().empty()) {
    one.user_attributes.emplace_back(request.user_attributes().begin(),
                                     request.user_attributes().end());
  }
  core::CampaignSpec spec = api::CampaignFromProto(*campaign, now);
  if (options_.user_keyer != nullptr && stored == nullptr) {
    // An inline campaign's eligibility lists hold the caller's ids, as Assign's do; a stored
    // campaign's were keyed when it was loaded (ModelManagerOptions::user_keyer).
    for (core::CampaignCouponSpec& c : spec.coupons) {
      COUPOND_RETURN_IF_ERROR(options_.user_keyer->KeyAll(&c.eligible_user_ids));
    }
  }
  absl::StatusOr<std::unique_ptr<core::CampaignPlan>> plan =
      core::CampaignPlan::Create(model, spec, std::move(one));
  if (!plan.ok()) {
    // A stored campaign was checked when it was published; what can still fail is its fit
    // to the current model (e.g. a coupon the new version no longer has). That is the
    // store's state, not the caller's mistake.
    if (stored != nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "stored campaign '", stored->campaign_id, "' (record ", stored->sequence,
          ") does not fit model version ", model->info().version, ": ", plan.status().message()));
    }
    return plan.status();
  }
  absl::StatusOr<core::AssignmentPrices> plan_prices = api::PricesFromProto(*prices, **plan);
  if (!plan_prices.ok()) return plan_prices.status();
  response->set_user_resolution((*plan)->known_user(0)             ? v1::USER_RESOLUTION_KNOWN_USER
                                : (*plan)->prior_segment(0) >= 0 ? v1::USER_RESOLUTION_SEGMENT_PRIOR
                                                                 : v1::USER_RESOLUTION_POPULATION_PRIOR);
  // A stored campaign's policy was parsed when it was loaded; an inline one is parsed here.
  absl::StatusOr<api::DecisionPolicy> inline_policy;
  if (stored == nullptr) {
    inline_policy = api::DecisionPolicyFromProto(*campaign);
    if (!inline_policy.ok()) return inline_policy.status();
  }
  const api::DecisionPolicy* policy = stored != nullptr ? &stored->policy : &*inline_policy;
  std::vector<double> probabilities((*plan)->coupons().size());
  // ScoreUser, not Fill: the probabilities Score gives for this user, to the bit.
  if (absl::Status s = (*plan)->ScoreUser(0, absl::MakeSpan(probabilities)); !s.ok()) return s;

  // The eligible candidates and their reduced scores: what every policy chooses among.
  const absl::Span<const core::AssignmentCoupon> coupons = (*plan)->coupons();
  std::vector<uint32_t> eligible;
  std::vector<double> scores;
  for (size_t j = 0; j < coupons.size(); ++j) {
    if (probabilities[j] == core::kNotEligible) continue;
    eligible.push_back(static_cast<uint32_t>(j));
    scores.push_back(core::ReducedScore(coupons[j], plan_prices->budget_price,
                                        plan_prices->stock_prices[j], probabilities[j]));
  }

  // The user's arm decides the policy: control (nothing), random (one eligible coupon
  // uniformly) or the model (greedy top-k, or one coupon drawn by the exploration policy).
  core::ExperimentArm::Policy arm_policy = core::ExperimentArm::Policy::kModel;
  if (policy->experiment.has_value()) {
    const core::ExperimentArm& arm =
        policy->experiment->arms[core::ArmIndex(*policy->experiment, user_key)];
    arm_policy = arm.policy;
    response->set_experiment_id(policy->experiment->id);
    response->set_arm(arm.name);
  }
  // Action probabilities over eligible[0..n) and nothing (index n), for the decision log.
  std::vector<double> action_probabilities(eligible.size() + 1, 0.0);
  std::vector<core::CouponChoice> chosen;
  std::string policy_name;
  thread_local absl::BitGen gen;
  if (arm_policy == core::ExperimentArm::Policy::kControl) {
    policy_name = "control";
    action_probabilities.back() = 1.0;
  } else if (arm_policy == core::ExperimentArm::Policy::kRandom) {
    policy_name = "random";
    if (eligible.empty()) {
      action_probabilities.back() = 1.0;
    } else {
      std::fill(action_probabilities.begin(), action_probabilities.end() - 1,
                1.0 / static_cast<double>(eligible.size()));
      const size_t a = absl::Uniform<size_t>(gen, 0, eligible.size());
      chosen.push_back(core::CouponChoice{eligible[a], scores[a]});
    }
  } else if (policy->exploration.kind == core::ExplorationPolicy::Kind::kGreedy) {
    policy_name = "greedy";
    absl::StatusOr<std::vector<core::CouponChoice>> top = core::ChooseCoupons(
        coupons, *plan_prices, probabilities, static_cast<int>((*plan)->spec().max_coupons_per_user));
    if (!top.ok()) return top.status();
    chosen = *std::move(top);
    // Deterministic: the first choice is certain (the log records the first slot).
    if (chosen.empty()) {
      action_probabilities.back() = 1.0;
    } else {
      const size_t a = static_cast<size_t>(
          std::find(eligible.begin(), eligible.end(), chosen[0].coupon) - eligible.begin());
      action_probabilities[a] = 1.0;
    }
  } else {
    policy_name = core::FormatExplorationPolicy(policy->exploration);
    absl::StatusOr<std::vector<double>> p = core::ActionProbabilities(scores, policy->exploration);
    if (!p.ok()) return p.status();
    action_probabilities = *std::move(p);
    const size_t a = core::SampleAction(action_probabilities, absl::Uniform<double>(gen, 0.0, 1.0));
    if (a < eligible.size()) chosen.push_back(core::CouponChoice{eligible[a], scores[a]});
  }
  const double propensity =
      chosen.empty()
          ? action_probabilities.back()
          : action_probabilities[static_cast<size_t>(
                std::find(eligible.begin(), eligible.end(), chosen[0].coupon) - eligible.begin())];
  response->set_propensity(propensity);
  for (const core::CouponChoice& c : chosen) {
    v1::CouponDecision* out = response->add_chosen();
    out->set_coupon_id(coupons[c.coupon].id);
    out->set_probability(probabilities[c.coupon]);
    out->set_score(c.score);
  }

  if (decisions_ != nullptr) {
    // Everything an off-line evaluation needs (couponctl ope): every eligible candidate
    // with its probability, score and logging propensity, and the chosen action's.
    v1::DecisionRecord record;
    record.set_decision_id(NewDecisionId());
    record.set_unix_micros(absl::ToUnixMicros(absl::Now()));
    record.set_user_key(user_key);
    record.set_campaign_id(campaign->campaign_id());
    if (stored != nullptr) record.set_campaign_sequence(stored->sequence);
    record.set_experiment_id(response->experiment_id());
    record.set_arm(response->arm());
    record.set_model_version(model->info().version);
    record.set_prices_model_version(prices->model_version());
    record.set_policy(policy_name);
    for (size_t a = 0; a < eligible.size(); ++a) {
      v1::DecisionCandidate* c = record.add_candidates();
      c->set_coupon_id(coupons[eligible[a]].id);
      c->set_probability(probabilities[eligible[a]]);
      c->set_score(scores[a]);
      c->set_propensity(action_probabilities[a]);
    }
    if (!chosen.empty()) record.set_chosen_coupon_id(coupons[chosen[0].coupon].id);
    record.set_propensity(propensity);
    // Every coupon given is its own slot. Greedy slates are certain (each slot and the
    // slate have probability 1); a random arm and the exploration policies give one coupon,
    // whose slate is as likely as the coupon.
    const bool greedy = arm_policy == core::ExperimentArm::Policy::kModel &&
                        policy->exploration.kind == core::ExplorationPolicy::Kind::kGreedy;
    for (const core::CouponChoice& c : chosen) {
      v1::DecisionSlot* slot = record.add_slots();
      slot->set_coupon_id(coupons[c.coupon].id);
      slot->set_propensity(greedy ? 1.0 : propensity);
    }
    record.set_slate_propensity(greedy ? 1.0 : propensity);
    record.set_max_slots(static_cast<uint32_t>((*plan)->spec().max_coupons_per_user));
    response->set_decision_id(record.decision_id());
    decisions_->Log(std::move(record));
  }
  return absl::OkStatus();
}

absl::Status ScoringService::DoListCampaigns(const v1::ListCampaignsRequest& request,
                                             v1::ListCampaignsResponse* response) const {
  response->set_request_id(RequestIdOrNew(request.request_id()));
  if (absl::Status s = ValidateListCampaignsRequest(request, options_.limits); !s.ok()) return s;
  const std::shared_ptr<const CampaignBook> book = models_->Campaigns();
  for (const auto& [id, loaded] : *book) {
    const v1::Campaign& c = loaded->stored.campaign();
    v1::CampaignInfo* info = response->add_campaigns();
    info->set_campaign_id(id);
    info->set_sequence(loaded->sequence);
    info->set_published_unix_seconds(loaded->published_unix_seconds);
    info->set_num_coupons(static_cast<uint32_t>(c.coupons_size()));
    info->set_budget(c.budget());
    info->set_max_coupons_per_user(c.has_max_coupons_per_user() ? c.max_coupons_per_user() : 1);
    info->set_budget_price(loaded->stored.prices().budget_price());
    info->set_prices_model_version(loaded->stored.prices().model_version());
  }
  return absl::OkStatus();
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* ScoringService::Assign(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_body) {
  if (absl::Status s = CheckCallWanted(*context, "Assign", options_.limits.min_deadline_remaining,
                                       &dropped_);
      !s.ok()) {
    return new AssignReactor(common::ToGrpcStatus(s));
  }
  // Parsed straight into the request the reactor keeps: the campaign is resolved on the
  // reactor's own thread. Not in an arena: the reactor outlives this handler.
  v1::AssignRequest request;
  if (absl::Status s = edge::ParseRequestBody(*request_body, options_.max_request_bytes, &request);
      !s.ok()) {
    return new AssignReactor(common::ToGrpcStatus(s));
  }
  auto refuse = [&](const absl::Status& s) {
    edge::AttachRequestId(context, request);
    return new AssignReactor(common::ToGrpcStatus(s));
  };
  const std::string request_id = RequestIdOrNew(request.request_id());
  if (absl::Status s = ValidateAssignRequest(request, options_.limits); !s.ok()) return refuse(s);
  std::shared_ptr<const core::ModelSnapshot> model = models_->Current();
  if (model == nullptr) return refuse(NoModel());
  if (!assign_jobs_.TryStart()) {
    return refuse(absl::ResourceExhaustedError(absl::StrCat(
        options_.max_concurrent_assigns, " Assign calls are already running; retry later")));
  }
  AssignReactor::Options options;
  options.solver_threads = options_.assign_threads;
  options.chunk_size = request.chunk_size() != 0 ? request.chunk_size()
                                                 : options_.assign_chunk_size;
  options.now_unix_seconds = absl::ToUnixSeconds(absl::Now());
  options.user_keyer = options_.user_keyer;
  options.max_population = options_.limits.max_population;
  options.release_memory_after = options_.release_memory_after_assign;
  return new AssignReactor(request_id, std::move(request), std::move(model), options,
                           &assign_jobs_);
}

grpc::ServerUnaryReactor* ScoringService::Decide(grpc::CallbackServerContext* context,
                                                 const grpc::ByteBuffer* request_body,
                                                 grpc::ByteBuffer* response_body) {
  if (auto* done = FinishIfUnwanted(context, "Decide", options_.limits.min_deadline_remaining,
                                    &dropped_)) {
    return done;
  }
  return edge::ServeUnary<v1::DecideRequest, v1::DecideResponse>(
      context, *request_body, response_body, options_.max_request_bytes,
      [this](const v1::DecideRequest& request, v1::DecideResponse* response) {
        const absl::Status status = DoDecide(request, response);
        spdlog::debug("Decide request_id={} status={} chosen={}", response->request_id(),
                      absl::StatusCodeToString(status.code()), response->chosen_size());
        return status;
      });
}

grpc::ServerUnaryReactor* ScoringService::Score(grpc::CallbackServerContext* context,
                                                const grpc::ByteBuffer* request_body,
                                                grpc::ByteBuffer* response_body) {
  if (auto* done = FinishIfUnwanted(context, "Score", options_.limits.min_deadline_remaining,
                                    &dropped_)) {
    return done;
  }
  return edge::ServeUnary<v1::ScoreRequest, v1::ScoreResponse>(
      context, *request_body, response_body, options_.max_request_bytes,
      [this](const v1::ScoreRequest& request, v1::ScoreResponse* response) {
        const absl::Time start = absl::Now();
        const absl::Status status = DoScore(request, response);
        spdlog::debug("Score request_id={} status={} scores={} took_us={:.0f}",
                      response->request_id(), absl::StatusCodeToString(status.code()),
                      response->scores_size(), absl::ToDoubleMicroseconds(absl::Now() - start));
        return status;
      });
}

grpc::ServerUnaryReactor* ScoringService::ListCampaigns(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request_body,
                                                        grpc::ByteBuffer* response_body) {
  return edge::ServeUnary<v1::ListCampaignsRequest, v1::ListCampaignsResponse>(
      context, *request_body, response_body, options_.max_request_bytes,
      [this](const v1::ListCampaignsRequest& request, v1::ListCampaignsResponse* response) {
        return DoListCampaigns(request, response);
      });
}

grpc::ServerUnaryReactor* ScoringService::GetModelInfo(grpc::CallbackServerContext* context,
                                                       const grpc::ByteBuffer* request_body,
                                                       grpc::ByteBuffer* response_body) {
  return edge::ServeUnary<v1::GetModelInfoRequest, v1::GetModelInfoResponse>(
      context, *request_body, response_body, options_.max_request_bytes,
      [this](const v1::GetModelInfoRequest& request, v1::GetModelInfoResponse* response) {
        const absl::Status status = DoGetModelInfo(request, response);
        spdlog::debug("GetModelInfo request_id={} status={}", response->request_id(),
                      absl::StatusCodeToString(status.code()));
        return status;
      });
}

}  // namespace coupond::server
