// coupond: the online coupon scoring server. Parses flags, starts the server, waits for
// SIGTERM or SIGINT, drains, exits. Everything else lives in the server library.

#include <csignal>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "collector/decision_logger.h"
#include "core/user_key.h"
#include "edge/port_file.h"
#include "edge/raw_call.h"
#include "edge/secret_files.h"
#include "server/heap_memory.h"
#include "server/server.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "0.0.0.0:8980", "Address to serve on, host:port (port 0: any free port).");
ABSL_FLAG(std::string, store, "", "Model store directory (RocksDB), written by `couponctl publish`. Required.");
ABSL_FLAG(absl::Duration, poll_interval, absl::Seconds(5),
          "How often the store is checked for a newer model version.");
ABSL_FLAG(int, loader_nice, 10,
          "Added to the nice value of the thread that polls, reads and builds new model "
          "versions, so loads yield to request threads on a busy machine (0: same priority).");
ABSL_FLAG(uint32_t, expected_dimension, 0, "Refuse model versions of another latent dimension (0: any).");
ABSL_FLAG(uint32_t, max_candidates, 10000, "Most coupon ids one Score request may name.");
ABSL_FLAG(int, max_concurrent_assigns, 2, "Assign calls solved at the same time; more get RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, assign_threads, 0, "Solver threads per Assign call (0: one per hardware thread).");
ABSL_FLAG(bool, release_memory_after_assign, true,
          "After each Assign call, return the heap's free memory to the kernel (glibc malloc_trim), "
          "so that RSS falls back when large calls end.");
ABSL_FLAG(uint64_t, malloc_mmap_threshold, uint64_t{1} << 20,
          "Heap blocks of at least this many bytes get their own mapping, returned to the kernel "
          "when freed (glibc M_MMAP_THRESHOLD, at most 32 MiB; 0: glibc's dynamic default, which "
          "keeps large calls' memory in its arenas).");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "On SIGTERM, how long in-flight calls may finish before they are cancelled.");
ABSL_FLAG(std::string, collector_db, "",
          "Run the collector in this process on this RocksDB directory: decisions are logged to "
          "it and coupond.v1.Collector (ReportOutcome) is served on --listen.");
ABSL_FLAG(std::string, collector, "", "Log decisions to the collectord at host:port (instead of --collector_db).");
ABSL_FLAG(std::string, collector_token_file, "",
          "File holding the collector's bearer token. With --collector_db: the embedded "
          "coupond.v1.Collector refuses writes (LogDecisions, ReportOutcome) without it; with "
          "--collector: decisions are sent with it. Empty: no token; the embedded collector "
          "then needs a loopback --listen or --collector_allow_unauthenticated_writes.");
ABSL_FLAG(bool, collector_allow_unauthenticated_writes, false,
          "--collector_db without --collector_token_file: take the embedded collector's writes "
          "on a --listen other machines can reach (a network you trust).");
ABSL_FLAG(std::string, collector_tls_ca, "",
          "--collector: dial the collectord with TLS; PEM CA certificate(s) its certificate "
          "must verify against.");
ABSL_FLAG(std::string, collector_tls_cert, "",
          "--collector: dial with TLS and present this PEM client certificate (a collectord "
          "with --tls_client_ca); with --collector_tls_key.");
ABSL_FLAG(std::string, collector_tls_key, "", "PEM private key of --collector_tls_cert.");
ABSL_FLAG(std::string, collector_tls_server_name, "",
          "--collector: dial with TLS; check the collectord's certificate against this name "
          "instead of --collector's host.");
ABSL_FLAG(bool, collector_sync, true,
          "--collector_db: fsync the write-ahead log before acknowledging (survives power loss; "
          "false: survives a killed process only).");
ABSL_FLAG(uint64_t, decision_queue_bytes, uint64_t{64} << 20,
          "Serialized bytes of decision records held while the collector is slow or down; "
          "more are dropped and counted (cause queue_full_bytes).");
