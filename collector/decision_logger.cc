#include "collector/decision_logger.h"

#include <algorithm>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "coupond/v1/collector.grpc.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "grpcpp/client_context.h"
#include "spdlog/spdlog.h"

namespace coupond::collector {
namespace {

class StoreSink final : public DecisionSink {
 public:
  explicit StoreSink(CollectorStore* store) : store_(store) {}
  absl::Status Write(const v1::LogDecisionsRequest& batch) override {
    return store_->StoreDecisions(batch.decisions()).status();
  }
  std::string Describe() const override { return "the collector in this process"; }

 private:
  CollectorStore* const store_;
};

class GrpcSink final : public DecisionSink {
 public:
  GrpcSink(std::shared_ptr<grpc::Channel> channel, std::string target, absl::Duration timeout,
           std::string token)
      : stub_(v1::Collector::NewStub(std::move(channel))),
        target_(std::move(target)),
        timeout_(timeout),
        authorization_(token.empty() ? "" : absl::StrCat("Bearer ", token)) {}
  absl::Status Write(const v1::LogDecisionsRequest& batch) override {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
    if (!authorization_.empty()) context.AddMetadata("authorization", authorization_);
    v1::LogDecisionsResponse response;
    const grpc::Status s = stub_->LogDecisions(&context, batch, &response);
    if (s.ok()) return absl::OkStatus();
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }
  std::string Describe() const override { return absl::StrCat("the collector at ", target_); }

 private:
  std::unique_ptr<v1::Collector::Stub> stub_;
  const std::string target_;
  const absl::Duration timeout_;
  const std::string authorization_;  // "Bearer <token>", or "" to send none
};

}  // namespace

std::unique_ptr<DecisionSink> NewStoreSink(CollectorStore* store) {
  return std::make_unique<StoreSink>(store);
}

std::unique_ptr<DecisionSink> NewGrpcSink(std::shared_ptr<grpc::Channel> channel, std::string target,
                                          absl::Duration timeout, std::string token) {
  return std::make_unique<GrpcSink>(std::move(channel), std::move(target), timeout,
                                    std::move(token));
}

namespace {

// The bytes a message of `size` bytes takes as one element of a repeated message field
// numbered below 16: a one-byte tag, the length as a varint, the message.
size_t FramedBytes(size_t size) {
  return 1 + google::protobuf::io::CodedOutputStream::VarintSize64(size) + size;
}

}  // namespace

bool IsTransientWriteError(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status) ||
         absl::IsAborted(status);
}

bool TruncateCandidatesToFit(v1::DecisionRecord* record, size_t max_bytes) {
  if (record->ByteSizeLong() <= max_bytes) return true;
  const int n = record->candidates_size();
  // The record without candidates, with the two truncation fields at their largest size
  // (a non-zero double is always 9 bytes).
  v1::DecisionRecord base = *record;
  base.clear_candidates();
  base.set_candidates_total(static_cast<uint32_t>(n));
  base.set_omitted_propensity(1.0);
  const size_t base_bytes = base.ByteSizeLong();
  if (base_bytes > max_bytes) return false;
  size_t budget = max_bytes - base_bytes;

  absl::flat_hash_set<std::string> slot_ids;
  for (const v1::DecisionSlot& slot : record->slots()) slot_ids.insert(slot.coupon_id());
  if (!record->chosen_coupon_id().empty()) slot_ids.insert(record->chosen_coupon_id());
  // Keep order: the given coupons first, then by propensity, then by score. The keys are
  // built once (one hash lookup per candidate, not one per comparison): this runs on the
  // request thread, and an oversize record has 100,000 candidates or more.
  struct Rank {
    int given;  // 0 for a coupon given in this decision, 1 otherwise
    double neg_propensity, neg_score;
    int index;
    bool operator<(const Rank& o) const {
      return std::tie(given, neg_propensity, neg_score, index) <
             std::tie(o.given, o.neg_propensity, o.neg_score, o.index);
    }
  };
  std::vector<Rank> order;
  order.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const v1::DecisionCandidate& c = record->candidates(i);
    order.push_back({slot_ids.contains(c.coupon_id()) ? 0 : 1, -c.propensity(), -c.score(), i});
  }
  std::sort(order.begin(), order.end());
  std::vector<bool> keep(static_cast<size_t>(n), false);
  for (const Rank& r : order) {
    const size_t cost = FramedBytes(record->candidates(r.index).ByteSizeLong());
    if (cost <= budget) {
      keep[static_cast<size_t>(r.index)] = true;
      budget -= cost;
    } else if (r.given == 0) {
      return false;  // a record whose given coupons are not all listed would be inconsistent
    }
  }
  double omitted = 0.0;
  google::protobuf::RepeatedPtrField<v1::DecisionCandidate> kept;
  for (int i = 0; i < n; ++i) {
    if (keep[static_cast<size_t>(i)]) {
      kept.Add()->Swap(record->mutable_candidates(i));
    } else {
      omitted += record->candidates(i).propensity();
    }
  }
  record->mutable_candidates()->Swap(&kept);
  record->set_candidates_total(static_cast<uint32_t>(n));
  record->set_omitted_propensity(omitted);
  return true;
}

