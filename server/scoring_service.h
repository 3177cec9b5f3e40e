#ifndef COUPOND_SERVER_SCORING_SERVICE_H_
#define COUPOND_SERVER_SCORING_SERVICE_H_

// The gRPC edge of coupond.v1.CouponScoring: parse the request, validate it, take the
// current model snapshot, call core, convert the result (and any status, once) to the wire
// types. Handlers run on gRPC's callback threads; they do no I/O and finish inline.
//
// Every method is served raw (edge/raw_call.h): the service parses each request itself, so
// that a body that is not a valid request is INVALID_ARGUMENT naming the type and field (not
// gRPC's UNIMPLEMENTED) and one over max_request_bytes is RESOURCE_EXHAUSTED, counted by the
// RPC metrics like every other answer. Requests and responses of the unary methods live in
// one protobuf arena per call.

#include "absl/status/status.h"
#include "coupond/v1/coupon_scoring.grpc.pb.h"
#include "collector/decision_logger.h"
#include "core/user_key.h"
#include "edge/raw_call.h"
#include "server/assign_reactor.h"
#include "server/call_guard.h"
#include "server/model_manager.h"
#include "server/request_validation.h"

namespace coupond::server {

struct ScoringServiceOptions {
  RequestLimits limits;
  // Assign calls solved at the same time; more are refused with RESOURCE_EXHAUSTED.
  // Default 2.
  int max_concurrent_assigns = 2;
  // Solver threads per Assign call. 0 (default): one per hardware thread.
  int assign_threads = 0;
  // Assignments per streamed Assign message when the request does not say. Default 10,000.
  uint32_t assign_chunk_size = 10000;
  // Return the heap's free memory to the kernel after each Assign call (see
  // AssignReactor::Options::release_memory_after). Default true.
  bool release_memory_after_assign = true;
  // Largest request body parsed, in bytes; larger ones are RESOURCE_EXHAUSTED. Default 4 MiB.
  size_t max_request_bytes = edge::kDefaultMaxRequestBytes;
  // When set, every incoming user id is replaced by its key (core/user_key.h) before it is
  // looked up, hashed into an experiment arm or logged, and so is every id of an inline
  // campaign's eligibility lists (Assign, Decide): the model store (and its stored
  // campaigns, keyed at load by ModelManagerOptions::user_keyer, the same keyer) must then
  // have been published with the same secret. Ids that already are keys pass through.
  // Default null.
  std::shared_ptr<const core::UserKeyer> user_keyer;
};

// Thread-safe. `models` (and `decisions`, when not null) must outlive the service. The
// destructor waits for running Assign solves (the server cancels them at shutdown).
// With a decision logger, every successful Decide gets a decision id and its record is
// handed to the logger (non-blocking; see collector/decision_logger.h).
// CouponScoring with every method raw (the generated code has no alias for that).
using RawCouponScoringService = v1::CouponScoring::WithRawCallbackMethod_Score<
    v1::CouponScoring::WithRawCallbackMethod_GetModelInfo<
        v1::CouponScoring::WithRawCallbackMethod_Assign<
            v1::CouponScoring::WithRawCallbackMethod_Decide<
                v1::CouponScoring::WithRawCallbackMethod_ListCampaigns<
                    v1::CouponScoring::Service>>>>>;

class ScoringService final : public RawCouponScoringService {
 public:
  ScoringService(const ModelManager* models, const ScoringServiceOptions& options,
                 collector::DecisionLogger* decisions = nullptr)
      : models_(models),
        options_(options),
        decisions_(decisions),
        assign_jobs_(options.max_concurrent_assigns) {}
  ~ScoringService() override { assign_jobs_.WaitForNone(); }

  // The raw handlers (request: a coupond.v1.<Method>Request's bytes).
  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* request,
                                  grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Assign(grpc::CallbackServerContext* context,
                                                     const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* Decide(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ListCampaigns(grpc::CallbackServerContext* context,
                                          const grpc::ByteBuffer* request,
                                          grpc::ByteBuffer* response) override;

  // The handlers' logic without the gRPC plumbing (also what the tests call).
  absl::Status DoScore(const v1::ScoreRequest& request, v1::ScoreResponse* response) const;
  absl::Status DoGetModelInfo(const v1::GetModelInfoRequest& request,
                              v1::GetModelInfoResponse* response) const;
  absl::Status DoDecide(const v1::DecideRequest& request, v1::DecideResponse* response) const;
  absl::Status DoListCampaigns(const v1::ListCampaignsRequest& request,
                               v1::ListCampaignsResponse* response) const;

  // Calls dropped because their caller no longer waited (see server/call_guard.h).
  const DroppedCalls& dropped() const { return dropped_; }

 private:
  const ModelManager* const models_;
  // The id the model knows the user by: its key when ids are keyed, else the id itself.
  absl::StatusOr<std::string> UserKey(const std::string& user_id) const {
    if (options_.user_keyer == nullptr) return user_id;
    return options_.user_keyer->Key(user_id);
  }

  const ScoringServiceOptions options_;
  collector::DecisionLogger* const decisions_;
  AssignJobs assign_jobs_;
  DroppedCalls dropped_;
};

}  // namespace coupond::server

#endif  // COUPOND_SERVER_SCORING_SERVICE_H_