ABSL_FLAG(uint64_t, decision_batch_bytes, coupond::collector::kDefaultMaxBatchBytes,
          "Most bytes of one batch of decision records sent to the collector; keep it below "
          "the collector's message limit (collectord's: 4 MiB). A record larger than this "
          "alone is sent with its candidate list truncated.");
ABSL_FLAG(std::string, user_id_key_file, "",
          "Key every incoming user id with the secret in this file (HMAC-SHA256; core/user_key.h) "
          "before lookup and logging; the store must be published with the same file.");
// The production edge: TLS, the Admin service, limits, the memory check (docs/serving-in-production.md).
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain of the server; with --tls_key, serve TLS only.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificate(s): require every client to present a certificate they signed (mutual TLS).");
ABSL_FLAG(std::string, admin_token_file, "",
          "File holding the bearer token of the coupond.v1.Admin service (ReloadModel, "
          "GetServerStatus); without it Admin is not served.");
ABSL_FLAG(int, max_message_bytes, 4 << 20, "Largest request message accepted; larger ones get RESOURCE_EXHAUSTED.");
ABSL_FLAG(uint64_t, max_population, 10'000'000, "Most users one Assign call may plan (explicit list or all_users).");
ABSL_FLAG(absl::Duration, min_deadline_remaining, absl::ZeroDuration(),
          "Score, Decide and Assign calls with less time than this left before their deadline "
          "are answered DEADLINE_EXCEEDED without being worked on (0: only expired ones).");
ABSL_FLAG(uint64_t, memory_limit_bytes, 0,
          "Bytes the served model snapshot and the next one may take together; a version that "
          "would not fit is refused (0: the cgroup limit, or MemAvailable plus the served "
          "snapshot, minus --memory_margin_bytes).");
ABSL_FLAG(uint64_t, memory_margin_bytes, uint64_t{256} << 20,
          "Kept free for the rest of the process when the memory limit comes from the system.");
ABSL_FLAG(std::string, port_file, "", "If set, the bound port is written to this file once serving.");
ABSL_FLAG(std::string, log_level, "info",
          "trace, debug, info, warn, error or off (debug: one access-log line per gRPC call).");
ABSL_FLAG(std::string, metrics_listen, "",
          "Serve Prometheus GET /metrics and GET /healthz over plain HTTP on host:port, e.g. "
          "0.0.0.0:9090 (port 0: any free port). Empty: off.");
ABSL_FLAG(std::string, metrics_port_file, "",
          "If set (with --metrics_listen), the bound metrics port is written to this file.");

