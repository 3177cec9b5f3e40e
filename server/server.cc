#include "server/server.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/kernel.h"
#include "edge/raw_call.h"
#include "edge/secret_files.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "spdlog/spdlog.h"

namespace coupond::server {
namespace {

constexpr char kServiceName[] = "coupond.v1.CouponScoring";

void SetHealth(grpc::Server* server, bool serving) {
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus(serving);  // the server as a whole ("")
  health->SetServingStatus(kServiceName, serving);
}

}  // namespace

absl::StatusOr<std::unique_ptr<CoupondServer>> CoupondServer::Start(
    std::unique_ptr<ModelSource> source, const ServerOptions& options) {
  std::unique_ptr<CoupondServer> s(new CoupondServer());
  s->options_ = options;
  COUPOND_ASSIGN_OR_RETURN(s->models_, ModelManager::Create(std::move(source), options.model));
  if (!options.collector_db.empty() && !options.collector_address.empty()) {
    return absl::InvalidArgumentError(
        "collector_db and collector_address: give one (embedded collector, or a remote one)");
  }
  if (options.collector_db.empty() && options.collector_address.empty()) {
    if (!options.collector_token_file.empty()) {
      return absl::InvalidArgumentError(
          "collector_token_file: needs collector_db (the embedded collector requires the "
          "token) or collector_address (decisions are sent with it)");
    }
    if (options.collector_tls.enabled()) {
      return absl::InvalidArgumentError(
          "collector_tls_ca, collector_tls_cert, collector_tls_key, collector_tls_server_name: "
          "need collector_address (how decisions are sent to a collectord)");
    }
  }
  if (!options.collector_db.empty()) {
    if (options.collector_tls.enabled()) {
      return absl::InvalidArgumentError(
          "collector_tls_ca, collector_tls_cert, collector_tls_key, collector_tls_server_name: "
          "only with collector_address; the embedded collector (collector_db) is served with "
          "the server's own tls_cert and tls_key");
    }
    collector::CollectorServiceOptions service_options;
    service_options.max_request_bytes = static_cast<size_t>(std::max(options.max_message_bytes, 1));
    collector::CollectorWriteAuthOptions auth;
    auth.token_file = options.collector_token_file;
    auth.tls = options.tls.enabled();
    auth.listen_address = options.listen_address;
    auth.allow_unauthenticated = options.collector_allow_unauthenticated_writes;
    COUPOND_ASSIGN_OR_RETURN(service_options.write_token,
                             collector::ReadCollectorWriteToken(auth));
    COUPOND_ASSIGN_OR_RETURN(s->collector_store_,
                             collector::CollectorStore::Open(options.collector_db, options.collector));
    s->collector_service_ = std::make_unique<collector::CollectorService>(
        s->collector_store_.get(), std::move(service_options));
    COUPOND_ASSIGN_OR_RETURN(s->decision_logger_,
                             collector::DecisionLogger::Create(
                                 collector::NewStoreSink(s->collector_store_.get()), options.decision_log));
  } else if (!options.collector_address.empty()) {
    std::string token;
    if (!options.collector_token_file.empty()) {
      COUPOND_ASSIGN_OR_RETURN(
          token, edge::ReadTokenFile(options.collector_token_file, "collector token file"));
      if (!options.collector_tls.enabled()) {
        spdlog::warn(
            "decisions go to {} with a token over plaintext: the token travels in the clear "
            "(give --collector_tls_ca outside a trusted network)",
            options.collector_address);
      }
    }
    COUPOND_ASSIGN_OR_RETURN(
        std::shared_ptr<grpc::Channel> channel,
        edge::MakeChannel(options.collector_address, options.collector_tls, "collector_"));
    spdlog::info("decisions are logged to the collector at {} ({}, {})", options.collector_address,
                 edge::DescribeTls(options.collector_tls),
                 token.empty() ? "no token" : "with a token");
    COUPOND_ASSIGN_OR_RETURN(
        s->decision_logger_,
        collector::DecisionLogger::Create(
            collector::NewGrpcSink(std::move(channel), options.collector_address,
                                   absl::Seconds(10), std::move(token)),
            options.decision_log));
  }
  if (options.max_message_bytes <= 0) {
    return absl::InvalidArgumentError("max_message_bytes: must be positive");
  }
  const auto max_request_bytes = static_cast<size_t>(options.max_message_bytes);
  ScoringServiceOptions service_options = options.service;
  service_options.max_request_bytes = max_request_bytes;
  s->service_ = std::make_unique<ScoringService>(s->models_.get(), service_options,
                                                 s->decision_logger_.get());
  COUPOND_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                           edge::MakeServerCredentials(options.tls));
  COUPOND_ASSIGN_OR_RETURN(
      s->admin_service_,
      NewAdminServiceIfConfigured(options.admin_token_file, options.tls.enabled(),
                                  s->models_.get(), &s->service_->dropped(), max_request_bytes));
  s->metrics_ = std::make_unique<edge::MetricsRegistry>();
  COUPOND_RETURN_IF_ERROR(RegisterServerMetrics(s->metrics_.get(), s->models_.get(),
                                                s->decision_logger_.get(), s->collector_store_.get()));
  const ModelManager* models = s->models_.get();
  COUPOND_ASSIGN_OR_RETURN(s->rpc_metrics_,
                           edge::RpcMetrics::Create(s->metrics_.get(),
                                              [models] { return models->current_version(); }));

