// Integration: the real coupond binary with --metrics_listen=127.0.0.1:0, called over gRPC
// through the generated client, then scraped over HTTP as Prometheus would: per-method and
// per-code call counts, the latency histogram, the model gauges across a rejected version
// and a reload, /healthz, and the structured access log.

#include <csignal>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/collector_client.h"
#include "client/coupond_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "storage/model_store.h"
#include "tests/test_util/models.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/process.h"
#include "tests/test_util/scrape.h"
#include "tests/test_util/temp_dir.h"

namespace coupond {
namespace {

using ::coupond::testing::StatusIs;
using ::coupond::testing::ChildProcess;
using ::coupond::testing::TempDir;
using ::coupond::testing::TinyModel;
using ::coupond::testing::CountSeries;
using ::coupond::testing::Latency;
using ::coupond::testing::Requests;
using ::coupond::testing::Scrape;
using ::coupond::testing::ScrapeMetricsAt;
using ::coupond::testing::Value;
using ::coupond::testing::WaitForPortFile;
using ::coupond::testing::WaitForValueAt;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

constexpr char kScore[] = "/coupond.v1.CouponScoring/Score";
constexpr char kModelInfo[] = "/coupond.v1.CouponScoring/GetModelInfo";
constexpr char kAssign[] = "/coupond.v1.CouponScoring/Assign";

class MetricsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = TinyModel(40, 30, 24);
    // Through a shell only to send the server's log to a file; `exec` keeps the pid.
    const std::string command =
        absl::StrCat("exec '", COUPOND_SERVER_BINARY, "' --store='", dir_.Sub("store"),
                     "' --listen=127.0.0.1:0 --port_file='", dir_.Sub("port"),
                     "' --metrics_listen=127.0.0.1:0 --metrics_port_file='", dir_.Sub("metrics_port"),
                     "' --poll_interval=100ms --expected_dimension=24 --shutdown_grace=2s "
                     "--log_level=debug > '", dir_.Sub("log"), "' 2>&1");
    server_ = std::make_unique<ChildProcess>(std::vector<std::string>{"/bin/sh", "-c", command});
    ASSERT_TRUE(server_->spawned()) << "cannot start " << COUPOND_SERVER_BINARY;
    const int port = WaitForPortFile(dir_.Sub("port"), absl::Seconds(30));
    ASSERT_GT(port, 0) << "coupond did not report its port";
    // Written before --port_file.
    metrics_port_ = WaitForPortFile(dir_.Sub("metrics_port"), absl::Seconds(1));
    ASSERT_GT(metrics_port_, 0) << "coupond did not report its metrics port";
    ASSERT_NE(metrics_port_, port);
    client::ClientOptions options;
    options.target = absl::StrCat("127.0.0.1:", port);
    ASSERT_OK_AND_ASSIGN(client_, client::CoupondClient::Create(options));
  }

  void Publish(const core::ModelData& model) {
    ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForWrite(dir_.Sub("store")));
    ASSERT_OK(store->Publish(model).status());
  }

  httplib::Result Get(const std::string& path) {
    httplib::Client http("127.0.0.1", metrics_port_);
    http.set_read_timeout(std::chrono::seconds(10));
    return http.Get(path);
  }

  Scrape ScrapeMetrics() { return ScrapeMetricsAt(metrics_port_); }

  Scrape WaitForValue(const std::string& series, double value) {
    return WaitForValueAt(metrics_port_, series, value);
  }

  v1::ScoreRequest Request(const std::string& user, const std::string& request_id) {
    v1::ScoreRequest r;
    r.set_user_id(user);
    r.set_request_id(request_id);
    r.set_top_k(10);  // every active coupon, which needs a top_k
    return r;
  }

  TempDir dir_;
  core::ModelData model_;
  std::unique_ptr<ChildProcess> server_;
  std::unique_ptr<client::CoupondClient> client_;
  int metrics_port_ = 0;
};

