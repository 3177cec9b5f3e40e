#include "collector/decision_logger.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coupond/v1/collector.grpc.pb.h"
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
  GrpcSink(std::shared_ptr<grpc::Channel> channel, std::string target, absl::Duration timeout)
      : stub_(v1::Collector::NewStub(std::move(channel))),
        target_(std::move(target)),
        timeout_(timeout) {}
  absl::Status Write(const v1::LogDecisionsRequest& batch) override {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
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
};

}  // namespace

std::unique_ptr<DecisionSink> NewStoreSink(CollectorStore* store) {
  return std::make_unique<StoreSink>(store);
}

std::unique_ptr<DecisionSink> NewGrpcSink(std::shared_ptr<grpc::Channel> channel, std::string target,
                                          absl::Duration timeout) {
  return std::make_unique<GrpcSink>(std::move(channel), std::move(target), timeout);
}

absl::StatusOr<std::unique_ptr<DecisionLogger>> DecisionLogger::Create(
    std::unique_ptr<DecisionSink> sink, const DecisionLoggerOptions& options) {
  if (sink == nullptr) return absl::InvalidArgumentError("DecisionLogger: sink is null");
  if (options.queue_capacity == 0 || options.max_batch == 0) {
    return absl::InvalidArgumentError("DecisionLogger: queue_capacity and max_batch must be positive");
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
  absl::MutexLock lock(&mu_);
  if (stopping_ || queue_.size() >= options_.queue_capacity) {
    ++counters_.dropped;
    return false;
  }
  queue_.push_back(std::move(record));
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
  v1::LogDecisionsRequest batch;  // kept across failed attempts
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
        const size_t n = std::min(queue_.size(), options_.max_batch);
        for (size_t i = 0; i < n; ++i) {
          *batch.add_decisions() = std::move(queue_.front());
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
      if (counters_.write_failures == 1 || counters_.write_failures % 100 == 0) {
        spdlog::warn("decision log: writing {} records to {} failed ({} failures so far): {}",
                     batch.decisions_size(), sink_->Describe(), counters_.write_failures,
                     s.ToString());
      }
      if (absl::IsInvalidArgument(s)) {
        // A batch the collector refuses will never succeed: drop it (counted) rather than
        // block every later record behind it.
        counters_.dropped += static_cast<uint64_t>(batch.decisions_size());
        batch.clear_decisions();
        continue;
      }
      if (stopping_) {
        const absl::Time now = absl::Now();
        if (now >= drain_deadline) {
          const uint64_t lost = static_cast<uint64_t>(batch.decisions_size()) + queue_.size();
          counters_.dropped += lost;
          spdlog::error("decision log: {} records could not be delivered to {} before shutdown",
                        lost, sink_->Describe());
          queue_.clear();
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
