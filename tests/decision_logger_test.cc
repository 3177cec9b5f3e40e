// The decision logger's bounds (issue 12): a queue bounded in serialized bytes, batches split
// by serialized size, oversize records truncated (or dropped when even that cannot fit),
// transient errors retried with capped backoff, permanent ones dropped, every drop counted
// by cause. Fake sinks script the collector's answers; the real CollectorStore (RocksDB)
// checks what is stored.

#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "collector/collector_store.h"
#include "collector/decision_logger.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::collector {
namespace {

using ::coupond::testing::StatusIs;
using ::coupond::testing::TempDir;
using ::testing::HasSubstr;

// A record with `n` candidates; the chosen one (a single slot) is the last candidate.
v1::DecisionRecord Record(const std::string& id, int n) {
  v1::DecisionRecord r;
  r.set_decision_id(id);
  r.set_user_key("u1");
  r.set_campaign_id("spring");
  r.set_policy("softmax:0.05");
  r.set_max_slots(1);
  for (int j = 0; j < n; ++j) {
    v1::DecisionCandidate* c = r.add_candidates();
    c->set_coupon_id(absl::StrCat("coupon-", j));
    c->set_probability(0.5);
    c->set_score(0.01 * j);
    c->set_propensity(0.5 / n);
  }
  if (n > 0) {
    r.set_chosen_coupon_id(absl::StrCat("coupon-", n - 1));
    r.set_propensity(0.5 / n);
    v1::DecisionSlot* slot = r.add_slots();
    slot->set_coupon_id(r.chosen_coupon_id());
    slot->set_propensity(0.5 / n);
    r.set_slate_propensity(0.5 / n);
  } else {
    r.set_propensity(1.0);
  }
  return r;
}

// Keeps every batch; answers from a script (then OK); can hold writes until released.
class ScriptedSink final : public DecisionSink {
 public:
  explicit ScriptedSink(std::vector<absl::Status> script = {}) : script_(std::move(script)) {}

  absl::Status Write(const v1::LogDecisionsRequest& batch) override {
    absl::MutexLock lock(&mu_);
    auto open = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !held_; };
    mu_.Await(absl::Condition(&open));
    attempts_.push_back(absl::Now());
    absl::Status s = absl::OkStatus();
    if (next_ < script_.size()) s = script_[next_++];
    if (s.ok()) batches_.push_back(batch);
    return s;
  }
  std::string Describe() const override { return "a scripted sink"; }

  void Hold() {
    absl::MutexLock lock(&mu_);
    held_ = true;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    held_ = false;
  }
  std::vector<v1::LogDecisionsRequest> batches() const {
    absl::MutexLock lock(&mu_);
    return batches_;
  }
  std::vector<absl::Time> attempts() const {
    absl::MutexLock lock(&mu_);
    return attempts_;
  }

 private:
  mutable absl::Mutex mu_;
  const std::vector<absl::Status> script_;
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<v1::LogDecisionsRequest> batches_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> attempts_ ABSL_GUARDED_BY(mu_);
};

// Waits (up to 5 s) until the logger has nothing queued or in flight.
bool Settled(const DecisionLogger& logger) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline) {
    const DecisionLogger::Counters c = logger.counters();
    if (c.written + c.dropped_permanent_error + c.dropped_shutdown == c.enqueued) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return false;
}

DecisionLoggerOptions FastOptions() {
  DecisionLoggerOptions options;
  options.retry_initial = absl::Milliseconds(5);
  options.retry_max = absl::Milliseconds(20);
  return options;
}

TEST(DecisionLoggerTest, CreateRefusesZeroBoundsNamingTheOption) {
  DecisionLoggerOptions options;
  options.queue_bytes = 0;
  EXPECT_THAT(DecisionLogger::Create(std::make_unique<ScriptedSink>(), options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("decision_log.queue_bytes")));
  options = DecisionLoggerOptions();
  options.max_batch_bytes = 100;
  EXPECT_THAT(DecisionLogger::Create(std::make_unique<ScriptedSink>(), options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("decision_log.max_batch_bytes: 100 is below 4096")));
  options = DecisionLoggerOptions();
  options.max_batch = 0;
  EXPECT_THAT(DecisionLogger::Create(std::make_unique<ScriptedSink>(), options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("decision_log.max_batch")));
}

