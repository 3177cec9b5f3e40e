#include "collector/collector_store.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/numeric_bounds.h"
#include "common/rocksdb_status.h"
#include "common/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/utilities/write_batch_with_index.h"
#include "rocksdb/write_batch.h"

namespace coupond::collector {
namespace {

constexpr size_t kMaxIdBytes = 128;
constexpr char kDecisionPrefix[] = "d/";
constexpr char kOutcomePrefix[] = "o/";
constexpr char kUnmatchedPrefix[] = "x/";
constexpr char kStatsKey[] = "~stats";

using common::FromRocksDb;

absl::Status Invalid(const std::string& field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::Status CheckId(const std::string& field, const std::string& id) {
  if (id.empty()) return Invalid(field, "required");
  if (id.size() > kMaxIdBytes) return Invalid(field, absl::StrCat(id.size(), " bytes, limit ", kMaxIdBytes));
  return absl::OkStatus();
}

bool Probability(double p) { return std::isfinite(p) && p >= 0.0 && p <= 1.0; }

std::string Serialize(const google::protobuf::MessageLite& m) {
  std::string out;
  m.SerializeToString(&out);
  return out;
}

// An outcome as stored: without the caller's request id.
v1::ReportOutcomeRequest Stored(const v1::ReportOutcomeRequest& outcome, int64_t now) {
  v1::ReportOutcomeRequest stored = outcome;
  stored.clear_request_id();
  if (stored.unix_seconds() == 0) stored.set_unix_seconds(now);
  return stored;
}

bool SameContent(const v1::ReportOutcomeRequest& a, const v1::ReportOutcomeRequest& b) {
  // The time is left out: a retry without an explicit time gets a later one.
  return a.redeemed() == b.redeemed() && a.order_value() == b.order_value();
}

}  // namespace

absl::Status ValidateDecisionRecord(const v1::DecisionRecord& record, const std::string& prefix) {
  COUPOND_RETURN_IF_ERROR(CheckId(prefix + "decision_id", record.decision_id()));
  if (record.user_key().size() > 256) {
    return Invalid(prefix + "user_key", absl::StrCat(record.user_key().size(), " bytes, limit 256"));
  }
  COUPOND_RETURN_IF_ERROR(common::CheckIntRange(prefix + "unix_micros", record.unix_micros(), 0,
                                                common::kMaxRequestUnixSeconds * 1'000'000));
  if (!Probability(record.propensity()) || record.propensity() == 0.0) {
    return Invalid(prefix + "propensity", absl::StrCat(record.propensity(), " is not in (0, 1]"));
  }
  double total = 0;
  for (int i = 0; i < record.candidates_size(); ++i) {
    const v1::DecisionCandidate& c = record.candidates(i);
    const std::string field = absl::StrCat(prefix, "candidates[", i, "].");
    COUPOND_RETURN_IF_ERROR(CheckId(field + "coupon_id", c.coupon_id()));
    if (!Probability(c.probability())) {
      return Invalid(field + "probability", absl::StrCat(c.probability(), " is not in [0, 1]"));
    }
    if (!std::isfinite(c.score())) return Invalid(field + "score", "not finite");
    if (!Probability(c.propensity())) {
      return Invalid(field + "propensity", absl::StrCat(c.propensity(), " is not in [0, 1]"));
    }
    total += c.propensity();
  }
  if (!Probability(record.omitted_propensity())) {
    return Invalid(prefix + "omitted_propensity",
                   absl::StrCat(record.omitted_propensity(), " is not in [0, 1]"));
  }
  total += record.omitted_propensity();
  if (total > 1.0 + 1e-9) {
    return Invalid(prefix + "candidates", absl::StrCat("propensities sum to ", total, " > 1"));
  }
  if (record.candidates_total() != 0 &&
      record.candidates_total() < static_cast<uint32_t>(record.candidates_size())) {
    return Invalid(prefix + "candidates_total",
                   absl::StrCat(record.candidates_total(), " is below the ",
                                record.candidates_size(), " candidates listed"));
  }
  for (int i = 0; i < record.slots_size(); ++i) {
    const v1::DecisionSlot& slot = record.slots(i);
    const std::string field = absl::StrCat(prefix, "slots[", i, "].");
    COUPOND_RETURN_IF_ERROR(CheckId(field + "coupon_id", slot.coupon_id()));
    if (!Probability(slot.propensity()) || slot.propensity() == 0.0) {
      return Invalid(field + "propensity", absl::StrCat(slot.propensity(), " is not in (0, 1]"));
    }
  }
  if (record.slots_size() > 0 && record.slots(0).coupon_id() != record.chosen_coupon_id()) {
    return Invalid(prefix + "slots[0].coupon_id",
                   absl::StrCat("'", record.slots(0).coupon_id(), "' is not chosen_coupon_id '",
                                record.chosen_coupon_id(), "'"));
  }
  if (record.max_slots() != 0 && static_cast<uint32_t>(record.slots_size()) > record.max_slots()) {
    return Invalid(prefix + "slots", absl::StrCat(record.slots_size(), " slots, max_slots ",
                                                  record.max_slots()));
  }
  if (record.slate_propensity() != 0.0 && !Probability(record.slate_propensity())) {
    return Invalid(prefix + "slate_propensity",
                   absl::StrCat(record.slate_propensity(), " is not in (0, 1]"));
  }
  return absl::OkStatus();
}

absl::Status ValidateOutcome(const v1::ReportOutcomeRequest& outcome) {
  if (outcome.request_id().size() > kMaxIdBytes) {
    return Invalid("request_id", absl::StrCat(outcome.request_id().size(), " bytes, limit ", kMaxIdBytes));
  }
  COUPOND_RETURN_IF_ERROR(CheckId("decision_id", outcome.decision_id()));
  // An order value in currency units: 1e9 is far above any single order, and keeps the
  // sums an OPE over millions of outcomes forms finite.
  COUPOND_RETURN_IF_ERROR(common::CheckDoubleRange("order_value", outcome.order_value(), 0, 1e9));
  if (!outcome.redeemed() && outcome.order_value() != 0) {
    return Invalid("order_value", "must be 0 when the coupon was not redeemed");
  }
  COUPOND_RETURN_IF_ERROR(common::CheckIntRange("unix_seconds", outcome.unix_seconds(), 0,
                                                common::kMaxRequestUnixSeconds));
  return absl::OkStatus();
}

CollectorStore::CollectorStore(std::string path, std::unique_ptr<rocksdb::DB> db,
                               const CollectorOptions& options, bool writable,
                               v1::GetCollectorStatsResponse stats)
    : path_(std::move(path)),
      db_(std::move(db)),
      options_(options),
      writable_(writable),
      stats_(std::move(stats)) {
  if (writable_) writer_thread_ = std::thread([this] { WriteLoop(); });
}

CollectorStore::~CollectorStore() {
  if (writer_thread_.joinable()) {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    writer_thread_.join();  // after it has written (and answered) everything queued
  }
  // Every acknowledged write is already in the WAL; closing flushes nothing we rely on.
  db_->Close().PermitUncheckedError();
}

namespace {

absl::StatusOr<v1::GetCollectorStatsResponse> ReadStats(rocksdb::DB* db, const std::string& path) {
  v1::GetCollectorStatsResponse stats;
  std::string value;
  const rocksdb::Status s = db->Get(rocksdb::ReadOptions(), kStatsKey, &value);
  if (s.IsNotFound()) return stats;
  COUPOND_RETURN_IF_ERROR(common::FromRocksDb(s, absl::StrCat("collector '", path, "': reading counters")));
  if (!stats.ParseFromString(value)) {
    return absl::DataLossError(absl::StrCat("collector '", path, "': counters do not parse"));
  }
  return stats;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CollectorStore>> CollectorStore::Open(const std::string& path,
                                                                     const CollectorOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("collector '", path, "': cannot create: ", ec.message()));
  }
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  // Recovery that refuses a corrupted WAL tail instead of silently dropping acknowledged
  // writes would be kAbsoluteConsistency; a torn last record (the write that was never
  // acknowledged) is what kill -9 leaves, and kPointInTimeRecovery drops exactly that.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  rocksdb::DB* raw = nullptr;
  COUPOND_RETURN_IF_ERROR(common::FromRocksDb(rocksdb::DB::Open(db_options, path, &raw),
                                      absl::StrCat("collector '", path, "': open")));
  std::unique_ptr<rocksdb::DB> db(raw);
  COUPOND_ASSIGN_OR_RETURN(v1::GetCollectorStatsResponse stats, ReadStats(db.get(), path));
  return std::unique_ptr<CollectorStore>(
      new CollectorStore(path, std::move(db), options, /*writable=*/true, std::move(stats)));
}

absl::StatusOr<std::unique_ptr<CollectorStore>> CollectorStore::OpenForRead(const std::string& path) {
  if (!std::filesystem::exists(std::filesystem::path(path) / "CURRENT")) {
    return absl::NotFoundError(absl::StrCat("collector '", path, "': no database there"));
  }
  rocksdb::Options db_options;
  rocksdb::DB* raw = nullptr;
  COUPOND_RETURN_IF_ERROR(common::FromRocksDb(rocksdb::DB::OpenForReadOnly(db_options, path, &raw),
                                      absl::StrCat("collector '", path, "': open for read")));
  std::unique_ptr<rocksdb::DB> db(raw);
  COUPOND_ASSIGN_OR_RETURN(v1::GetCollectorStatsResponse stats, ReadStats(db.get(), path));
  return std::unique_ptr<CollectorStore>(
      new CollectorStore(path, std::move(db), CollectorOptions(), /*writable=*/false, std::move(stats)));
}

// One write, queued for the next group commit.
struct CollectorStore::Writer {
  // Stages the write into `batch` (reading through it, so it sees the group's earlier
  // writes) and updates `stats`. A non-OK return is a storage error: the write's staged
  // changes are rolled back and the error is its answer. Business outcomes (a duplicate, a
  // conflicting outcome) are the writer's own output, set by `stage`.
  std::function<absl::Status(rocksdb::WriteBatchWithIndex& batch,
                             v1::GetCollectorStatsResponse& stats)>
      stage;
  // Runs on the writer thread once `status` is final (staging, or the group's write). May
  // free the Writer.
  std::function<void(absl::Status status)> done;
};

void CollectorStore::Enqueue(Writer* writer) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(writer);
}

void CollectorStore::WriteLoop() {
  for (;;) {
    std::vector<Writer*> group;
    v1::GetCollectorStatsResponse stats;
    {
      absl::MutexLock lock(&mu_);
      const auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || stopping_;
      };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, and everything queued is answered
      // Every queued write (just the first without group commit), in arrival order.
      if (options_.group_commit) {
        group.assign(queue_.begin(), queue_.end());
        queue_.clear();
      } else {
        group.push_back(queue_.front());
        queue_.pop_front();
      }
      stats = stats_;
    }
    if (options_.commit_delay_for_testing > absl::ZeroDuration()) {
      absl::SleepFor(options_.commit_delay_for_testing);
    }
    std::vector<absl::Status> statuses = WriteGroup(group, &stats);
    // Answered outside the lock: a `done` may finish a gRPC call, or free its Writer.
    for (size_t i = 0; i < group.size(); ++i) {
      // Moved out first: the call frees the Writer, which must not own the running function.
      std::function<void(absl::Status)> done = std::move(group[i]->done);
      done(std::move(statuses[i]));
    }
  }
}

