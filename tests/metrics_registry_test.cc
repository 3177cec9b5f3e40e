// The Prometheus registry (edge/metrics.h) and its HTTP endpoint (edge/metrics_http.h):
// the exact exposition text, escaping, bucket placement, exact totals under concurrency,
// name and bound validation, and the endpoint over a real socket.

#include <cmath>
#include <fstream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "edge/metrics.h"
#include "edge/metrics_http.h"
#include "edge/port_file.h"
#include "edge/rpc_metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::edge {
namespace {

using ::coupond::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// The --port_file writer of both binaries: the whole line or nothing, and a clear error.
TEST(PortFileTest, WritesThePortAtomicallyAndNamesThePathWhenItCannot) {
  coupond::testing::TempDir dir;
  const std::string path = dir.Sub("port");
  ASSERT_OK(WritePortFile(path, 8980));
  ASSERT_OK(WritePortFile(path, 41234));  // replaces
  std::ifstream in(path);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, "41234");
  EXPECT_FALSE(std::ifstream(path + ".tmp").good()) << "the temporary name was left behind";
  EXPECT_THAT(WritePortFile(dir.Sub("no/such/dir/port"), 1),
              coupond::testing::StatusIs(absl::StatusCode::kUnavailable,
                                         ::testing::HasSubstr("no/such/dir/port")));
}

TEST(MetricsRegistryTest, RendersATinyRegistryExactly) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(CounterFamily<2> requests,
                       registry.AddCounter<2>("rpc_total", "Calls.", {"method", "code"}));
  ASSERT_OK_AND_ASSIGN(HistogramFamily<1> latency,
                       registry.AddHistogram<1>("rpc_seconds", "Latency.", {"method"}, {0.1, 1}));
  ASSERT_OK(registry.AddGauge("model_version", "Version.", [] { return 7.0; }));
  ASSERT_OK(registry.AddCallback(MetricsRegistry::CallbackType::kCounter, "drops_total",
                                 "Dropped.", {"queue"}, [] {
                                   return std::vector<CallbackSample>{{{"b"}, 2}, {{"a"}, 0.5}};
                                 }));
  ASSERT_OK_AND_ASSIGN(CounterFamily<0> plain, registry.AddCounter<0>("plain_total", "No labels.", {}));

  requests.Get({"Score", "OK"}).Increment(3);
  requests.Get({"Score", "INVALID_ARGUMENT"}).Increment();
  requests.Get({"Assign", "OK"}).Increment();
  latency.Get({"Score"}).Observe(0.05);
  latency.Get({"Score"}).Observe(0.1);  // on the bound: le is inclusive
  latency.Get({"Score"}).Observe(2);
  plain.Get({}).Increment(5);

  // Children in label-value order; callback samples in the callback's order.
  EXPECT_EQ(registry.Render(),
            "# HELP rpc_total Calls.\n"
            "# TYPE rpc_total counter\n"
            "rpc_total{method=\"Assign\",code=\"OK\"} 1\n"
            "rpc_total{method=\"Score\",code=\"INVALID_ARGUMENT\"} 1\n"
            "rpc_total{method=\"Score\",code=\"OK\"} 3\n"
            "# HELP rpc_seconds Latency.\n"
            "# TYPE rpc_seconds histogram\n"
            "rpc_seconds_bucket{method=\"Score\",le=\"0.1\"} 2\n"
            "rpc_seconds_bucket{method=\"Score\",le=\"1\"} 2\n"
            "rpc_seconds_bucket{method=\"Score\",le=\"+Inf\"} 3\n"
            "rpc_seconds_sum{method=\"Score\"} 2.15\n"
            "rpc_seconds_count{method=\"Score\"} 3\n"
            "# HELP model_version Version.\n"
            "# TYPE model_version gauge\n"
            "model_version 7\n"
            "# HELP drops_total Dropped.\n"
            "# TYPE drops_total counter\n"
            "drops_total{queue=\"b\"} 2\n"
            "drops_total{queue=\"a\"} 0.5\n"
            "# HELP plain_total No labels.\n"
            "# TYPE plain_total counter\n"
            "plain_total 5\n");
}

TEST(MetricsRegistryTest, AFamilyWithoutChildrenRendersOnlyItsHeader) {
  MetricsRegistry registry;
  ASSERT_OK(registry.AddCounter<1>("idle_total", "Nothing yet.", {"x"}).status());
  EXPECT_EQ(registry.Render(), "# HELP idle_total Nothing yet.\n# TYPE idle_total counter\n");
}

