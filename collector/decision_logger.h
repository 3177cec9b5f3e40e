#ifndef COUPOND_COLLECTOR_DECISION_LOGGER_H_
#define COUPOND_COLLECTOR_DECISION_LOGGER_H_

// The scorer's side of the decision log: a bounded in-memory queue drained by one
// background thread that sends batches to a DecisionSink (the collector, over gRPC or in
// the same process).
//
// Why a queue and not a log file: the scorer must stay stateless (no disk it owns, any
// replica killable at any time), and the request path must never wait on storage. A
// Decide call only enqueues (a mutex and a vector push); when the queue is full, because
// the collector is slow or down, the record is dropped and counted, never silently lost:
// `dropped` is exported as a metric and logged. A record is durable once the collector has
// acknowledged its batch; records still queued when a replica is killed are lost (they were
// never acknowledged), and outcomes reported for them land in the collector's unmatched
// outcomes, where they are counted.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "collector/collector_store.h"
#include "coupond/v1/collector.pb.h"
#include "grpcpp/channel.h"

namespace coupond::collector {

// Where batches of decision records go. Write is called from one thread at a time.
class DecisionSink {
 public:
  virtual ~DecisionSink() = default;
  virtual absl::Status Write(const v1::LogDecisionsRequest& batch) = 0;
  virtual std::string Describe() const = 0;
};

// The collector in this process. `store` must outlive the sink.
std::unique_ptr<DecisionSink> NewStoreSink(CollectorStore* store);
// A collector over gRPC; each batch has `timeout` to be acknowledged.
std::unique_ptr<DecisionSink> NewGrpcSink(std::shared_ptr<grpc::Channel> channel,
                                          std::string target, absl::Duration timeout);

struct DecisionLoggerOptions {
  // Records held while the sink is slow or down; more are dropped (counted). Default 100,000
  // (about 50 MB at 500 bytes a record).
  size_t queue_capacity = 100000;
  // Records per LogDecisions call. Default 500.
  size_t max_batch = 500;
  // Backoff between failed writes: doubles from `retry_initial` up to `retry_max`.
  // Defaults 50 ms and 5 s.
  absl::Duration retry_initial = absl::Milliseconds(50);
  absl::Duration retry_max = absl::Seconds(5);
  // At destruction, how long to keep trying to deliver what is queued. Default 5 s.
  absl::Duration drain_timeout = absl::Seconds(5);
};

// Thread-safe.
class DecisionLogger {
 public:
  struct Counters {
    uint64_t enqueued = 0;  // accepted into the queue
    uint64_t written = 0;   // acknowledged by the sink
    uint64_t dropped = 0;   // refused (queue full) or abandoned at shutdown
    uint64_t write_failures = 0;
    size_t queued = 0;
  };

  static absl::StatusOr<std::unique_ptr<DecisionLogger>> Create(std::unique_ptr<DecisionSink> sink,
                                                                const DecisionLoggerOptions& options);
  // Delivers what it can within drain_timeout, counts the rest as dropped, stops the thread.
  ~DecisionLogger();

  // Non-blocking: false (and counted as dropped) when the queue is full.
  bool Log(v1::DecisionRecord record);
  Counters counters() const;

 private:
  DecisionLogger(std::unique_ptr<DecisionSink> sink, const DecisionLoggerOptions& options);
  void Run();

  const DecisionLoggerOptions options_;
  std::unique_ptr<DecisionSink> sink_;  // used only by the thread
  mutable absl::Mutex mu_;
  std::deque<v1::DecisionRecord> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Counters counters_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace coupond::collector

#endif  // COUPOND_COLLECTOR_DECISION_LOGGER_H_