absl::StatusOr<std::unique_ptr<DecisionLogger>> DecisionLogger::Create(
    std::unique_ptr<DecisionSink> sink, const DecisionLoggerOptions& options) {
  if (sink == nullptr) return absl::InvalidArgumentError("DecisionLogger: sink is null");
  if (options.queue_bytes == 0) {
    return absl::InvalidArgumentError("decision_log.queue_bytes: must be positive");
  }
  if (options.max_batch == 0) return absl::InvalidArgumentError("decision_log.max_batch: must be positive");
  if (options.max_batch_bytes < 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("decision_log.max_batch_bytes: ", options.max_batch_bytes, " is below 4096"));
  }
  if (options.retry_initial <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("decision_log.retry_initial: must be positive");
  }
  return std::unique_ptr<DecisionLogger>(new DecisionLogger(std::move(sink), options));
}

DecisionLogger::DecisionLogger(std::unique_ptr<DecisionSink> sink, const DecisionLoggerOptions& options)
    : options_(options), sink_(std::move(sink)) {
  thread_ = std::thread([this] { Run(); });
}

DecisionLogger::~DecisionLogger() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

bool DecisionLogger::Log(v1::DecisionRecord record) {
  // Sized (and, rarely, truncated) before the lock: the cost grows with the candidates.
  // The batch also frames the record: its own framing must fit too.
  const size_t record_limit = options_.max_batch_bytes - 1 -
                              google::protobuf::io::CodedOutputStream::VarintSize64(
                                  options_.max_batch_bytes);
  size_t size = record.ByteSizeLong();
  bool truncated = false;
  bool oversize = false;
  if (size > record_limit) {
    if (TruncateCandidatesToFit(&record, record_limit)) {
      truncated = true;
      size = record.ByteSizeLong();
    } else {
      oversize = true;
    }
  }
  const size_t bytes = FramedBytes(size);
  absl::MutexLock lock(&mu_);
  if (oversize) {
    ++counters_.dropped_oversize;
    if (counters_.dropped_oversize == 1 || counters_.dropped_oversize % 1000 == 0) {
      spdlog::error("decision log: record {} of {} bytes does not fit in {} bytes even without its "
                    "candidates; dropped ({} so far)",
                    record.decision_id(), size, record_limit, counters_.dropped_oversize);
    }
    return false;
  }
  if (truncated) ++counters_.truncated;
  if (stopping_) {
    ++counters_.dropped_shutdown;
    return false;
  }
  if (counters_.queued_bytes + bytes > options_.queue_bytes) {
    ++counters_.dropped_queue_full;
    if (counters_.dropped_queue_full == 1 || counters_.dropped_queue_full % 10000 == 0) {
      spdlog::warn("decision log: queue full ({} bytes of {}), records dropped ({} so far)",
                   counters_.queued_bytes, options_.queue_bytes, counters_.dropped_queue_full);
    }
    return false;
  }
  queue_.push_back(Queued{std::move(record), bytes});
  counters_.queued_bytes += bytes;
  counters_.max_queued_bytes = std::max(counters_.max_queued_bytes, counters_.queued_bytes);
  ++counters_.enqueued;
  return true;
}