TEST(DecisionLoggerTest, BatchesAreSplitBySerializedSizeAndKeepOrder) {
  auto sink = std::make_unique<ScriptedSink>();
  ScriptedSink* seen = sink.get();
  seen->Hold();  // everything queues first, so the batches are as full as they can be
  DecisionLoggerOptions options = FastOptions();
  options.max_batch_bytes = 64 << 10;
  ASSERT_OK_AND_ASSIGN(auto logger, DecisionLogger::Create(std::move(sink), options));
  // Records of 0, 1, 10 and 100 candidates (empty to ~4.5 KB), 200 of them.
  const int sizes[] = {0, 1, 10, 100};
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(logger->Log(Record(absl::StrCat("d", i), sizes[i % 4])));
  }
  seen->Release();
  ASSERT_TRUE(Settled(*logger));
  std::vector<std::string> ids;
  size_t largest = 0;
  for (const v1::LogDecisionsRequest& batch : seen->batches()) {
    EXPECT_LE(batch.ByteSizeLong(), options.max_batch_bytes);
    largest = std::max(largest, batch.ByteSizeLong());
    for (const v1::DecisionRecord& r : batch.decisions()) ids.push_back(r.decision_id());
  }
  // Split, not sent one by one: the batches were filled near the limit.
  EXPECT_GT(largest, options.max_batch_bytes - 5000);
  ASSERT_EQ(ids.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(ids[static_cast<size_t>(i)], absl::StrCat("d", i));
  const DecisionLogger::Counters c = logger->counters();
  EXPECT_EQ(c.written, 200u);
  EXPECT_EQ(c.dropped(), 0u);
  EXPECT_EQ(c.truncated, 0u);
  EXPECT_EQ(c.queued_bytes, 0u);
}

TEST(DecisionLoggerTest, QueueIsBoundedInBytesAndDropsAreCounted) {
  auto sink = std::make_unique<ScriptedSink>();
  ScriptedSink* seen = sink.get();
  seen->Hold();  // the collector is stuck: nothing leaves the queue (but one batch in flight)
  DecisionLoggerOptions options = FastOptions();
  options.queue_bytes = 100 << 10;
  options.max_batch = 1;
  ASSERT_OK_AND_ASSIGN(auto logger, DecisionLogger::Create(std::move(sink), options));
  size_t accepted = 0, refused = 0;
  for (int i = 0; i < 200; ++i) {
    (logger->Log(Record(absl::StrCat("d", i), 50)) ? accepted : refused) += 1;
  }
  DecisionLogger::Counters c = logger->counters();
  EXPECT_GT(refused, 0u);
  EXPECT_EQ(c.dropped_queue_full, refused);
  EXPECT_LE(c.max_queued_bytes, options.queue_bytes);
  EXPECT_GT(c.max_queued_bytes, options.queue_bytes - 3000);  // one record is ~2.3 KB
  // About queue_bytes / record size were taken (+1 in flight), not a record count.
  const size_t record_bytes = Record("d0", 50).ByteSizeLong();
  EXPECT_NEAR(static_cast<double>(accepted),
              static_cast<double>(options.queue_bytes) / static_cast<double>(record_bytes), 2.0);
  seen->Release();
  ASSERT_TRUE(Settled(*logger));
  c = logger->counters();
  EXPECT_EQ(c.written, accepted);
  EXPECT_EQ(c.enqueued + c.dropped(), 200u);
}

TEST(DecisionLoggerTest, AnOversizeRecordIsTruncatedKeepingItsSlotsAndTheFullCount) {
  auto sink = std::make_unique<ScriptedSink>();
  ScriptedSink* seen = sink.get();
  DecisionLoggerOptions options = FastOptions();
  options.max_batch_bytes = 64 << 10;
  ASSERT_OK_AND_ASSIGN(auto logger, DecisionLogger::Create(std::move(sink), options));
  v1::DecisionRecord big = Record("big", 5000);  // ~230 KB; its chosen coupon is the last
  big.mutable_candidates(7)->set_propensity(0.2);  // the most likely candidate besides it
  const double total_propensity = 0.5 + 0.2 - 0.5 / 5000;
  ASSERT_GT(big.ByteSizeLong(), options.max_batch_bytes);
  ASSERT_TRUE(logger->Log(big));
  ASSERT_TRUE(logger->Log(Record("small", 3)));
  ASSERT_TRUE(Settled(*logger));
  const DecisionLogger::Counters c = logger->counters();
  EXPECT_EQ(c.written, 2u);
  EXPECT_EQ(c.truncated, 1u);
  EXPECT_EQ(c.dropped(), 0u);

  std::vector<v1::DecisionRecord> stored;
  for (const auto& batch : seen->batches()) {
    EXPECT_LE(batch.ByteSizeLong(), options.max_batch_bytes);
    for (const auto& r : batch.decisions()) stored.push_back(r);
  }
  ASSERT_EQ(stored.size(), 2u);
  const v1::DecisionRecord& t = stored[0];
  EXPECT_EQ(t.candidates_total(), 5000u);
  EXPECT_LT(t.candidates_size(), 5000);
  EXPECT_GT(t.candidates_size(), 1000);  // filled up to the limit, not cut to nothing
  // The slot's coupon and the most likely one are kept, all in their original order (a
  // small candidate may fill what space is left, so the first kept need not be coupon-7).
  EXPECT_EQ(t.candidates(t.candidates_size() - 1).coupon_id(), "coupon-4999");
  bool most_likely_kept = false;
  int previous = -1;
  for (const auto& cand : t.candidates()) {
    most_likely_kept |= cand.coupon_id() == "coupon-7";
    const int index = std::stoi(cand.coupon_id().substr(7));
    EXPECT_GT(index, previous);
    previous = index;
  }
  EXPECT_TRUE(most_likely_kept);
  double kept = 0;
  for (const auto& cand : t.candidates()) kept += cand.propensity();
  EXPECT_NEAR(kept + t.omitted_propensity(), total_propensity, 1e-12);
  EXPECT_OK(ValidateDecisionRecord(t, ""));
  EXPECT_EQ(stored[1].candidates_total(), 0u);  // a record that fits is sent whole
}