TEST(MetricsRegistryTest, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(EscapeLabelValue(""), "");
  EXPECT_EQ(EscapeLabelValue("größe {x=1}"), "größe {x=1}");  // UTF-8 and braces pass
  EXPECT_EQ(EscapeHelp("a \"quoted\" \\ line\nbreak"), "a \"quoted\" \\\\ line\\nbreak");

  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(CounterFamily<1> family,
                       registry.AddCounter<1>("x_total", "Help with \\ and\nnewline.", {"id"}));
  family.Get({"say \"hi\"\\\n"}).Increment();
  family.Get({""}).Increment(2);  // empty is a value like any other
  EXPECT_EQ(registry.Render(),
            "# HELP x_total Help with \\\\ and\\nnewline.\n"
            "# TYPE x_total counter\n"
            "x_total{id=\"\"} 2\n"
            "x_total{id=\"say \\\"hi\\\"\\\\\\n\"} 1\n");
}

TEST(MetricsRegistryTest, FormatsValuesAsPrometheusReadsThem) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(-0.0), "0");
  EXPECT_EQ(FormatMetricValue(42), "42");
  EXPECT_EQ(FormatMetricValue(-3), "-3");
  EXPECT_EQ(FormatMetricValue(0.25), "0.25");
  EXPECT_EQ(FormatMetricValue(50e-6), "5e-05");  // below 1e-4: scientific
  EXPECT_EQ(FormatMetricValue(1e-4), "0.0001");  // not 1e-04, though shorter
  EXPECT_EQ(FormatMetricValue(5e-4), "0.0005");
  EXPECT_EQ(FormatMetricValue(2.5e-4), "0.00025");
  EXPECT_EQ(FormatMetricValue(-123456.5), "-123456.5");
  EXPECT_EQ(FormatMetricValue(1e21), "1e+21");
  EXPECT_EQ(FormatMetricValue(0.1 + 0.2), "0.30000000000000004");  // round-trips
  EXPECT_EQ(FormatMetricValue(std::ldexp(1.0, 60)), "1152921504606846976");  // beyond 2^53
  EXPECT_EQ(FormatMetricValue(1e300), "1e+300");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
}

TEST(HistogramTest, PlacesObservationsInTheFirstBucketWhoseBoundIsAtLeastTheValue) {
  Histogram h({1, 2, 5});
  for (double v : {-10.0, 0.0, 1.0, 1.0000001, 2.0, 4.9, 5.0, 5.1, 1e300}) h.Observe(v);
  Histogram::Data d = h.Collect();
  EXPECT_EQ(d.counts, (std::vector<uint64_t>{3, 2, 2, 2}));  // <=1, <=2, <=5, +Inf
  EXPECT_EQ(d.count, 9u);

  // NaN is ignored (it would poison _sum forever); +Inf counts in +Inf and makes _sum +Inf.
  h.Observe(std::numeric_limits<double>::quiet_NaN());
  d = h.Collect();
  EXPECT_EQ(d.count, 9u);
  EXPECT_TRUE(std::isfinite(d.sum));
  h.Observe(std::numeric_limits<double>::infinity());
  d = h.Collect();
  EXPECT_EQ(d.counts.back(), 3u);
  EXPECT_EQ(d.sum, std::numeric_limits<double>::infinity());
}

TEST(HistogramTest, LatencyBucketsSpan50MicrosecondsTo10Seconds) {
  const std::vector<double> b = LatencyBucketsSeconds();
  ASSERT_OK(ValidateBucketBounds(b));
  EXPECT_DOUBLE_EQ(b.front(), 50e-6);
  EXPECT_DOUBLE_EQ(b.back(), 10.0);
  EXPECT_EQ(b.size(), 17u);
  // No step wider than 2.5x: quantiles interpolate within one bucket.
  for (size_t i = 1; i < b.size(); ++i) EXPECT_LE(b[i] / b[i - 1], 2.5 + 1e-9) << i;
}