  // Debian links with --as-needed: without this call grpc++_reflection is dropped and
  // reflection silently disappears.
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::EnableDefaultHealthCheckService(true);

  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address, credentials, &s->port_);
  // The services refuse bodies over max_message_bytes themselves, as RESOURCE_EXHAUSTED
  // that the RPC metrics count (gRPC's own refusal is counted nowhere); gRPC's limit, above
  // that, only bounds what one call may buffer (edge/raw_call.h).
  builder.SetMaxReceiveMessageSize(edge::GrpcReceiveLimit(max_request_bytes));
  builder.RegisterService(s->service_.get());
  if (s->admin_service_ != nullptr) builder.RegisterService(s->admin_service_.get());
  if (s->collector_service_ != nullptr) builder.RegisterService(s->collector_service_.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(s->rpc_metrics_->NewInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on '", options.listen_address, "' (in use, or invalid",
                     options.tls.enabled() ? "; or the TLS key does not fit the certificate" : "",
                     ": see gRPC's log above)"));
  }
  // gRPC's default health service starts out SERVING; say the truth before the first model.
  SetHealth(s->server_.get(), false);
  if (!options.metrics_listen.empty()) {
    CoupondServer* raw = s.get();
    COUPOND_ASSIGN_OR_RETURN(s->metrics_http_,
                             edge::MetricsHttpServer::Start(options.metrics_listen, s->metrics_.get(),
                                                      [raw] { return raw->Health(); }));
  }

  grpc::Server* server = s->server_.get();
  s->models_->StartPolling([server](const core::ModelSnapshot&) { SetHealth(server, true); });
  spdlog::info("coupond listening on port {} ({}, kernel target {}), health NOT_SERVING until "
               "a model loads",
               s->port_, edge::DescribeTls(options.tls), core::KernelTargetName());
  return s;
}

CoupondServer::~CoupondServer() { Shutdown(); }

edge::HealthReport CoupondServer::Health() {
  bool draining = false;
  {
    absl::MutexLock lock(&shutdown_mu_);
    draining = shut_down_;
  }
  return ServerHealth(*models_, draining);
}

void CoupondServer::Shutdown() {
  {
    absl::MutexLock lock(&shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  if (server_ == nullptr) return;  // Start failed before the server was built: nothing runs
  spdlog::info("shutting down: draining in-flight calls for up to {}",
               absl::FormatDuration(options_.shutdown_grace));
  // Tell load balancers first, then stop accepting and drain.
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    health->Shutdown();
  }
  server_->Shutdown(absl::ToChronoTime(absl::Now() + options_.shutdown_grace));
  models_->StopPolling();
  // Last, so that scrapes and probes see the drain.
  if (metrics_http_ != nullptr) metrics_http_->Stop();
  spdlog::info("shut down");
}

void CoupondServer::Wait() { server_->Wait(); }

}  // namespace coupond::server
