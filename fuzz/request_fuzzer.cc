// libFuzzer target over the request edge of coupond.v1.CouponScoring.
//
// Input: one byte choosing the request type (low two bits: 0 Score, 1 Assign, 2 Decide,
// 3 GetModelInfo), then that request serialized as a protobuf, exactly as the bytes of a
// gRPC call would carry it. Input that does not parse is rejected (gRPC would refuse it
// before any of our code runs).
//
// Each parsed request goes through server/request_validation.h, then, as the server would,
// through the real handler logic against a fixed, in-memory model served by a real
// ModelManager: ScoringService::DoScore / DoDecide / DoGetModelInfo, and for Assign the
// steps of AssignReactor::PlanAndSolve (conversion, CampaignPlan::Create, solver input
// checks, SolveAssignment) minus the streaming. Beyond "no crash, no leak, no hang", the
// results are checked against their documented contracts (fuzz_check.h).
//
// Cost per input is bounded: the model is tiny (fuzz_model.h), the request limits are
// small (so the limit branches are reachable from small inputs), the solver runs on one
// thread with at most kMaxSolverIterations passes, and libFuzzer's -max_len bounds the
// request size.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "api/convert.h"
#include "core/assignment.h"
#include "core/campaign.h"
#include "core/snapshot.h"
#include "coupond/v1/coupon_scoring.pb.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/fuzz_model.h"
#include "google/protobuf/stubs/logging.h"
#include "server/model_manager.h"
#include "server/request_validation.h"
#include "server/scoring_service.h"

namespace coupond::fuzz {
namespace {

// The fuzzer's cost cap on solver passes (the server takes the request's max_iterations,
// up to 2^31-1; on a tiny model a pass is microseconds, but 2^31 of them is a hang that
// says nothing about correctness).
constexpr uint32_t kMaxSolverIterations = 64;

constexpr uint64_t kModelVersion = 1;

// Serves one snapshot built in memory, as a store would after a publish.
class FixedModelSource final : public server::ModelSource {
 public:
  explicit FixedModelSource(std::shared_ptr<const core::ModelSnapshot> snapshot)
      : snapshot_(std::move(snapshot)) {}
  absl::StatusOr<core::ModelVersionInfo> Latest() override { return snapshot_->info(); }
  absl::StatusOr<std::shared_ptr<const core::ModelSnapshot>> Load(uint64_t version) override {
    if (version != snapshot_->info().version) return absl::NotFoundError("no such version");
    return snapshot_;
  }
  std::string Describe() const override { return "fuzz model (in memory)"; }