TEST(DecisionLoggerTest, ARecordTooLargeEvenWithoutCandidatesIsDroppedAsOversize) {
  auto sink = std::make_unique<ScriptedSink>();
  DecisionLoggerOptions options = FastOptions();
  options.max_batch_bytes = 8 << 10;
  ASSERT_OK_AND_ASSIGN(auto logger, DecisionLogger::Create(std::move(sink), options));
  v1::DecisionRecord huge = Record("huge", 2);
  huge.set_user_key(std::string(10000, 'u'));  // the collector would refuse it anyway
  EXPECT_FALSE(logger->Log(huge));
  ASSERT_TRUE(logger->Log(Record("next", 2)));
  ASSERT_TRUE(Settled(*logger));
  const DecisionLogger::Counters c = logger->counters();
  EXPECT_EQ(c.dropped_oversize, 1u);
  EXPECT_EQ(c.written, 1u);
}

TEST(DecisionLoggerTest, TruncationTellsWhenEvenTheSlotsDoNotFit) {
  v1::DecisionRecord r = Record("r", 200);
  for (int j = 0; j < 200; ++j) {
    r.mutable_candidates(j)->set_coupon_id(absl::StrCat(std::string(100, 'c'), j));
  }
  r.set_chosen_coupon_id(r.candidates(199).coupon_id());
  r.mutable_slots(0)->set_coupon_id(r.chosen_coupon_id());
  const v1::DecisionRecord before = r;
  EXPECT_FALSE(TruncateCandidatesToFit(&r, 200));
  EXPECT_EQ(r.candidates_size(), before.candidates_size());  // unchanged
  EXPECT_TRUE(TruncateCandidatesToFit(&r, 1000));
  EXPECT_LE(r.ByteSizeLong(), 1000u);
  EXPECT_EQ(r.candidates_total(), 200u);
  // The slot's coupon survived.
  bool has_slot = false;
  for (const auto& c : r.candidates()) has_slot |= c.coupon_id() == r.chosen_coupon_id();
  EXPECT_TRUE(has_slot);
  v1::DecisionRecord small = Record("s", 2);
  EXPECT_TRUE(TruncateCandidatesToFit(&small, 1 << 20));
  EXPECT_EQ(small.candidates_total(), 0u);  // it fit: untouched
}

TEST(DecisionLoggerTest, OnlyUnavailableDeadlineAndAbortedAreTransient) {
  EXPECT_TRUE(IsTransientWriteError(absl::UnavailableError("down")));
  EXPECT_TRUE(IsTransientWriteError(absl::DeadlineExceededError("slow")));
  EXPECT_TRUE(IsTransientWriteError(absl::AbortedError("conflict")));
  EXPECT_FALSE(IsTransientWriteError(absl::ResourceExhaustedError("over the limit")));
  EXPECT_FALSE(IsTransientWriteError(absl::InvalidArgumentError("bad")));
  EXPECT_FALSE(IsTransientWriteError(absl::InternalError("bug")));
  EXPECT_FALSE(IsTransientWriteError(absl::UnauthenticatedError("token")));
}