TEST_F(MetricsIntegrationTest, CountsCallsByMethodAndCodeAndLogsEachCall) {
  // Before any model: /healthz is 503, the version gauge 0, Score UNAVAILABLE, and the info
  // gauge says "none".
  httplib::Result health = Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_THAT(health->body, HasSubstr("status=NOT_SERVING\nreason=no_model_loaded\n"));
  EXPECT_THAT(client_->Score(Request("u1", "early")), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(Value(ScrapeMetrics(), "coupond_model_info{model_version=\"none\"}"), 1);

  Publish(model_);
  WaitForValue("coupond_model_version", 1);
  ASSERT_OK(client_->WaitUntilServing(absl::Seconds(30)));
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK(client_->Score(Request(model_.user_ids[i], absl::StrCat("metrics-", i))).status());
  }
  EXPECT_THAT(client_->Score(Request("", "bad \"one\"")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("user_id")));
  ASSERT_OK(client_->GetModelInfo().status());
  // A server-streaming call: several messages, one count.
  v1::AssignRequest assign;
  assign.set_request_id("plan-m");
  assign.mutable_campaign()->set_campaign_id("spring");
  assign.mutable_campaign()->set_budget(20);
  for (const char* id : {"c1", "c2", "c3"}) assign.mutable_campaign()->add_coupons()->set_coupon_id(id);
  assign.mutable_all_users();
  assign.set_chunk_size(4);
  int messages = 0;
  ASSERT_OK(client_
                ->Assign(assign, absl::Seconds(60),
                         [&messages](const v1::AssignResponse&) {
                           ++messages;
                           return absl::OkStatus();
                         })
                .status());
  EXPECT_GT(messages, 1);

  // The interceptor records a call once its status is sent, which can be just after the
  // client has it: wait for the last calls' counts instead of scraping at once.
  WaitForValue(Requests(kAssign, "OK"), 1);
  const Scrape scrape = WaitForValue(Latency("count", kScore), 5);
  EXPECT_EQ(Value(scrape, Requests(kScore, "UNAVAILABLE")), 1);
  EXPECT_EQ(Value(scrape, Requests(kScore, "OK")), 3);
  EXPECT_EQ(Value(scrape, Requests(kScore, "INVALID_ARGUMENT")), 1);
  EXPECT_EQ(Value(scrape, Requests(kModelInfo, "OK")), 1);
  EXPECT_EQ(Value(scrape, Requests(kAssign, "OK")), 1);
  EXPECT_EQ(Value(scrape, Latency("count", kAssign)), 1);
  EXPECT_GE(Value(scrape, Requests("/grpc.health.v1.Health/Check", "OK")), 1);
  // The served version is a label of the info gauge only (docs/metrics.md).
  EXPECT_EQ(Value(scrape, "coupond_model_info{model_version=\"1\"}"), 1);
  EXPECT_EQ(CountSeries(scrape, "coupond_model_info{"), 1);
  for (const auto& [series, value] : scrape) {
    if (series.rfind("coupond_grpc_", 0) == 0) {
      EXPECT_EQ(series.find("model_version"), std::string::npos) << series;
    }
  }

  // The histogram: 5 Score calls, cumulative buckets ending at the count.
  EXPECT_EQ(Value(scrape, Latency("bucket", kScore, "+Inf")), 5);
  EXPECT_GT(Value(scrape, Latency("sum", kScore)), 0);
  EXPECT_LT(Value(scrape, Latency("sum", kScore)), 5 * 10.0);
  double previous = 0;
  for (const char* le : {"5e-05", "0.0001", "0.001", "0.01", "0.1", "1", "10", "+Inf"}) {
    const double cumulative = Value(scrape, Latency("bucket", kScore, le));
    EXPECT_GE(cumulative, previous) << le;
    previous = cumulative;
  }

  // The model and the process.
  EXPECT_EQ(Value(scrape, "coupond_model_version"), 1);
  EXPECT_EQ(Value(scrape, "coupond_model_loads_total"), 1);
  EXPECT_EQ(Value(scrape, "coupond_model_rejected_versions_total"), 0);
  EXPECT_EQ(Value(scrape, "coupond_live_snapshots"), 1);
  // 40 users and 30 coupons of 24 floats at least.
  EXPECT_GE(Value(scrape, "coupond_snapshot_bytes"), (40 + 30) * 24 * 4);
  EXPECT_GT(Value(scrape, "process_resident_memory_bytes"), Value(scrape, "coupond_snapshot_bytes"));
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  EXPECT_NEAR(Value(scrape, "coupond_model_last_load_timestamp_seconds"), now, 120);
  EXPECT_GE(Value(scrape, "coupond_model_last_load_duration_seconds"), 0);
  EXPECT_EQ(Value(scrape, "coupond_model_last_poll_ok"), 1);
  // The store as the server holds it: one version, one table file, opened at least once
  // (once more per change seen); its descriptors are among the process's.
  EXPECT_GE(Value(scrape, "coupond_model_store_opens_total"), 1);
  EXPECT_EQ(Value(scrape, "coupond_model_store_files"), 1);
  EXPECT_GT(Value(scrape, "coupond_model_store_bytes"), 0);
  EXPECT_GT(Value(scrape, "process_open_fds"), Value(scrape, "coupond_model_store_files"));
  EXPECT_GE(Value(scrape, "coupond_model_last_poll_duration_seconds"), 0);
  // No decision logger, no collector: their metrics are absent, not zero.
  EXPECT_EQ(Value(scrape, "coupond_decision_log_dropped_total"), -1);
  EXPECT_EQ(Value(scrape, "coupond_collector_decisions_total"), -1);

  health = Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_THAT(health->body, HasSubstr("status=SERVING\nreason=ok\nmodel_version=1\nloads=1\n"));

  // One access-log line per call, key=value, the request id quoted when it needs it.
  ASSERT_EQ(server_->StopWith(SIGTERM, absl::Seconds(20)), 0);
  std::ifstream in(dir_.Sub("log"));
  std::vector<std::string> access;
  for (std::string line; std::getline(in, line);) {
    if (line.find(" rpc method=") != std::string::npos) access.push_back(line);
  }
  auto find = [&access](const std::string& needle) {
    int found = 0;
    for (const std::string& line : access) found += line.find(needle) != std::string::npos;
    return found;
  };
  EXPECT_EQ(find(absl::StrCat("rpc method=", kScore, " code=OK latency_us=")), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(find(absl::StrCat(" model_version=1 request_id=metrics-", i, " peer=ipv4:127.0.0.1:")), 1)
        << i;
  }
  EXPECT_EQ(find(absl::StrCat("rpc method=", kScore,
                              " code=INVALID_ARGUMENT latency_us=")), 1);
  EXPECT_EQ(find(" model_version=1 request_id=\"bad \\\"one\\\"\" peer="), 1);
  EXPECT_EQ(find(" code=UNAVAILABLE latency_us="), 1);
  EXPECT_EQ(find(absl::StrCat("rpc method=", kAssign, " code=OK latency_us=")), 1);
  EXPECT_EQ(find(" model_version=1 request_id=plan-m peer="), 1);
  EXPECT_EQ(find(" model_version=none request_id=early "), 1);
  // GetModelInfo without a request id: the server generates one and the log shows it.
  for (const std::string& line : access) {
    if (line.find(kModelInfo) == std::string::npos) continue;
    EXPECT_THAT(line, MatchesRegex(".*code=OK latency_us=[0-9]+ model_version=1 request_id=[^\" ]+ "
                                   "peer=ipv4:127\\.0\\.0\\.1:[0-9]+"));
  }
}

