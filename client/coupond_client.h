#ifndef COUPOND_CLIENT_COUPOND_CLIENT_H_
#define COUPOND_CLIENT_COUPOND_CLIENT_H_

// A small C++ client for a coupond server: typed calls with deadlines, results as
// absl::StatusOr (the server's gRPC status code and message carried over unchanged).

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coupond/v1/admin.grpc.pb.h"
#include "coupond/v1/coupon_scoring.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/channel.h"

namespace coupond::client {

// TLS towards a server started with --tls_cert/--tls_key. PEM contents, not file names
// (LoadClientTls reads files).
struct ClientTlsOptions {
  // The CA certificate(s) the server's certificate must verify against. Empty: the
  // system's roots (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH overrides them).
  std::string root_certs_pem;
  // This client's certificate chain and private key, for a server that requires client
  // certificates (--tls_client_ca). Both or neither.
  std::string cert_chain_pem;
  std::string private_key_pem;
  // The name the server's certificate must carry, when it differs from the target's host
  // (e.g. connecting by IP address to a server whose certificate names its DNS name).
  // Empty (default): the target's host.
  std::string target_name_override;
};

struct ClientOptions {
  // gRPC target, e.g. "localhost:8980" or "dns:///coupond.internal:8980".
  // Default "localhost:8980".
  std::string target = "localhost:8980";
  // Deadline of each call. Default 5 s.
  absl::Duration timeout = absl::Seconds(5);
  // Unset (default): plaintext.
  std::optional<ClientTlsOptions> tls;
  // Sent as "authorization: Bearer <token>" on Admin calls (and only on those). Empty
  // (default): Admin calls go without it and get UNAUTHENTICATED.
  std::string admin_token;
  // Sent as "authorization: Bearer <token>" on coupond.v1.Collector calls (and only on
  // those): a collector run with --collector_token_file refuses writes without it. Empty
  // (default): Collector calls go without it.
  std::string collector_token;
};

// The channel a client of `options` talks over (shared by CoupondClient and
// CollectorClient). InvalidArgument for an empty target or a non-positive timeout.
absl::StatusOr<std::shared_ptr<grpc::Channel>> NewChannel(const ClientOptions& options);

// Reads PEM files into ClientTlsOptions (`cert_file` and `key_file`: both or neither;
// `ca_file` empty: the system's roots). NotFound when a file cannot be read,
// InvalidArgument when it holds no PEM block or only one of cert/key is given.
absl::StatusOr<ClientTlsOptions> LoadClientTls(const std::string& ca_file,
                                               const std::string& cert_file,
                                               const std::string& key_file,
                                               const std::string& target_name_override = "");

// The admin token in a file, as the server reads its --admin_token_file: the content
// without surrounding whitespace. NotFound when unreadable, InvalidArgument when empty.
absl::StatusOr<std::string> ReadAdminToken(const std::string& path);

// Thread-safe: one client may be shared by many threads (gRPC channels are).
class CoupondClient {
 public:
  // Creates the channel (connects lazily). InvalidArgument on an empty target.
  static absl::StatusOr<std::unique_ptr<CoupondClient>> Create(const ClientOptions& options);

  absl::StatusOr<v1::ScoreResponse> Score(const v1::ScoreRequest& request) const;
  absl::StatusOr<v1::GetModelInfoResponse> GetModelInfo(
      const v1::GetModelInfoRequest& request = {}) const;

  // Runs Assign, handing each streamed message to `on_message` as it arrives (messages of
  // assignments, then one message with only the summary). Returns the summary; DataLoss
  // when the stream breaks that shape or ends without a summary. The call's
  // deadline is `timeout` (solves of large populations take longer than one Score: pass a
  // generous one). An error from `on_message` cancels the call and is returned.
  absl::StatusOr<v1::AssignSummary> Assign(
      const v1::AssignRequest& request, absl::Duration timeout,
      const std::function<absl::Status(const v1::AssignResponse&)>& on_message) const;

  absl::StatusOr<v1::DecideResponse> Decide(const v1::DecideRequest& request) const;
  absl::StatusOr<v1::ListCampaignsResponse> ListCampaigns(
      const v1::ListCampaignsRequest& request = {}) const;

  // coupond.v1.Admin (needs options.admin_token; see proto/coupond/v1/admin.proto).
  // ReloadModel's timeout is options.timeout too: loading a large version takes a while.
  absl::StatusOr<v1::ReloadModelResponse> ReloadModel() const;
  absl::StatusOr<v1::GetServerStatusResponse> GetServerStatus() const;

  // The grpc.health.v1 status of `service` ("" is the server as a whole).
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> CheckHealth(
      const std::string& service = "") const;
  // Polls CheckHealth until SERVING; DeadlineExceeded after `timeout`, with the last answer.
  absl::Status WaitUntilServing(absl::Duration timeout, const std::string& service = "") const;

 private:
  CoupondClient(const ClientOptions& options, std::shared_ptr<grpc::Channel> channel);

  const ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::CouponScoring::Stub> scoring_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

// The client-side edge conversion: grpc::Status to absl::Status, code and message kept.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace coupond::client

#endif  // COUPOND_CLIENT_COUPOND_CLIENT_H_