 private:
  std::shared_ptr<const core::ModelSnapshot> snapshot_;
};

server::RequestLimits FuzzLimits() {
  server::RequestLimits limits;
  limits.max_candidates = 32;
  limits.max_campaign_coupons = 16;
  limits.max_population = 256;
  limits.max_request_id_bytes = 64;
  return limits;
}

struct Env {
  std::unique_ptr<server::ModelManager> models;
  std::unique_ptr<server::ScoringService> service;
  server::RequestLimits limits;
};

// Built once per process; never destroyed (the fuzzer exits from inside its loop).
Env* MakeEnv() {
  core::ModelData data = FuzzModel(FuzzModelShape{});
  core::ModelVersionInfo info = core::DescribeModel(data, kModelVersion);
  info.created_unix_seconds = kFuzzModelNow;
  info.description = data.description;
  info.metadata = data.metadata;
  absl::StatusOr<std::shared_ptr<const core::ModelSnapshot>> snapshot =
      core::ModelSnapshot::Create(std::move(data), std::move(info));
  if (!snapshot.ok()) Fail("ModelSnapshot::Create", snapshot.status());

  auto env = new Env;
  absl::StatusOr<std::unique_ptr<server::ModelManager>> models = server::ModelManager::Create(
      std::make_unique<FixedModelSource>(*std::move(snapshot)), server::ModelManagerOptions{});
  if (!models.ok()) Fail("ModelManager::Create", models.status());
  env->models = *std::move(models);
  if (absl::Status s = env->models->PollOnce(); !s.ok()) Fail("ModelManager::PollOnce", s);
  env->limits = FuzzLimits();
  server::ScoringServiceOptions options;
  options.limits = env->limits;
  options.max_concurrent_assigns = 1;
  options.assign_threads = 1;
  env->service = std::make_unique<server::ScoringService>(env->models.get(), options);
  return env;
}

bool IsProbability(double p) { return p >= 0.0 && p <= 1.0; }

void FuzzScore(const Env& env, const v1::ScoreRequest& request) {
  const absl::Status valid = server::ValidateScoreRequest(request, env.limits);
  CheckStatusIn(valid, {absl::StatusCode::kInvalidArgument}, "ValidateScoreRequest");
  v1::ScoreResponse response;
  const absl::Status status = env.service->DoScore(request, &response);
  Trace("DoScore", status);
  // A valid request naming a stored campaign (campaign_id) is NOT_FOUND: this environment
  // stores none.
  if (valid.ok() && !request.campaign_id().empty()) {
    CheckStatusIn(status, {absl::StatusCode::kNotFound}, "DoScore by campaign_id");
    return;
  }
  Check(status == valid, "DoScore fails exactly when validation does");
  if (!status.ok()) return;

  Check(response.model_version() == kModelVersion, "Score: model_version");
  if (request.top_k() != 0) {
    Check(static_cast<uint32_t>(response.scores_size()) <= request.top_k(), "Score: top_k");
  }
  Check(response.scores_size() <= static_cast<int>(response.candidates_scored()),
        "Score: more scores than candidates scored");
  if (request.coupon_ids_size() > 0) {
    Check(response.candidates_scored() + response.unknown_coupon_ids_size() +
                  response.inactive_coupon_ids_size() ==
              static_cast<uint32_t>(request.coupon_ids_size()),
          "Score: every candidate is scored, unknown or inactive");
    absl::flat_hash_set<absl::string_view> asked(request.coupon_ids().begin(),
                                                 request.coupon_ids().end());
    for (const v1::CouponScore& s : response.scores()) {
      Check(asked.contains(s.coupon_id()), "Score: scored a coupon that was not asked for");
    }
  }
  double previous = 2.0;
  for (const v1::CouponScore& s : response.scores()) {
    Check(IsProbability(s.probability()) && std::isfinite(s.logit()),
          "Score: probability outside [0, 1] or non-finite logit");
    Check(s.probability() <= previous, "Score: scores not by descending probability");
    previous = s.probability();
  }
}

void FuzzGetModelInfo(const Env& env, const v1::GetModelInfoRequest& request) {
  const absl::Status valid = server::ValidateGetModelInfoRequest(request, env.limits);
  CheckStatusIn(valid, {absl::StatusCode::kInvalidArgument}, "ValidateGetModelInfoRequest");
  v1::GetModelInfoResponse response;
  const absl::Status status = env.service->DoGetModelInfo(request, &response);
  Trace("DoGetModelInfo", status);
  Check(status == valid, "DoGetModelInfo fails exactly when validation does");
  if (status.ok()) Check(response.model().version() == kModelVersion, "GetModelInfo: version");
}

void FuzzDecide(const Env& env, const v1::DecideRequest& request) {
  const absl::Status valid = server::ValidateDecideRequest(request, env.limits);
  CheckStatusIn(valid, {absl::StatusCode::kInvalidArgument}, "ValidateDecideRequest");
  v1::DecideResponse response;
  const absl::Status status = env.service->DoDecide(request, &response);
  // Past validation, the campaign and prices are checked against the model. A stored
  // campaign (campaign_id) is NOT_FOUND: this environment stores none.
  if (valid.ok() && !request.campaign_id().empty()) {
    CheckStatusIn(status, {absl::StatusCode::kNotFound}, "DoDecide by campaign_id");
    return;
  }
  CheckStatusIn(status, {absl::StatusCode::kInvalidArgument}, "DoDecide");
  if (!valid.ok()) Check(status == valid, "DoDecide fails with the validation error");
  if (!status.ok()) return;

  const uint32_t k = request.campaign().has_max_coupons_per_user()
                         ? request.campaign().max_coupons_per_user()
                         : 1;
  Check(static_cast<uint32_t>(response.chosen_size()) <= k, "Decide: more than k coupons");
  Check(response.propensity() > 0.0 && response.propensity() <= 1.0,
        "Decide: propensity outside (0, 1]");
  // Greedy decisions give only positive scores; exploration and a random arm may not.
  const bool greedy = !request.campaign().has_experiment() &&
                      (request.campaign().exploration().empty() ||
                       request.campaign().exploration() == "greedy");
  absl::flat_hash_set<absl::string_view> campaign;
  for (const v1::CampaignCoupon& c : request.campaign().coupons()) campaign.insert(c.coupon_id());
  absl::flat_hash_set<absl::string_view> chosen;
  for (const v1::CouponDecision& d : response.chosen()) {
    Check(campaign.contains(d.coupon_id()), "Decide: chose a coupon outside the campaign");
    Check(chosen.insert(d.coupon_id()).second, "Decide: chose a coupon twice");
    Check(IsProbability(d.probability()), "Decide: probability outside [0, 1]");
    Check(std::isfinite(d.score()), "Decide: chosen score not finite");
    if (greedy) Check(d.score() > 0.0, "Decide: greedy chose a score that is not positive");
  }
}

// AssignReactor::PlanAndSolve without the gRPC stream: the same conversions and calls.
void FuzzAssign(const Env& env, const v1::AssignRequest& request) {
  const absl::Status valid = server::ValidateAssignRequest(request, env.limits);
  CheckStatusIn(valid, {absl::StatusCode::kInvalidArgument}, "ValidateAssignRequest");
  if (!valid.ok()) return;

  absl::StatusOr<core::Population> population = api::PopulationFromProto(request);
  CheckStatusIn(population.status(), {absl::StatusCode::kInvalidArgument}, "PopulationFromProto");
  if (!population.ok()) return;
  absl::StatusOr<std::unique_ptr<core::CampaignPlan>> plan = core::CampaignPlan::Create(
      env.models->Current(), api::CampaignFromProto(request.campaign(), kFuzzModelNow),
      *std::move(population));
  CheckStatusIn(plan.status(), {absl::StatusCode::kInvalidArgument}, "CampaignPlan::Create");
  if (!plan.ok()) return;
  const core::CampaignPlan& p = **plan;

  v1::AssignSolverOptions solver_proto = request.solver();
  solver_proto.set_max_iterations(std::min(solver_proto.max_iterations(), kMaxSolverIterations));
  const core::AssignmentOptions solver = api::SolverOptionsFromProto(
      solver_proto, p.spec().max_coupons_per_user, /*threads=*/1);
  const absl::Status input = core::ValidateAssignmentInput(p.coupons(), p.spec().budget, solver);
  CheckStatusIn(input, {absl::StatusCode::kInvalidArgument}, "ValidateAssignmentInput");
  if (!input.ok()) return;
  absl::StatusOr<core::AssignmentResult> result =
      core::SolveAssignment(p.coupons(), p.spec().budget, p, solver);
  CheckStatusIn(result.status(), {absl::StatusCode::kInvalidArgument}, "SolveAssignment");
  if (!result.ok()) return;

  // The solver's promises (core/assignment.h): every constraint holds exactly.
  const size_t m = p.coupons().size();
  Check(result->issued.size() == m, "Assign: issued per coupon");
  std::vector<int64_t> issued(m, 0);
  double spend = 0.0;
  size_t run = 0;
  for (size_t i = 0; i < result->assignments.size(); ++i) {
    const core::AssignedCoupon& a = result->assignments[i];
    Check(a.user < p.num_users() && a.coupon < m, "Assign: index out of range");
    Check(IsProbability(a.probability), "Assign: probability outside [0, 1]");
    if (i > 0) {
      const core::AssignedCoupon& b = result->assignments[i - 1];
      Check(b.user < a.user || (b.user == a.user && b.coupon < a.coupon),
            "Assign: assignments not sorted by (user, coupon) or duplicated");
      run = b.user == a.user ? run + 1 : 1;
    } else {
      run = 1;
    }
    Check(static_cast<int64_t>(run) <= p.spec().max_coupons_per_user,
          "Assign: more than k coupons for one user");
    ++issued[a.coupon];
    spend += a.probability * p.coupons()[a.coupon].face_value;
  }
  for (size_t j = 0; j < m; ++j) {
    Check(issued[j] == result->issued[j], "Assign: issued counts disagree with assignments");
    const std::optional<int64_t>& stock = p.coupons()[j].stock;
    Check(!stock.has_value() || issued[j] <= *stock, "Assign: stock exceeded");
  }
  Check(result->expected_spend == spend, "Assign: expected_spend is not the sum in order");
  Check(result->expected_spend <= p.spec().budget, "Assign: budget exceeded");

  // The summary the stream's last message carries must build too.
  const v1::AssignSummary summary = api::SummaryToProto(*result, p, 0.0);
  Check(summary.assignments() == result->assignments.size(), "Assign: summary count");
}

template <typename Message>
bool Parse(const uint8_t* data, size_t size, Message* message) {
  return message->ParseFromArray(data, static_cast<int>(size));
}

}  // namespace
}  // namespace coupond::fuzz

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // Protobuf logs every string field that is not UTF-8 while refusing it: noise here.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coupond;  // NOLINT(build/namespaces): the entry point is outside it
  static const fuzz::Env* const env = fuzz::MakeEnv();
  if (size == 0) return -1;
  const uint8_t kind = data[0] & 3;
  ++data;
  --size;
  switch (kind) {
    case 0: {
      v1::ScoreRequest request;
      if (!fuzz::Parse(data, size, &request)) return -1;
      fuzz::FuzzScore(*env, request);
      break;
    }
    case 1: {
      v1::AssignRequest request;
      if (!fuzz::Parse(data, size, &request)) return -1;
      fuzz::FuzzAssign(*env, request);
      break;
    }
    case 2: {
      v1::DecideRequest request;
      if (!fuzz::Parse(data, size, &request)) return -1;
      fuzz::FuzzDecide(*env, request);
      break;
    }
    default: {
      v1::GetModelInfoRequest request;
      if (!fuzz::Parse(data, size, &request)) return -1;
      fuzz::FuzzGetModelInfo(*env, request);
      break;
    }
  }
  return 0;
}
