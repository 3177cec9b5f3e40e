#ifndef COUPOND_SERVER_SERVER_H_
#define COUPOND_SERVER_SERVER_H_

// The coupond server: the CouponScoring service, the standard grpc.health.v1 service and
// server reflection on one gRPC server, fed by a ModelManager.
//
// Health: NOT_SERVING (for "" and "coupond.v1.CouponScoring") until the first model version
// has loaded, SERVING after, NOT_SERVING again once shutdown begins.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/collector_service.h"
#include "collector/collector_store.h"
#include "collector/decision_logger.h"
#include "edge/metrics.h"
#include "edge/metrics_http.h"
#include "edge/rpc_metrics.h"
#include "edge/tls.h"
#include "grpcpp/server.h"
#include "server/admin_service.h"
#include "server/model_manager.h"
#include "server/request_validation.h"
#include "server/scoring_service.h"
#include "server/server_metrics.h"

namespace coupond::server {

struct ServerOptions {
  // host:port to listen on; port 0 picks a free port (see CoupondServer::port()).
  // Default "0.0.0.0:8980".
  std::string listen_address = "0.0.0.0:8980";
  ModelManagerOptions model;
  ScoringServiceOptions service;
  // On Shutdown, how long in-flight requests may take before they are cancelled.
  // Default 10 s.
  absl::Duration shutdown_grace = absl::Seconds(10);
  // Decision logging (see collector/decision_logger.h). At most one of the two:
  //  * collector_db: run the collector in this process on this RocksDB directory (the
  //    embedded default): coupond.v1.Collector is served on the same port and decisions
  //    go straight to it;
  //  * collector_address: send decisions to a collectord at host:port.
  // Both empty (default): Decide logs nothing and returns no decision_id.
  std::string collector_db;
  collector::CollectorOptions collector;
  std::string collector_address;
  collector::DecisionLoggerOptions decision_log;
  // File holding the collector's bearer token (edge::ReadTokenFile's rules). With
  // collector_db: the embedded coupond.v1.Collector refuses writes (LogDecisions,
  // ReportOutcome) without it, UNAUTHENTICATED; with collector_address: every batch of
  // decisions sent to the collectord carries it. Empty (default): the embedded collector
  // takes writes from anyone who reaches the port (logged as a warning), and batches go
  // without a token.
  std::string collector_token_file;
  // With collector_db and no collector_token_file: take the embedded collector's writes on a
  // listen_address beyond loopback anyway (a network the operator trusts). Default false:
  // such a server refuses to start, naming collector_token_file.
  bool collector_allow_unauthenticated_writes = false;
  // How the decision sink dials collector_address: TLS when any field is set (the
  // collectord's --tls_cert/--tls_key), with a client certificate for one with
  // --tls_client_ca. Default: plaintext. The embedded collector uses `tls` below.
  edge::ChannelTlsOptions collector_tls;

  // --- The production edge (edge/tls.h, server/admin_service.h). ---
  // Transport security for every service on the port. Default: plaintext.
  edge::ServerTlsOptions tls;
  // File holding the bearer token of coupond.v1.Admin. Empty (default): Admin is not served.
  std::string admin_token_file;
  // Largest request message accepted, in bytes; larger ones are RESOURCE_EXHAUSTED (from
  // the services, so that they are counted; gRPC itself refuses, uncounted, only those over
  // edge::GrpcReceiveLimit of this). Default 4 MiB (gRPC's own default). Replaces
  // service.max_request_bytes.
  int max_message_bytes = 4 << 20;
  // host:port for plain-HTTP GET /metrics (Prometheus text) and GET /healthz
  // (edge/metrics_http.h); port 0 picks a free port (see metrics_port()). Default "": off.
  // gRPC calls are counted (and access-logged at debug level) either way.
  std::string metrics_listen;
};

// Thread-safe.
class CoupondServer {
 public:
  // Binds, starts serving (health NOT_SERVING) and starts polling `source` for models.
  // Unavailable if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<CoupondServer>> Start(std::unique_ptr<ModelSource> source,
                                                              const ServerOptions& options);
  // Shuts down (gracefully) if not done yet.
  ~CoupondServer();

  // The bound port.
  int port() const { return port_; }
  const ModelManager& models() const { return *models_; }
  // Null when decisions are not logged.
  const collector::DecisionLogger* decision_logger() const { return decision_logger_.get(); }
  const edge::MetricsRegistry& metrics() const { return *metrics_; }
  // The bound metrics HTTP port; 0 when metrics_listen is empty.
  int metrics_port() const { return metrics_http_ == nullptr ? 0 : metrics_http_->port(); }

  // Stops accepting calls, marks health NOT_SERVING, lets in-flight calls finish for up to
  // shutdown_grace, then cancels the rest. Idempotent.
  void Shutdown();
  // Blocks until the server has shut down.
  void Wait();

 private:
  CoupondServer() = default;
  // /healthz: SERVING once a model is loaded, until Shutdown begins.
  edge::HealthReport Health();

  ServerOptions options_;
  // Destroyed last: the gRPC server's interceptors and the registry's callbacks use them.
  std::unique_ptr<edge::MetricsRegistry> metrics_;
  std::unique_ptr<edge::RpcMetrics> rpc_metrics_;
  // Destroyed after the server and the service (reverse order): the logger delivers what
  // is queued into the collector before the collector's store closes.
  std::unique_ptr<collector::CollectorStore> collector_store_;
  std::unique_ptr<collector::CollectorService> collector_service_;
  std::unique_ptr<collector::DecisionLogger> decision_logger_;
  std::unique_ptr<ModelManager> models_;
  std::unique_ptr<ScoringService> service_;
  std::unique_ptr<AdminService> admin_service_;  // null without admin_token_file
  std::unique_ptr<grpc::Server> server_;
  // Destroyed first (and stopped by Shutdown): it reads everything above.
  std::unique_ptr<edge::MetricsHttpServer> metrics_http_;
  int port_ = 0;
  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace coupond::server

#endif  // COUPOND_SERVER_SERVER_H_
