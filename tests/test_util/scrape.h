#ifndef COUPOND_TESTS_TEST_UTIL_SCRAPE_H_
#define COUPOND_TESTS_TEST_UTIL_SCRAPE_H_

// Prometheus scrapes of a real server's /metrics for integration tests: one scrape as a
// map from series to value, and a wait for a series to reach a value (counters move just
// after the client has its answer: the interceptor records a call when gRPC reports it
// closed).

#include <chrono>
#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "httplib.h"

namespace coupond::testing {

// Series ("name{labels}") to value, from one scrape.
using Scrape = std::map<std::string, double>;

// Fails the test on a malformed or repeated line.
inline Scrape ParseScrape(const std::string& text) {
  Scrape samples;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos || !absl::SimpleAtod(line.substr(space + 1), &value)) {
      ADD_FAILURE() << "malformed sample line: " << line;
      continue;
    }
    EXPECT_TRUE(samples.emplace(std::string(line.substr(0, space)), value).second)
        << "repeated series: " << line;
  }
  return samples;
}

// coupond_grpc_requests_total of one method and code.
inline std::string Requests(const std::string& method, const std::string& code) {
  return absl::StrCat("coupond_grpc_requests_total{method=\"", method, "\",code=\"", code, "\"}");
}

// A series of coupond_grpc_request_duration_seconds: `suffix` is bucket, sum or count.
inline std::string Latency(const std::string& suffix, const std::string& method,
                           const std::string& le = "") {
  return absl::StrCat("coupond_grpc_request_duration_seconds_", suffix, "{method=\"", method, "\"",
                      le.empty() ? "" : ",le=\"" + le + "\"", "}");
}

// The value of `series`, or -1 when the scrape does not have it.
inline double Value(const Scrape& scrape, const std::string& series) {
  auto it = scrape.find(series);
  return it == scrape.end() ? -1 : it->second;
}

// How many series of the scrape start with `prefix`.
inline int CountSeries(const Scrape& scrape, const std::string& prefix) {
  int n = 0;
  for (const auto& [series, value] : scrape) n += series.rfind(prefix, 0) == 0;
  return n;
}

// GET /metrics on 127.0.0.1:`port`, parsed; an empty scrape (and a test failure) when the
// request fails.
inline Scrape ScrapeMetricsAt(int port) {
  httplib::Client http("127.0.0.1", port);
  http.set_read_timeout(std::chrono::seconds(10));
  httplib::Result r = http.Get("/metrics");
  if (!r) {
    ADD_FAILURE() << "GET /metrics: " << httplib::to_string(r.error());
    return {};
  }
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  return ParseScrape(r->body);
}

// Scrapes until `series` has `value`, for up to 30 s (a condition with a deadline, not a
// sleep: it returns at the first scrape that has it).
inline Scrape WaitForValueAt(int port, const std::string& series, double value) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  Scrape scrape;
  do {
    scrape = ScrapeMetricsAt(port);
    if (Value(scrape, series) == value) return scrape;
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < deadline);
  ADD_FAILURE() << series << " never reached " << value << " (last " << Value(scrape, series) << ")";
  return scrape;
}

}  // namespace coupond::testing

#endif  // COUPOND_TESTS_TEST_UTIL_SCRAPE_H_