namespace {

int Run() {
  const std::string store = absl::GetFlag(FLAGS_store);
  if (store.empty()) {
    std::fprintf(stderr, "coupond: --store is required (see --help)\n");
    return 2;
  }
  const spdlog::level::level_enum level = spdlog::level::from_str(absl::GetFlag(FLAGS_log_level));
  spdlog::set_level(level);
  coupond::edge::RouteProtobufLogsToSpdlog();
  // First, so that the blocks allocated from here on follow it.
  if (absl::Status s = coupond::server::ConfigureHeap(absl::GetFlag(FLAGS_malloc_mmap_threshold));
      !s.ok()) {
    spdlog::critical("cannot start: {}", s.ToString());
    return 1;
  }

  // Block the stop signals before any thread exists, so that every thread (gRPC's
  // included) inherits the mask and only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  coupond::server::ServerOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.model.poll_interval = absl::GetFlag(FLAGS_poll_interval);
  options.model.poll_thread_nice = absl::GetFlag(FLAGS_loader_nice);
  options.service.limits.max_candidates = absl::GetFlag(FLAGS_max_candidates);
  options.service.max_concurrent_assigns = absl::GetFlag(FLAGS_max_concurrent_assigns);
  options.service.assign_threads = absl::GetFlag(FLAGS_assign_threads);
  options.service.release_memory_after_assign = absl::GetFlag(FLAGS_release_memory_after_assign);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  if (const std::string key_file = absl::GetFlag(FLAGS_user_id_key_file); !key_file.empty()) {
    auto secret = coupond::edge::ReadSecretFile(key_file, "user id key file");
    absl::StatusOr<coupond::core::UserKeyer> keyer =
        secret.ok() ? coupond::core::UserKeyer::Create(*std::move(secret)) : secret.status();
    if (!keyer.ok()) {
      spdlog::critical("cannot start: {}", keyer.status().ToString());
      return 1;
    }
    options.service.user_keyer = std::make_shared<const coupond::core::UserKeyer>(*std::move(keyer));
    options.model.user_keyer = options.service.user_keyer;  // stored campaigns' lists
  }
  options.collector_db = absl::GetFlag(FLAGS_collector_db);
  options.collector.sync = absl::GetFlag(FLAGS_collector_sync);
  options.collector_address = absl::GetFlag(FLAGS_collector);
  options.decision_log.queue_bytes = absl::GetFlag(FLAGS_decision_queue_bytes);
  options.decision_log.max_batch_bytes = absl::GetFlag(FLAGS_decision_batch_bytes);
  options.collector_token_file = absl::GetFlag(FLAGS_collector_token_file);
  options.collector_allow_unauthenticated_writes =
      absl::GetFlag(FLAGS_collector_allow_unauthenticated_writes);
  options.collector_tls.ca_file = absl::GetFlag(FLAGS_collector_tls_ca);
  options.collector_tls.cert_file = absl::GetFlag(FLAGS_collector_tls_cert);
  options.collector_tls.key_file = absl::GetFlag(FLAGS_collector_tls_key);
  options.collector_tls.server_name = absl::GetFlag(FLAGS_collector_tls_server_name);
  options.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.admin_token_file = absl::GetFlag(FLAGS_admin_token_file);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.service.limits.max_population = absl::GetFlag(FLAGS_max_population);
  options.service.limits.min_deadline_remaining = absl::GetFlag(FLAGS_min_deadline_remaining);
  options.model.memory.limit_bytes = absl::GetFlag(FLAGS_memory_limit_bytes);
  options.model.memory.safety_margin_bytes = absl::GetFlag(FLAGS_memory_margin_bytes);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);

  auto server = coupond::server::CoupondServer::Start(
      coupond::server::NewStoreModelSource(store, absl::GetFlag(FLAGS_expected_dimension)),
      options);
  if (!server.ok()) {
    spdlog::critical("cannot start: {}", server.status().ToString());
    return 1;
  }
  // Before --port_file, so that a reader who sees that file can read this one.
  if (const std::string port_file = absl::GetFlag(FLAGS_metrics_port_file); !port_file.empty()) {
    const int metrics_port = (*server)->metrics_port();
    if (absl::Status s = coupond::edge::WritePortFile(port_file, metrics_port); !s.ok()) {
      spdlog::critical("--metrics_port_file: {}", s.ToString());
      return 1;
    }
  }
  if (const std::string port_file = absl::GetFlag(FLAGS_port_file); !port_file.empty()) {
    if (absl::Status s = coupond::edge::WritePortFile(port_file, (*server)->port()); !s.ok()) {
      spdlog::critical("--port_file: {}", s.ToString());
      return 1;
    }
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("received {}", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  coupond::edge::DisableMutexDeadlockDetection();  // see edge/raw_call.h
  absl::SetProgramUsageMessage(
      "the gRPC coupon scoring server.\n"
      "  coupond --store DIR [--listen 0.0.0.0:8980] [--poll_interval 5s]\n"
      "          [--collector_db DIR | --collector HOST:PORT [--collector_tls_ca F]]\n"
      "          [--collector_token_file F] [--metrics_listen 0.0.0.0:9090]\n"
      "          [--tls_cert F --tls_key F [--tls_client_ca F]] [--admin_token_file F]\n"
      "Serves coupond.v1.CouponScoring, grpc.health.v1.Health and server reflection (and\n"
      "coupond.v1.Collector with --collector_db, coupond.v1.Admin with --admin_token_file).");
  absl::ParseCommandLine(argc, argv);
  return Run();
}
