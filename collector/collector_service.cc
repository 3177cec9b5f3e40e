#include "collector/collector_service.h"

#include "absl/time/clock.h"

namespace coupond::collector {

grpc::ServerUnaryReactor* CollectorService::LogDecisions(grpc::CallbackServerContext* context,
                                                         const grpc::ByteBuffer* request_body,
                                                         grpc::ByteBuffer* response_body) {
  return edge::ServeUnary<v1::LogDecisionsRequest, v1::LogDecisionsResponse>(
      context, *request_body, response_body, max_request_bytes_,
      [this](const v1::LogDecisionsRequest& request, v1::LogDecisionsResponse* response) {
        absl::StatusOr<v1::LogDecisionsResponse> stored = store_->StoreDecisions(request.decisions());
        if (stored.ok()) *response = *std::move(stored);
        return stored.status();
      });
}

grpc::ServerUnaryReactor* CollectorService::ReportOutcome(grpc::CallbackServerContext* context,
                                                          const grpc::ByteBuffer* request_body,
                                                          grpc::ByteBuffer* response_body) {
  return edge::ServeUnary<v1::ReportOutcomeRequest, v1::ReportOutcomeResponse>(
      context, *request_body, response_body, max_request_bytes_,
      [this](const v1::ReportOutcomeRequest& request, v1::ReportOutcomeResponse* response) {
        response->set_request_id(request.request_id());
        absl::StatusOr<v1::OutcomeDisposition> disposition =
            store_->RecordOutcome(request, absl::ToUnixSeconds(absl::Now()));
        if (disposition.ok()) response->set_disposition(*disposition);
        return disposition.status();
      });
}

grpc::ServerUnaryReactor* CollectorService::GetCollectorStats(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_body,
    grpc::ByteBuffer* response_body) {
  return edge::ServeUnary<v1::GetCollectorStatsRequest, v1::GetCollectorStatsResponse>(
      context, *request_body, response_body, max_request_bytes_,
      [this](const v1::GetCollectorStatsRequest& /*request*/,
             v1::GetCollectorStatsResponse* response) {
        *response = store_->Stats();
        return absl::OkStatus();
      });
}

}  // namespace coupond::collector
