// The feedback loop against real processes on real ports: coupond with the embedded
// collector (decision ids, experiment arms, exploration propensities, outcomes), collectord
// killed with SIGKILL in the middle of a stream of outcome reports, and a scorer replica
// killed under load. Nothing acknowledged may be lost or counted twice.

#include <signal.h>

#include <algorithm>
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
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
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
using ::coupond::testing::RunCommand;

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

// A coupond with the embedded collector (in dir/collector) over a store holding `model` and
// one stored campaign, serving, with the campaign loaded; both clients dial it.
struct EmbeddedCoupond {
  std::unique_ptr<ChildProcess> server;
  std::unique_ptr<client::CoupondClient> scorer;
  std::unique_ptr<client::CollectorClient> collector;
};

void StartEmbeddedWithCampaign(const TempDir& dir, const core::ModelData& model,
                               const v1::Campaign& campaign, EmbeddedCoupond* out) {
  {
    ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForWrite(dir.Sub("store")));
    ASSERT_OK(store->Publish(model).status());
    ASSERT_OK_AND_ASSIGN(std::string payload,
                         api::EncodeStoredCampaign(campaign, v1::CampaignPrices()));
    ASSERT_OK(store->PublishCampaign(campaign.campaign_id(), payload).status());
  }
  out->server = StartCoupond(dir.Sub("store"), dir.Sub("port"), "--collector_db=" + dir.Sub("collector"));
  ASSERT_TRUE(out->server->spawned());
  const int port = WaitForPortFile(dir.Sub("port"), absl::Seconds(30));
  ASSERT_GT(port, 0);
  ASSERT_OK_AND_ASSIGN(out->scorer, client::CoupondClient::Create(At(port)));
  ASSERT_OK_AND_ASSIGN(out->collector, client::CollectorClient::Create(At(port)));
  ASSERT_OK(out->scorer->WaitUntilServing(absl::Seconds(30)));
  ASSERT_TRUE(Eventually([&] {
    auto list = out->scorer->ListCampaigns();
    return list.ok() && list->campaigns_size() == 1;
  }));
}

TEST(CollectorIntegrationTest, EmbeddedCollectorLogsDecisionsWithArmsAndStoresOutcomes) {
  TempDir dir;
  const core::ModelData model = TinyModel(300, 6, 8);
  EmbeddedCoupond coupond;
  ASSERT_NO_FATAL_FAILURE(StartEmbeddedWithCampaign(dir, model, ExperimentCampaign(), &coupond));
  auto& scorer = coupond.scorer;
  auto& collector = coupond.collector;

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
  EXPECT_EQ(coupond.server->StopWith(SIGTERM, absl::Seconds(20)), 0);
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
  constexpr int kDecisions = 250;
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
    // and today's batches split the run at least twice.
    ASSERT_GT(one.ByteSizeLong() * kDecisions,
              2 * collector::DecisionLoggerOptions().max_batch_bytes);
    for (int i = 0; i < kDecisions; ++i) {
      v1::DecisionRecord r = one;
      r.set_decision_id(absl::StrCat("d", i));
      sent.insert(r.decision_id());
      ASSERT_TRUE(logger->Log(std::move(r)));
      if (i == 100 || i == 200) {
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
  EmbeddedCoupond coupond;
  ASSERT_NO_FATAL_FAILURE(StartEmbeddedWithCampaign(dir, model, campaign, &coupond));
  auto& scorer = coupond.scorer;
  auto& collector = coupond.collector;
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
  EXPECT_EQ(coupond.server->StopWith(SIGTERM, absl::Seconds(20)), 0);
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

// A greedy campaign whose coupons c1..c3 are each restricted to a list of `users` (eight
// each, from `users[0]`), c4 to no one: every listed user is eligible for two coupons, the
// others for c4 only. Up to two coupons per user, so that a Decide gives a listed user both.
v1::Campaign EligibilityListCampaign(const std::string& campaign_id,
                                     const std::vector<std::string>& users) {
  v1::Campaign c;
  c.set_campaign_id(campaign_id);
  c.set_budget(1e6);
  c.set_max_coupons_per_user(2);
  for (int j = 0; j < 4; ++j) {
    v1::CampaignCoupon* coupon = c.add_coupons();
    coupon->set_coupon_id(absl::StrCat("c", j + 1));
    if (j == 3) continue;
    for (size_t u = static_cast<size_t>(8 * j); u < std::min(users.size(), size_t{8} * (j + 1)); ++u) {
      coupon->add_eligible_user_ids(users[u]);
    }
  }
  return c;
}

// Every key and value of every column family of the RocksDB database at `path`, read
// through RocksDB (so decompressed, unlike the files' bytes), that contains one of
// `needles`: one line per finding, or one naming the error. *entries: how many were read.
std::vector<std::string> FindInEveryRocksDbEntry(const std::string& path,
                                                 const std::vector<std::string>& needles,
                                                 size_t* entries) {
  *entries = 0;
  std::vector<std::string> families;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &families);
  if (!s.ok()) return {absl::StrCat(path, ": ", s.ToString())};
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& f : families) descriptors.emplace_back(f, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path, descriptors, &handles, &raw);
  if (!s.ok()) return {absl::StrCat(path, ": ", s.ToString())};
  std::unique_ptr<rocksdb::DB> db(raw);
  std::vector<std::string> found;
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handle));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++*entries;
      for (const std::string& needle : needles) {
        if (it->key().ToString().find(needle) != std::string::npos ||
            it->value().ToString().find(needle) != std::string::npos) {
          found.push_back(absl::StrCat(path, " [", handle->GetName(), "] ", it->key().ToString(),
                                       ": holds '", needle, "'"));
        }
      }
    }
    if (!it->status().ok()) found.push_back(absl::StrCat(path, ": ", it->status().ToString()));
  }
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    if (rocksdb::Status d = db->DestroyColumnFamilyHandle(handle); !d.ok()) {
      found.push_back(absl::StrCat(path, ": ", d.ToString()));
    }
  }
  return found;
}