DecisionLogger::Counters DecisionLogger::counters() const {
  absl::MutexLock lock(&mu_);
  Counters c = counters_;
  c.queued = queue_.size();
  return c;
}

void DecisionLogger::Run() {
  absl::Duration backoff = options_.retry_initial;
  absl::Time drain_deadline = absl::InfiniteFuture();
  v1::LogDecisionsRequest batch;  // kept across failed transient attempts
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (batch.decisions_size() == 0) {
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
        mu_.Await(absl::Condition(&ready));
        if (stopping_ && drain_deadline == absl::InfiniteFuture()) {
          drain_deadline = absl::Now() + options_.drain_timeout;
        }
        if (queue_.empty()) return;  // stopping, nothing left
        // At least one record (Log made each fit alone), then as many as fit.
        size_t batch_bytes = 0;
        while (!queue_.empty() && static_cast<size_t>(batch.decisions_size()) < options_.max_batch &&
               (batch.decisions_size() == 0 ||
                batch_bytes + queue_.front().bytes <= options_.max_batch_bytes)) {
          batch_bytes += queue_.front().bytes;
          counters_.queued_bytes -= queue_.front().bytes;
          *batch.add_decisions() = std::move(queue_.front().record);
          queue_.pop_front();
        }
      } else if (stopping_ && drain_deadline == absl::InfiniteFuture()) {
        drain_deadline = absl::Now() + options_.drain_timeout;
      }
    }
    const absl::Status s = sink_->Write(batch);
    absl::Duration pause = absl::ZeroDuration();  // slept with the lock released
    {
      absl::MutexLock lock(&mu_);
      if (s.ok()) {
        counters_.written += static_cast<uint64_t>(batch.decisions_size());
        batch.clear_decisions();
        backoff = options_.retry_initial;
        continue;
      }
      ++counters_.write_failures;
      if (!IsTransientWriteError(s)) {
        // Sending the same bytes again would fail the same way and hold every later record
        // behind them: drop the batch, counted and logged every time (it should not happen).
        counters_.dropped_permanent_error += static_cast<uint64_t>(batch.decisions_size());
        spdlog::error("decision log: {} refused {} records for good; dropped ({} so far): {}{}",
                      sink_->Describe(), batch.decisions_size(),
                      counters_.dropped_permanent_error, s.ToString(),
                      absl::IsResourceExhausted(s)
                          ? " (is --decision_batch_bytes above the collector's message limit?)"
                          : "");
        batch.clear_decisions();
        backoff = options_.retry_initial;
        continue;
      }
      ++counters_.retries;
      if (counters_.retries == 1 || counters_.retries % 100 == 0) {
        spdlog::warn("decision log: writing {} records to {} failed ({} retries so far): {}",
                     batch.decisions_size(), sink_->Describe(), counters_.retries, s.ToString());
      }
      if (stopping_) {
        const absl::Time now = absl::Now();
        if (now >= drain_deadline) {
          const uint64_t lost = static_cast<uint64_t>(batch.decisions_size()) + queue_.size();
          counters_.dropped_shutdown += lost;
          spdlog::error("decision log: {} records could not be delivered to {} before shutdown",
                        lost, sink_->Describe());
          queue_.clear();
          counters_.queued_bytes = 0;
          return;
        }
        pause = std::min(backoff, drain_deadline - now);
      } else {
        // Wait out the backoff; shutdown wakes it early.
        auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
        mu_.AwaitWithTimeout(absl::Condition(&stop), backoff);
      }
      backoff = std::min(backoff * 2, options_.retry_max);
    }
    absl::SleepFor(pause);
  }
}

}  // namespace coupond::collector