std::vector<absl::Status> CollectorStore::WriteGroup(const std::vector<Writer*>& group,
                                                     v1::GetCollectorStatsResponse* stats) {
  // Only the writer thread touches the database for writing, so what it reads is every
  // earlier group's result plus this group's staged writes.
  std::vector<absl::Status> statuses(group.size());
  rocksdb::WriteBatchWithIndex batch(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true);
  size_t staged = 0;
  absl::Status written = absl::OkStatus();
  for (size_t i = 0; i < group.size(); ++i) {
    batch.SetSavePoint();
    const v1::GetCollectorStatsResponse before = *stats;
    statuses[i] = group[i]->stage(batch, *stats);
    if (statuses[i].ok()) {
      ++staged;
      continue;
    }
    *stats = before;
    // Cannot fail after SetSavePoint; if it did, the batch would hold a failed write's
    // rows, so nothing of it may be written.
    if (absl::Status rolled_back = common::FromRocksDb(batch.RollbackToSavePoint(), "WriteBatch rollback");
        !rolled_back.ok()) {
      written = rolled_back;
    }
  }
  if (staged > 0 && written.ok()) {
    written = common::FromRocksDb(batch.Put(kStatsKey, Serialize(*stats)), "WriteBatch::Put");
    if (written.ok()) {
      rocksdb::WriteOptions write;
      write.sync = options_.sync;
      written = common::FromRocksDb(db_->Write(write, batch.GetWriteBatch()), "collector: writing");
    }
  }
  {
    absl::MutexLock lock(&mu_);
    if (written.ok()) {
      stats_ = *stats;
      if (staged > 0) ++commits_;
    }
  }
  for (absl::Status& status : statuses) {
    if (status.ok() && !written.ok()) status = written;  // nothing of the group stored
  }
  return statuses;
}

