#include "client/coupond_client.h"

#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace coupond::client {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(what, " '", path, "': cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* what,
                                    const char* marker) {
  absl::StatusOr<std::string> pem = ReadFile(path, what);
  if (pem.ok() && !absl::StrContains(*pem, marker)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", path, "': no '", marker, "' block (PEM expected)"));
  }
  return pem;
}

}  // namespace

absl::StatusOr<ClientTlsOptions> LoadClientTls(const std::string& ca_file,
                                               const std::string& cert_file,
                                               const std::string& key_file,
                                               const std::string& target_name_override) {
  if (cert_file.empty() != key_file.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(cert_file.empty() ? "tls_cert" : "tls_key", ": required with ",
                     cert_file.empty() ? "tls_key" : "tls_cert"));
  }
  ClientTlsOptions tls;
  tls.target_name_override = target_name_override;
  if (!ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(ca_file, "tls_ca", "-----BEGIN CERTIFICATE-----");
    if (!ca.ok()) return ca.status();
    tls.root_certs_pem = *std::move(ca);
  }
  if (!cert_file.empty()) {
    absl::StatusOr<std::string> cert =
        ReadPem(cert_file, "tls_cert", "-----BEGIN CERTIFICATE-----");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem(key_file, "tls_key", "PRIVATE KEY-----");
    if (!key.ok()) return key.status();
    tls.cert_chain_pem = *std::move(cert);
    tls.private_key_pem = *std::move(key);
  }
  return tls;
}

absl::StatusOr<std::string> ReadAdminToken(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path, "admin token file");
  if (!text.ok()) return text.status();
  std::string token(absl::StripAsciiWhitespace(*text));
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("admin token file '", path, "': empty"));
  }
  return token;
}

CoupondClient::CoupondClient(const ClientOptions& options, std::shared_ptr<grpc::Channel> channel)
    : options_(options),
      channel_(std::move(channel)),
      scoring_(v1::CouponScoring::NewStub(channel_)),
      admin_(v1::Admin::NewStub(channel_)),
      health_(grpc::health::v1::Health::NewStub(channel_)) {}

absl::StatusOr<std::shared_ptr<grpc::Channel>> NewChannel(const ClientOptions& options) {
  if (options.target.empty()) return absl::InvalidArgumentError("target: empty");
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout: must be positive");
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  if (options.tls.has_value()) {
    if (options.tls->cert_chain_pem.empty() != options.tls->private_key_pem.empty()) {
      return absl::InvalidArgumentError(
          "tls: cert_chain_pem and private_key_pem go together (both or neither)");
    }
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls->root_certs_pem;
    ssl.pem_cert_chain = options.tls->cert_chain_pem;
    ssl.pem_private_key = options.tls->private_key_pem;
    credentials = grpc::SslCredentials(ssl);
    if (!options.tls->target_name_override.empty()) {
      args.SetSslTargetNameOverride(options.tls->target_name_override);
    }
  }
  auto channel = grpc::CreateCustomChannel(options.target, credentials, args);
  if (channel == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("target: cannot create a channel to '",
                                                   options.target, "'"));
  }
  return channel;
}

absl::StatusOr<std::unique_ptr<CoupondClient>> CoupondClient::Create(const ClientOptions& options) {
  auto channel = NewChannel(options);
  if (!channel.ok()) return channel.status();
  return std::unique_ptr<CoupondClient>(new CoupondClient(options, *std::move(channel)));
}

namespace {

void SetDeadline(grpc::ClientContext* context, absl::Duration timeout) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

}  // namespace

absl::StatusOr<v1::ScoreResponse> CoupondClient::Score(const v1::ScoreRequest& request) const {
  grpc::ClientContext context;
  SetDeadline(&context, options_.timeout);
  v1::ScoreResponse response;
  if (absl::Status s = FromGrpcStatus(scoring_->Score(&context, request, &response)); !s.ok()) {
    return s;
  }
  return response;
}

absl::StatusOr<v1::GetModelInfoResponse> CoupondClient::GetModelInfo(
    const v1::GetModelInfoRequest& request) const {
  grpc::ClientContext context;
  SetDeadline(&context, options_.timeout);
  v1::GetModelInfoResponse response;
  if (absl::Status s = FromGrpcStatus(scoring_->GetModelInfo(&context, request, &response));
      !s.ok()) {
    return s;
  }
  return response;
}

