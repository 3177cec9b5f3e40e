#ifndef COUPOND_EDGE_METRICS_HTTP_H_
#define COUPOND_EDGE_METRICS_HTTP_H_

// A plain-HTTP side port for Prometheus and for probes (cpp-httplib, Debian's
// libcpp-httplib-dev):
//   GET /metrics  the registry in the text exposition format (kPrometheusContentType)
//   GET /healthz  200 when the health callback says healthy, 503 otherwise; the callback's
//                 text (key=value lines) as a text/plain body
// Anything else is 404. Two worker threads: scrapes are rare and cheap.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "edge/metrics.h"

namespace httplib {
class Server;
}

namespace coupond::edge {

struct HealthReport {
  bool healthy = false;
  // The /healthz body, e.g. "status=SERVING\nmodel_version=3\n".
  std::string text;
};

// Splits "host:port" (host may be "[::1]"); InvalidArgument naming `what` when malformed
// (no colon, port not in 0..65535).
absl::Status ParseHostPort(const std::string& address, const std::string& what, std::string* host,
                           int* port);

// Thread-safe.
class MetricsHttpServer {
 public:
  // Binds `listen_address` ("host:port"; port 0 picks a free port, see port()) and serves
  // until Stop. `registry` and whatever `health` reads must outlive the server (or the
  // Stop call). `health` may be empty: /healthz then always answers 200 "status=OK".
  // InvalidArgument for a malformed address, Unavailable when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& listen_address, const MetricsRegistry* registry,
      std::function<HealthReport()> health);
  // Stops.
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const { return port_; }
  // Closes the listening socket and waits for the serving thread; a kept-alive connection
  // may hold it up to one second. Idempotent.
  void Stop();

 private:
  MetricsHttpServer();

  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  std::atomic<bool> listen_returned_{false};
  absl::Mutex stop_mu_;  // serialises Stop callers
  int port_ = 0;
};

}  // namespace coupond::edge

#endif  // COUPOND_EDGE_METRICS_HTTP_H_