uint64_t CollectorStore::commits() const {
  absl::MutexLock lock(&mu_);
  return commits_;
}

namespace {

// Runs an asynchronous store call and waits for its answer (the synchronous API).
template <typename T, typename Start>
absl::StatusOr<T> WaitForStoreAnswer(Start&& start) {
  absl::Notification answered;
  absl::StatusOr<T> result = absl::UnknownError("no answer");
  start([&](absl::StatusOr<T> answer) {
    result = std::move(answer);
    answered.Notify();
  });
  answered.WaitForNotification();
  return result;
}

}  // namespace

absl::StatusOr<v1::LogDecisionsResponse> CollectorStore::StoreDecisions(
    const google::protobuf::RepeatedPtrField<v1::DecisionRecord>& records) {
  return WaitForStoreAnswer<v1::LogDecisionsResponse>(
      [&](DecisionsDone done) { StoreDecisionsAsync(records, std::move(done)); });
}

absl::StatusOr<v1::OutcomeDisposition> CollectorStore::RecordOutcome(
    const v1::ReportOutcomeRequest& outcome, int64_t now_unix_seconds) {
  return WaitForStoreAnswer<v1::OutcomeDisposition>([&](OutcomeDone done) {
    RecordOutcomeAsync(outcome, now_unix_seconds, std::move(done));
  });
}

