#include "collector/collector_service.h"

#include "absl/time/clock.h"
#include "common/grpc_status.h"

namespace coupond::collector {
namespace {

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(common::ToGrpcStatus(status));
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* CollectorService::LogDecisions(grpc::CallbackServerContext* context,
                                                         const v1::LogDecisionsRequest* request,
                                                         v1::LogDecisionsResponse* response) {
  absl::StatusOr<v1::LogDecisionsResponse> stored = store_->StoreDecisions(request->decisions());
  if (stored.ok()) *response = *std::move(stored);
  return Finish(context, stored.status());
}

grpc::ServerUnaryReactor* CollectorService::ReportOutcome(grpc::CallbackServerContext* context,
                                                          const v1::ReportOutcomeRequest* request,
                                                          v1::ReportOutcomeResponse* response) {
  response->set_request_id(request->request_id());
  absl::StatusOr<v1::OutcomeDisposition> disposition =
      store_->RecordOutcome(*request, absl::ToUnixSeconds(absl::Now()));
  if (disposition.ok()) response->set_disposition(*disposition);
  return Finish(context, disposition.status());
}

grpc::ServerUnaryReactor* CollectorService::GetCollectorStats(
    grpc::CallbackServerContext* context, const v1::GetCollectorStatsRequest* /*request*/,
    v1::GetCollectorStatsResponse* response) {
  *response = store_->Stats();
  return Finish(context, absl::OkStatus());
}

}  // namespace coupond::collector
