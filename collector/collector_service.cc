#include "collector/collector_service.h"

#include <utility>

#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "edge/bearer_token.h"
#include "edge/secret_files.h"
#include "spdlog/spdlog.h"

namespace coupond::collector {

absl::StatusOr<std::string> ReadCollectorWriteToken(const std::string& token_file, bool tls) {
  if (token_file.empty()) {
    spdlog::warn(
        "coupond.v1.Collector takes writes (LogDecisions, ReportOutcome) from anyone who "
        "reaches the port: they become training data. Give --collector_token_file (and "
        "--tls_cert/--tls_key) outside a trusted network");
    return std::string();
  }
  absl::StatusOr<std::string> token = edge::ReadTokenFile(token_file, "collector token file");
  if (!token.ok()) return token.status();
  if (!tls) {
    spdlog::warn(
        "coupond.v1.Collector requires a token for writes on a plaintext port: the token "
        "travels in the clear (give --tls_cert and --tls_key outside a trusted network)");
  } else {
    spdlog::info("coupond.v1.Collector requires a token for writes (from '{}')", token_file);
  }
  return token;
}

uint64_t CollectorService::refused_writes() const {
  absl::MutexLock lock(&mu_);
  return refused_;
}

absl::Status CollectorService::AuthenticateWrite(const grpc::CallbackServerContext& context,
                                                 absl::string_view method) {
  if (options_.write_token.empty() ||
      edge::HasBearerToken(context.client_metadata(), options_.write_token)) {
    return absl::OkStatus();
  }
  absl::MutexLock lock(&mu_);
  ++refused_;
  const absl::Time now = absl::Now();
  if (now - last_refusal_log_ >= absl::Seconds(10)) {
    last_refusal_log_ = now;
    spdlog::warn("refused a Collector.{} call from {} without a valid token ({} refused so far)",
                 std::string(method), context.peer(), refused_);
  }
  return absl::UnauthenticatedError(
      "Collector writes need the metadata 'authorization: Bearer <token>' with the token of "
      "the collector's --collector_token_file");
}

namespace {

// Finishes a call refused before its body was looked at.
grpc::ServerUnaryReactor* FinishRefusedCall(grpc::CallbackServerContext* context,
                                            const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(common::ToGrpcStatus(status));
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* CollectorService::LogDecisions(grpc::CallbackServerContext* context,
                                                         const grpc::ByteBuffer* request_body,
                                                         grpc::ByteBuffer* response_body) {
  if (absl::Status s = AuthenticateWrite(*context, "LogDecisions"); !s.ok()) {
    return FinishRefusedCall(context, s);
  }
  return edge::ServeUnary<v1::LogDecisionsRequest, v1::LogDecisionsResponse>(
      context, *request_body, response_body, options_.max_request_bytes,
      [this](const v1::LogDecisionsRequest& request, v1::LogDecisionsResponse* response) {
        absl::StatusOr<v1::LogDecisionsResponse> stored = store_->StoreDecisions(request.decisions());
        if (stored.ok()) *response = *std::move(stored);
        return stored.status();
      });
}

grpc::ServerUnaryReactor* CollectorService::ReportOutcome(grpc::CallbackServerContext* context,
                                                          const grpc::ByteBuffer* request_body,
                                                          grpc::ByteBuffer* response_body) {
  if (absl::Status s = AuthenticateWrite(*context, "ReportOutcome"); !s.ok()) {
    return FinishRefusedCall(context, s);
  }
  return edge::ServeUnary<v1::ReportOutcomeRequest, v1::ReportOutcomeResponse>(
      context, *request_body, response_body, options_.max_request_bytes,
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
      context, *request_body, response_body, options_.max_request_bytes,
      [this](const v1::GetCollectorStatsRequest& /*request*/,
             v1::GetCollectorStatsResponse* response) {
        *response = store_->Stats();
        return absl::OkStatus();
      });
}

}  // namespace coupond::collector
