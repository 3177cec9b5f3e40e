// The feedback loop against real processes on real ports: coupond with the embedded
// collector (decision ids, experiment arms, exploration propensities, outcomes), collectord
// killed with SIGKILL in the middle of a stream of outcome reports, and a scorer replica
// killed under load. Nothing acknowledged may be lost or counted twice.

#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "api/convert.h"
#include "collector/collector_store.h"
#include "collector/decision_logger.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "core/user_key.h"
#include "client/collector_client.h"
#include "client/coupond_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/model_store.h"
#include "tests/test_util/models.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/process.h"
#include "tests/test_util/temp_dir.h"

namespace coupond {
namespace {

using ::coupond::testing::StatusIs;
using ::coupond::testing::ChildProcess;
using ::coupond::testing::TempDir;
using ::coupond::testing::TinyModel;
using ::coupond::testing::WaitForPortFile;

std::unique_ptr<ChildProcess> StartCoupond(const std::string& store, const std::string& port_file,
                                         const std::string& collector_flag) {
  return std::make_unique<ChildProcess>(std::vector<std::string>{
      COUPOND_SERVER_BINARY, "--store=" + store, "--listen=127.0.0.1:0", "--port_file=" + port_file,
      "--poll_interval=100ms", "--shutdown_grace=2s", "--log_level=warn", collector_flag});
}

std::unique_ptr<ChildProcess> StartCollectord(const std::string& db, const std::string& port_file) {
  return std::make_unique<ChildProcess>(std::vector<std::string>{
      COLLECTORD_BINARY, "--db=" + db, "--listen=127.0.0.1:0", "--port_file=" + port_file});
}

client::ClientOptions At(int port) {
  client::ClientOptions options;
  options.target = absl::StrCat("127.0.0.1:", port);
  return options;
}

v1::Campaign ExperimentCampaign() {
  v1::Campaign c;
  c.set_campaign_id("spring");
  c.set_budget(100);
  for (const char* id : {"c1", "c2", "c3", "c4"}) c.add_coupons()->set_coupon_id(id);
  c.set_exploration("softmax:0.05");
  v1::Experiment* e = c.mutable_experiment();
  e->set_experiment_id("exp-1");
  e->set_salt("spring-2026");
  auto arm = [&](const char* name, double share, v1::ArmPolicy policy) {
    v1::ExperimentArm* a = e->add_arms();
    a->set_name(name);
    a->set_share(share);
    a->set_policy(policy);
  };
  arm("control", 0.2, v1::ARM_POLICY_CONTROL);
  arm("random", 0.2, v1::ARM_POLICY_RANDOM);
  arm("model", 0.6, v1::ARM_POLICY_MODEL);
  return c;
}

// Polls until `done` or 30 s pass.
template <typename F>
bool Eventually(F done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

TEST(CollectorIntegrationTest, EmbeddedCollectorLogsDecisionsWithArmsAndStoresOutcomes) {
  TempDir dir;
  const core::ModelData model = TinyModel(300, 6, 8);
  {
    ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForWrite(dir.Sub("store")));
    ASSERT_OK(store->Publish(model).status());
    ASSERT_OK_AND_ASSIGN(std::string payload,
                         api::EncodeStoredCampaign(ExperimentCampaign(), v1::CampaignPrices()));
    ASSERT_OK(store->PublishCampaign("spring", payload).status());
  }
  auto server = StartCoupond(dir.Sub("store"), dir.Sub("port"), "--collector_db=" + dir.Sub("collector"));
  ASSERT_TRUE(server->spawned());
  const int port = WaitForPortFile(dir.Sub("port"), absl::Seconds(30));
  ASSERT_GT(port, 0);
  ASSERT_OK_AND_ASSIGN(auto scorer, client::CoupondClient::Create(At(port)));
  ASSERT_OK_AND_ASSIGN(auto collector, client::CollectorClient::Create(At(port)));
  ASSERT_OK(scorer->WaitUntilServing(absl::Seconds(30)));
  ASSERT_TRUE(Eventually([&] {
    auto list = scorer->ListCampaigns();
    return list.ok() && list->campaigns_size() == 1;
  }));

  std::map<std::string, int> arms;
  std::vector<std::string> decision_ids;
  for (const std::string& user : model.user_ids) {
    v1::DecideRequest request;
    request.set_user_id(user);
    request.set_campaign_id("spring");
    ASSERT_OK_AND_ASSIGN(v1::DecideResponse r, scorer->Decide(request));
    ++arms[r.arm()];
    EXPECT_EQ(r.experiment_id(), "exp-1");
    ASSERT_FALSE(r.decision_id().empty());
    decision_ids.push_back(r.decision_id());
    if (r.arm() == "control") {
      EXPECT_EQ(r.chosen_size(), 0);
      EXPECT_EQ(r.propensity(), 1.0);
    } else if (r.arm() == "random") {
      ASSERT_EQ(r.chosen_size(), 1);
      EXPECT_DOUBLE_EQ(r.propensity(), 0.25);  // 4 eligible coupons
    } else {
      EXPECT_EQ(r.arm(), "model");
      EXPECT_GT(r.propensity(), 0.0);
      EXPECT_LT(r.propensity(), 1.0);  // softmax explores: nothing is certain
    }
    // The arm is sticky: the same user lands in the same arm again.
    ASSERT_OK_AND_ASSIGN(v1::DecideResponse again, scorer->Decide(request));
    EXPECT_EQ(again.arm(), r.arm());
    EXPECT_NE(again.decision_id(), r.decision_id());
  }
  // 300 users, shares 0.2/0.2/0.6: each arm within 5 standard deviations of its share.
  EXPECT_NEAR(arms["control"], 60, 5 * std::sqrt(300 * 0.2 * 0.8));
  EXPECT_NEAR(arms["random"], 60, 5 * std::sqrt(300 * 0.2 * 0.8));
  EXPECT_NEAR(arms["model"], 180, 5 * std::sqrt(300 * 0.6 * 0.4));

  // Records reach the collector asynchronously; then outcomes attach to them.
  ASSERT_TRUE(Eventually([&] {
    auto stats = collector->GetStats();
    return stats.ok() && stats->decisions() == 600;
  })) << "decision records did not all reach the collector";
  v1::ReportOutcomeRequest outcome;
  outcome.set_decision_id(decision_ids[0]);
  outcome.set_redeemed(true);
  outcome.set_order_value(12.5);
  ASSERT_OK_AND_ASSIGN(v1::ReportOutcomeResponse first, collector->ReportOutcome(outcome));
  EXPECT_EQ(first.disposition(), v1::OUTCOME_DISPOSITION_RECORDED);
  ASSERT_OK_AND_ASSIGN(v1::ReportOutcomeResponse retry, collector->ReportOutcome(outcome));
  EXPECT_EQ(retry.disposition(), v1::OUTCOME_DISPOSITION_DUPLICATE);
  outcome.set_redeemed(false);
  outcome.set_order_value(0);
  EXPECT_THAT(collector->ReportOutcome(outcome), StatusIs(absl::StatusCode::kAlreadyExists));
  outcome.set_decision_id("no-such-decision");
  ASSERT_OK_AND_ASSIGN(v1::ReportOutcomeResponse unknown, collector->ReportOutcome(outcome));
  EXPECT_EQ(unknown.disposition(), v1::OUTCOME_DISPOSITION_UNKNOWN_DECISION);
  outcome.set_order_value(std::nan(""));
  EXPECT_THAT(collector->ReportOutcome(outcome),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::StartsWith("order_value")));
  ASSERT_OK_AND_ASSIGN(v1::GetCollectorStatsResponse stats, collector->GetStats());
  EXPECT_EQ(stats.outcomes(), 1u);
  EXPECT_EQ(stats.unmatched_outcomes(), 1u);
  EXPECT_EQ(stats.duplicate_outcomes(), 1u);
  EXPECT_EQ(stats.conflicting_outcomes(), 1u);
  EXPECT_EQ(server->StopWith(SIGTERM, absl::Seconds(20)), 0);
}

// Decisions the test logs itself, so that outcomes have something to attach to.
void LogDecisions(client::CollectorClient& collector, int n) {
  v1::LogDecisionsRequest request;
  for (int i = 0; i < n; ++i) {
    v1::DecisionRecord* r = request.add_decisions();
    r->set_decision_id(absl::StrCat("d", i));
    r->set_user_key(absl::StrCat("u", i));
    r->set_campaign_id("c");
    r->set_propensity(1.0);
  }
  ASSERT_OK(collector.LogDecisions(request).status());
}

// A decision record with `n` candidates, as coupond logs it for a softmax decision.
v1::DecisionRecord WideRecord(const std::string& id, int n) {
  v1::DecisionRecord r;
  r.set_decision_id(id);
  r.set_unix_micros(1'700'000'000'000'000);
  r.set_user_key("u0000042");
  r.set_campaign_id("wide");
  r.set_policy("softmax:0.05");
  r.set_model_version(1);
  r.set_max_slots(1);
  for (int j = 0; j < n; ++j) {
    v1::DecisionCandidate* c = r.add_candidates();
    c->set_coupon_id(absl::StrCat("c", 1'000'000 + j));
    c->set_probability(0.01 + 0.9 * j / n);
    c->set_score(0.001 * j);
    c->set_propensity(0.9 / n);
  }
  r.set_chosen_coupon_id(r.candidates(n / 2).coupon_id());
  r.set_propensity(0.9 / n);
  v1::DecisionSlot* slot = r.add_slots();
  slot->set_coupon_id(r.chosen_coupon_id());
  slot->set_propensity(0.9 / n);
  r.set_slate_propensity(0.9 / n);
  return r;
}

// Issue 12, defect 1: with 1,000 candidates a decision record is ~50 KB, so 500 of them (the
// old batch) were ~25 MB, over collectord's 4 MiB default limit: the batch came back
// RESOURCE_EXHAUSTED, was retried forever, and every later decision was dropped. With the
// logger's defaults, against collectord's defaults, every record arrives; two records too
// large to send whole (120,000 candidates, ~4.7 MB) arrive truncated, counted.
TEST(CollectorIntegrationTest, ThousandCandidateDecisionsAllReachCollectordWithDefaultLimits) {
  TempDir dir;
  auto collectord = StartCollectord(dir.Sub("db"), dir.Sub("port"));
  ASSERT_TRUE(collectord->spawned());
  const int port = WaitForPortFile(dir.Sub("port"), absl::Seconds(30));
  ASSERT_GT(port, 0);
  const std::string target = absl::StrCat("127.0.0.1:", port);
  constexpr int kDecisions = 400;
  std::set<std::string> sent;
  collector::DecisionLogger::Counters counters;
  {
    ASSERT_OK_AND_ASSIGN(
        auto logger,
        collector::DecisionLogger::Create(
            collector::NewGrpcSink(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()),
                                   target, absl::Seconds(10)),
            collector::DecisionLoggerOptions()));
    const v1::DecisionRecord one = WideRecord("x", 1000);
    ASSERT_GT(one.ByteSizeLong() * 500, size_t{4} << 20);  // the old batch would not fit
    for (int i = 0; i < kDecisions; ++i) {
      v1::DecisionRecord r = one;
      r.set_decision_id(absl::StrCat("d", i));
      sent.insert(r.decision_id());
      ASSERT_TRUE(logger->Log(std::move(r)));
      if (i == 100 || i == 300) {
        v1::DecisionRecord huge = WideRecord(absl::StrCat("huge", i), 120'000);
        ASSERT_GT(huge.ByteSizeLong(), size_t{4} << 20);
        sent.insert(huge.decision_id());
        ASSERT_TRUE(logger->Log(std::move(huge)));
      }
    }
    ASSERT_TRUE(Eventually([&] { return logger->counters().written == sent.size(); }))
        << "written " << logger->counters().written << " of " << sent.size();
    counters = logger->counters();
  }
  EXPECT_EQ(counters.dropped(), 0u);
  EXPECT_EQ(counters.truncated, 2u);
  EXPECT_EQ(counters.write_failures, 0u);
  EXPECT_LE(counters.max_queued_bytes, collector::DecisionLoggerOptions().queue_bytes);
  EXPECT_EQ(collectord->StopWith(SIGTERM, absl::Seconds(20)), 0);

  // Each exactly once; the huge ones truncated as documented.
  ASSERT_OK_AND_ASSIGN(auto store, collector::CollectorStore::OpenForRead(dir.Sub("db")));
  std::set<std::string> stored;
  int truncated = 0;
  ASSERT_OK(store->ForEachDecision([&](const v1::DecisionRecord& d, const v1::ReportOutcomeRequest*) {
    EXPECT_TRUE(stored.insert(d.decision_id()).second) << d.decision_id();
    if (d.decision_id().rfind("huge", 0) == 0) {
      ++truncated;
      EXPECT_EQ(d.candidates_total(), 120'000u);
      EXPECT_LT(d.candidates_size(), 120'000);
      EXPECT_GT(d.omitted_propensity(), 0.0);
      bool chosen_kept = false;
      for (const v1::DecisionCandidate& c : d.candidates()) chosen_kept |= c.coupon_id() == d.chosen_coupon_id();
      EXPECT_TRUE(chosen_kept);
    } else {
      EXPECT_EQ(d.candidates_size(), 1000);
      EXPECT_EQ(d.candidates_total(), 0u);
    }
    return absl::OkStatus();
  }));
  EXPECT_EQ(stored, sent);
  EXPECT_EQ(truncated, 2);
}

// Issue 12, defect 5: a greedy campaign giving up to 3 coupons logs every coupon given as
// its own slot (in the response's order), each certain, and the slate's propensity.
TEST(CollectorIntegrationTest, EveryCouponOfASlateIsLoggedAsItsOwnSlot) {
  TempDir dir;
  const core::ModelData model = TinyModel(20, 6, 8);
  v1::Campaign campaign;
  campaign.set_campaign_id("three");
  campaign.set_budget(1000);
  campaign.set_max_coupons_per_user(3);
  for (const char* id : {"c1", "c2", "c3", "c4", "c5"}) campaign.add_coupons()->set_coupon_id(id);
  {
    ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForWrite(dir.Sub("store")));
    ASSERT_OK(store->Publish(model).status());
    ASSERT_OK_AND_ASSIGN(std::string payload,
                         api::EncodeStoredCampaign(campaign, v1::CampaignPrices()));
    ASSERT_OK(store->PublishCampaign("three", payload).status());
  }
  auto server = StartCoupond(dir.Sub("store"), dir.Sub("port"), "--collector_db=" + dir.Sub("collector"));
  ASSERT_TRUE(server->spawned());
  const int port = WaitForPortFile(dir.Sub("port"), absl::Seconds(30));
  ASSERT_GT(port, 0);
  ASSERT_OK_AND_ASSIGN(auto scorer, client::CoupondClient::Create(At(port)));
  ASSERT_OK_AND_ASSIGN(auto collector, client::CollectorClient::Create(At(port)));
  ASSERT_OK(scorer->WaitUntilServing(absl::Seconds(30)));
  ASSERT_TRUE(Eventually([&] {
    auto list = scorer->ListCampaigns();
    return list.ok() && list->campaigns_size() == 1;
  }));
  std::map<std::string, std::vector<std::string>> given;  // decision id -> coupons
  for (const std::string& user : model.user_ids) {
    v1::DecideRequest request;
    request.set_user_id(user);
    request.set_campaign_id("three");
    ASSERT_OK_AND_ASSIGN(v1::DecideResponse r, scorer->Decide(request));
    ASSERT_EQ(r.chosen_size(), 3) << "every coupon has a positive score at zero prices";
    for (const v1::CouponDecision& c : r.chosen()) given[r.decision_id()].push_back(c.coupon_id());
  }
  ASSERT_TRUE(Eventually([&] {
    auto stats = collector->GetStats();
    return stats.ok() && stats->decisions() == given.size();
  }));
  EXPECT_EQ(server->StopWith(SIGTERM, absl::Seconds(20)), 0);
  ASSERT_OK_AND_ASSIGN(auto store, collector::CollectorStore::OpenForRead(dir.Sub("collector")));
  size_t seen = 0;
  ASSERT_OK(store->ForEachDecision([&](const v1::DecisionRecord& d, const v1::ReportOutcomeRequest*) {
    ++seen;
    const std::vector<std::string>& coupons = given[d.decision_id()];
    EXPECT_EQ(d.max_slots(), 3u);
    EXPECT_EQ(d.policy(), "greedy");
    EXPECT_EQ(d.slate_propensity(), 1.0);
    EXPECT_EQ(d.chosen_coupon_id(), coupons.at(0));
    EXPECT_EQ(d.candidates_size(), 5);
    EXPECT_EQ(d.candidates_total(), 0u);
    EXPECT_EQ(d.slots_size(), 3);
    for (int s = 0; s < d.slots_size() && s < 3; ++s) {
      EXPECT_EQ(d.slots(s).coupon_id(), coupons.at(static_cast<size_t>(s)));
      EXPECT_EQ(d.slots(s).propensity(), 1.0);
    }
    return absl::OkStatus();
  }));
  EXPECT_EQ(seen, given.size());
}

TEST(CollectorIntegrationTest, AcknowledgedOutcomesSurviveSigkillOfTheCollector) {
  TempDir dir;
  auto collectord = StartCollectord(dir.Sub("db"), dir.Sub("port1"));
  ASSERT_TRUE(collectord->spawned());
  int port = WaitForPortFile(dir.Sub("port1"), absl::Seconds(30));
  ASSERT_GT(port, 0);
  constexpr int kDecisions = 5000;
  {
    ASSERT_OK_AND_ASSIGN(auto collector, client::CollectorClient::Create(At(port)));
    ASSERT_NO_FATAL_FAILURE(LogDecisions(*collector, kDecisions));
  }

  // Four reporters stream outcomes; the collector is killed while they run.
  absl::Mutex mu;
  std::set<int> acknowledged;
  std::atomic<int> next{0};
  std::atomic<bool> killed{false};
  auto reporter = [&] {
    auto collector = client::CollectorClient::Create(At(port));
    if (!collector.ok()) return;
    while (true) {
      const int i = next.fetch_add(1);
      if (i >= kDecisions) return;
      v1::ReportOutcomeRequest request;
      request.set_decision_id(absl::StrCat("d", i));
      request.set_redeemed(i % 3 == 0);
      request.set_order_value(i % 3 == 0 ? 10.0 + i : 0.0);
      if ((*collector)->ReportOutcome(request).ok()) {
        absl::MutexLock lock(&mu);
        acknowledged.insert(i);
      } else if (killed.load()) {
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(reporter);
  ASSERT_TRUE(Eventually([&] {
    absl::MutexLock lock(&mu);
    return acknowledged.size() >= 300;
  }));
  killed.store(true);
  EXPECT_EQ(collectord->StopWith(SIGKILL, absl::Seconds(10)), 128 + SIGKILL);
  for (std::thread& t : threads) t.join();
  ASSERT_LT(acknowledged.size(), static_cast<size_t>(kDecisions)) << "the kill came too late to test anything";

  // Restart on the same database: every acknowledged outcome is there, exactly once.
  auto restarted = StartCollectord(dir.Sub("db"), dir.Sub("port2"));
  port = WaitForPortFile(dir.Sub("port2"), absl::Seconds(30));
  ASSERT_GT(port, 0);
  ASSERT_OK_AND_ASSIGN(auto collector, client::CollectorClient::Create(At(port)));
  ASSERT_OK_AND_ASSIGN(v1::GetCollectorStatsResponse stats, collector->GetStats());
  EXPECT_EQ(stats.decisions(), static_cast<uint64_t>(kDecisions));
  // At most one report per reporter can have been stored without its acknowledgement.
  EXPECT_GE(stats.outcomes(), acknowledged.size());
  EXPECT_LE(stats.outcomes(), acknowledged.size() + 4);
  for (int i : acknowledged) {
    v1::ReportOutcomeRequest request;
    request.set_decision_id(absl::StrCat("d", i));
    request.set_redeemed(i % 3 == 0);
    request.set_order_value(i % 3 == 0 ? 10.0 + i : 0.0);
    ASSERT_OK_AND_ASSIGN(v1::ReportOutcomeResponse r, collector->ReportOutcome(request));
    ASSERT_EQ(r.disposition(), v1::OUTCOME_DISPOSITION_DUPLICATE) << "outcome of d" << i << " was lost";
  }
  ASSERT_OK_AND_ASSIGN(v1::GetCollectorStatsResponse after, collector->GetStats());
  EXPECT_EQ(after.outcomes(), stats.outcomes()) << "a retried report was counted twice";
  std::printf("collector killed after %zu of %d acknowledged outcomes; %llu stored after restart\n",
              acknowledged.size(), kDecisions, static_cast<unsigned long long>(stats.outcomes()));
  EXPECT_EQ(restarted->StopWith(SIGTERM, absl::Seconds(20)), 0);
}

// Two scorer replicas log to one collectord; clients decide on either (failing over) and
// report outcomes. One replica is killed with SIGKILL under load. Every acknowledged
// outcome is stored; decision records still queued in the killed replica were never
// acknowledged, and their outcomes are kept apart (unmatched) and counted, not lost.
TEST(CollectorIntegrationTest, KillingAScorerReplicaUnderLoadLosesNoAcknowledgedData) {
  TempDir dir;
  {
    ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForWrite(dir.Sub("store")));
    ASSERT_OK(store->Publish(TinyModel(200, 6, 8)).status());
    v1::Campaign campaign = ExperimentCampaign();
    campaign.clear_experiment();
    ASSERT_OK_AND_ASSIGN(std::string payload, api::EncodeStoredCampaign(campaign, v1::CampaignPrices()));
    ASSERT_OK(store->PublishCampaign("spring", payload).status());
  }
  auto collectord = StartCollectord(dir.Sub("db"), dir.Sub("cport"));
  const int collector_port = WaitForPortFile(dir.Sub("cport"), absl::Seconds(30));
  ASSERT_GT(collector_port, 0);
  const std::string collector_flag = absl::StrCat("--collector=127.0.0.1:", collector_port);
  auto a = StartCoupond(dir.Sub("store"), dir.Sub("aport"), collector_flag);
  auto b = StartCoupond(dir.Sub("store"), dir.Sub("bport"), collector_flag);
  const int ports[2] = {WaitForPortFile(dir.Sub("aport"), absl::Seconds(30)),
                        WaitForPortFile(dir.Sub("bport"), absl::Seconds(30))};
  ASSERT_GT(ports[0], 0);
  ASSERT_GT(ports[1], 0);
  std::unique_ptr<client::CoupondClient> replicas[2];
  for (int r = 0; r < 2; ++r) {
    ASSERT_OK_AND_ASSIGN(replicas[r], client::CoupondClient::Create(At(ports[r])));
    ASSERT_OK(replicas[r]->WaitUntilServing(absl::Seconds(30)));
    ASSERT_TRUE(Eventually([&] {
      auto list = replicas[r]->ListCampaigns();
      return list.ok() && list->campaigns_size() == 1;
    }));
  }
  ASSERT_OK_AND_ASSIGN(auto collector, client::CollectorClient::Create(At(collector_port)));

  absl::Mutex mu;
  std::vector<std::string> acknowledged;
  std::atomic<int> failovers{0}, decided{0};
  std::atomic<bool> stop{false};
  std::atomic<bool> a_dead{false};
  auto client_loop = [&](int id) {
    int i = 0;
    while (!stop.load()) {
      v1::DecideRequest request;
      request.set_user_id(absl::StrCat("u", (id * 37 + i++) % 200));
      request.set_campaign_id("spring");
      // Round-robin over the live replicas; a failed call is retried on the other one.
      const int first = (a_dead.load() ? 1 : i % 2);
      absl::StatusOr<v1::DecideResponse> r = replicas[first]->Decide(request);
      if (!r.ok()) {
        ++failovers;
        r = replicas[1 - first]->Decide(request);
        if (!r.ok()) continue;
      }
      ++decided;
      v1::ReportOutcomeRequest outcome;
      outcome.set_decision_id(r->decision_id());
      outcome.set_redeemed(i % 4 == 0);
      if (collector->ReportOutcome(outcome).ok()) {
        absl::MutexLock lock(&mu);
        acknowledged.push_back(r->decision_id());
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) threads.emplace_back(client_loop, t);
  ASSERT_TRUE(Eventually([&] { return decided.load() >= 300; }));
  EXPECT_EQ(a->StopWith(SIGKILL, absl::Seconds(10)), 128 + SIGKILL);
  a_dead.store(true);
  const int at_kill = decided.load();
  ASSERT_TRUE(Eventually([&] { return decided.load() >= at_kill + 300; })) << "the surviving replica did not carry the load";
  stop.store(true);
  for (std::thread& t : threads) t.join();

  // Let the surviving replica's logger deliver what it queued.
  EXPECT_EQ(b->StopWith(SIGTERM, absl::Seconds(30)), 0);
  ASSERT_OK_AND_ASSIGN(v1::GetCollectorStatsResponse stats, collector->GetStats());
  absl::MutexLock lock(&mu);
  EXPECT_EQ(stats.outcomes() + stats.unmatched_outcomes(), acknowledged.size());
  for (const std::string& id : acknowledged) {
    v1::ReportOutcomeRequest again;
    again.set_decision_id(id);
    // Same content as the original report is not known here; a DUPLICATE or ALREADY_EXISTS
    // both prove the outcome is stored. Only "recorded anew" or "unknown, newly kept"
    // would mean it was lost.
    absl::StatusOr<v1::ReportOutcomeResponse> r = collector->ReportOutcome(again);
    if (r.ok()) {
      ASSERT_EQ(r->disposition(), v1::OUTCOME_DISPOSITION_DUPLICATE) << id << " was lost";
    } else {
      ASSERT_THAT(r.status(), StatusIs(absl::StatusCode::kAlreadyExists)) << id;
    }
  }
  std::printf("replica killed under load: %zu outcomes acknowledged, all stored (%llu matched, %llu "
              "unmatched: decisions queued in the killed replica), %d failovers\n",
              acknowledged.size(), static_cast<unsigned long long>(stats.outcomes()),
              static_cast<unsigned long long>(stats.unmatched_outcomes()), failovers.load());
}

// With --user_id_key_file, raw ids exist only in requests: the store (published with the
// same secret), the decision log and the outcomes hold keys, and no file of either database
// contains a raw id; callers still use their raw ids.
TEST(CollectorIntegrationTest, KeyedUserIdsLeaveNoRawIdAtRest) {
  TempDir dir;
  const std::string secret = "operator-secret-of-32-bytes-long";
  { std::ofstream(dir.Sub("key")) << secret << "\n"; }
  ASSERT_OK_AND_ASSIGN(core::UserKeyer keyer, core::UserKeyer::Create(secret));
  core::ModelData model = TinyModel(20, 6, 8);
  for (size_t u = 0; u < model.user_ids.size(); ++u) model.user_ids[u] = absl::StrCat("shopper", u, "@example.com");
  const core::ModelData raw_model = model;
  ASSERT_OK(core::PseudonymiseUsers(keyer, &model));
  {
    ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForWrite(dir.Sub("store")));
    ASSERT_OK(store->Publish(model).status());
    v1::Campaign campaign = ExperimentCampaign();
    campaign.clear_experiment();
    campaign.clear_exploration();
    ASSERT_OK_AND_ASSIGN(std::string payload, api::EncodeStoredCampaign(campaign, v1::CampaignPrices()));
    ASSERT_OK(store->PublishCampaign("spring", payload).status());
  }
  auto server = std::make_unique<ChildProcess>(std::vector<std::string>{
      COUPOND_SERVER_BINARY, "--store=" + dir.Sub("store"), "--listen=127.0.0.1:0",
      "--port_file=" + dir.Sub("port"), "--poll_interval=100ms", "--log_level=warn",
      "--collector_db=" + dir.Sub("collector"), "--user_id_key_file=" + dir.Sub("key")});
  const int port = WaitForPortFile(dir.Sub("port"), absl::Seconds(30));
  ASSERT_GT(port, 0);
  ASSERT_OK_AND_ASSIGN(auto scorer, client::CoupondClient::Create(At(port)));
  ASSERT_OK(scorer->WaitUntilServing(absl::Seconds(30)));
  ASSERT_TRUE(Eventually([&] {
    auto list = scorer->ListCampaigns();
    return list.ok() && list->campaigns_size() == 1;
  }));
  for (int u : {3, 7}) {
    v1::ScoreRequest request;
    request.set_user_id(raw_model.user_ids[u]);
    request.add_coupon_ids("c1");
    ASSERT_OK_AND_ASSIGN(v1::ScoreResponse r, scorer->Score(request));
    EXPECT_EQ(r.user_resolution(), v1::USER_RESOLUTION_KNOWN_USER) << "the raw id did not reach its key";
    EXPECT_NEAR(r.scores(0).probability(), coupond::testing::ReferenceProbability(raw_model, u, 1), 1e-5);
    request.set_user_id(keyer.Key(raw_model.user_ids[u]));  // a key passes through
    ASSERT_OK_AND_ASSIGN(v1::ScoreResponse by_key, scorer->Score(request));
    EXPECT_EQ(by_key.user_resolution(), v1::USER_RESOLUTION_KNOWN_USER);
    v1::DecideRequest decide;
    decide.set_user_id(raw_model.user_ids[u]);
    decide.set_campaign_id("spring");
    ASSERT_OK(scorer->Decide(decide).status());
  }
  v1::AssignRequest assign;
  *assign.mutable_campaign() = ExperimentCampaign();
  for (int u : {2, 5}) assign.mutable_users()->add_user_ids(raw_model.user_ids[u]);
  std::set<std::string> answered;
  ASSERT_OK(scorer->Assign(assign, absl::Seconds(30), [&](const v1::AssignResponse& m) {
    for (const v1::Assignment& a : m.assignments()) answered.insert(a.user_id());
    return absl::OkStatus();
  }).status());
  for (const std::string& id : answered) EXPECT_THAT(id, ::testing::EndsWith("@example.com"));
  EXPECT_EQ(server->StopWith(SIGTERM, absl::Seconds(20)), 0);

  ASSERT_OK_AND_ASSIGN(auto collector, collector::CollectorStore::OpenForRead(dir.Sub("collector")));
  int decisions = 0;
  ASSERT_OK(collector->ForEachDecision([&](const v1::DecisionRecord& d, const v1::ReportOutcomeRequest*) {
    ++decisions;
    EXPECT_TRUE(core::IsUserKey(d.user_key())) << d.user_key();
    return absl::OkStatus();
  }));
  EXPECT_EQ(decisions, 2);
  // No raw id in any file at rest (RocksDB compresses blocks; these stores are tiny and
  // their keys are written uncompressed in index blocks, so a raw id would show).
  for (const std::string& root : {dir.Sub("store"), dir.Sub("collector")}) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      std::ostringstream bytes;
      bytes << in.rdbuf();
      EXPECT_EQ(bytes.str().find("@example.com"), std::string::npos) << entry.path();
    }
  }
}

}  // namespace
}  // namespace coupond
