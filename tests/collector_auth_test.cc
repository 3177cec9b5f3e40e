// Issue 12, defect 2: the collector lets in only callers with its token, over TLS when TLS
// is configured. The real collectord and coupond binaries on real ports, with a throw-away
// PKI made by openssl at test time (tests/test_util/pki.h): writes to collectord and to the
// collector embedded in coupond are refused without the token (UNAUTHENTICATED) and without
// TLS when TLS is required (the handshake fails: UNAVAILABLE); with both they are stored,
// including coupond's decision sink dialling a mutual-TLS collectord with the token.

#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "api/convert.h"
#include "client/collector_client.h"
#include "collector/collector_service.h"
#include "client/coupond_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/model_store.h"
#include "tests/test_util/models.h"
#include "tests/test_util/pki.h"
#include "tests/test_util/process.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::collector_auth_test {
namespace {

using ::coupond::testing::ChildProcess;
using ::coupond::testing::ReadFileOrEmpty;
using ::coupond::testing::RunCommand;
using ::coupond::testing::StatusIs;
using ::coupond::testing::TempDir;
using ::coupond::testing::TestPki;
using ::coupond::testing::TinyModel;
using ::coupond::testing::WaitForPortFile;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kCollectorToken[] = "collector-token-0123456789abcdef";
constexpr char kWrongToken[] = "not-the-collector-token-but-long";

class CollectorAuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { suite_pki_.Make(); }
  static void TearDownTestSuite() { suite_pki_.Reset(); }
  void SetUp() override { ASSERT_TRUE(suite_pki_.Ready()); }

  // A token file (mode 0600) in this test's directory holding `token`.
  std::string TokenFile(const std::string& name, const std::string& token) {
    const std::string path = dir_.Sub(name);
    std::ofstream(path, std::ios::trunc) << token << "\n";
    chmod(path.c_str(), 0600);
    return path;
  }
  std::vector<std::string> ServerTlsFlags() const {
    return {"--tls_cert=" + pki_->server_cert, "--tls_key=" + pki_->server_key};
  }

  // Starts a binary that writes `port_file`; "127.0.0.1:<port>", or "" (and a failure
  // naming the log) when it did not start.
  std::string StartAndWait(std::unique_ptr<ChildProcess>* process, std::vector<std::string> args,
                           const std::string& name) {
    const std::string port_file = dir_.Sub(name + ".port");
    args.push_back("--port_file=" + port_file);
    *process = std::make_unique<ChildProcess>(args, dir_.Sub(name + ".log"));
    EXPECT_TRUE((*process)->spawned()) << "cannot start " << args[0];
    const int port = WaitForPortFile(port_file, absl::Seconds(30));
    EXPECT_GT(port, 0) << name << " did not report its port; its log:\n" << Log(name);
    return port > 0 ? absl::StrCat("127.0.0.1:", port) : "";
  }
  std::string Log(const std::string& name) const { return ReadFileOrEmpty(dir_.Sub(name + ".log")); }