void CollectorStore::StoreDecisionsAsync(
    const google::protobuf::RepeatedPtrField<v1::DecisionRecord>& records, DecisionsDone done) {
  if (!writable_) return done(absl::FailedPreconditionError("collector opened read-only"));
  for (int i = 0; i < records.size(); ++i) {
    if (absl::Status s = ValidateDecisionRecord(records[i], absl::StrCat("decisions[", i, "]."));
        !s.ok()) {
      return done(std::move(s));
    }
  }
  // Owned by the queue until its `done` has run.
  struct Op : Writer {
    v1::LogDecisionsResponse response;
  };
  auto* op = new Op();
  op->stage = [this, &records, op](rocksdb::WriteBatchWithIndex& batch,
                                   v1::GetCollectorStatsResponse& stats) -> absl::Status {
    v1::LogDecisionsResponse& response = op->response;
    response.Clear();
    for (const v1::DecisionRecord& record : records) {
      const std::string key = kDecisionPrefix + record.decision_id();
      std::string existing;
      // Through the batch: a duplicate within this request, or within the group, is seen.
      rocksdb::Status s = batch.GetFromBatchAndDB(db_.get(), rocksdb::ReadOptions(), key, &existing);
      if (!s.ok() && !s.IsNotFound()) {
        return common::FromRocksDb(s, "collector: reading a decision");
      }
      if (s.ok()) {
        response.set_duplicates(response.duplicates() + 1);
        continue;
      }
      COUPOND_RETURN_IF_ERROR(common::FromRocksDb(batch.Put(key, Serialize(record)), "WriteBatch::Put"));
      response.set_stored(response.stored() + 1);
      // An outcome that arrived first: it becomes the decision's outcome now.
      const std::string unmatched_key = kUnmatchedPrefix + record.decision_id();
      std::string outcome;
      s = batch.GetFromBatchAndDB(db_.get(), rocksdb::ReadOptions(), unmatched_key, &outcome);
      if (s.ok()) {
        COUPOND_RETURN_IF_ERROR(common::FromRocksDb(
            batch.Put(kOutcomePrefix + record.decision_id(), outcome), "WriteBatch::Put"));
        COUPOND_RETURN_IF_ERROR(common::FromRocksDb(batch.Delete(unmatched_key), "WriteBatch::Delete"));
        response.set_matched_outcomes(response.matched_outcomes() + 1);
      } else if (!s.IsNotFound()) {
        return common::FromRocksDb(s, "collector: reading an unmatched outcome");
      }
    }
    stats.set_decisions(stats.decisions() + response.stored());
    stats.set_duplicate_decisions(stats.duplicate_decisions() + response.duplicates());
    stats.set_outcomes(stats.outcomes() + response.matched_outcomes());
    stats.set_unmatched_outcomes(stats.unmatched_outcomes() - response.matched_outcomes());
    return absl::OkStatus();
  };
  op->done = [op, done = std::move(done)](absl::Status status) mutable {
    v1::LogDecisionsResponse response = std::move(op->response);
    delete op;
    if (status.ok()) {
      done(std::move(response));
    } else {
      done(std::move(status));
    }
  };
  Enqueue(op);
}

