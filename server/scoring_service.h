#ifndef COUPOND_SERVER_SCORING_SERVICE_H_
#define COUPOND_SERVER_SCORING_SERVICE_H_

// The gRPC edge of coupond.v1.CouponScoring: validate the request, take the current model
// snapshot, call core, convert the result (and any status, once) to the wire types.
// Handlers run on gRPC's callback threads; they do no I/O and finish inline.

#include "absl/status/status.h"
#include "coupond/v1/coupon_scoring.grpc.pb.h"
#include "server/model_manager.h"
#include "server/request_validation.h"

namespace coupond::server {

// Thread-safe. `models` must outlive the service.
class ScoringService final : public v1::CouponScoring::CallbackService {
 public:
  ScoringService(const ModelManager* models, const RequestLimits& limits)
      : models_(models), limits_(limits) {}

  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* context,
                                  const v1::ScoreRequest* request,
                                  v1::ScoreResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* request,
                                         v1::GetModelInfoResponse* response) override;

  // The handlers' logic without the gRPC plumbing (also what the tests call).
  absl::Status DoScore(const v1::ScoreRequest& request, v1::ScoreResponse* response) const;
  absl::Status DoGetModelInfo(const v1::GetModelInfoRequest& request,
                              v1::GetModelInfoResponse* response) const;

 private:
  const ModelManager* const models_;
  const RequestLimits limits_;
};

}  // namespace coupond::server

#endif  // COUPOND_SERVER_SCORING_SERVICE_H_
