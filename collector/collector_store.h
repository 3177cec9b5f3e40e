#ifndef COUPOND_COLLECTOR_COLLECTOR_STORE_H_
#define COUPOND_COLLECTOR_COLLECTOR_STORE_H_

// The collector's durable state: decision records and their outcomes in a RocksDB database
// with its write-ahead log.
//
// Layout (default column family):
//   d/<decision_id>   a DecisionRecord (serialized coupond.v1 message)
//   o/<decision_id>   the decision's outcome (a ReportOutcomeRequest, request_id cleared)
//   x/<decision_id>   an outcome whose decision is not (yet) stored: kept apart
//   ~stats            the counters (a GetCollectorStatsResponse), updated in the same
//                     atomic WriteBatch as the rows they count
//
// Durability: every acknowledged write went through the WAL. With `sync` (the default) the
// WAL is fsync'ed before the call returns, so an acknowledged write survives power loss;
// without it, it survives the death of the process (kill -9) but not of the machine.
//
// Group commit: concurrent writes share one WAL write and one fsync. Each call queues its
// write for the store's writer thread, which takes every queued write, stages them in
// arrival order into one WriteBatchWithIndex (each reads the database *through* the batch,
// so it sees the writes staged before it), writes the batch with the counters in one
// atomic, synced write, and answers every write of the group. Writes that arrive meanwhile
// form the next group. So the database sees one writer, checks and writes stay atomic with
// respect to each other, and N concurrent reports cost one fsync instead of N. A storage
// error while staging one write rolls back that write alone; a failed batch write fails the
// whole group (nothing of it is stored, nothing acknowledged).
//
// Callers either wait for their answer (StoreDecisions, RecordOutcome) or hand the write
// over and are called back from the writer thread once it is committed (the *Async forms):
// the gRPC service uses those, so that no gRPC callback thread waits for an fsync.
//
// Idempotency: decision records and outcomes are keyed by decision id. A record already
// stored (or staged earlier in the group) is left unchanged and counted as a duplicate. An
// outcome retried with the same content (redeemed, order value) counts once; different
// content for a decision that already has one is AlreadyExists.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coupond/v1/collector.pb.h"
#include "google/protobuf/repeated_field.h"

namespace rocksdb {
class DB;
}

namespace coupond::collector {

struct CollectorOptions {
  // fsync the WAL before acknowledging a write. Default true (see the file comment).
  bool sync = true;
  // Merge concurrent writes into one batch and one fsync (see the file comment). Default
  // true; false writes each call on its own (one fsync each: the baseline of
  // bench/collector_bench).
  bool group_commit = true;
  // Test hook: the writer thread sleeps this long before writing each group, as a slow
  // disk would. Default zero.
  absl::Duration commit_delay_for_testing = absl::ZeroDuration();
};

// Field checks of the two inputs; InvalidArgument whose message starts with the field
// (`decisions[3].decision_id: ...`, `order_value: ...`). `field_prefix` is prepended.
absl::Status ValidateDecisionRecord(const v1::DecisionRecord& record,
                                    const std::string& field_prefix = "");
absl::Status ValidateOutcome(const v1::ReportOutcomeRequest& outcome);

// Thread-safe.
class CollectorStore {
 public:
  // Opens (creating if missing) the database at `path` for writing; takes RocksDB's lock
  // (one writer per path).
  static absl::StatusOr<std::unique_ptr<CollectorStore>> Open(const std::string& path,
                                                              const CollectorOptions& options = {});
  // Opens it read-only beside a running writer (couponctl export): sees what was written
  // before the call, WAL included.
  static absl::StatusOr<std::unique_ptr<CollectorStore>> OpenForRead(const std::string& path);
  ~CollectorStore();

  // Validates every record first (nothing is stored if one is bad), then stores the new
  // ones and matches outcomes that arrived before their decision, in one atomic batch.
  // Blocks until the write is committed.
  absl::StatusOr<v1::LogDecisionsResponse> StoreDecisions(
      const google::protobuf::RepeatedPtrField<v1::DecisionRecord>& records);

  // Stores one outcome (see the file comment). `now_unix_seconds` fills an unset time.
  // Blocks until the write is committed.
  absl::StatusOr<v1::OutcomeDisposition> RecordOutcome(const v1::ReportOutcomeRequest& outcome,
                                                       int64_t now_unix_seconds);

  // The same writes without waiting. `done` gets what the blocking form would return:
  // inline, before the call returns, when the input is invalid or the store read-only;
  // otherwise on the writer thread once the write's group is committed (or failed). `done`
  // must not block: the next group waits for it. Every queued write is answered before the
  // store is destroyed.
  using DecisionsDone = std::function<void(absl::StatusOr<v1::LogDecisionsResponse>)>;
  using OutcomeDone = std::function<void(absl::StatusOr<v1::OutcomeDisposition>)>;
  // REQUIRES: `records` stay valid until `done` runs.
  void StoreDecisionsAsync(const google::protobuf::RepeatedPtrField<v1::DecisionRecord>& records,
                           DecisionsDone done);
  // `outcome` is copied: it may go as soon as the call returns.
  void RecordOutcomeAsync(const v1::ReportOutcomeRequest& outcome, int64_t now_unix_seconds,
                          OutcomeDone done);

  v1::GetCollectorStatsResponse Stats() const;
  // Batches written since Open (each with one WAL write/fsync), for tests and benchmarks:
  // below the number of writes when group commit merged some.
  uint64_t commits() const;

  // Every stored decision in decision-id order, with its outcome (null when none was
  // reported). Stops at the first error `visit` returns.
  absl::Status ForEachDecision(
      const std::function<absl::Status(const v1::DecisionRecord&,
                                       const v1::ReportOutcomeRequest*)>& visit) const;
  // Every outcome whose decision is not stored.
  absl::Status ForEachUnmatchedOutcome(
      const std::function<absl::Status(const v1::ReportOutcomeRequest&)>& visit) const;

 private:
  CollectorStore(std::string path, std::unique_ptr<rocksdb::DB> db, const CollectorOptions& options,
                 bool writable, v1::GetCollectorStatsResponse stats);

  struct Writer;
  // Queues `writer` for the writer thread, which owns it until its `done` has run.
  void Enqueue(Writer* writer);
  // The writer thread: group commits until stopping_ and nothing is queued.
  void WriteLoop();
  // Stages and writes one group in one batch; the status of each of its writes. Updates
  // `stats` (a copy of the counters) and, when written, stats_ and commits_.
  std::vector<absl::Status> WriteGroup(const std::vector<Writer*>& group,
                                       v1::GetCollectorStatsResponse* stats);

  const std::string path_;
  const std::unique_ptr<rocksdb::DB> db_;
  const CollectorOptions options_;
  const bool writable_;
  mutable absl::Mutex mu_;  // guards the queue, stopping_ and the counters
  std::deque<Writer*> queue_ ABSL_GUARDED_BY(mu_);  // waiting for the next group
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;      // the destructor has begun
  uint64_t commits_ ABSL_GUARDED_BY(mu_) = 0;
  v1::GetCollectorStatsResponse stats_ ABSL_GUARDED_BY(mu_);
  std::thread writer_thread_;  // writable stores only; joined by the destructor
};

}  // namespace coupond::collector

#endif  // COUPOND_COLLECTOR_COLLECTOR_STORE_H_