// With --user_id_key_file, raw ids exist only in requests: the store (model published with
// the same secret, campaign with eligibility lists stored by couponctl with the secret), the
// decision log and the outcomes hold keys, and no key or value of either database (nor any
// byte of their files) contains a raw id; callers still use their raw ids.
TEST(CollectorIntegrationTest, KeyedUserIdsLeaveNoRawIdAtRest) {
  TempDir dir;
  const std::string secret = "operator-secret-of-32-bytes-long";
  { std::ofstream(dir.Sub("key")) << secret << "\n"; }
  ASSERT_OK_AND_ASSIGN(core::UserKeyer keyer, core::UserKeyer::Create(secret));
  core::ModelData model = TinyModel(30, 6, 8);
  for (size_t u = 0; u < model.user_ids.size(); ++u) model.user_ids[u] = absl::StrCat("shopper", u, "@example.com");
  const core::ModelData raw_model = model;
  ASSERT_OK(core::PseudonymiseUsers(keyer, &model));
  {
    ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForWrite(dir.Sub("store")));
    ASSERT_OK(store->Publish(model).status());
  }
  // The campaign is stored as an operator stores it: couponctl assign --publish_to, from a
  // request that lists raw ids, with the key file.
  {
    v1::AssignRequest request;
    *request.mutable_campaign() = EligibilityListCampaign("spring", raw_model.user_ids);
    for (const std::string& id : raw_model.user_ids) request.mutable_users()->add_user_ids(id);
    std::string json;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(request, &json).ok());
    std::ofstream(dir.Sub("campaign.json")) << json;
    std::string out;
    ASSERT_EQ(RunCommand({COUPONCTL_BINARY, "assign", "--campaign=" + dir.Sub("campaign.json"),
                          "--store=" + dir.Sub("store"), "--out=" + dir.Sub("assignment.csv"),
                          "--publish_to=" + dir.Sub("store"), "--user_id_key_file=" + dir.Sub("key")},
                         dir.Sub("couponctl.out"), &out),
              0)
        << out;
    // The in-process solve keyed the ids too: every user found in the (keyed) model,
    // answered with the caller's raw ids, every user given a coupon (c4 is open to all).
    EXPECT_THAT(out, ::testing::HasSubstr("(unknown to the model: 0)"));
    const std::string csv = coupond::testing::ReadFileOrEmpty(dir.Sub("assignment.csv"));
    for (const std::string& id : raw_model.user_ids) EXPECT_THAT(csv, ::testing::HasSubstr(id + ","));
    EXPECT_THAT(csv, ::testing::HasSubstr(raw_model.user_ids[0] + ",c1,"));
  }
  auto server = std::make_unique<ChildProcess>(std::vector<std::string>{
      COUPOND_SERVER_BINARY, "--store=" + dir.Sub("store"), "--listen=127.0.0.1:0",
      "--port_file=" + dir.Sub("port"), "--poll_interval=100ms", "--shutdown_grace=2s",
      "--log_level=warn", "--collector_db=" + dir.Sub("collector"),
      "--user_id_key_file=" + dir.Sub("key")});
  const int port = WaitForPortFile(dir.Sub("port"), absl::Seconds(30));
  ASSERT_GT(port, 0);
  ASSERT_OK_AND_ASSIGN(auto scorer, client::CoupondClient::Create(At(port)));
  ASSERT_OK_AND_ASSIGN(auto collector, client::CollectorClient::Create(At(port)));
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
    request.set_user_id(*keyer.Key(raw_model.user_ids[u]));  // a key passes through
    ASSERT_OK_AND_ASSIGN(v1::ScoreResponse by_key, scorer->Score(request));
    EXPECT_EQ(by_key.user_resolution(), v1::USER_RESOLUTION_KNOWN_USER);
  }
  // Decisions and their outcomes: each listed user gets its listed coupon (the stored
  // keyed list matches the keyed requesting user), and every outcome is stored.
  int decided = 0;
  for (int u : {0, 9, 17, 25}) {
    v1::DecideRequest decide;
    decide.set_user_id(raw_model.user_ids[u]);
    decide.set_campaign_id("spring");
    ASSERT_OK_AND_ASSIGN(v1::DecideResponse r, scorer->Decide(decide));
    std::set<std::string> chosen;
    for (const v1::CouponDecision& c : r.chosen()) chosen.insert(c.coupon_id());
    const std::set<std::string> expected =
        u < 24 ? std::set<std::string>{absl::StrCat("c", u / 8 + 1), "c4"} : std::set<std::string>{"c4"};
    EXPECT_EQ(chosen, expected) << "user " << u;
    v1::ReportOutcomeRequest outcome;
    outcome.set_decision_id(r.decision_id());
    outcome.set_redeemed(true);
    outcome.set_order_value(12.5);
    ASSERT_OK(collector->ReportOutcome(outcome).status());
    ++decided;
  }
  v1::AssignRequest assign;
  *assign.mutable_campaign() = EligibilityListCampaign("inline", raw_model.user_ids);
  for (int u : {2, 5, 26}) assign.mutable_users()->add_user_ids(raw_model.user_ids[u]);
  std::set<std::string> answered;
  ASSERT_OK(scorer->Assign(assign, absl::Seconds(30), [&](const v1::AssignResponse& m) {
    for (const v1::Assignment& a : m.assignments()) answered.insert(a.user_id());
    return absl::OkStatus();
  }).status());
  EXPECT_EQ(answered.size(), 3u);
  for (const std::string& id : answered) EXPECT_THAT(id, ::testing::EndsWith("@example.com"));
  // Until the logger has delivered every decision (outcomes may have arrived first).
  ASSERT_TRUE(Eventually([&] {
    auto stats = collector->GetStats();
    return stats.ok() && stats->decisions() == static_cast<uint64_t>(decided) &&
           stats->outcomes() == static_cast<uint64_t>(decided);
  }));
  EXPECT_EQ(server->StopWith(SIGTERM, absl::Seconds(20)), 0);

  {
    ASSERT_OK_AND_ASSIGN(auto collector_db, collector::CollectorStore::OpenForRead(dir.Sub("collector")));
    int decisions = 0;
    ASSERT_OK(collector_db->ForEachDecision([&](const v1::DecisionRecord& d, const v1::ReportOutcomeRequest* o) {
      ++decisions;
      EXPECT_TRUE(core::IsUserKey(d.user_key())) << d.user_key();
      EXPECT_NE(o, nullptr) << d.decision_id();
      return absl::OkStatus();
    }));
    EXPECT_EQ(decisions, decided);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForRead(dir.Sub("store")));
    ASSERT_OK_AND_ASSIGN(std::vector<storage::CampaignRecord> records, store->LatestCampaigns());
    ASSERT_EQ(records.size(), 1u);
    ASSERT_OK_AND_ASSIGN(v1::StoredCampaign stored, api::DecodeStoredCampaign("spring", records[0].payload));
    EXPECT_EQ(stored.campaign().coupons(0).eligible_user_ids(0), *keyer.Key(raw_model.user_ids[0]));
  }
  // Every raw id, in every key and value of both databases, read through RocksDB; the
  // keys themselves are there (the scan is not vacuous).
  std::vector<std::string> raw_ids = raw_model.user_ids;
  raw_ids.push_back("@example.com");
  for (const std::string& root : {dir.Sub("store"), dir.Sub("collector")}) {
    size_t entries = 0;
    EXPECT_THAT(FindInEveryRocksDbEntry(root, raw_ids, &entries), ::testing::IsEmpty());
    EXPECT_GT(entries, 0u) << root;
    size_t with_key = 0;
    EXPECT_THAT(FindInEveryRocksDbEntry(root, {*keyer.Key(raw_model.user_ids[0])}, &with_key),
                ::testing::Not(::testing::IsEmpty()))
        << root << " does not hold user 0's key: the scan reads nothing";
  }
  // And no file's bytes (RocksDB compresses blocks; these stores are tiny and their keys
  // are written uncompressed in index blocks, so a raw id would show).
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