TEST(HistogramTest, RejectsBadBoundsNamingTheIndex) {
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_THAT(ValidateBucketBounds({}), StatusIs(kInvalid, HasSubstr("empty")));
  EXPECT_THAT(ValidateBucketBounds({1, 1}), StatusIs(kInvalid, StartsWith("histogram bounds[1]")));
  EXPECT_THAT(ValidateBucketBounds({2, 1}), StatusIs(kInvalid, StartsWith("histogram bounds[1]")));
  EXPECT_THAT(ValidateBucketBounds({1, std::numeric_limits<double>::quiet_NaN()}),
              StatusIs(kInvalid, StartsWith("histogram bounds[1]: not finite")));
  EXPECT_THAT(ValidateBucketBounds({1, std::numeric_limits<double>::infinity()}),
              StatusIs(kInvalid, StartsWith("histogram bounds[1]: not finite")));
  MetricsRegistry registry;
  EXPECT_THAT(registry.AddHistogram<0>("h", "", {}, {3, 2}).status(), StatusIs(kInvalid));
}

TEST(MetricsRegistryTest, RejectsBadNamesAndDuplicates) {
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  MetricsRegistry registry;
  EXPECT_THAT(registry.AddCounter<0>("", "", {}).status(), StatusIs(kInvalid));
  EXPECT_THAT(registry.AddCounter<0>("9lives", "", {}).status(),
              StatusIs(kInvalid, HasSubstr("'9lives'")));
  EXPECT_THAT(registry.AddCounter<0>("has-dash", "", {}).status(), StatusIs(kInvalid));
  EXPECT_THAT(registry.AddCounter<1>("ok_total", "", {"bad:label"}).status(),
              StatusIs(kInvalid, HasSubstr("'bad:label'")));
  EXPECT_THAT(registry.AddCounter<1>("ok_total", "", {"__reserved"}).status(),
              StatusIs(kInvalid, HasSubstr("'__reserved'")));
  EXPECT_THAT(registry.AddCounter<2>("ok_total", "", {"a", "a"}).status(),
              StatusIs(kInvalid, HasSubstr("repeated")));
  EXPECT_THAT(registry.AddHistogram<1>("h", "", {"le"}, {1}).status(),
              StatusIs(kInvalid, HasSubstr("'le'")));
  EXPECT_THAT(registry.AddGauge("g", "", nullptr), StatusIs(kInvalid));
  // A counter may use "le"; colons are allowed in metric names.
  ASSERT_OK(registry.AddCounter<1>("ns:ok_total", "", {"le"}).status());
  EXPECT_THAT(registry.AddGauge("ns:ok_total", "", [] { return 1.0; }),
              StatusIs(absl::StatusCode::kAlreadyExists));
  // Nothing rejected was registered.
  EXPECT_EQ(registry.Render(), "# HELP ns:ok_total \n# TYPE ns:ok_total counter\n");
}

TEST(MetricsRegistryTest, CallbackSamplesWithTheWrongNumberOfLabelsAreLeftOut) {
  MetricsRegistry registry;
  ASSERT_OK(registry.AddCallback(MetricsRegistry::CallbackType::kGauge, "g", "", {"a", "b"}, [] {
    return std::vector<CallbackSample>{{{"1"}, 1}, {{"1", "2"}, 2}, {{"1", "2", "3"}, 3}};
  }));
  EXPECT_EQ(registry.Render(), "# HELP g \n# TYPE g gauge\ng{a=\"1\",b=\"2\"} 2\n");
}

TEST(MetricsRegistryTest, GetReturnsOneChildPerLabelCombination) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(CounterFamily<2> f, registry.AddCounter<2>("c_total", "", {"a", "b"}));
  Counter& xy = f.Get({"x", "y"});
  EXPECT_EQ(&f.Get({"x", "y"}), &xy);
  EXPECT_NE(&f.Get({"y", "x"}), &xy);  // order matters
  EXPECT_NE(&f.Get({"xy", ""}), &xy);  // no concatenation collisions
  EXPECT_NE(&f.Get({"", "xy"}), &f.Get({"xy", ""}));
  // Many children (more than the hash table's buckets) stay distinct and findable.
  for (int i = 0; i < 500; ++i) f.Get({absl::StrCat(i), "z"}).Increment(i);
  for (int i = 0; i < 500; ++i) EXPECT_EQ(f.Get({absl::StrCat(i), "z"}).Value(), uint64_t(i)) << i;
}