TEST_F(MetricsIntegrationTest, ReportsARejectedVersionThenTheReload) {
  Publish(model_);
  WaitForValue("coupond_model_version", 1);
  // Version 2 has the wrong dimension (the server expects 24): rejected, version 1 stays.
  Publish(TinyModel(40, 30, 8));
  Scrape scrape = WaitForValue("coupond_model_rejected_versions_total", 1);
  EXPECT_EQ(Value(scrape, "coupond_model_version"), 1);
  EXPECT_EQ(Value(scrape, "coupond_model_last_rejected_version"), 2);
  EXPECT_EQ(Value(scrape, "coupond_model_loads_total"), 1);
  httplib::Result health = Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);  // still serving version 1
  EXPECT_THAT(health->body, HasSubstr("rejected_versions=1\nlast_rejected_version=2\n"
                                      "last_rejection=\"rejected model version 2 from"));

  ASSERT_OK(client_->WaitUntilServing(absl::Seconds(30)));
  ASSERT_OK(client_->Score(Request(model_.user_ids[0], "before")).status());
  Publish(model_);  // version 3
  scrape = WaitForValue("coupond_model_version", 3);
  EXPECT_EQ(Value(scrape, "coupond_model_loads_total"), 2);
  EXPECT_EQ(Value(scrape, "coupond_model_rejected_versions_total"), 1);
  // The poll that swaps in version 3 records its own outcome only after the swap (it polls the
  // campaigns too), so a scrape in between still shows the rejecting poll: wait for it.
  WaitForValue("coupond_model_last_poll_ok", 1);
  ASSERT_OK(client_->Score(Request(model_.user_ids[0], "after")).status());
  scrape = WaitForValue(Requests(kScore, "OK"), 2);  // counted once its status is sent
  EXPECT_EQ(Value(scrape, "coupond_model_info{model_version=\"3\"}"), 1);
  EXPECT_EQ(CountSeries(scrape, "coupond_model_info{"), 1);
  // Version 1 is freed once no request holds it (none in flight here), by the poller.
  WaitForValue("coupond_live_snapshots", 1);
  EXPECT_EQ(server_->StopWith(SIGTERM, absl::Seconds(20)), 0);  // a clean exit (sanitizers too)
}

