#include "collector/collector_service.h"

#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "edge/bearer_token.h"
#include "edge/secret_files.h"
#include "google/protobuf/arena.h"
#include "spdlog/spdlog.h"

namespace coupond::collector {

bool IsLocalOnlyListenAddress(absl::string_view listen_address) {
  if (absl::StartsWith(listen_address, "unix:") || absl::StartsWith(listen_address, "unix-abstract:")) {
    return true;
  }
  absl::string_view host = listen_address;
  if (absl::ConsumePrefix(&host, "[")) {
    const size_t close = host.find(']');
    if (close == absl::string_view::npos) return false;
    host = host.substr(0, close);
    return host == "::1";
  }
  const size_t colon = host.rfind(':');
  if (colon != absl::string_view::npos) host = host.substr(0, colon);
  return host == "localhost" || absl::StartsWith(host, "127.");
}

absl::StatusOr<std::string> ReadCollectorWriteToken(const CollectorWriteAuthOptions& options) {
  if (options.token_file.empty()) {
    if (IsLocalOnlyListenAddress(options.listen_address)) {
      spdlog::info(
          "coupond.v1.Collector takes writes without a token on {}: only this machine's "
          "processes reach it",
          options.listen_address);
      return std::string();
    }
    if (!options.allow_unauthenticated) {
      return absl::InvalidArgumentError(absl::StrCat(
          "collector_token_file: required on ", options.listen_address,
          ", which other machines can reach: without a token anyone who reaches the port "
          "writes decisions and outcomes, which become training data. Give "
          "--collector_token_file (and --tls_cert/--tls_key), listen on a loopback address, or "
          "pass --collector_allow_unauthenticated_writes on a network you trust"));
    }
    spdlog::warn(
        "coupond.v1.Collector takes writes (LogDecisions, ReportOutcome) on {} from anyone who "
        "reaches the port (--collector_allow_unauthenticated_writes): they become training "
        "data",
        options.listen_address);
    return std::string();
  }
  const std::string& token_file = options.token_file;
  absl::StatusOr<std::string> token = edge::ReadTokenFile(token_file, "collector token file");
  if (!token.ok()) return token.status();
  if (!options.tls) {
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

namespace {

// A write call's parsed request, kept (with its arena) until the store has answered.
template <typename Request>
struct PendingWrite {
  google::protobuf::Arena arena{edge::CallArenaOptions()};
  Request* request = google::protobuf::Arena::CreateMessage<Request>(&arena);
};

}  // namespace

grpc::ServerUnaryReactor* CollectorService::LogDecisions(grpc::CallbackServerContext* context,
                                                         const grpc::ByteBuffer* request_body,
                                                         grpc::ByteBuffer* response_body) {
  if (absl::Status s = AuthenticateWrite(*context, "LogDecisions"); !s.ok()) {
    return FinishRefusedCall(context, s);
  }
  auto call = std::make_unique<PendingWrite<v1::LogDecisionsRequest>>();
  if (absl::Status s = edge::ParseRequestBody(*request_body, options_.max_request_bytes, call->request);
      !s.ok()) {
    return FinishRefusedCall(context, s);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  PendingWrite<v1::LogDecisionsRequest>* pending = call.release();
  // Finished from the store's writer thread once the batch is committed (or inline when
  // the records are invalid): this callback thread returns now.
  store_->StoreDecisionsAsync(
      pending->request->decisions(),
      [context, reactor, response_body, pending](absl::StatusOr<v1::LogDecisionsResponse> stored) {
        absl::Status status = stored.status();
        if (status.ok()) {
          status = edge::SerializeResponseBody(*stored, response_body);
        } else {
          edge::AttachRequestId(context, *pending->request);
        }
        delete pending;
        reactor->Finish(common::ToGrpcStatus(status));
      });
  return reactor;
}

grpc::ServerUnaryReactor* CollectorService::ReportOutcome(grpc::CallbackServerContext* context,
                                                          const grpc::ByteBuffer* request_body,
                                                          grpc::ByteBuffer* response_body) {
  if (absl::Status s = AuthenticateWrite(*context, "ReportOutcome"); !s.ok()) {
    return FinishRefusedCall(context, s);
  }
  google::protobuf::Arena arena(edge::CallArenaOptions());
  auto* request = google::protobuf::Arena::CreateMessage<v1::ReportOutcomeRequest>(&arena);
  if (absl::Status s = edge::ParseRequestBody(*request_body, options_.max_request_bytes, request);
      !s.ok()) {
    return FinishRefusedCall(context, s);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // The store copies the outcome; the request id is all the answer needs of the request.
  store_->RecordOutcomeAsync(
      *request, absl::ToUnixSeconds(absl::Now()),
      [context, reactor, response_body, request_id = request->request_id()](
          absl::StatusOr<v1::OutcomeDisposition> disposition) {
        absl::Status status = disposition.status();
        if (status.ok()) {
          v1::ReportOutcomeResponse response;
          response.set_request_id(request_id);
          response.set_disposition(*disposition);
          status = edge::SerializeResponseBody(response, response_body);
        } else {
          v1::ReportOutcomeRequest id_only;
          id_only.set_request_id(request_id);
          edge::AttachRequestId(context, id_only);
        }
        reactor->Finish(common::ToGrpcStatus(status));
      });
  return reactor;
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