TEST(MetricsRegistryTest, ConcurrentIncrementsAndCreationsGiveExactTotals) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(CounterFamily<1> counters, registry.AddCounter<1>("c_total", "", {"k"}));
  ASSERT_OK_AND_ASSIGN(HistogramFamily<1> histograms,
                       registry.AddHistogram<1>("h", "", {"k"}, {0.5, 1.5}));
  constexpr int kThreads = 8;
  constexpr int kIterations = 20000;
  constexpr int kKeys = 10;  // every thread creates and uses the same ten children
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) {
      }
      for (int i = 0; i < kIterations; ++i) {
        const std::string key = absl::StrCat("k", (i + t) % kKeys);
        counters.Get({key}).Increment();
        histograms.Get({key}).Observe(i % 2);  // 0 and 1: half in each of the two buckets
      }
    });
  }
  go.store(true);
  // Scrapes race with the writers and must not disturb them.
  for (int i = 0; i < 20; ++i) EXPECT_THAT(registry.Render(), HasSubstr("# TYPE h histogram"));
  for (std::thread& t : threads) t.join();

  uint64_t total = 0, observations = 0, ones = 0;
  double sum = 0;
  for (int k = 0; k < kKeys; ++k) {
    const std::string key = absl::StrCat("k", k);
    total += counters.Get({key}).Value();
    const Histogram::Data d = histograms.Get({key}).Collect();
    observations += d.count;
    ones += d.counts[1];
    sum += d.sum;
    EXPECT_EQ(d.counts[2], 0u);
  }
  EXPECT_EQ(total, uint64_t{kThreads} * kIterations);
  EXPECT_EQ(observations, uint64_t{kThreads} * kIterations);
  EXPECT_EQ(ones, uint64_t{kThreads} * kIterations / 2);
  EXPECT_EQ(sum, double(kThreads) * kIterations / 2);  // integers: exact in a double
  // Exactly ten children were created despite the races.
  const std::string text = registry.Render();
  size_t lines = 0;
  for (size_t p = 0; (p = text.find("c_total{", p)) != std::string::npos; ++p) ++lines;
  EXPECT_EQ(lines, size_t{kKeys});
}

TEST(RpcMetricsTest, SpellsStatusCodesAsGrpcDoes) {
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::OK), "OK");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::INVALID_ARGUMENT), "INVALID_ARGUMENT");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::UNAUTHENTICATED), "UNAUTHENTICATED");
  EXPECT_EQ(StatusCodeName(static_cast<grpc::StatusCode>(17)), "UNKNOWN_CODE_17");
  EXPECT_EQ(StatusCodeName(static_cast<grpc::StatusCode>(-1)), "UNKNOWN_CODE_-1");
}

TEST(RpcMetricsTest, QuotesLogValuesOnlyWhenNeeded) {
  EXPECT_EQ(LogfmtValue("req-17_a.b:c/d@e+f"), "req-17_a.b:c/d@e+f");
  EXPECT_EQ(LogfmtValue(""), "\"\"");
  EXPECT_EQ(LogfmtValue("a b"), "\"a b\"");
  EXPECT_EQ(LogfmtValue("k=v"), "\"k=v\"");  // a bare = would split the pair
  EXPECT_EQ(LogfmtValue("q\"b\\n\nt\t\x01"), "\"q\\\"b\\\\n\\nt\\t\\x01\"");
  EXPECT_EQ(LogfmtValue("größe"), "\"größe\"");  // non-ASCII is quoted, kept as is
}