// Assign and Decide answer the same with and without a key file, on campaigns with
// eligibility lists: a stored campaign (lists keyed when stored, as couponctl stores them
// with the key file; and a record written without the secret, which the server keys at
// load) and an inline one (lists of raw ids in the request).
TEST(CollectorIntegrationTest, KeyedAndRawIdsGiveTheSameAnswersWithEligibilityLists) {
  TempDir dir;
  const std::string secret = "operator-secret-of-32-bytes-long";
  { std::ofstream(dir.Sub("key")) << secret << "\n"; }
  ASSERT_OK_AND_ASSIGN(core::UserKeyer keyer, core::UserKeyer::Create(secret));
  core::ModelData raw_model = TinyModel(30, 6, 8);
  for (size_t u = 0; u < raw_model.user_ids.size(); ++u) raw_model.user_ids[u] = absl::StrCat("member-", u);
  core::ModelData keyed_model = raw_model;
  ASSERT_OK(core::PseudonymiseUsers(keyer, &keyed_model));
  auto store_campaign = [](storage::ModelStore& store, const v1::Campaign& campaign) {
    absl::StatusOr<std::string> payload = api::EncodeStoredCampaign(campaign, v1::CampaignPrices());
    return payload.ok() ? store.PublishCampaign(campaign.campaign_id(), *payload).status() : payload.status();
  };
  {
    ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForWrite(dir.Sub("raw")));
    ASSERT_OK(store->Publish(raw_model).status());
    ASSERT_OK(store_campaign(*store, EligibilityListCampaign("spring", raw_model.user_ids)));
  }
  {
    ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForWrite(dir.Sub("keyed")));
    ASSERT_OK(store->Publish(keyed_model).status());
    v1::Campaign keyed = EligibilityListCampaign("spring", raw_model.user_ids);
    EXPECT_EQ(api::KeyEligibleUserIds(keyer, &keyed).value(), 24u);
    EXPECT_EQ(api::KeyEligibleUserIds(keyer, &keyed).value(), 0u) << "keys pass through";
    ASSERT_OK(store_campaign(*store, keyed));
    ASSERT_OK(store_campaign(*store, EligibilityListCampaign("legacy", raw_model.user_ids)));
  }
  auto start = [&](const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> args = {COUPOND_SERVER_BINARY, "--store=" + dir.Sub(name),
                                     "--listen=127.0.0.1:0", "--port_file=" + dir.Sub(name + ".port"),
                                     "--poll_interval=100ms", "--shutdown_grace=2s", "--log_level=error"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<ChildProcess>(args);
  };
  auto raw_server = start("raw", {});
  auto keyed_server = start("keyed", {"--user_id_key_file=" + dir.Sub("key")});
  const int raw_port = WaitForPortFile(dir.Sub("raw.port"), absl::Seconds(30));
  const int keyed_port = WaitForPortFile(dir.Sub("keyed.port"), absl::Seconds(30));
  ASSERT_GT(raw_port, 0);
  ASSERT_GT(keyed_port, 0);
  ASSERT_OK_AND_ASSIGN(auto raw, client::CoupondClient::Create(At(raw_port)));
  ASSERT_OK_AND_ASSIGN(auto keyed, client::CoupondClient::Create(At(keyed_port)));
  ASSERT_OK(raw->WaitUntilServing(absl::Seconds(30)));
  ASSERT_OK(keyed->WaitUntilServing(absl::Seconds(30)));
  ASSERT_TRUE(Eventually([&] {
    auto a = raw->ListCampaigns();
    auto b = keyed->ListCampaigns();
    return a.ok() && b.ok() && a->campaigns_size() == 1 && b->campaigns_size() == 2;
  }));

  // A decision as comparable text: the chosen coupons with their probabilities.
  auto describe = [](const v1::DecideResponse& r) {
    std::string s;
    for (const v1::CouponDecision& c : r.chosen()) absl::StrAppend(&s, c.coupon_id(), "@", c.probability(), " ");
    return s;
  };
  v1::AssignRequest inline_campaign;
  *inline_campaign.mutable_campaign() = EligibilityListCampaign("inline", raw_model.user_ids);
  int restricted_given = 0;
  for (size_t u = 0; u < raw_model.user_ids.size(); ++u) {
    v1::DecideRequest request;
    request.set_user_id(raw_model.user_ids[u]);
    request.set_campaign_id("spring");
    ASSERT_OK_AND_ASSIGN(v1::DecideResponse want, raw->Decide(request));
    for (const v1::CouponDecision& c : want.chosen()) restricted_given += c.coupon_id() != "c4";
    ASSERT_OK_AND_ASSIGN(v1::DecideResponse got, keyed->Decide(request));
    EXPECT_EQ(describe(got), describe(want)) << "stored campaign, user " << u;
    request.set_campaign_id("legacy");
    ASSERT_OK_AND_ASSIGN(got, keyed->Decide(request));
    EXPECT_EQ(describe(got), describe(want)) << "record with raw lists, user " << u;
    v1::DecideRequest inline_request;
    inline_request.set_user_id(raw_model.user_ids[u]);
    *inline_request.mutable_campaign() = inline_campaign.campaign();
    inline_request.mutable_prices()->set_campaign_id("inline");
    ASSERT_OK_AND_ASSIGN(v1::DecideResponse inline_want, raw->Decide(inline_request));
    ASSERT_OK_AND_ASSIGN(v1::DecideResponse inline_got, keyed->Decide(inline_request));
    EXPECT_EQ(describe(inline_got), describe(inline_want)) << "inline campaign, user " << u;
    EXPECT_EQ(describe(inline_want), describe(want)) << "user " << u;
  }
  // Every listed user was given its listed coupon: the comparison is not of empty answers.
  EXPECT_EQ(restricted_given, 24);

  for (size_t u = 0; u < raw_model.user_ids.size(); ++u) {
    inline_campaign.mutable_users()->add_user_ids(raw_model.user_ids[u]);
  }
  auto assignments = [&](client::CoupondClient& server) {
    std::vector<std::string> rows;
    absl::Status s = server.Assign(inline_campaign, absl::Seconds(30), [&](const v1::AssignResponse& m) {
      for (const v1::Assignment& a : m.assignments()) {
        rows.push_back(absl::StrCat(a.user_id(), ",", a.coupon_id(), ",", a.probability()));
      }
      return absl::OkStatus();
    }).status();
    EXPECT_OK(s);
    std::sort(rows.begin(), rows.end());
    return rows;
  };
  const std::vector<std::string> want = assignments(*raw);
  EXPECT_EQ(want.size(), 30u + 24u);  // c4 for everyone, and each listed user's own coupon
  EXPECT_EQ(assignments(*keyed), want);
  EXPECT_EQ(raw_server->StopWith(SIGTERM, absl::Seconds(20)), 0);
  EXPECT_EQ(keyed_server->StopWith(SIGTERM, absl::Seconds(20)), 0);
}

}  // namespace
}  // namespace coupond