void CollectorStore::RecordOutcomeAsync(const v1::ReportOutcomeRequest& outcome,
                                        int64_t now_unix_seconds, OutcomeDone done) {
  if (!writable_) return done(absl::FailedPreconditionError("collector opened read-only"));
  if (absl::Status s = ValidateOutcome(outcome); !s.ok()) return done(std::move(s));
  // Owned by the queue until its `done` has run; holds its own copy of the outcome, so the
  // caller's request may go at once.
  struct Op : Writer {
    v1::ReportOutcomeRequest stored;
    v1::OutcomeDisposition disposition = v1::OUTCOME_DISPOSITION_RECORDED;
    absl::Status conflict;  // AlreadyExists: the answer, though the counter is still written
  };
  auto* op = new Op();
  op->stored = Stored(outcome, now_unix_seconds);
  op->stage = [this, op](rocksdb::WriteBatchWithIndex& batch,
                         v1::GetCollectorStatsResponse& stats) -> absl::Status {
    const v1::ReportOutcomeRequest& stored = op->stored;
    const std::string& id = stored.decision_id();
    op->disposition = v1::OUTCOME_DISPOSITION_RECORDED;
    op->conflict = absl::OkStatus();
    // An outcome already stored for this decision (matched or not), or staged earlier in
    // this group?
    for (const char* prefix : {kOutcomePrefix, kUnmatchedPrefix}) {
      std::string value;
      const rocksdb::Status s =
          batch.GetFromBatchAndDB(db_.get(), rocksdb::ReadOptions(), prefix + id, &value);
      if (s.IsNotFound()) continue;
      COUPOND_RETURN_IF_ERROR(common::FromRocksDb(s, "collector: reading an outcome"));
      v1::ReportOutcomeRequest previous;
      if (!previous.ParseFromString(value)) {
        return absl::DataLossError(
            absl::StrCat("collector: stored outcome of '", id, "' does not parse"));
      }
      if (!SameContent(previous, stored)) {
        // Counted durably, like everything else the stats report.
        stats.set_conflicting_outcomes(stats.conflicting_outcomes() + 1);
        op->conflict = absl::AlreadyExistsError(absl::StrCat(
            "decision_id: '", id, "' already has a different outcome (redeemed=",
            previous.redeemed() ? "true" : "false", ", order_value=", previous.order_value(), ")"));
        return absl::OkStatus();
      }
      op->disposition = v1::OUTCOME_DISPOSITION_DUPLICATE;
      stats.set_duplicate_outcomes(stats.duplicate_outcomes() + 1);
    }
    if (op->disposition != v1::OUTCOME_DISPOSITION_RECORDED) return absl::OkStatus();
    std::string decision;
    const rocksdb::Status s =
        batch.GetFromBatchAndDB(db_.get(), rocksdb::ReadOptions(), kDecisionPrefix + id, &decision);
    if (s.ok()) {
      COUPOND_RETURN_IF_ERROR(
          common::FromRocksDb(batch.Put(kOutcomePrefix + id, Serialize(stored)), "WriteBatch::Put"));
      stats.set_outcomes(stats.outcomes() + 1);
    } else if (s.IsNotFound()) {
      COUPOND_RETURN_IF_ERROR(
          common::FromRocksDb(batch.Put(kUnmatchedPrefix + id, Serialize(stored)), "WriteBatch::Put"));
      stats.set_unmatched_outcomes(stats.unmatched_outcomes() + 1);
      op->disposition = v1::OUTCOME_DISPOSITION_UNKNOWN_DECISION;
    } else {
      return common::FromRocksDb(s, "collector: reading a decision");
    }
    return absl::OkStatus();
  };
  op->done = [op, done = std::move(done)](absl::Status status) mutable {
    if (status.ok() && !op->conflict.ok()) status = op->conflict;
    const v1::OutcomeDisposition disposition = op->disposition;
    delete op;
    if (status.ok()) {
      done(disposition);
    } else {
      done(std::move(status));
    }
  };
  Enqueue(op);
}

