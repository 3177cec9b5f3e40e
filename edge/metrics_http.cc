#include "edge/metrics_http.h"

#include <sys/socket.h>

#include <charconv>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "httplib.h"
#include "spdlog/spdlog.h"

namespace coupond::edge {

absl::Status ParseHostPort(const std::string& address, const std::string& what, std::string* host,
                           int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": '", address, "' is not host:port (e.g. 0.0.0.0:9090)"));
  }
  std::string h = address.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  const std::string p = address.substr(colon + 1);
  int value = -1;
  const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (ec != std::errc() || end != p.data() + p.size() || value < 0 || value > 65535 || h.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": '", address, "': port must be 0..65535 (0: any free port)"));
  }
  *host = std::move(h);
  *port = value;
  return absl::OkStatus();
}

MetricsHttpServer::MetricsHttpServer() : http_(std::make_unique<httplib::Server>()) {}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen_address, const MetricsRegistry* registry,
    std::function<HealthReport()> health) {
  if (registry == nullptr) return absl::InvalidArgumentError("metrics server: registry is null");
  std::string host;
  int port = 0;
  if (absl::Status s = ParseHostPort(listen_address, "metrics_listen", &host, &port); !s.ok()) {
    return s;
  }
  std::unique_ptr<MetricsHttpServer> s(new MetricsHttpServer());
  httplib::Server& http = *s->http_;
  http.new_task_queue = [] { return new httplib::ThreadPool(2); };
  // Bounds how long Stop waits on an idle kept-alive connection (Prometheus reuses its
  // connection between scrapes).
  http.set_keep_alive_timeout(1);
  // httplib's default sets SO_REUSEPORT, which lets a second process bind the same port and
  // silently take half the scrapes; SO_REUSEADDR alone still allows a quick restart.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  http.Get("/metrics", [registry](const httplib::Request&, httplib::Response& response) {
    response.set_content(registry->Render(), kPrometheusContentType);
  });
  http.Get("/healthz", [health = std::move(health)](const httplib::Request&,
                                                    httplib::Response& response) {
    const HealthReport report = health ? health() : HealthReport{true, "status=OK\n"};
    response.status = report.healthy ? 200 : 503;
    response.set_content(report.text, "text/plain; charset=utf-8");
  });

  if (port == 0) {
    port = http.bind_to_any_port(host);
    if (port < 0) port = 0;
  } else if (!http.bind_to_port(host, port)) {
    port = 0;
  }
  if (port == 0) {
    return absl::UnavailableError(
        absl::StrCat("metrics_listen: cannot listen on '", listen_address, "' (in use, or invalid)"));
  }
  s->port_ = port;
  MetricsHttpServer* raw = s.get();
  s->thread_ = std::thread([raw] {
    if (!raw->http_->listen_after_bind()) spdlog::error("metrics HTTP server stopped with an error");
    raw->listen_returned_.store(true);
  });
  // httplib's stop() does nothing until the accept loop runs: wait for it, so that a Stop
  // right after Start cannot leave the thread serving forever. The socket already listens,
  // so connections made meanwhile just queue. listen_after_bind marks itself running first
  // thing, or returns at once on error.
  while (!http.is_running() && !s->listen_returned_.load()) absl::SleepFor(absl::Milliseconds(1));
  if (s->listen_returned_.load()) {
    s->Stop();
    return absl::UnavailableError(
        absl::StrCat("metrics_listen: the HTTP server on '", listen_address, "' did not start"));
  }
  spdlog::info("metrics and health on http://{}:{}/metrics and /healthz", host, port);
  return s;
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

void MetricsHttpServer::Stop() {
  absl::MutexLock lock(&stop_mu_);
  http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace coupond::edge
