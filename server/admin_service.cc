#include "server/admin_service.h"

#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "core/snapshot.h"
#include "edge/bearer_token.h"
#include "edge/secret_files.h"
#include "spdlog/spdlog.h"

namespace coupond::server {
namespace {

absl::Status Unauthenticated() {
  return absl::UnauthenticatedError(
      "Admin calls need the metadata 'authorization: Bearer <token>' with the token of the "
      "server's --admin_token_file");
}

}  // namespace

absl::StatusOr<std::string> ReadAdminTokenFile(const std::string& path) {
  return edge::ReadTokenFile(path, "admin token file");
}

absl::Status CheckBearerToken(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                              absl::string_view token) {
  if (!edge::HasBearerToken(metadata, token)) return Unauthenticated();
  return absl::OkStatus();
}

AdminService::AdminService(ModelManager* models, const DroppedCalls* dropped, std::string token,
                           size_t max_request_bytes)
    : models_(models),
      dropped_(dropped),
      token_(std::move(token)),
      max_request_bytes_(max_request_bytes) {}

AdminService::~AdminService() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* running) { return *running == 0; }, &reloads_running_));
}

absl::Status AdminService::Authenticate(const grpc::CallbackServerContext& context,
                                        absl::string_view method) {
  absl::Status status = CheckBearerToken(context.client_metadata(), token_);
  if (status.ok()) return status;
  absl::MutexLock lock(&mu_);
  ++refused_;
  const absl::Time now = absl::Now();
  if (now - last_refusal_log_ >= absl::Seconds(10)) {
    last_refusal_log_ = now;
    spdlog::warn("refused an Admin.{} call from {} without a valid token ({} refused so far)",
                 std::string(method), context.peer(), refused_);
  }
  return status;
}

absl::Status AdminService::DoReloadModel(v1::ReloadModelResponse* response) {
  absl::StatusOr<ReloadResult> result = models_->ReloadNow();
  if (!result.ok()) return result.status();
  response->set_previous_version(result->previous_version);
  response->set_served_version(result->served_version);
  response->set_changed(result->served_version != result->previous_version);
  if (!result->campaigns.ok())
    response->set_campaigns_error(std::string(result->campaigns.message()));
  if (!result->rejection.ok()) {
    // Whatever the refusal's own code (DATA_LOSS for a damaged version, RESOURCE_EXHAUSTED
    // for one that does not fit), the caller's request cannot succeed in the present state.
    return absl::FailedPreconditionError(result->rejection.message());
  }
  return absl::OkStatus();
}

void AdminService::DoGetServerStatus(v1::GetServerStatusResponse* response) const {
  const ModelLoadStatus status = models_->LoadStatus();
  if (const std::shared_ptr<const core::ModelSnapshot> current = models_->Current()) {
    response->set_served_version(current->info().version);
    response->set_snapshot_bytes(current->memory_bytes());
  }
  response->set_live_snapshots(static_cast<uint32_t>(core::ModelSnapshot::LiveCount()));
  if (status.loads > 0) {
    response->set_last_load_unix_seconds(absl::ToUnixSeconds(status.last_load_time));
    response->set_last_load_seconds(absl::ToDoubleSeconds(status.last_load_duration));
  }
  response->set_loads(status.loads);
  response->set_rejections(status.rejections);
  if (status.rejected_version != 0) {
    v1::RejectedVersion* rejected = response->mutable_last_rejection();
    rejected->set_version(status.rejected_version);
    rejected->set_code(absl::StatusCodeToString(status.rejection.code()));
    rejected->set_reason(std::string(status.rejection.message()));
    rejected->set_rejected_unix_seconds(absl::ToUnixSeconds(status.rejected_time));
  }
  response->set_memory_limit_bytes(status.memory.source.empty() ? 0 : status.memory.limit_bytes);
  response->set_memory_limit_source(status.memory.source);
  if (dropped_ != nullptr) {
    response->set_dropped_deadline_exceeded(dropped_->deadline_exceeded());
    response->set_dropped_cancelled(dropped_->cancelled());
  }
}

grpc::ServerUnaryReactor* AdminService::ReloadModel(grpc::CallbackServerContext* context,
                                                    const grpc::ByteBuffer* request_body,
                                                    grpc::ByteBuffer* response_body) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status status = Authenticate(*context, "ReloadModel");
  // The request has no fields yet; it is parsed all the same, so that a body that is not a
  // ReloadModelRequest is refused now and not read as one once fields are added.
  v1::ReloadModelRequest request;
  if (status.ok()) status = edge::ParseRequestBody(*request_body, max_request_bytes_, &request);
  if (!status.ok()) {
    reactor->Finish(common::ToGrpcStatus(status));
    return reactor;
  }
  {
    absl::MutexLock lock(&mu_);
    ++reloads_running_;
  }
  // Detached: after Finish the thread only releases its count, which the destructor waits
  // for; the server (and so the call) outlives the thread because Shutdown waits for calls.
  std::thread([this, reactor, response_body, peer = context->peer()] {
    v1::ReloadModelResponse response;
    absl::Status reloaded = DoReloadModel(&response);
    spdlog::info("Admin.ReloadModel from {}: {} (version {} -> {})", peer, reloaded.ToString(),
                 response.previous_version(), response.served_version());
    if (reloaded.ok()) reloaded = edge::SerializeResponseBody(response, response_body);
    reactor->Finish(common::ToGrpcStatus(reloaded));
    absl::MutexLock lock(&mu_);
    --reloads_running_;
  }).detach();
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::GetServerStatus(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request_body,
                                                        grpc::ByteBuffer* response_body) {
  if (absl::Status s = Authenticate(*context, "GetServerStatus"); !s.ok()) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(common::ToGrpcStatus(s));
    return reactor;
  }
  return edge::ServeUnary<v1::GetServerStatusRequest, v1::GetServerStatusResponse>(
      context, *request_body, response_body, max_request_bytes_,
      [this](const v1::GetServerStatusRequest& /*request*/, v1::GetServerStatusResponse* response) {
        DoGetServerStatus(response);
        return absl::OkStatus();
      });
}

absl::StatusOr<std::unique_ptr<AdminService>> NewAdminServiceIfConfigured(
    const std::string& token_file, bool tls, ModelManager* models, const DroppedCalls* dropped,
    size_t max_request_bytes) {
  if (token_file.empty()) {
    spdlog::info(
        "Admin service (ReloadModel, GetServerStatus) not registered: no "
        "--admin_token_file");
    return std::unique_ptr<AdminService>();
  }
  absl::StatusOr<std::string> token = ReadAdminTokenFile(token_file);
  if (!token.ok()) return token.status();
  if (!tls) {
    spdlog::warn(
        "Admin service registered on a plaintext port: its token travels in the "
        "clear (give --tls_cert and --tls_key outside a trusted network)");
  } else {
    spdlog::info("Admin service registered (token from '{}')", token_file);
  }
  return std::make_unique<AdminService>(models, dropped, *std::move(token), max_request_bytes);
}

}  // namespace coupond::server
