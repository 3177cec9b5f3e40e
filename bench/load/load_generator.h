// The load generator: raw unary calls (grpc::GenericStub, pre-serialized request bytes, the
// responses not parsed) on a set of channels, one TCP connection each, completions drained
// by one thread per completion queue. Closed loop (a fixed number of calls in flight) or
// open loop (a fixed rate, latency from each call's scheduled send time, so a stalled server
// or client cannot hide queueing: no coordinated omission).

#ifndef COUPOND_BENCH_LOAD_LOAD_GENERATOR_H_
#define COUPOND_BENCH_LOAD_LOAD_GENERATOR_H_

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "bench/load/common.h"
#include "grpcpp/channel.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"

namespace coupond::load_bench {

struct PhaseResult {
  double seconds = 0;        // measured window
  uint64_t completed = 0;    // OK calls that completed inside the window
  uint64_t total_calls = 0;  // every call of the phase, warm-up and drain included
  // CPU per call over the whole phase: of the server process (NaN when not started here)
  // and of this process (the client, and the publisher during the reload phase).
  double server_cpu_us = std::nan("");
  double client_cpu_us = std::nan("");
  uint64_t errors = 0;      // failed calls over the whole phase (warm-up and drain included)
  uint64_t late_sends = 0;  // open loop: calls sent more than 1 ms after their scheduled time
  std::string first_error;
  std::vector<int64_t> latency_ns;  // of the calls counted in `completed`
  // Open loop: the same calls' latency from the moment they were actually sent (the
  // difference to latency_ns is the client's lateness in sending, e.g. CPU starvation).
  std::vector<int64_t> sent_latency_ns;

  double qps() const { return seconds > 0 ? static_cast<double>(completed) / seconds : 0; }
  // Latency quantile q in microseconds (nearest rank), from the scheduled send time.
  double QuantileUs(double q) { return NearestRankUs(&latency_ns, q); }
  // The same from the actual send time (open loop only).
  double SentQuantileUs(double q) { return NearestRankUs(&sent_latency_ns, q); }

 private:
  static double NearestRankUs(std::vector<int64_t>* v, double q);
};

class LoadGenerator {
 public:
  // `connections` channels to `target`, `threads` completion queues (and threads), every
  // call with a deadline of `timeout`.
  LoadGenerator(const std::string& target, int connections, int threads, absl::Duration timeout);
  ~LoadGenerator();
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;

  // Waits until every channel is connected.
  absl::Status WaitConnected(absl::Duration timeout);

  // Closed loop: `streams` calls in flight on every connection, each replaced as it
  // completes. The requests are sent in order, cycling; calls started in the first `warmup`
  // are not measured.
  PhaseResult RunClosed(const char* method, const std::vector<grpc::ByteBuffer>& requests,
                        int streams, absl::Duration warmup, absl::Duration duration);

  // Open loop at `rate` calls/s: one thread sends on schedule (round-robin over connections),
  // the queue threads take the completions. Latency runs from the scheduled send time. At
  // most `max_in_flight` calls are in flight; beyond it sends wait.
  PhaseResult RunOpen(const char* method, const std::vector<grpc::ByteBuffer>& requests,
                      double rate, int max_in_flight, absl::Duration warmup,
                      absl::Duration duration);

 private:
  struct Phase;
  struct Call;

  void Start(Phase* phase, size_t connection, size_t queue, Clock::time_point start,
             bool open_loop = false);
  // Records one completion. Thread-safe (locks per call: at most ~10^5 calls/s).
  void Complete(Phase* phase, Call* call, Clock::time_point now);
  // Takes completions on queue `t` until `in_flight` reaches 0; `next(call, now)` returns
  // the change in flight after the call (0: it started a replacement, -1: it did not).
  template <typename Next>
  void Drain(Phase* phase, size_t t, Next next, int in_flight);

  const std::chrono::nanoseconds timeout_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs_;
  std::vector<std::unique_ptr<grpc::CompletionQueue>> queues_;
};

}  // namespace coupond::load_bench

#endif  // COUPOND_BENCH_LOAD_LOAD_GENERATOR_H_