  std::string StartCollectord(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {COLLECTORD_BINARY, "--db=" + dir_.Sub("collector-db"),
                                     "--listen=127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return StartAndWait(&collectord_, args, "collectord");
  }
  // A coupond over a store with a tiny model and the campaign "auth" (4 coupons).
  std::string StartCoupond(const std::vector<std::string>& extra, const std::string& name = "coupond") {
    if (!published_) {
      auto store = storage::ModelStore::OpenForWrite(dir_.Sub("store"));
      EXPECT_TRUE(store.ok()) << store.status();
      if (!store.ok()) return "";
      EXPECT_OK((*store)->Publish(TinyModel(50, 6, 8)).status());
      v1::Campaign campaign;
      campaign.set_campaign_id("auth");
      campaign.set_budget(100);
      for (const char* id : {"c1", "c2", "c3", "c4"}) campaign.add_coupons()->set_coupon_id(id);
      auto payload = api::EncodeStoredCampaign(campaign, v1::CampaignPrices());
      EXPECT_TRUE(payload.ok()) << payload.status();
      if (!payload.ok()) return "";
      EXPECT_OK((*store)->PublishCampaign("auth", *payload).status());
      published_ = true;
    }
    std::vector<std::string> args = {COUPOND_SERVER_BINARY, "--store=" + dir_.Sub("store"),
                                     "--listen=127.0.0.1:0", "--poll_interval=100ms",
                                     "--shutdown_grace=250ms"};
    args.insert(args.end(), extra.begin(), extra.end());
    return StartAndWait(name == "coupond" ? &coupond_ : &other_coupond_, args, name);
  }

  // Client options for `target`: TLS trusting the test CA (name coupond.test) when `tls`,
  // with the client certificate when `client_cert`, and `token` as the collector token.
  static client::ClientOptions Options(const std::string& target, bool tls, const std::string& token,
                                       bool client_cert = false) {
    client::ClientOptions options;
    options.target = target;
    options.collector_token = token;
    if (tls) {
      auto loaded = client::LoadClientTls(pki_->ca, client_cert ? pki_->client_cert : "",
                                          client_cert ? pki_->client_key : "", "coupond.test");
      EXPECT_TRUE(loaded.ok()) << loaded.status();
      if (loaded.ok()) options.tls = *std::move(loaded);
    }
    return options;
  }
  static std::unique_ptr<client::CollectorClient> Collector(const client::ClientOptions& options) {
    auto c = client::CollectorClient::Create(options);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  static v1::LogDecisionsRequest OneDecision(const std::string& id) {
    v1::LogDecisionsRequest request;
    v1::DecisionRecord* r = request.add_decisions();
    r->set_decision_id(id);
    r->set_user_key("u1");
    r->set_campaign_id("auth");
    r->set_propensity(1.0);
    return request;
  }
  static v1::ReportOutcomeRequest Outcome(const std::string& decision_id) {
    v1::ReportOutcomeRequest outcome;
    outcome.set_decision_id(decision_id);
    outcome.set_redeemed(true);
    outcome.set_order_value(10);
    return outcome;
  }

  // Writes without a token, with a wrong one and over plaintext are refused and store
  // nothing; with the token over TLS they are stored. `options` reach the collector over
  // TLS (with a client certificate where it requires one).
  void ExpectOnlyTokenHoldersWrite(const client::ClientOptions& options) {
    client::ClientOptions no_token = options;
    no_token.collector_token.clear();
    client::ClientOptions wrong_token = options;
    wrong_token.collector_token = kWrongToken;
    client::ClientOptions plaintext = options;
    plaintext.tls.reset();
    for (const client::ClientOptions* refused : {&no_token, &wrong_token}) {
      auto collector = Collector(*refused);
      ASSERT_NE(collector, nullptr);
      EXPECT_THAT(collector->LogDecisions(OneDecision("refused")),
                  StatusIs(absl::StatusCode::kUnauthenticated,
                           AllOf(HasSubstr("--collector_token_file"), Not(HasSubstr(kWrongToken)))));
      EXPECT_THAT(collector->ReportOutcome(Outcome("refused")),
                  StatusIs(absl::StatusCode::kUnauthenticated));
      // The counters need no token (they are what /metrics shows): nothing was stored.
      ASSERT_OK_AND_ASSIGN(v1::GetCollectorStatsResponse stats, collector->GetStats());
      EXPECT_EQ(stats.decisions(), 0u);
      EXPECT_EQ(stats.unmatched_outcomes(), 0u);
    }
    // The right token over plaintext to a TLS port: the handshake fails first.
    EXPECT_THAT(Collector(plaintext)->LogDecisions(OneDecision("plaintext")),
                StatusIs(absl::StatusCode::kUnavailable));

    auto collector = Collector(options);
    ASSERT_NE(collector, nullptr);
    ASSERT_OK_AND_ASSIGN(v1::LogDecisionsResponse logged, collector->LogDecisions(OneDecision("d1")));
    EXPECT_EQ(logged.stored(), 1u);
    ASSERT_OK_AND_ASSIGN(v1::ReportOutcomeResponse reported, collector->ReportOutcome(Outcome("d1")));
    EXPECT_EQ(reported.disposition(), v1::OUTCOME_DISPOSITION_RECORDED);
    ASSERT_OK_AND_ASSIGN(v1::GetCollectorStatsResponse stats, collector->GetStats());
    EXPECT_EQ(stats.decisions(), 1u);
    EXPECT_EQ(stats.outcomes(), 1u);
  }

  // Waits until `scorer` serves with the campaign "auth" loaded (it loads after the model).
  static void WaitForCampaign(const client::CoupondClient& scorer) {
    ASSERT_OK(scorer.WaitUntilServing(absl::Seconds(30)));
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    for (;;) {
      auto list = scorer.ListCampaigns();
      if (list.ok() && list->campaigns_size() == 1) return;
      ASSERT_LT(absl::Now(), deadline) << "the campaign did not load";
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  // Polls `collector`'s stats until it holds `decisions` decision records (30 s at most).
  static bool WaitForDecisions(const client::CollectorClient& collector, uint64_t decisions) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      auto stats = collector.GetStats();
      if (stats.ok() && stats->decisions() == decisions) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  TempDir dir_;
  std::unique_ptr<ChildProcess> collectord_;
  std::unique_ptr<ChildProcess> coupond_;
  std::unique_ptr<ChildProcess> other_coupond_;
  bool published_ = false;
  static inline ::coupond::testing::SuitePki suite_pki_;
  static inline const TestPki* const pki_ = &suite_pki_.pki();
};

TEST_F(CollectorAuthTest, CollectordTakesWritesOnlyWithTheTokenOverTls) {
  std::vector<std::string> flags = ServerTlsFlags();
  flags.push_back("--collector_token_file=" + TokenFile("collector.token", kCollectorToken));
  const std::string target = StartCollectord(flags);
  ASSERT_NE(target, "");
  EXPECT_THAT(Log("collectord"), HasSubstr("(TLS, token required for writes"));
  ASSERT_NO_FATAL_FAILURE(ExpectOnlyTokenHoldersWrite(Options(target, true, kCollectorToken)));
  EXPECT_THAT(Log("collectord"), AllOf(HasSubstr("refused a Collector.LogDecisions call"),
                                       Not(HasSubstr(kWrongToken))));
  EXPECT_EQ(collectord_->StopWith(SIGTERM, absl::Seconds(20)), 0);
}

TEST_F(CollectorAuthTest, TheEmbeddedCollectorTakesWritesOnlyWithTheTokenAndScoreNeedsNone) {
  std::vector<std::string> flags = ServerTlsFlags();
  flags.push_back("--collector_db=" + dir_.Sub("embedded"));
  flags.push_back("--collector_token_file=" + TokenFile("collector.token", kCollectorToken));
  const std::string target = StartCoupond(flags);
  ASSERT_NE(target, "");
  const client::ClientOptions options = Options(target, true, kCollectorToken);
  ASSERT_OK_AND_ASSIGN(auto scorer, client::CoupondClient::Create(Options(target, true, "")));
  ASSERT_NO_FATAL_FAILURE(WaitForCampaign(*scorer));
  ASSERT_NO_FATAL_FAILURE(ExpectOnlyTokenHoldersWrite(options));

  // Score and Decide need no collector token; Decide's own record reaches the embedded
  // collector (not through gRPC), and its outcome needs the token again.
  v1::ScoreRequest score;
  score.set_user_id("u1");
  score.set_top_k(3);
  EXPECT_OK(scorer->Score(score).status());
  v1::DecideRequest decide;
  decide.set_user_id("u2");
  decide.set_campaign_id("auth");
  ASSERT_OK_AND_ASSIGN(v1::DecideResponse decided, scorer->Decide(decide));
  ASSERT_FALSE(decided.decision_id().empty());
  auto collector = Collector(options);
  ASSERT_TRUE(WaitForDecisions(*collector, 2));
  EXPECT_THAT(Collector(Options(target, true, ""))->ReportOutcome(Outcome(decided.decision_id())),
              StatusIs(absl::StatusCode::kUnauthenticated));
  ASSERT_OK_AND_ASSIGN(v1::ReportOutcomeResponse reported,
                       collector->ReportOutcome(Outcome(decided.decision_id())));
  EXPECT_EQ(reported.disposition(), v1::OUTCOME_DISPOSITION_RECORDED);

  // couponctl sends the token (and TLS) for report-outcome; without the token it is refused.
  const std::vector<std::string> couponctl = {
      COUPONCTL_BINARY, "report-outcome", "--collector=" + target, "--tls_ca=" + pki_->ca,
      "--tls_server_name=coupond.test", "--decision_id=" + decided.decision_id(), "--redeemed",
      "--order_value=10"};
  std::string out;
  EXPECT_EQ(RunCommand(couponctl, dir_.Sub("couponctl.out"), &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("UNAUTHENTICATED"));
  std::vector<std::string> with_token = couponctl;
  with_token.push_back("--collector_token_file=" + dir_.Sub("collector.token"));
  EXPECT_EQ(RunCommand(with_token, dir_.Sub("couponctl.out"), &out), 0) << out;
  ASSERT_OK_AND_ASSIGN(v1::GetCollectorStatsResponse stats, collector->GetStats());
  EXPECT_EQ(stats.outcomes(), 2u);
  EXPECT_EQ(stats.duplicate_outcomes(), 1u);  // couponctl's report is the same outcome again
  EXPECT_EQ(coupond_->StopWith(SIGTERM, absl::Seconds(20)), 0);
}

TEST_F(CollectorAuthTest, CoupondLogsDecisionsToAMutualTlsCollectordWithTheToken) {
  std::vector<std::string> collectord_flags = ServerTlsFlags();
  collectord_flags.push_back("--tls_client_ca=" + pki_->ca);
  collectord_flags.push_back("--collector_token_file=" + TokenFile("collector.token", kCollectorToken));
  const std::string collector_target = StartCollectord(collectord_flags);
  ASSERT_NE(collector_target, "");
  EXPECT_THAT(Log("collectord"), HasSubstr("mutual TLS (client certificates required)"));
  // Without a client certificate even the right token does not get in.
  EXPECT_THAT(Collector(Options(collector_target, true, kCollectorToken))->GetStats(),
              StatusIs(absl::StatusCode::kUnavailable));

  const std::vector<std::string> sink_tls = {
      "--collector=" + collector_target, "--collector_tls_ca=" + pki_->ca,
      "--collector_tls_cert=" + pki_->client_cert, "--collector_tls_key=" + pki_->client_key,
      "--collector_tls_server_name=coupond.test"};
  std::vector<std::string> flags = sink_tls;
  flags.push_back("--collector_token_file=" + dir_.Sub("collector.token"));
  const std::string target = StartCoupond(flags);
  ASSERT_NE(target, "");
  EXPECT_THAT(Log("coupond"), HasSubstr("(mutual TLS (with a client certificate), with a token)"));
  ASSERT_OK_AND_ASSIGN(auto scorer, client::CoupondClient::Create(Options(target, false, "")));
  ASSERT_NO_FATAL_FAILURE(WaitForCampaign(*scorer));
  v1::DecideRequest decide;
  decide.set_campaign_id("auth");
  constexpr int kDecisions = 20;
  for (int i = 0; i < kDecisions; ++i) {
    decide.set_user_id(absl::StrCat("u", i));
    ASSERT_OK_AND_ASSIGN(v1::DecideResponse decided, scorer->Decide(decide));
    EXPECT_FALSE(decided.decision_id().empty());
  }
  auto collector = Collector(Options(collector_target, true, kCollectorToken, /*client_cert=*/true));
  ASSERT_NE(collector, nullptr);
  EXPECT_TRUE(WaitForDecisions(*collector, kDecisions)) << Log("coupond");

  // A scorer with the wrong token: its batches are refused (UNAUTHENTICATED is not
  // retried) and nothing of it is stored.
  flags = sink_tls;
  flags.push_back("--collector_token_file=" + TokenFile("wrong.token", kWrongToken));
  const std::string wrong = StartCoupond(flags, "wrong-coupond");
  ASSERT_NE(wrong, "");
  ASSERT_OK_AND_ASSIGN(auto wrong_scorer, client::CoupondClient::Create(Options(wrong, false, "")));
  ASSERT_NO_FATAL_FAILURE(WaitForCampaign(*wrong_scorer));
  ASSERT_OK(wrong_scorer->Decide(decide).status());
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!absl::StrContains(Log("collectord"), "refused a Collector.LogDecisions call") &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_THAT(Log("collectord"), HasSubstr("refused a Collector.LogDecisions call"));
  ASSERT_OK_AND_ASSIGN(v1::GetCollectorStatsResponse stats, collector->GetStats());
  EXPECT_EQ(stats.decisions(), static_cast<uint64_t>(kDecisions));
  // An open client connection holds a server's shutdown for its whole grace period.
  collector.reset();
  EXPECT_EQ(other_coupond_->StopWith(SIGTERM, absl::Seconds(20)), 0);
  EXPECT_EQ(coupond_->StopWith(SIGTERM, absl::Seconds(20)), 0);
  EXPECT_EQ(collectord_->StopWith(SIGTERM, absl::Seconds(20)), 0);
}

TEST_F(CollectorAuthTest, BadTlsOrTokenSettingsStopCollectordAndCoupondWithAClearMessage) {
  auto run = [&](std::vector<std::string> args, std::string* log) {
    return RunCommand(args, dir_.Sub("failed.log"), log, absl::Seconds(30));
  };
  const std::vector<std::string> collectord = {COLLECTORD_BINARY, "--db=" + dir_.Sub("db"),
                                               "--listen=127.0.0.1:0"};
  auto with = [](std::vector<std::string> args, const std::vector<std::string>& extra) {
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  std::string log;
  EXPECT_EQ(run(with(collectord, {"--tls_cert=" + pki_->server_cert}), &log), 1) << log;
  EXPECT_THAT(log, HasSubstr("tls_key: required with tls_cert"));
  EXPECT_EQ(run(with(collectord, {"--tls_client_ca=" + pki_->ca}), &log), 1) << log;
  EXPECT_THAT(log, HasSubstr("tls_client_ca: client certificates need TLS"));
  EXPECT_EQ(run(with(collectord, {"--collector_token_file=" + TokenFile("short", "too-short")}), &log),
            1)
      << log;
  EXPECT_THAT(log, AllOf(HasSubstr("collector token file"), HasSubstr("the token has 9 bytes"),
                         Not(HasSubstr("too-short"))));
  EXPECT_EQ(run(with(collectord, {"--collector_token_file=" + dir_.Sub("absent")}), &log), 1) << log;
  EXPECT_THAT(log, HasSubstr("cannot open"));
  // Without a token, an address other machines can reach is refused (the embedded collector
  // below too), unless the operator says the network is trusted.
  EXPECT_EQ(run(with(collectord, {"--listen=0.0.0.0:0"}), &log), 1) << log;
  EXPECT_THAT(log, AllOf(HasSubstr("collector_token_file: required on 0.0.0.0:0"),
                         HasSubstr("--collector_allow_unauthenticated_writes")));
  std::string target =
      StartCollectord({"--listen=0.0.0.0:0", "--collector_allow_unauthenticated_writes"});
  ASSERT_NE(target, "");
  EXPECT_THAT(Log("collectord"), AllOf(HasSubstr("takes writes (LogDecisions, ReportOutcome) on "
                                                 "0.0.0.0:0 from anyone"),
                                       HasSubstr("(plaintext, writes open")));
  EXPECT_EQ(collectord_->StopWith(SIGTERM, absl::Seconds(20)), 0);
  // On loopback only this machine's processes reach it: it serves without a token.
  target = StartCollectord({});
  ASSERT_NE(target, "");
  EXPECT_THAT(Log("collectord"), HasSubstr("(plaintext, writes open"));

  const std::vector<std::string> coupond = {COUPOND_SERVER_BINARY, "--store=" + dir_.Sub("store"),
                                            "--listen=127.0.0.1:0"};
  const std::string token_flag = "--collector_token_file=" + TokenFile("collector.token", kCollectorToken);
  EXPECT_EQ(run(with(coupond, {token_flag}), &log), 1) << log;
  EXPECT_THAT(log, HasSubstr("collector_token_file: needs collector_db"));
  EXPECT_EQ(run(with(coupond, {"--collector=" + target, "--collector_tls_cert=" + pki_->client_cert}),
                &log),
            1)
      << log;
  EXPECT_THAT(log, HasSubstr("collector_tls_key: required with collector_tls_cert"));
  EXPECT_EQ(run(with(coupond, {"--collector=" + target, "--collector_tls_ca=" + pki_->client_key}),
                &log),
            1)
      << log;
  EXPECT_THAT(log, HasSubstr("collector_tls_ca '"));
  EXPECT_EQ(run(with(coupond, {"--collector_db=" + dir_.Sub("embedded"),
                               "--collector_tls_ca=" + pki_->ca}),
                &log),
            1)
      << log;
  EXPECT_THAT(log, HasSubstr("only with collector_address"));
  EXPECT_EQ(run({COUPOND_SERVER_BINARY, "--store=" + dir_.Sub("store"), "--listen=0.0.0.0:0",
                 "--collector_db=" + dir_.Sub("embedded")},
                &log),
            1)
      << log;
  EXPECT_THAT(log, HasSubstr("collector_token_file: required on 0.0.0.0:0"));
  EXPECT_EQ(collectord_->StopWith(SIGTERM, absl::Seconds(20)), 0);
}

TEST(CollectorListenAddressTest, OnlyLoopbackAndUnixSocketsAreLocal) {
  for (const char* local : {"127.0.0.1:8981", "127.1.2.3:0", "localhost:8981", "[::1]:8981",
                            "unix:/run/collector.sock", "unix-abstract:collector"}) {
    EXPECT_TRUE(collector::IsLocalOnlyListenAddress(local)) << local;
  }
  for (const char* open : {"0.0.0.0:8981", "[::]:8981", "10.0.0.7:8981", "collector:8981",
                           ":8981", "", "[::1", "128.0.0.1:1", "localhost.example.com:1"}) {
    EXPECT_FALSE(collector::IsLocalOnlyListenAddress(open)) << open;
  }
}

}  // namespace
}  // namespace coupond::collector_auth_test
