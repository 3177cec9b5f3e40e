// The collector's store against a real RocksDB directory: idempotent decisions and
// outcomes, outcomes that arrive before their decision, conflicts, counters that survive a
// reopen, and every bad-input class of the two inputs.

#include "collector/collector_store.h"

#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::collector {
namespace {

using ::coupond::testing::IsOk;
using ::coupond::testing::StatusIs;
using ::coupond::testing::TempDir;
using ::testing::StartsWith;

v1::DecisionRecord Decision(const std::string& id, const std::string& chosen = "c1") {
  v1::DecisionRecord r;
  r.set_decision_id(id);
  r.set_user_key("u1");
  r.set_campaign_id("spring");
  r.set_chosen_coupon_id(chosen);
  r.set_propensity(0.8);
  v1::DecisionCandidate* c = r.add_candidates();
  c->set_coupon_id("c1");
  c->set_probability(0.3);
  c->set_score(0.1);
  c->set_propensity(0.8);
  return r;
}

v1::ReportOutcomeRequest Outcome(const std::string& id, bool redeemed, double value = 0) {
  v1::ReportOutcomeRequest o;
  o.set_decision_id(id);
  o.set_redeemed(redeemed);
  o.set_order_value(value);
  return o;
}

google::protobuf::RepeatedPtrField<v1::DecisionRecord> Batch(std::vector<v1::DecisionRecord> records) {
  google::protobuf::RepeatedPtrField<v1::DecisionRecord> out;
  for (auto& r : records) *out.Add() = std::move(r);
  return out;
}

TEST(CollectorStoreTest, OutcomesAreIdempotentAndConflictsRefused) {
  TempDir dir;
  auto store = CollectorStore::Open(dir.path());
  ASSERT_THAT(store.status(), IsOk());
  auto logged = (*store)->StoreDecisions(Batch({Decision("d1"), Decision("d2"), Decision("d1")}));
  ASSERT_THAT(logged.status(), IsOk());
  EXPECT_EQ(logged->stored(), 2u);
  EXPECT_EQ(logged->duplicates(), 1u);  // the repeat inside the batch

  auto first = (*store)->RecordOutcome(Outcome("d1", true, 42.5), 1000);
  ASSERT_THAT(first.status(), IsOk());
  EXPECT_EQ(*first, v1::OUTCOME_DISPOSITION_RECORDED);
  auto retry = (*store)->RecordOutcome(Outcome("d1", true, 42.5), 2000);  // retried, later time
  ASSERT_THAT(retry.status(), IsOk());
  EXPECT_EQ(*retry, v1::OUTCOME_DISPOSITION_DUPLICATE);
  EXPECT_THAT((*store)->RecordOutcome(Outcome("d1", false), 3000).status(),
              StatusIs(absl::StatusCode::kAlreadyExists, StartsWith("decision_id: 'd1' already has")));

  const v1::GetCollectorStatsResponse stats = (*store)->Stats();
  EXPECT_EQ(stats.decisions(), 2u);
  EXPECT_EQ(stats.outcomes(), 1u);
  EXPECT_EQ(stats.duplicate_outcomes(), 1u);
  EXPECT_EQ(stats.duplicate_decisions(), 1u);
  EXPECT_EQ(stats.conflicting_outcomes(), 1u);

  // Re-sending a stored decision changes nothing.
  auto again = (*store)->StoreDecisions(Batch({Decision("d2", "c9")}));
  ASSERT_THAT(again.status(), IsOk());
  EXPECT_EQ(again->duplicates(), 1u);
  int visited = 0;
  ASSERT_THAT((*store)->ForEachDecision([&](const v1::DecisionRecord& d, const v1::ReportOutcomeRequest* o) {
    ++visited;
    if (d.decision_id() == "d1") {
      EXPECT_NE(o, nullptr);
      if (o != nullptr) {
        EXPECT_TRUE(o->redeemed());
        EXPECT_EQ(o->order_value(), 42.5);
        EXPECT_EQ(o->unix_seconds(), 1000);  // the first report's time is kept
      }
    } else {
      EXPECT_EQ(d.chosen_coupon_id(), "c1");
      EXPECT_EQ(o, nullptr);
    }
    return absl::OkStatus();
  }), IsOk());
  EXPECT_EQ(visited, 2);
}

TEST(CollectorStoreTest, AnOutcomeBeforeItsDecisionIsKeptApartThenMatched) {
  TempDir dir;
  auto store = CollectorStore::Open(dir.path());
  ASSERT_THAT(store.status(), IsOk());
  auto early = (*store)->RecordOutcome(Outcome("late", true, 5), 100);
  ASSERT_THAT(early.status(), IsOk());
  EXPECT_EQ(*early, v1::OUTCOME_DISPOSITION_UNKNOWN_DECISION);
  // A retry while still unmatched counts once.
  auto retry = (*store)->RecordOutcome(Outcome("late", true, 5), 101);
  ASSERT_THAT(retry.status(), IsOk());
  EXPECT_EQ(*retry, v1::OUTCOME_DISPOSITION_DUPLICATE);
  EXPECT_EQ((*store)->Stats().unmatched_outcomes(), 1u);
  EXPECT_EQ((*store)->Stats().outcomes(), 0u);
  int unmatched = 0;
  ASSERT_THAT((*store)->ForEachUnmatchedOutcome([&](const v1::ReportOutcomeRequest& o) {
    ++unmatched;
    EXPECT_EQ(o.decision_id(), "late");
    return absl::OkStatus();
  }), IsOk());
  EXPECT_EQ(unmatched, 1);

  auto logged = (*store)->StoreDecisions(Batch({Decision("late")}));
  ASSERT_THAT(logged.status(), IsOk());
  EXPECT_EQ(logged->matched_outcomes(), 1u);
  EXPECT_EQ((*store)->Stats().unmatched_outcomes(), 0u);
  EXPECT_EQ((*store)->Stats().outcomes(), 1u);
  unmatched = 0;
  ASSERT_THAT((*store)->ForEachUnmatchedOutcome([&](const v1::ReportOutcomeRequest&) {
    ++unmatched;
    return absl::OkStatus();
  }), IsOk());
  EXPECT_EQ(unmatched, 0);
}

TEST(CollectorStoreTest, CountersAndRowsSurviveAReopenAndAReaderSeesThem) {
  TempDir dir;
  {
    CollectorOptions options;
    options.sync = false;
    auto store = CollectorStore::Open(dir.path(), options);
    ASSERT_THAT(store.status(), IsOk());
    ASSERT_THAT((*store)->StoreDecisions(Batch({Decision("a"), Decision("b")})).status(), IsOk());
    ASSERT_THAT((*store)->RecordOutcome(Outcome("a", false), 7).status(), IsOk());
    ASSERT_THAT((*store)->RecordOutcome(Outcome("zz", false), 7).status(), IsOk());

    // A reader beside the live writer (couponctl export) sees what was written, WAL included.
    auto reader = CollectorStore::OpenForRead(dir.path());
    ASSERT_THAT(reader.status(), IsOk());
    EXPECT_EQ((*reader)->Stats().decisions(), 2u);
    EXPECT_THAT((*reader)->RecordOutcome(Outcome("b", true, 1), 8).status(),
                StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  auto store = CollectorStore::Open(dir.path());
  ASSERT_THAT(store.status(), IsOk());
  const v1::GetCollectorStatsResponse stats = (*store)->Stats();
  EXPECT_EQ(stats.decisions(), 2u);
  EXPECT_EQ(stats.outcomes(), 1u);
  EXPECT_EQ(stats.unmatched_outcomes(), 1u);
}

// Many concurrent writers, through the group commit: decisions logged while their outcomes
// are reported, every outcome reported twice (once more with other content), from 16
// threads. Every answer must be the one a serial store would give for some order of the
// calls, the counters must equal what the rows say, before and after a reopen, and with
// group commit off each write is its own batch.
TEST(CollectorStoreTest, ConcurrentWritersAreAnsweredAsIfSerialAndShareBatches) {
  for (const bool group_commit : {true, false}) {
    SCOPED_TRACE(group_commit ? "group commit" : "one batch per write");
    TempDir dir;
    CollectorOptions options;
    options.group_commit = group_commit;
    auto opened = CollectorStore::Open(dir.path(), options);
    ASSERT_THAT(opened.status(), IsOk());
    CollectorStore& store = **opened;
    constexpr int kThreads = 16;
    constexpr int kPerThread = 40;  // decisions per thread
    std::atomic<int> recorded{0}, unknown{0}, duplicate{0}, conflicts{0}, errors{0};
    std::atomic<int> writes{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          // Thread t logs its own decisions and reports the outcomes of thread t+1's, so
          // outcomes race their decisions; the same report comes again, then a conflicting one.
          const std::string own = absl::StrCat("t", t, "-", i);
          const std::string other = absl::StrCat("t", (t + 1) % kThreads, "-", i);
          if (!store.StoreDecisions(Batch({Decision(own)})).ok()) ++errors;
          ++writes;
          for (int repeat = 0; repeat < 2; ++repeat) {
            absl::StatusOr<v1::OutcomeDisposition> d =
                store.RecordOutcome(Outcome(other, true, 5), 1700000000);
            ++writes;
            if (!d.ok()) {
              ++errors;
            } else if (*d == v1::OUTCOME_DISPOSITION_RECORDED) {
              ++recorded;
            } else if (*d == v1::OUTCOME_DISPOSITION_UNKNOWN_DECISION) {
              ++unknown;
            } else {
              ++duplicate;
            }
          }
          absl::StatusOr<v1::OutcomeDisposition> changed =
              store.RecordOutcome(Outcome(other, false), 1700000000);
          ++writes;
          if (absl::IsAlreadyExists(changed.status())) {
            ++conflicts;
          } else {
            ++errors;
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
    const int decisions = kThreads * kPerThread;
    EXPECT_EQ(errors.load(), 0);
    // Each decision's first report is recorded (matched or kept apart), its second a
    // duplicate, its third a conflict.
    EXPECT_EQ(recorded.load() + unknown.load(), decisions);
    EXPECT_EQ(duplicate.load(), decisions);
    EXPECT_EQ(conflicts.load(), decisions);

    auto check_counters = [&](const v1::GetCollectorStatsResponse& stats) {
      EXPECT_EQ(stats.decisions(), static_cast<uint64_t>(decisions));
      EXPECT_EQ(stats.duplicate_decisions(), 0u);
      // Every decision is stored and every outcome arrived: all matched in the end.
      EXPECT_EQ(stats.outcomes(), static_cast<uint64_t>(decisions));
      EXPECT_EQ(stats.unmatched_outcomes(), 0u);
      EXPECT_EQ(stats.duplicate_outcomes(), static_cast<uint64_t>(decisions));
      EXPECT_EQ(stats.conflicting_outcomes(), static_cast<uint64_t>(decisions));
    };
    check_counters(store.Stats());
    int rows = 0, with_outcome = 0;
    ASSERT_THAT(store.ForEachDecision([&](const v1::DecisionRecord&,
                                          const v1::ReportOutcomeRequest* outcome) {
      ++rows;
      with_outcome += outcome != nullptr && outcome->redeemed() && outcome->order_value() == 5;
      return absl::OkStatus();
    }),
                IsOk());
    EXPECT_EQ(rows, decisions);
    EXPECT_EQ(with_outcome, decisions);
    if (group_commit) {
      EXPECT_LE(store.commits(), static_cast<uint64_t>(writes.load()));
    } else {
      EXPECT_EQ(store.commits(), static_cast<uint64_t>(writes.load()));
    }
    opened->reset();
    auto reopened = CollectorStore::Open(dir.path(), options);
    ASSERT_THAT(reopened.status(), IsOk());
    check_counters((*reopened)->Stats());
  }
}

TEST(CollectorStoreTest, BadInputIsInvalidArgumentNamingTheFieldAndStoresNothing) {
  TempDir dir;
  auto store = CollectorStore::Open(dir.path());
  ASSERT_THAT(store.status(), IsOk());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();

  auto outcome_error = [&](v1::ReportOutcomeRequest o) { return (*store)->RecordOutcome(o, 1).status(); };
  EXPECT_THAT(outcome_error(Outcome("", true)), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("decision_id: required")));
  EXPECT_THAT(outcome_error(Outcome(std::string(129, 'x'), true)),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("decision_id: 129 bytes")));
  EXPECT_THAT(outcome_error(Outcome("d", true, nan)), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("order_value")));
  EXPECT_THAT(outcome_error(Outcome("d", true, inf)), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("order_value")));
  EXPECT_THAT(outcome_error(Outcome("d", true, -1)), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("order_value")));
  EXPECT_THAT(outcome_error(Outcome("d", false, 3)), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("order_value: must be 0")));
  v1::ReportOutcomeRequest past = Outcome("d", true, 1);
  past.set_unix_seconds(-5);
  EXPECT_THAT(outcome_error(past), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("unix_seconds")));

  auto batch_error = [&](v1::DecisionRecord bad) {
    return (*store)->StoreDecisions(Batch({Decision("good"), std::move(bad)})).status();
  };
  v1::DecisionRecord r = Decision("");
  EXPECT_THAT(batch_error(r), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("decisions[1].decision_id: required")));
  r = Decision("x");
  r.set_propensity(0);
  EXPECT_THAT(batch_error(r), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("decisions[1].propensity")));
  r = Decision("x");
  r.set_propensity(nan);
  EXPECT_THAT(batch_error(r), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("decisions[1].propensity")));
  r = Decision("x");
  r.mutable_candidates(0)->set_probability(1.5);
  EXPECT_THAT(batch_error(r), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("decisions[1].candidates[0].probability")));
  r = Decision("x");
  r.mutable_candidates(0)->set_score(inf);
  EXPECT_THAT(batch_error(r), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("decisions[1].candidates[0].score")));
  r = Decision("x");
  *r.add_candidates() = r.candidates(0);
  EXPECT_THAT(batch_error(r), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("decisions[1].candidates: propensities sum to 1.6")));
  // Nothing of a refused batch was stored, the good record included.
  EXPECT_EQ((*store)->Stats().decisions(), 0u);
  EXPECT_EQ((*store)->Stats().outcomes(), 0u);
}

}  // namespace
}  // namespace coupond::collector