absl::StatusOr<v1::AssignSummary> CoupondClient::Assign(
    const v1::AssignRequest& request, absl::Duration timeout,
    const std::function<absl::Status(const v1::AssignResponse&)>& on_message) const {
  grpc::ClientContext context;
  SetDeadline(&context, timeout);
  std::unique_ptr<grpc::ClientReader<v1::AssignResponse>> reader =
      scoring_->Assign(&context, request);
  v1::AssignResponse message;
  std::optional<v1::AssignSummary> summary;
  absl::Status callback_status;
  absl::Status contract;  // the stream's shape (proto: chunks, then the summary alone)
  while (reader->Read(&message)) {
    if (summary.has_value()) {
      contract = absl::DataLossError("Assign stream: a message after the summary");
    } else if (message.has_summary() && message.assignments_size() > 0) {
      contract = absl::DataLossError(
          "Assign stream: a message with both assignments and the summary");
    }
    if (!contract.ok()) {
      context.TryCancel();
      break;
    }
    if (message.has_summary()) summary = message.summary();
    if (callback_status.ok()) callback_status = on_message(message);
    if (!callback_status.ok()) {
      context.TryCancel();
      break;
    }
  }
  const absl::Status status = FromGrpcStatus(reader->Finish());
  if (!contract.ok()) return contract;
  if (!callback_status.ok()) return callback_status;
  if (!status.ok()) return status;
  if (!summary.has_value()) {
    return absl::DataLossError("Assign stream ended without a summary");
  }
  return *std::move(summary);
}

absl::StatusOr<v1::DecideResponse> CoupondClient::Decide(const v1::DecideRequest& request) const {
  grpc::ClientContext context;
  SetDeadline(&context, options_.timeout);
  v1::DecideResponse response;
  if (absl::Status s = FromGrpcStatus(scoring_->Decide(&context, request, &response)); !s.ok()) {
    return s;
  }
  return response;
}

absl::StatusOr<v1::ListCampaignsResponse> CoupondClient::ListCampaigns(
    const v1::ListCampaignsRequest& request) const {
  grpc::ClientContext context;
  SetDeadline(&context, options_.timeout);
  v1::ListCampaignsResponse response;
  if (absl::Status s = FromGrpcStatus(scoring_->ListCampaigns(&context, request, &response));
      !s.ok()) {
    return s;
  }
  return response;
}

namespace {

void SetAdminToken(grpc::ClientContext* context, const std::string& token) {
  if (!token.empty()) context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
}

}  // namespace

absl::StatusOr<v1::ReloadModelResponse> CoupondClient::ReloadModel() const {
  grpc::ClientContext context;
  SetDeadline(&context, options_.timeout);
  SetAdminToken(&context, options_.admin_token);
  v1::ReloadModelResponse response;
  if (absl::Status s = FromGrpcStatus(admin_->ReloadModel(&context, {}, &response)); !s.ok()) {
    return s;
  }
  return response;
}

absl::StatusOr<v1::GetServerStatusResponse> CoupondClient::GetServerStatus() const {
  grpc::ClientContext context;
  SetDeadline(&context, options_.timeout);
  SetAdminToken(&context, options_.admin_token);
  v1::GetServerStatusResponse response;
  if (absl::Status s = FromGrpcStatus(admin_->GetServerStatus(&context, {}, &response));
      !s.ok()) {
    return s;
  }
  return response;
}

absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> CoupondClient::CheckHealth(
    const std::string& service) const {
  grpc::ClientContext context;
  SetDeadline(&context, options_.timeout);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  if (absl::Status s = FromGrpcStatus(health_->Check(&context, request, &response)); !s.ok()) {
    return s;
  }
  return response.status();
}

absl::Status CoupondClient::WaitUntilServing(absl::Duration timeout,
                                             const std::string& service) const {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last = "no answer";
  while (true) {
    auto status = CheckHealth(service);
    if (status.ok() && *status == grpc::health::v1::HealthCheckResponse::SERVING) {
      return absl::OkStatus();
    }
    last = status.ok() ? grpc::health::v1::HealthCheckResponse::ServingStatus_Name(*status)
                       : status.status().ToString();
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat("server at '", options_.target,
                                                  "' not SERVING after ",
                                                  absl::FormatDuration(timeout), ": ", last));
}

}  // namespace coupond::client