// Reloads through many versions do not add per-call series: the served version is the
// label of one info gauge, which moves with the reloads (issue 15: every version used to add
// a series per method and code, and 19 per histogram, for the life of the process).
TEST_F(MetricsIntegrationTest, PerCallSeriesStayBoundedAcrossReloads) {
  constexpr int kVersions = 6;
  for (int version = 1; version <= kVersions; ++version) {
    Publish(model_);
    WaitForValue("coupond_model_version", version);
    WaitForValue(absl::StrCat("coupond_model_info{model_version=\"", version, "\"}"), 1);
    ASSERT_OK(client_->Score(Request(model_.user_ids[0], absl::StrCat("v", version))).status());
    ASSERT_OK(client_->GetModelInfo().status());
    const Scrape scrape = WaitForValue(Requests(kScore, "OK"), version);
    EXPECT_EQ(CountSeries(scrape, "coupond_model_info{"), 1) << version;
    EXPECT_EQ(CountSeries(scrape, absl::StrCat("coupond_grpc_requests_total{method=\"", kScore)), 1)
        << version;
    EXPECT_EQ(CountSeries(scrape, absl::StrCat("coupond_grpc_request_duration_seconds_bucket{method=\"",
                                               kScore, "\"")),
              18)  // 17 bounds and +Inf
        << version;
  }
  const Scrape last = WaitForValue(Requests(kModelInfo, "OK"), kVersions);
  EXPECT_EQ(Value(last, Latency("count", kScore)), kVersions);
  // Two methods, each always OK: two series, whatever the number of versions.
  EXPECT_EQ(CountSeries(last, "coupond_grpc_requests_total{"), 2);
}

// collectord serves the same endpoint: its store's counters and its calls.
TEST(CollectordMetricsTest, ExportsTheStoreCountersAndCountsCalls) {
  TempDir dir;
  ChildProcess collectord({COLLECTORD_BINARY, "--db=" + dir.Sub("db"), "--listen=127.0.0.1:0",
                         "--port_file=" + dir.Sub("port"), "--metrics_listen=127.0.0.1:0",
                         "--metrics_port_file=" + dir.Sub("metrics_port"), "--sync=false",
                         "--log_level=warn"});
  ASSERT_TRUE(collectord.spawned()) << "cannot start " << COLLECTORD_BINARY;
  const int port = WaitForPortFile(dir.Sub("port"), absl::Seconds(30));
  ASSERT_GT(port, 0) << "collectord did not report its port";
  const int metrics_port = WaitForPortFile(dir.Sub("metrics_port"), absl::Seconds(1));
  ASSERT_GT(metrics_port, 0);
  client::ClientOptions options;
  options.target = absl::StrCat("127.0.0.1:", port);
  ASSERT_OK_AND_ASSIGN(auto client, client::CollectorClient::Create(options));

  v1::ReportOutcomeRequest outcome;
  outcome.set_decision_id("never-decided");
  outcome.set_redeemed(true);
  outcome.set_order_value(12.5);
  ASSERT_OK(client->ReportOutcome(outcome).status());  // kept apart as unmatched
  outcome.set_order_value(-1);
  EXPECT_THAT(client->ReportOutcome(outcome), StatusIs(absl::StatusCode::kInvalidArgument));

  const std::string method = "/coupond.v1.Collector/ReportOutcome";
  const Scrape scrape = WaitForValueAt(metrics_port, Latency("count", method), 2);
  EXPECT_EQ(Value(scrape, Requests(method, "OK")), 1);
  EXPECT_EQ(Value(scrape, Requests(method, "INVALID_ARGUMENT")), 1);
  EXPECT_EQ(Value(scrape, "coupond_collector_unmatched_outcomes"), 1);
  EXPECT_EQ(Value(scrape, "coupond_collector_decisions_total"), 0);
  EXPECT_EQ(Value(scrape, "coupond_collector_outcomes_total"), 0);
  EXPECT_EQ(Value(scrape, "coupond_model_version"), -1);  // no model metrics here
  EXPECT_EQ(CountSeries(scrape, "coupond_model_info"), 0);
  httplib::Client http("127.0.0.1", metrics_port);
  httplib::Result r = http.Get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(collectord.StopWith(SIGTERM, absl::Seconds(20)), 0);
}

}  // namespace
}  // namespace coupond