// No model_version label: the per-call series do not multiply with model versions (the
// version is coupond_model_info's label, server/server_metrics.h).
TEST(RpcMetricsTest, RecordsByMethodAndCodeAndCapsTheMethods) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RpcMetrics> rpc, RpcMetrics::Create(&registry, {}));
  EXPECT_EQ(rpc->CurrentModelVersion(), 0u);
  rpc->Record("/s/A", grpc::StatusCode::OK, 0.002);
  rpc->Record("/s/A", grpc::StatusCode::OK, 0.004);
  rpc->Record("/s/A", grpc::StatusCode::NOT_FOUND, 20);  // beyond the last bucket
  // A code past UNAUTHENTICATED (16). 31 is the largest an enum of -1..16 can hold: a cast
  // of anything larger is undefined (clang's UBSan reports it).
  rpc->Record("/s/A", static_cast<grpc::StatusCode>(31), 0);
  // Clients can name any method; past kMaxMethods names, calls count under "other".
  for (size_t i = 0; i < RpcMetrics::kMaxMethods + 5; ++i) {
    rpc->Record(absl::StrCat("/junk/", i), grpc::StatusCode::UNIMPLEMENTED, 0);
  }
  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("coupond_grpc_requests_total{method=\"/s/A\",code=\"OK\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("coupond_grpc_requests_total{method=\"/s/A\",code=\"NOT_FOUND\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("code=\"UNKNOWN_CODE_31\""));
  EXPECT_THAT(text, Not(HasSubstr("model_version")));
  EXPECT_THAT(text, HasSubstr("coupond_grpc_request_duration_seconds_bucket{method=\"/s/A\","
                              "le=\"0.0025\"} 2\n"));  // 0 and 0.002
  EXPECT_THAT(text, HasSubstr("coupond_grpc_request_duration_seconds_bucket{method=\"/s/A\","
                              "le=\"10\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("coupond_grpc_request_duration_seconds_bucket{method=\"/s/A\","
                              "le=\"+Inf\"} 4\n"));
  // "/s/A" took one of the 64 names: 63 junk names have their own series, 6 are "other".
  EXPECT_THAT(text, HasSubstr("coupond_grpc_requests_total{method=\"other\",code=\"UNIMPLEMENTED\"} 6\n"));
  EXPECT_THAT(text, HasSubstr("method=\"/junk/62\""));
  EXPECT_THAT(text, Not(HasSubstr("method=\"/junk/63\"")));
  // A second RpcMetrics on the same registry collides with the first.
  EXPECT_THAT(RpcMetrics::Create(&registry, {}).status(), StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST(ParseHostPortTest, AcceptsHostPortAndRejectsTheRestNamingTheFlag) {
  std::string host;
  int port = -1;
  ASSERT_OK(ParseHostPort("0.0.0.0:9090", "metrics_listen", &host, &port));
  EXPECT_EQ(host, "0.0.0.0");
  EXPECT_EQ(port, 9090);
  ASSERT_OK(ParseHostPort("[::1]:0", "metrics_listen", &host, &port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 0);
  for (const char* bad : {"", "9090", ":9090", "host:", "host:-1", "host:65536", "host:9x", "[]:80"}) {
    EXPECT_THAT(ParseHostPort(bad, "metrics_listen", &host, &port),
                StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("metrics_listen")))
        << bad;
  }
}

TEST(MetricsHttpServerTest, ServesMetricsAndHealthOverHttp) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(CounterFamily<1> family, registry.AddCounter<1>("hits_total", "Hits.", {"p"}));
  family.Get({"a"}).Increment(4);
  std::atomic<bool> healthy{false};
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<MetricsHttpServer> server,
      MetricsHttpServer::Start("127.0.0.1:0", &registry, [&healthy] {
        return HealthReport{healthy.load(), healthy.load() ? "status=SERVING\n" : "status=NOT_SERVING\n"};
      }));
  ASSERT_GT(server->port(), 0);

  httplib::Client client("127.0.0.1", server->port());
  httplib::Result metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics) << httplib::to_string(metrics.error());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->get_header_value("Content-Type"), kPrometheusContentType);
  EXPECT_EQ(metrics->body, registry.Render());
  EXPECT_THAT(metrics->body, HasSubstr("hits_total{p=\"a\"} 4\n"));

  httplib::Result health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_EQ(health->body, "status=NOT_SERVING\n");
  healthy = true;
  health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "status=SERVING\n");

  httplib::Result other = client.Get("/other");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);

  // The port is taken: a second server on it cannot start.
  EXPECT_THAT(MetricsHttpServer::Start(absl::StrCat("127.0.0.1:", server->port()), &registry, {})
                  .status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("cannot listen")));
  EXPECT_THAT(MetricsHttpServer::Start("nonsense", &registry, {}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));

  const int port = server->port();
  server->Stop();
  server->Stop();  // idempotent
  httplib::Client after("127.0.0.1", port);
  after.set_connection_timeout(std::chrono::seconds(2));
  EXPECT_FALSE(after.Get("/metrics")) << "still serving after Stop";
}

TEST(MetricsHttpServerTest, StopRightAfterStartReturns) {
  MetricsRegistry registry;
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(auto server, MetricsHttpServer::Start("127.0.0.1:0", &registry, {}));
    server->Stop();
  }
}

}  // namespace
}  // namespace coupond::edge
