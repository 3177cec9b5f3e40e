#include "bench/load/repetition.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/load/common.h"
#include "bench/load/reloader.h"
#include "bench/load/report.h"

namespace coupond::load_bench {
namespace {

// Prints a phase's row (its first error, if any, after the note) and counts its errors.
void ReportPhase(const char* name, PhaseResult& p, const std::string& note,
                 uint64_t* total_errors) {
  *total_errors += p.errors;
  PrintRow(name, p.qps(), p.QuantileUs(0.5), p.QuantileUs(0.99), p.QuantileUs(0.999),
           static_cast<double>(p.errors), p.server_cpu_us, p.client_cpu_us,
           p.first_error.empty() ? note : absl::StrCat(note, " first error: ", p.first_error));
  std::fflush(stdout);
}

// Runs `run` and sets its result's CPU per call, of `server` (when started here) and of this
// process.
template <typename Run>
PhaseResult WithCpu(const ServerProcess* server, Run run) {
  const double server0 = server ? ProcessCpuSeconds(server->pid()) : std::nan("");
  const double client0 = ProcessCpuSeconds(0);
  PhaseResult p = run();
  const double calls = static_cast<double>(std::max<uint64_t>(p.total_calls, 1));
  if (server) p.server_cpu_us = (ProcessCpuSeconds(server->pid()) - server0) / calls * 1e6;
  p.client_cpu_us = (ProcessCpuSeconds(0) - client0) / calls * 1e6;
  return p;
}

// The reload phase: Score open loop at r->open_rate while a Reloader publishes versions.
absl::Status RunReloadPhase(const LoadBenchOptions& o, const LoadTarget& target, RepResult* r,
                            uint64_t* total_errors) {
  const absl::Duration interval = o.reload_interval;
  Reloader reloader(target.store, target.model, target.control, interval, o.stage_versions,
                    static_cast<int>(std::ceil((o.warmup + o.duration) / interval)) + 1,
                    o.publisher_idle);
  if (!reloader.status().ok()) return Annotate(reloader.status(), "stage: ");
  r->reload = WithCpu(target.server, [&] {
    PhaseResult p = target.generator->RunOpen(kScoreMethod, target.requests->score, r->open_rate,
                                              o.max_in_flight, o.warmup, o.duration);
    reloader.Stop();
    return p;
  });
  if (!reloader.status().ok()) return Annotate(reloader.status(), "publish: ");
  r->reloads_published = reloader.published();
  r->reloads_observed = reloader.observed();
  r->publish_ms = reloader.mean_publish_ms();
  ReportPhase("reload", *r->reload,
              absl::StrFormat("target %.0f/s, %d late sends; from actual send p50 %.0f p99 "
                              "%.0f; %d versions published (%s %.0f ms each%s), %d version "
                              "changes served",
                              r->open_rate, r->reload->late_sends, r->reload->SentQuantileUs(0.5),
                              r->reload->SentQuantileUs(0.99), r->reloads_published,
                              reloader.staged() ? "commit" : "publish", r->publish_ms,
                              reloader.staged()
                                  ? absl::StrFormat("; staged before the phase in %.0f ms each",
                                                    reloader.stage_ms())
                                  : std::string(),
                              r->reloads_observed),
              total_errors);
  return absl::OkStatus();
}

// One repetition of the phases.
absl::StatusOr<RepResult> RunRepetition(const LoadBenchOptions& o, const LoadTarget& target,
                                        const std::vector<grpc::ByteBuffer>& noop_requests,
                                        uint64_t* total_errors) {
  LoadGenerator& generator = *target.generator;
  const std::vector<grpc::ByteBuffer>& score_requests = target.requests->score;
  RepResult r;
  if (o.WantsPhase("noop")) {
    r.noop = WithCpu(target.server, [&] {
      return generator.RunClosed(kNoopMethod, noop_requests, o.streams, o.warmup, o.duration);
    });
    ReportPhase("noop", *r.noop, "", total_errors);
  }
  if (o.WantsPhase("score")) {
    r.score = WithCpu(target.server, [&] {
      return generator.RunClosed(kScoreMethod, score_requests, o.streams, o.warmup, o.duration);
    });
    ReportPhase("score", *r.score, "", total_errors);
  }
  if (!r.score || r.score->qps() <= 0) return r;
  r.open_rate = r.score->qps() * o.open_fraction;
  if (o.WantsPhase("open")) {
    r.open = WithCpu(target.server, [&] {
      return generator.RunOpen(kScoreMethod, score_requests, r.open_rate, o.max_in_flight, o.warmup,
                               o.duration);
    });
    ReportPhase("open", *r.open,
                absl::StrFormat("target %.0f/s, %d late sends; from actual send p50 %.0f p99 %.0f",
                                r.open_rate, r.open->late_sends, r.open->SentQuantileUs(0.5),
                                r.open->SentQuantileUs(0.99)),
                total_errors);
  }
  if (o.WantsPhase("noop_open")) {
    r.noop_open = WithCpu(target.server, [&] {
      return generator.RunOpen(kNoopMethod, noop_requests, r.open_rate, o.max_in_flight, o.warmup,
                               o.duration);
    });
    ReportPhase(
        "noop_open", *r.noop_open,
        absl::StrFormat("target %.0f/s, %d late sends", r.open_rate, r.noop_open->late_sends),
        total_errors);
  }
  if (o.WantsPhase("noop_half") && r.noop && r.noop->qps() > 0) {
    const double rate = r.noop->qps() * o.open_fraction;
    r.noop_half = WithCpu(target.server, [&] {
      return generator.RunOpen(kNoopMethod, noop_requests, rate, o.max_in_flight, o.warmup,
                               o.duration);
    });
    ReportPhase("noop_half", *r.noop_half,
                absl::StrFormat("target %.0f/s (the no-op at %.0f%% of its own max), %d late "
                                "sends",
                                rate, 100 * o.open_fraction, r.noop_half->late_sends),
                total_errors);
  }
  if (o.WantsPhase("reload") && target.store != nullptr) {
    if (absl::Status s = RunReloadPhase(o, target, &r, total_errors); !s.ok()) return s;
  }
  return r;
}

}  // namespace

absl::StatusOr<std::vector<RepResult>> RunRepetitions(const LoadBenchOptions& options,
                                                      const LoadTarget& target,
                                                      uint64_t* total_errors) {
  const std::vector<grpc::ByteBuffer> noop_requests = {target.requests->noop};
  std::vector<RepResult> results;
  std::printf(
      "latency in microseconds; srv_cpu, cli_cpu: CPU microseconds per call of the server "
      "process and of this client process over the phase\n");
  PrintHeader();
  for (int rep = 0; rep < options.reps; ++rep) {
    std::printf(" repetition %d (load average %s)\n", rep + 1, LoadAverage().c_str());
    absl::StatusOr<RepResult> r = RunRepetition(options, target, noop_requests, total_errors);
    if (!r.ok()) return r.status();
    results.push_back(std::move(*r));
  }
  if (options.WantsPhase("reload") && target.store == nullptr) {
    std::printf(" reload phase skipped: --server without --store (no store to publish to)\n");
  }
  return results;
}

}  // namespace coupond::load_bench
