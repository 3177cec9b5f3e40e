// collectord: the collector as its own process (its own deployment): serves
// coupond.v1.Collector over a RocksDB directory. Parses flags, serves, drains on SIGTERM.

#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "collector/collector_metrics.h"
#include "collector/collector_service.h"
#include "collector/collector_store.h"
#include "edge/metrics.h"
#include "edge/metrics_http.h"
#include "edge/port_file.h"
#include "edge/raw_call.h"
#include "edge/rpc_metrics.h"
#include "edge/tls.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server_builder.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, db, "", "The collector's RocksDB directory (created if missing). Required.");
ABSL_FLAG(std::string, listen, "0.0.0.0:8981", "Address to serve on, host:port (port 0: any free port).");
ABSL_FLAG(bool, sync, true,
          "fsync the write-ahead log before acknowledging a write (survives power loss; false: "
          "survives a killed process only).");
// The production edge, with the same flags and code as coupond's (edge/tls.h, edge/secret_files.h).
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain of the server; with --tls_key, serve TLS only.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificate(s): require every client to present a certificate they signed (mutual TLS).");
ABSL_FLAG(std::string, collector_token_file, "",
          "File holding the bearer token every write (LogDecisions, ReportOutcome) must carry; "
          "without it, collectord listens only on a loopback address unless "
          "--collector_allow_unauthenticated_writes.");
ABSL_FLAG(bool, collector_allow_unauthenticated_writes, false,
          "Take writes without a token on an address other machines can reach (a network you "
          "trust); without it, a --listen beyond loopback needs --collector_token_file.");
ABSL_FLAG(std::string, port_file, "", "If set, the bound port is written to this file once serving.");
ABSL_FLAG(std::string, metrics_listen, "",
          "Serve Prometheus GET /metrics and GET /healthz over plain HTTP on host:port, e.g. "
          "0.0.0.0:9091 (port 0: any free port). Empty: off.");
ABSL_FLAG(std::string, metrics_port_file, "",
          "If set (with --metrics_listen), the bound metrics port is written to this file.");
ABSL_FLAG(std::string, log_level, "info",
          "trace, debug, info, warn, error or off (debug: one access-log line per gRPC call).");

int main(int argc, char** argv) {
  coupond::edge::DisableMutexDeadlockDetection();  // see edge/raw_call.h
  absl::SetProgramUsageMessage(
      "the coupond collector: durable decision log and outcomes.\n"
      "  collectord --db DIR [--listen 0.0.0.0:8981] [--sync=true] [--metrics_listen 0.0.0.0:9091]\n"
      "             [--tls_cert F --tls_key F [--tls_client_ca F]] [--collector_token_file F]");
  absl::ParseCommandLine(argc, argv);
  const std::string db = absl::GetFlag(FLAGS_db);
  if (db.empty()) {
    std::fprintf(stderr, "collectord: --db is required (see --help)\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));
  coupond::edge::RouteProtobufLogsToSpdlog();
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  coupond::edge::ServerTlsOptions tls;
  tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  tls.key_file = absl::GetFlag(FLAGS_tls_key);
  tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  auto credentials = coupond::edge::MakeServerCredentials(tls);
  if (!credentials.ok()) {
    spdlog::critical("cannot start: {}", credentials.status().ToString());
    return 1;
  }
  coupond::collector::CollectorServiceOptions service_options;
  coupond::collector::CollectorWriteAuthOptions auth;
  auth.token_file = absl::GetFlag(FLAGS_collector_token_file);
  auth.tls = tls.enabled();
  auth.listen_address = absl::GetFlag(FLAGS_listen);
  auth.allow_unauthenticated = absl::GetFlag(FLAGS_collector_allow_unauthenticated_writes);
  if (auto token = coupond::collector::ReadCollectorWriteToken(auth); token.ok()) {
    service_options.write_token = *std::move(token);
  } else {
    spdlog::critical("cannot start: {}", token.status().ToString());
    return 1;
  }

  coupond::collector::CollectorOptions options;
  options.sync = absl::GetFlag(FLAGS_sync);
  auto store = coupond::collector::CollectorStore::Open(db, options);
  if (!store.ok()) {
    spdlog::critical("cannot open the collector database: {}", store.status().ToString());
    return 1;
  }
  const bool token_required = !service_options.write_token.empty();
  coupond::collector::CollectorService service(store->get(), std::move(service_options));
  // Metrics: the store's counters and every call (declared before the server, which holds
  // the interceptor, so destroyed after it).
  coupond::edge::MetricsRegistry metrics;
  std::atomic<bool> draining_flag{false};
  if (absl::Status s = coupond::collector::RegisterCollectorMetrics(&metrics, store->get()); !s.ok()) {
    spdlog::critical("metrics: {}", s.ToString());
    return 1;
  }
  auto rpc_metrics = coupond::edge::RpcMetrics::Create(&metrics, {});
  if (!rpc_metrics.ok()) {
    spdlog::critical("metrics: {}", rpc_metrics.status().ToString());
    return 1;
  }
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), *credentials, &port);
  // The service refuses bodies over edge::kDefaultMaxRequestBytes itself (counted, with a
  // message); gRPC's own limit above that only bounds what one call may buffer.
  builder.SetMaxReceiveMessageSize(coupond::edge::GrpcReceiveLimit(coupond::edge::kDefaultMaxRequestBytes));
  builder.RegisterService(&service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back((*rpc_metrics)->NewInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    spdlog::critical("cannot listen on '{}' (in use, or invalid{}: see gRPC's log above)",
                     absl::GetFlag(FLAGS_listen),
                     tls.enabled() ? "; or the TLS key does not fit the certificate" : "");
    return 1;
  }
  std::unique_ptr<coupond::edge::MetricsHttpServer> metrics_http;
  if (const std::string listen = absl::GetFlag(FLAGS_metrics_listen); !listen.empty()) {
    std::atomic<bool>* draining = &draining_flag;
    auto started = coupond::edge::MetricsHttpServer::Start(listen, &metrics, [draining] {
      const bool healthy = !draining->load();
      return coupond::edge::HealthReport{healthy, healthy ? "status=SERVING\n"
                                                            : "status=NOT_SERVING\nreason=draining\n"};
    });
    if (!started.ok()) {
      spdlog::critical("{}", started.status().ToString());
      return 1;
    }
    metrics_http = *std::move(started);
  }
  // Before --port_file, so that a reader who sees that file can read this one.
  if (const std::string port_file = absl::GetFlag(FLAGS_metrics_port_file); !port_file.empty()) {
    const int metrics_port = metrics_http == nullptr ? 0 : metrics_http->port();
    if (absl::Status s = coupond::edge::WritePortFile(port_file, metrics_port); !s.ok()) {
      spdlog::critical("--metrics_port_file: {}", s.ToString());
      return 1;
    }
  }
  if (const std::string port_file = absl::GetFlag(FLAGS_port_file); !port_file.empty()) {
    if (absl::Status s = coupond::edge::WritePortFile(port_file, port); !s.ok()) {
      spdlog::critical("--port_file: {}", s.ToString());
      return 1;
    }
  }
  const auto stats = (*store)->Stats();
  spdlog::info("collectord listening on port {} ({}, {}, {}; {} decisions, {} outcomes, {} unmatched)",
               port, coupond::edge::DescribeTls(tls),
               token_required ? "token required for writes" : "writes open",
               options.sync ? "synced writes" : "unsynced writes", stats.decisions(), stats.outcomes(),
               stats.unmatched_outcomes());
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("received {}; draining", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  draining_flag.store(true);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (metrics_http != nullptr) metrics_http->Stop();
  return 0;
}
