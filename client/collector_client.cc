#include "client/collector_client.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/client_context.h"

namespace coupond::client {

void CollectorClient::Prepare(grpc::ClientContext* context) const {
  context->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  if (!options_.collector_token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", options_.collector_token));
  }
}
absl::StatusOr<std::unique_ptr<CollectorClient>> CollectorClient::Create(const ClientOptions& options) {
  auto channel = NewChannel(options);
  if (!channel.ok()) return channel.status();
  return std::unique_ptr<CollectorClient>(new CollectorClient(options, *std::move(channel)));
}

absl::StatusOr<v1::ReportOutcomeResponse> CollectorClient::ReportOutcome(
    const v1::ReportOutcomeRequest& request) const {
  grpc::ClientContext context;
  Prepare(&context);
  v1::ReportOutcomeResponse response;
  if (absl::Status s = FromGrpcStatus(stub_->ReportOutcome(&context, request, &response)); !s.ok()) return s;
  return response;
}

absl::StatusOr<v1::LogDecisionsResponse> CollectorClient::LogDecisions(
    const v1::LogDecisionsRequest& request) const {
  grpc::ClientContext context;
  Prepare(&context);
  v1::LogDecisionsResponse response;
  if (absl::Status s = FromGrpcStatus(stub_->LogDecisions(&context, request, &response)); !s.ok()) return s;
  return response;
}

absl::StatusOr<v1::GetCollectorStatsResponse> CollectorClient::GetStats() const {
  grpc::ClientContext context;
  Prepare(&context);
  v1::GetCollectorStatsResponse response;
  if (absl::Status s = FromGrpcStatus(stub_->GetCollectorStats(&context, {}, &response)); !s.ok()) return s;
  return response;
}

}  // namespace coupond::client
