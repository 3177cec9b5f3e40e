#include "bench/load/h2load.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "bench/load/common.h"
#include "grpc/health/v1/health.pb.h"

namespace coupond::load_bench {

absl::StatusOr<H2loadResult> RunH2load(const std::string& dir, const std::string& name,
                                       const std::string& message, int port, int connections,
                                       int streams, absl::Duration duration) {
  // gRPC framing: uncompressed flag, 4-byte big-endian length, the message.
  std::string body(5, '\0');
  const uint32_t n = static_cast<uint32_t>(message.size());
  body[1] = static_cast<char>(n >> 24);
  body[2] = static_cast<char>(n >> 16);
  body[3] = static_cast<char>(n >> 8);
  body[4] = static_cast<char>(n);
  body += message;
  const std::string body_file = absl::StrCat(dir, "/", name, ".body");
  std::ofstream(body_file, std::ios::binary) << body;
  const std::string method = name == "noop" ? kNoopMethod : kScoreMethod;
  const std::string command = absl::StrFormat(
      "h2load -c %d -m %d -t 1 -D %ds -d '%s' -H 'content-type: application/grpc' -H 'te: "
      "trailers' 'http://127.0.0.1:%d%s' 2>&1",
      connections, streams, static_cast<int>(absl::ToDoubleSeconds(duration) + 0.5), body_file,
      port, method);
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError("popen h2load failed");
  std::string output;
  char buf[4096];
  while (size_t got = fread(buf, 1, sizeof(buf), pipe)) output.append(buf, got);
  const int rc = pclose(pipe);
  H2loadResult r;
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    // "finished in 5.00s, 81234.40 req/s, 3.10MB/s"
    if (absl::StartsWith(line, "finished in")) {
      const std::vector<absl::string_view> parts = absl::StrSplit(line, ", ");
      if (parts.size() >= 2) {
        (void)absl::SimpleAtod(absl::StripSuffix(parts[1], " req/s"), &r.rps);
      }
    }
    // "traffic: 5.14KB (5261) total, 375B (375) headers (space savings 95.37%), 700B (700) data"
    if (absl::StartsWith(line, "traffic:") && absl::EndsWith(line, ") data")) {
      const size_t open = line.rfind('(');
      double data_bytes = 0;
      if (open != absl::string_view::npos &&
          absl::SimpleAtod(line.substr(open + 1, line.size() - open - 7), &data_bytes)) {
        r.data_bytes_per_request = data_bytes;  // divided by the request count below
      }
    }
    // "requests: 100 total, 100 started, 100 done, 100 succeeded, ..."
    if (absl::StartsWith(line, "requests:")) {
      const std::vector<absl::string_view> parts = absl::StrSplit(line, ", ");
      double done = 0;
      if (parts.size() >= 3 && absl::SimpleAtod(absl::StripSuffix(parts[2], " done"), &done)) {
        r.requests_done = done;
      }
    }
    if (absl::StartsWith(line, "requests:") || absl::StartsWith(line, "status codes:")) {
      absl::StrAppend(&r.summary, r.summary.empty() ? "" : "; ", line);
    }
  }
  if (rc != 0 || r.rps <= 0) {
    return absl::InternalError(absl::StrCat("h2load failed (", rc, "): ", output.substr(0, 600)));
  }
  r.data_bytes_per_request = r.requests_done > 0 ? r.data_bytes_per_request / r.requests_done : 0;
  return r;
}

void H2loadCrossCheck(const LoadBenchOptions& options, const Server& server,
                      const std::string& work_dir, const RequestSet& requests,
                      size_t check_response_bytes, uint64_t* total_errors) {
  const std::string& target = server.target;
  const int connections = options.connections, streams = options.streams;
  if (server.process == nullptr && !absl::StartsWith(target, "127.0.0.1:")) {
    std::printf("\n h2load: skipped (needs a 127.0.0.1 server)\n");
  } else {
    const int port = server.process != nullptr
                         ? server.process->port()
                         : std::atoi(target.substr(target.find(':') + 1).c_str());
    std::printf(
        "\n h2load cross-check (%d connections x %d streams, one body repeated, "
        "no warm-up; h2load does not check grpc-status)\n",
        connections, streams);
    double noop_rps = 0, score_rps = 0;
    // The OK responses' sizes: of Health/Check (SERVING), and of row 1's Score (its size
    // does not vary between calls: the generated request_id has a fixed length).
    grpc::health::v1::HealthCheckResponse serving;
    serving.set_status(grpc::health::v1::HealthCheckResponse::SERVING);
    const double noop_ok_bytes = 5.0 + static_cast<double>(serving.ByteSizeLong());
    for (const char* name : {"noop", "score"}) {
      const std::string message = std::string(name) == "noop"
                                      ? grpc::health::v1::HealthCheckRequest().SerializeAsString()
                                      : Flatten(requests.score[0]);
      absl::StatusOr<H2loadResult> h =
          RunH2load(work_dir, name, message, port, connections, streams, options.duration);
      if (!h.ok()) {
        std::printf("  %-8s %s\n", name, h.status().ToString().c_str());
        continue;
      }
      (std::string(name) == "noop" ? noop_rps : score_rps) = h->rps;
      const double ok_bytes = std::string(name) == "noop"
                                  ? noop_ok_bytes
                                  : 5.0 + static_cast<double>(check_response_bytes);
      std::printf(
          "  %-8s %10.0f req/s   %s; %.1f DATA bytes per request (%.0f for an OK "
          "response: %s)\n",
          name, h->rps, h->summary.c_str(), h->data_bytes_per_request, ok_bytes,
          std::abs(h->data_bytes_per_request - ok_bytes) < 0.5 ? "all OK" : "SOME FAILED");
      if (std::abs(h->data_bytes_per_request - ok_bytes) >= 0.5) ++*total_errors;
    }
    if (noop_rps > 0 && score_rps > 0) {
      std::printf("  Score / no-op (h2load)         %6.3f\n", score_rps / noop_rps);
    }
  }
}

}  // namespace coupond::load_bench
