#ifndef COUPOND_COLLECTOR_DECISION_LOGGER_H_
#define COUPOND_COLLECTOR_DECISION_LOGGER_H_

// The scorer's side of the decision log: a queue bounded in bytes, drained by one
// background thread that sends batches to a DecisionSink (the collector, over gRPC or in the
// same process).
//
// Why a queue and not a log file: the scorer must stay stateless (no disk it owns, any
// replica killable at any time), and the request path must never wait on storage. A
// Decide call only enqueues (a mutex and a deque push); a record is durable once the
// collector has acknowledged its batch; records still queued when a replica is killed are
// lost (they were never acknowledged), and outcomes reported for them land in the
// collector's unmatched outcomes, where they are counted.
//
// Never stuck: nothing the logger sends can be refused for its size, and nothing refused
// for good is retried.
//  * The queue holds at most `queue_bytes` of serialized records; a record that would
//    exceed it is dropped (cause queue_full_bytes).
//  * A batch holds at most `max_batch` records and `max_batch_bytes` serialized bytes (the
//    LogDecisionsRequest as sent), set below the collector's receive limit.
//  * A record that alone would not fit in a batch is truncated before it is queued: its
//    candidate list keeps every slot's coupon, then the most likely candidates, and records
//    the full count and the left-out propensity (TruncateCandidatesToFit; counted as
//    truncated, not dropped). One that does not fit even so is dropped (cause oversize).
//  * A failed write is retried, with exponential backoff capped at `retry_max`, only when
//    the error is transient (IsTransientWriteError); any other error drops the batch (cause
//    permanent_error), since sending the same bytes again would fail the same way and hold
//    every later record behind it.
//  * At shutdown, what is not delivered within `drain_timeout` is dropped (cause shutdown).
// Every drop is counted by cause (Counters), exported as metrics by the server, and logged.

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
// A collector over gRPC; each batch has `timeout` to be acknowledged. `token` non-empty:
// every batch carries "authorization: Bearer <token>" (a collector run with
// --collector_token_file refuses writes without it, UNAUTHENTICATED, which the logger does
// not retry). The channel's credentials decide plaintext or TLS (edge::MakeChannel).
std::unique_ptr<DecisionSink> NewGrpcSink(std::shared_ptr<grpc::Channel> channel,
                                          std::string target, absl::Duration timeout,
                                          std::string token = "");

// collectord's default receive limit (edge::kDefaultMaxRequestBytes, 4 MiB) less 256 KiB
// of headroom, so that a collector whose limit is a little lower still takes every batch.
inline constexpr size_t kDefaultMaxBatchBytes = (size_t{4} << 20) - (size_t{256} << 10);

struct DecisionLoggerOptions {
  // Serialized bytes of the records held while the sink is slow or down; a record that
  // would take the queue past this is dropped (cause queue_full_bytes). The queue's memory
  // is about 1.5-2x its serialized bytes. Default 64 MiB (about 1,400 records of 1,000
  // candidates, or 130,000 of 4).
  size_t queue_bytes = size_t{64} << 20;
  // Most serialized bytes of one LogDecisionsRequest; at least 4 KiB. Default
  // kDefaultMaxBatchBytes (3.75 MiB).
  size_t max_batch_bytes = kDefaultMaxBatchBytes;
  // Most records per LogDecisions call (also bounds one write batch of the collector's
  // RocksDB). Default 500.
  size_t max_batch = 500;
  // Backoff between failed transient writes: doubles from `retry_initial` up to
  // `retry_max`. Defaults 50 ms and 5 s.
  absl::Duration retry_initial = absl::Milliseconds(50);
  absl::Duration retry_max = absl::Seconds(5);
  // At destruction, how long to keep trying to deliver what is queued. Default 5 s.
  absl::Duration drain_timeout = absl::Seconds(5);
};

// Whether a failed write may succeed if sent again unchanged: UNAVAILABLE (collector down or
// restarting, a RocksDB I/O error or busy store), DEADLINE_EXCEEDED (slow collector) and
// ABORTED. Everything else is permanent, RESOURCE_EXHAUSTED included: the collector answers
// it for a request over its size limit, which the same bytes will exceed again (batches
// are sized below the limit, so it means --decision_batch_bytes is above the collector's
// limit; the log says so).
bool IsTransientWriteError(const absl::Status& status);

// Shrinks `record`'s candidate list until the record serializes to at most `max_bytes`:
// keeps the candidates of every slot (and chosen_coupon_id), then the others by descending
// propensity, then score, in their original order; sets candidates_total to the original
// count and omitted_propensity to the left-out propensities' sum. Returns whether it fits
// (false: even the slots' candidates alone are too large; the record is then unchanged).
// A record that already fits is left unchanged (true).
bool TruncateCandidatesToFit(v1::DecisionRecord* record, size_t max_bytes);

// Thread-safe.
class DecisionLogger {
 public:
  struct Counters {
    uint64_t enqueued = 0;  // accepted into the queue
    uint64_t written = 0;   // acknowledged by the sink
    // Records dropped, by cause (the metric label in brackets):
    uint64_t dropped_queue_full = 0;       // [queue_full_bytes] queue at its byte bound
    uint64_t dropped_permanent_error = 0;  // [permanent_error] batch refused for good
    uint64_t dropped_oversize = 0;         // [oversize] too large even when truncated
    uint64_t dropped_shutdown = 0;         // [shutdown] not delivered before shutdown
    // Records queued with their candidate list truncated (not a drop: they are delivered).
    uint64_t truncated = 0;
    uint64_t write_failures = 0;  // failed batch writes, transient or not
    uint64_t retries = 0;         // failed transient writes that were retried
    size_t queued = 0;            // records waiting
    size_t queued_bytes = 0;      // their serialized bytes (<= queue_bytes)
    size_t max_queued_bytes = 0;  // the most queued_bytes has been

    uint64_t dropped() const {
      return dropped_queue_full + dropped_permanent_error + dropped_oversize + dropped_shutdown;
    }
  };

  // InvalidArgument naming the option ("decision_log.queue_bytes: ...") when queue_bytes, max_batch or retry_initial is not
  // positive, or max_batch_bytes is below 4 KiB.
  static absl::StatusOr<std::unique_ptr<DecisionLogger>> Create(std::unique_ptr<DecisionSink> sink,
                                                                const DecisionLoggerOptions& options);
  // Delivers what it can within drain_timeout, counts the rest as dropped, stops the thread.
  ~DecisionLogger();

  // Non-blocking: false (and counted) when the record is dropped. May truncate the record's
  // candidates first (see TruncateCandidatesToFit), on the caller's thread.
  bool Log(v1::DecisionRecord record);
  Counters counters() const;

 private:
  struct Queued {
    v1::DecisionRecord record;
    size_t bytes = 0;  // its size inside a LogDecisionsRequest (tag and length included)
  };

  DecisionLogger(std::unique_ptr<DecisionSink> sink, const DecisionLoggerOptions& options);
  void Run();

  const DecisionLoggerOptions options_;
  std::unique_ptr<DecisionSink> sink_;  // used only by the thread
  mutable absl::Mutex mu_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Counters counters_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace coupond::collector

#endif  // COUPOND_COLLECTOR_DECISION_LOGGER_H_
