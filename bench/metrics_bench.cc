// metrics_bench: what recording a metric costs on the request path (edge/metrics.h), per
// operation, with 1 and 2 threads, beside two baselines measured in the same run:
//  * one shared std::atomic<uint64_t> (relaxed fetch_add): the cheapest possible counter,
//    which bounces one cache line between threads;
//  * one absl::Mutex around a uint64_t: the "one global mutex" design the registry avoids.
// The last row is the interceptor's whole per-call bookkeeping (RpcMetrics::Record: method
// lookup, version formatting, a three-label counter and a two-label histogram).
// Each figure is the median of --reps repetitions; every repetition checks its total.
//
//   metrics_bench [--ops=2000000] [--reps=5]   (--help lists the flags)

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "edge/metrics.h"
#include "edge/rpc_metrics.h"

ABSL_FLAG(int64_t, ops, 2000000, "Operations per thread in each repetition (> 0).");
ABSL_FLAG(int, reps, 5, "Repetitions of each case; medians are reported (> 0).");

namespace {

using coupond::edge::Counter;
using coupond::edge::CounterFamily;
using coupond::edge::Histogram;
using coupond::edge::HistogramFamily;
using coupond::edge::MetricsRegistry;
using coupond::edge::RpcMetrics;

// ns per operation: `threads` threads each run body(thread, ops), released together.
double TimeOps(int threads, long ops, const std::function<void(int, long)>& body) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load()) {
      }
      body(t, ops);
    });
  }
  while (ready.load() < threads) {
  }
  const auto start = std::chrono::steady_clock::now();
  go.store(true);
  for (std::thread& t : pool) t.join();
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  return ns / static_cast<double>(ops);  // per operation of one thread (wall time)
}

struct Case {
  const char* name;
  std::function<void()> reset;
  std::function<void(int, long)> body;
  std::function<uint64_t()> total;  // what the repetition must have counted
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "the cost of recording a metric and of the interceptor's per-call bookkeeping, beside a "
      "shared atomic and a global mutex, with 1 and 2 threads.");
  absl::ParseCommandLine(argc, argv);
  const long ops = static_cast<long>(absl::GetFlag(FLAGS_ops));
  const int reps = absl::GetFlag(FLAGS_reps);
  if (ops <= 0 || reps <= 0) {
    std::fprintf(stderr, "usage: metrics_bench [--ops=N>0] [--reps=N>0]\n");
    return 2;
  }

  std::atomic<uint64_t> shared{0};
  absl::Mutex mu;
  uint64_t guarded = 0;
  auto counter = std::make_unique<Counter>();
  auto histogram = std::make_unique<Histogram>(coupond::edge::LatencyBucketsSeconds());

  MetricsRegistry registry;
  CounterFamily<3> family =
      *registry.AddCounter<3>("bench_total", "", {"method", "code", "model_version"});
  const std::string method = "/coupond.v1.CouponScoring/Score";
  auto rpc = RpcMetrics::Create(&registry, [] { return uint64_t{7}; });
  if (!rpc.ok()) {
    std::fprintf(stderr, "%s\n", rpc.status().ToString().c_str());
    return 1;
  }
  RpcMetrics* record = rpc->get();
  // One child per repetition and thread count, so each repetition's total is checkable.
  int family_round = 0, rpc_round = 0;

  std::vector<Case> cases = {
      {"baseline: one shared std::atomic", [&] { shared = 0; },
       [&](int, long n) {
         for (long i = 0; i < n; ++i) shared.fetch_add(1, std::memory_order_relaxed);
       },
       [&] { return shared.load(); }},
      {"baseline: one absl::Mutex", [&] { guarded = 0; },
       [&](int, long n) {
         for (long i = 0; i < n; ++i) {
           absl::MutexLock lock(&mu);
           ++guarded;
         }
       },
       [&] {
         absl::MutexLock lock(&mu);
         return guarded;
       }},
      {"Counter::Increment (sharded)", [&] { counter = std::make_unique<Counter>(); },
       [&](int, long n) {
         for (long i = 0; i < n; ++i) counter->Increment();
       },
       [&] { return counter->Value(); }},
      {"Histogram::Observe (17 bounds)",
       [&] { histogram = std::make_unique<Histogram>(coupond::edge::LatencyBucketsSeconds()); },
       [&](int, long n) {
         for (long i = 0; i < n; ++i) histogram->Observe(1e-4 * static_cast<double>(i & 1023));
       },
       [&] { return histogram->Collect().count; }},
      {"Family<3>::Get + Increment", [&] { ++family_round; },
       [&](int, long n) {
         const std::string round = std::to_string(family_round);
         for (long i = 0; i < n; ++i) family.Get({method, "OK", round}).Increment();
       },
       [&] { return family.Get({method, "OK", std::to_string(family_round)}).Value(); }},
      {"RpcMetrics::Record (per gRPC call)", [&] { ++rpc_round; },
       [&](int, long n) {
         const std::string m = method + std::to_string(rpc_round);
         for (long i = 0; i < n; ++i) {
           record->Record(m, grpc::StatusCode::OK, 1e-4);
         }
       },
       [&] { return uint64_t{0}; }},
  };

  std::printf("metrics_bench: %ld ops per thread, median of %d repetitions, %u hardware threads\n",
              ops, reps, std::thread::hardware_concurrency());
  for (int threads : {1, 2}) {
    std::printf("\n%d thread%s (ns per operation per thread, wall)\n", threads, threads > 1 ? "s" : "");
    std::vector<double> medians;
    for (const Case& c : cases) {
      std::vector<double> times;
      for (int r = 0; r < reps; ++r) {
        c.reset();
        times.push_back(TimeOps(threads, ops, c.body));
        const uint64_t expected = static_cast<uint64_t>(threads) * static_cast<uint64_t>(ops);
        const uint64_t total = c.total();
        if (total != 0 && total != expected) {
          std::fprintf(stderr, "%s: counted %llu, expected %llu\n", c.name,
                       static_cast<unsigned long long>(total), static_cast<unsigned long long>(expected));
          return 1;
        }
      }
      medians.push_back(Median(times));
    }
    for (size_t i = 0; i < cases.size(); ++i) {
      std::printf("  %-38s %8.2f ns   %6.2fx atomic   %6.2fx mutex\n", cases[i].name, medians[i],
                  medians[i] / medians[0], medians[i] / medians[1]);
    }
  }
  // Record's total is checked through the registry's text: the first repetition (1 thread)
  // recorded `ops` calls of method ".../Score1".
  const std::string text = registry.Render();
  if (text.find("coupond_grpc_requests_total{method=\"/coupond.v1.CouponScoring/Score1\",code=\"OK\","
                "model_version=\"7\"} " + std::to_string(ops) + "\n") == std::string::npos) {
    std::fprintf(stderr, "RpcMetrics::Record: unexpected count in\n%s\n", text.c_str());
    return 1;
  }
  return 0;
}