v1::GetCollectorStatsResponse CollectorStore::Stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

absl::Status CollectorStore::ForEachDecision(
    const std::function<absl::Status(const v1::DecisionRecord&, const v1::ReportOutcomeRequest*)>&
        visit) const {
  const std::string upper = "d0";  // '/' + 1
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  for (it->Seek(kDecisionPrefix); it->Valid(); it->Next()) {
    v1::DecisionRecord record;
    if (!record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("collector: decision '", it->key().ToString(), "' does not parse"));
    }
    std::string value;
    const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kOutcomePrefix + record.decision_id(), &value);
    v1::ReportOutcomeRequest outcome;
    const v1::ReportOutcomeRequest* outcome_ptr = nullptr;
    if (s.ok()) {
      if (!outcome.ParseFromString(value)) {
        return absl::DataLossError(absl::StrCat("collector: outcome of '", record.decision_id(), "' does not parse"));
      }
      outcome_ptr = &outcome;
    } else if (!s.IsNotFound()) {
      COUPOND_RETURN_IF_ERROR(common::FromRocksDb(s, "collector: reading an outcome"));
    }
    COUPOND_RETURN_IF_ERROR(visit(record, outcome_ptr));
  }
  return common::FromRocksDb(it->status(), "collector: listing decisions");
}

absl::Status CollectorStore::ForEachUnmatchedOutcome(
    const std::function<absl::Status(const v1::ReportOutcomeRequest&)>& visit) const {
  const std::string upper = "x0";
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  for (it->Seek(kUnmatchedPrefix); it->Valid(); it->Next()) {
    v1::ReportOutcomeRequest outcome;
    if (!outcome.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("collector: outcome '", it->key().ToString(), "' does not parse"));
    }
    COUPOND_RETURN_IF_ERROR(visit(outcome));
  }
  return common::FromRocksDb(it->status(), "collector: listing unmatched outcomes");
}

}  // namespace coupond::collector