TEST(DecisionLoggerTest, ATransientErrorIsRetriedWithGrowingBackoffAndLosesNothing) {
  auto sink = std::make_unique<ScriptedSink>(std::vector<absl::Status>{
      absl::UnavailableError("collector restarting"), absl::DeadlineExceededError("slow"),
      absl::UnavailableError("still down"), absl::UnavailableError("still down")});
  ScriptedSink* seen = sink.get();
  DecisionLoggerOptions options = FastOptions();
  options.retry_initial = absl::Milliseconds(10);
  options.retry_max = absl::Milliseconds(40);
  ASSERT_OK_AND_ASSIGN(auto logger, DecisionLogger::Create(std::move(sink), options));
  ASSERT_TRUE(logger->Log(Record("d1", 3)));
  ASSERT_TRUE(Settled(*logger));
  const DecisionLogger::Counters c = logger->counters();
  EXPECT_EQ(c.written, 1u);
  EXPECT_EQ(c.retries, 4u);
  EXPECT_EQ(c.write_failures, 4u);
  EXPECT_EQ(c.dropped(), 0u);
  // Waits of 10, 20, 40 and (capped) 40 ms between the five attempts.
  const std::vector<absl::Time> t = seen->attempts();
  ASSERT_EQ(t.size(), 5u);
  const double expected_ms[] = {10, 20, 40, 40};
  for (size_t i = 0; i + 1 < t.size(); ++i) {
    EXPECT_GE(absl::ToDoubleMilliseconds(t[i + 1] - t[i]), expected_ms[i] * 0.9) << i;
  }
}

TEST(DecisionLoggerTest, APermanentErrorDropsTheBatchCountsItAndLaterRecordsFlow) {
  auto sink = std::make_unique<ScriptedSink>(std::vector<absl::Status>{
      absl::ResourceExhaustedError("request body of 5000000 bytes is over the server's limit"),
      absl::InvalidArgumentError("decisions[0].propensity: nan is not in (0, 1]")});
  ScriptedSink* seen = sink.get();
  seen->Hold();
  DecisionLoggerOptions options = FastOptions();
  options.max_batch = 2;
  ASSERT_OK_AND_ASSIGN(auto logger, DecisionLogger::Create(std::move(sink), options));
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(logger->Log(Record(absl::StrCat("d", i), 2)));
  seen->Release();
  ASSERT_TRUE(Settled(*logger));
  const DecisionLogger::Counters c = logger->counters();
  // The first batch holds one or two records (the logger may take d0 before d1 is queued);
  // every later one two. The two refused batches are each tried once and dropped, and
  // every record is either written or counted as dropped.
  size_t written_records = 0;
  for (const v1::LogDecisionsRequest& b : seen->batches()) {
    written_records += static_cast<size_t>(b.decisions_size());
  }
  EXPECT_EQ(c.write_failures, 2u);
  EXPECT_EQ(c.retries, 0u);
  EXPECT_EQ(c.written, written_records);
  EXPECT_EQ(c.dropped_permanent_error + c.written, 6u);
  EXPECT_GE(c.dropped_permanent_error, 3u);
  EXPECT_LE(c.dropped_permanent_error, 4u);
  EXPECT_EQ(seen->attempts().size(), 2u + seen->batches().size());
}

// The real store behind the logger: a NaN record is refused for good (InvalidArgument) and
// does not hold up the rest; a duplicate id is stored once; an empty candidate list is fine.
TEST(DecisionLoggerTest, WithTheRealStoreNaNIsDroppedDuplicatesStoredOnceEmptyIsFine) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto store, CollectorStore::Open(dir.Sub("db"), CollectorOptions()));
  DecisionLoggerOptions options = FastOptions();
  options.max_batch = 1;
  ASSERT_OK_AND_ASSIGN(auto logger, DecisionLogger::Create(NewStoreSink(store.get()), options));
  v1::DecisionRecord nan = Record("nan", 3);
  nan.mutable_candidates(1)->set_score(std::numeric_limits<double>::quiet_NaN());
  ASSERT_TRUE(logger->Log(nan));
  ASSERT_TRUE(logger->Log(Record("dup", 3)));
  ASSERT_TRUE(logger->Log(Record("dup", 3)));
  ASSERT_TRUE(logger->Log(Record("empty", 0)));
  ASSERT_TRUE(Settled(*logger));
  const DecisionLogger::Counters c = logger->counters();
  EXPECT_EQ(c.dropped_permanent_error, 1u);
  EXPECT_EQ(c.written, 3u);
  const v1::GetCollectorStatsResponse stats = store->Stats();
  EXPECT_EQ(stats.decisions(), 2u);
  EXPECT_EQ(stats.duplicate_decisions(), 1u);
}

}  // namespace
}  // namespace coupond::collector
