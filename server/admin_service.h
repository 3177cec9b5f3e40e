#ifndef COUPOND_SERVER_ADMIN_SERVICE_H_
#define COUPOND_SERVER_ADMIN_SERVICE_H_

// coupond.v1.Admin (proto/coupond/v1/admin.proto): the operator's reload and status calls,
// behind a bearer token. The token comes from a file (--admin_token_file), never from a
// flag value, which any local user could read in `ps`. Without a token file the service is
// not registered at all.

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "coupond/v1/admin.grpc.pb.h"
#include "edge/raw_call.h"
#include "grpcpp/support/string_ref.h"
#include "server/call_guard.h"
#include "server/model_manager.h"

namespace coupond::server {

// The admin token in `path`: edge::ReadTokenFile's rules (at least edge::kMinSecretBytes
// of visible ASCII, whitespace around it ignored); a token is the only thing between a
// network peer and ReloadModel.
absl::StatusOr<std::string> ReadAdminTokenFile(const std::string& path);

// OK when the call carries "authorization: Bearer <token>" (edge::HasBearerToken);
// Unauthenticated otherwise, with a message that names --admin_token_file and never
// echoes what was sent.
absl::Status CheckBearerToken(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                              absl::string_view token);

// Admin with both methods raw: requests are parsed by the service (edge/raw_call.h), after
// the token is checked.
using RawAdminService = v1::Admin::WithRawCallbackMethod_ReloadModel<
    v1::Admin::WithRawCallbackMethod_GetServerStatus<v1::Admin::Service>>;

// Thread-safe. `models` and `dropped` (null: not reported) must outlive the service; the
// destructor waits for reloads in progress.
class AdminService final : public RawAdminService {
 public:
  // REQUIRES: `token` passed ReadAdminTokenFile's checks. Request bodies over
  // `max_request_bytes` are RESOURCE_EXHAUSTED.
  AdminService(ModelManager* models, const DroppedCalls* dropped, std::string token,
               size_t max_request_bytes = edge::kDefaultMaxRequestBytes);
  ~AdminService() override;

  // Loads on a thread of its own (a large version takes seconds: never on gRPC's threads).
  grpc::ServerUnaryReactor* ReloadModel(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetServerStatus(grpc::CallbackServerContext* context,
                                            const grpc::ByteBuffer* request,
                                            grpc::ByteBuffer* response) override;

  // The handlers' logic after authentication (also what the tests call). DoReloadModel
  // blocks for the load.
  absl::Status DoReloadModel(v1::ReloadModelResponse* response);
  void DoGetServerStatus(v1::GetServerStatusResponse* response) const;

 private:
  // Authenticates the call; logs a refusal (at most every 10 s, with a count).
  absl::Status Authenticate(const grpc::CallbackServerContext& context, absl::string_view method);

  ModelManager* const models_;
  const DroppedCalls* const dropped_;
  const std::string token_;
  const size_t max_request_bytes_;
  absl::Mutex mu_;
  int reloads_running_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_refusal_log_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// The Admin service for a server: null (and a log line saying so) when `token_file` is
// empty; otherwise the service with the file's token, or the file's error. `tls`: whether
// the port uses TLS (without it a warning says the token travels in the clear).
absl::StatusOr<std::unique_ptr<AdminService>> NewAdminServiceIfConfigured(
    const std::string& token_file, bool tls, ModelManager* models, const DroppedCalls* dropped,
    size_t max_request_bytes = edge::kDefaultMaxRequestBytes);

}  // namespace coupond::server

#endif  // COUPOND_SERVER_ADMIN_SERVICE_H_
