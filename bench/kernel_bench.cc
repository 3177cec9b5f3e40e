// kernel_bench: the scoring kernel (core/kernel.h) beside OpenBLAS sgemv/sgemm and Eigen on
// the same data in one run, with a streaming-read bandwidth baseline for the out-of-cache
// case. Before timing it checks that every implementation agrees with a double-precision
// reference (aborting if not); results feed DoNotOptimize/ClobberMemory so no work is
// discarded. After the runs it prints a summary computed from the medians:
//   case, ours, baseline, ratio, target, PASS/FAIL.
//
// Usage: kernel_bench [benchmark flags]. Defaults to --benchmark_repetitions=5
// --benchmark_report_aggregates_only=true --benchmark_enable_random_interleaving=true
// (interleaving the repetitions of all cases makes their medians see the same machine
// load on this shared VM; later flags override).
// OpenBLAS runs single-threaded (openblas_set_num_threads(1)) for the like-for-like
// comparison; the "*_blas_mt" rows use OpenBLAS's default thread count for reference.
// Eigen is compiled with this file's flags (no -march), so it uses SSE2 only.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "bench/kernel_bench.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#ifndef COUPOND_BENCH_KERNEL_BENCH_ONCE_
#define COUPOND_BENCH_KERNEL_BENCH_ONCE_
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "Eigen/Dense"
#include "benchmark/benchmark.h"
#include "core/kernel.h"
#endif

HWY_BEFORE_NAMESPACE();
namespace coupond::bench {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Sum of `n` floats (n a multiple of 64, p 64-byte aligned): a pure streaming read.
float StreamSum(const float* HWY_RESTRICT p, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  for (size_t i = 0; i + 4 * N <= n; i += 4 * N) {
    a0 = hn::Add(a0, hn::Load(d, p + i));
    a1 = hn::Add(a1, hn::Load(d, p + i + N));
    a2 = hn::Add(a2, hn::Load(d, p + i + 2 * N));
    a3 = hn::Add(a3, hn::Load(d, p + i + 3 * N));
  }
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
}

}  // namespace HWY_NAMESPACE
}  // namespace coupond::bench
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace coupond::bench {
HWY_EXPORT(StreamSum);

namespace {

using core::FactorMatrix;
using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "kernel_bench: %s\n", what.c_str());
  std::abort();
}

std::vector<float> RandomFloats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// One dataset: N coupons x d (row-major, as BLAS/Eigen take it, and in our panel layout),
// B users, biases.
struct Data {
  Data(size_t num_users, size_t num_rows, size_t dim)
      : users(num_users), n(num_rows), d(dim), y(RandomFloats(n * d, 1)),
        x(RandomFloats(users * d, 2)), bias(RandomFloats(n, 3)), out(users * n) {
    absl::StatusOr<FactorMatrix> fm = FactorMatrix::Create(y, n, d);
    if (!fm.ok()) Die(fm.status().ToString());
    m = *std::move(fm);
  }
  size_t users, n, d;
  std::vector<float> y, x, bias, out;
  FactorMatrix m;
};

// Every output within 1e-5 x sum|x_i y_i| (+1e-6) of the double reference, for user u.
void CheckAgainstReference(const char* who, const Data& data, const float* out, size_t users) {
  for (size_t u = 0; u < users; ++u) {
    const float* xu = data.x.data() + u * data.d;
    for (size_t r = 0; r < data.n; ++r) {
      double ref = 0.0, mag = 0.0;
      for (size_t j = 0; j < data.d; ++j) {
        const double t = double{xu[j]} * data.y[r * data.d + j];
        ref += t;
        mag += std::fabs(t);
      }
      const double got = out[u * data.n + r];
      if (!(std::fabs(got - ref) <= 1e-5 * mag + 1e-6)) {
        Die(std::string(who) + " disagrees with the reference at user " + std::to_string(u) +
            " row " + std::to_string(r) + ": " + std::to_string(got) + " vs " +
            std::to_string(ref));
      }
    }
  }
}

int g_blas_default_threads = 1;

void Sgemv(const Data& data, float* out) {
  cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(data.n), static_cast<int>(data.d),
              1.0f, data.y.data(), static_cast<int>(data.d), data.x.data(), 1, 0.0f, out, 1);
}
void Sgemm(const Data& data, float* out) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(data.users),
              static_cast<int>(data.n), static_cast<int>(data.d), 1.0f, data.x.data(),
              static_cast<int>(data.d), data.y.data(), static_cast<int>(data.d), 0.0f, out,
              static_cast<int>(data.n));
}
void EigenGemv(const Data& data, float* out) {
  Eigen::Map<const RowMajor> y(data.y.data(), data.n, data.d);
  Eigen::Map<const Eigen::VectorXf> x(data.x.data(), data.d);
  Eigen::Map<Eigen::VectorXf> o(out, data.n);
  o.noalias() = y * x;
}
void EigenGemm(const Data& data, float* out) {
  Eigen::Map<const RowMajor> y(data.y.data(), data.n, data.d);
  Eigen::Map<const RowMajor> x(data.x.data(), data.users, data.d);
  Eigen::Map<RowMajor> o(out, data.users, data.n);
  o.noalias() = x * y.transpose();
}

// Registers a real-time benchmark running fn() per iteration, processing `bytes` each.
template <class Fn>
void Register(const std::string& name, size_t bytes, Fn fn) {
  benchmark::RegisterBenchmark(name.c_str(), [fn, bytes](benchmark::State& state) {
    for (auto _ : state) {
      fn();
      benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  })->UseRealTime()->Unit(benchmark::kMicrosecond);
}

// Console output as usual, plus the median real time (seconds) of every benchmark.
class MedianReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      const bool single = run.run_type == Run::RT_Iteration && run.repetitions <= 1;
      if (median || single) {
        const double unit = benchmark::GetTimeUnitMultiplier(run.time_unit);
        real_[run.run_name.function_name] = run.GetAdjustedRealTime() / unit;
        cpu_[run.run_name.function_name] = run.GetAdjustedCPUTime() / unit;
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  // Median seconds (real or CPU time of the benchmark thread) of `name`, or a negative
  // number if it did not run (filtered out).
  double Get(const std::string& name, bool cpu) const {
    const std::map<std::string, double>& m = cpu ? cpu_ : real_;
    const auto it = m.find(name);
    return it == m.end() ? -1.0 : it->second;
  }

 private:
  std::map<std::string, double> real_, cpu_;
};

int Main(int argc, char** argv) {
  // Defaults first so that flags on the command line override them.
  std::vector<char*> args = {argv[0]};
  std::string reps = "--benchmark_repetitions=5";
  std::string aggr = "--benchmark_report_aggregates_only=true";
  std::string interleave = "--benchmark_enable_random_interleaving=true";
  args.push_back(reps.data());
  args.push_back(aggr.data());
  args.push_back(interleave.data());
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  int nargs = static_cast<int>(args.size());
  benchmark::Initialize(&nargs, args.data());
  if (benchmark::ReportUnrecognizedArguments(nargs, args.data())) return 1;

  g_blas_default_threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  std::printf("kernel target: %s; OpenBLAS %s (core %s), default threads %d, compared at 1\n",
              core::KernelTargetName(), openblas_get_config(), openblas_get_corename(),
              g_blas_default_threads);

  // --- data, and agreement checks before any timing ---
  static Data small(64, 10000, 64);   // 1 x 10,000 x 64 uses user 0; 64 x 10,000 x 64 all
  static Data big(1, 100000, 128);    // 51 MB of factors: larger than the caches
  std::vector<float> tmp(small.users * small.n);
  core::DotAll(small.x.data(), small.m, tmp.data());
  CheckAgainstReference("ours DotAll", small, tmp.data(), 1);
  Sgemv(small, tmp.data());
  CheckAgainstReference("OpenBLAS sgemv", small, tmp.data(), 1);
  EigenGemv(small, tmp.data());
  CheckAgainstReference("Eigen gemv", small, tmp.data(), 1);
  core::DotBlock(small.x.data(), small.users, small.d, small.m, tmp.data(), small.n);
  CheckAgainstReference("ours DotBlock", small, tmp.data(), small.users);
  Sgemm(small, tmp.data());
  CheckAgainstReference("OpenBLAS sgemm", small, tmp.data(), small.users);
  EigenGemm(small, tmp.data());
  CheckAgainstReference("Eigen gemm", small, tmp.data(), small.users);
  std::vector<float> big_tmp(big.n);
  core::DotAll(big.x.data(), big.m, big_tmp.data());
  CheckAgainstReference("ours DotAll (big)", big, big_tmp.data(), 1);
  Sgemv(big, big_tmp.data());
  CheckAgainstReference("OpenBLAS sgemv (big)", big, big_tmp.data(), 1);
  // Fused top-10 must equal the top-10 of DotAll + bias (same float logits on this path).
  {
    std::vector<core::ScoredRow> top;
    core::ScoreTopK(small.x.data(), 0.5f, small.m, small.bias.data(),
                    core::CandidateRows::All(), 10, &top);
    core::DotAll(small.x.data(), small.m, tmp.data());
    std::vector<std::pair<float, uint32_t>> all;
    for (size_t r = 0; r < small.n; ++r) {
      all.push_back({(0.5f + small.bias[r]) + tmp[r], static_cast<uint32_t>(r)});
    }
    std::partial_sort(all.begin(), all.begin() + 10, all.end(), [](auto& a, auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    if (top.size() != 10) Die("ScoreTopK returned " + std::to_string(top.size()) + " rows");
    for (size_t i = 0; i < 10; ++i) {
      if (top[i].row != all[i].second || top[i].logit != all[i].first) {
        Die("ScoreTopK disagrees with DotAll + partial_sort at rank " + std::to_string(i));
      }
    }
  }
  // Streaming-read baseline over a buffer as large as the big matrix.
  const size_t stream_floats = big.m.memory_bytes() / sizeof(float);
  hwy::AlignedFreeUniquePtr<float[]> stream = hwy::AllocateAligned<float>(stream_floats);
  if (stream == nullptr) Die("cannot allocate the streaming buffer");
  for (size_t i = 0; i < stream_floats; ++i) stream[i] = static_cast<float>(i % 7);

  // --- benchmarks ---
  const size_t small_bytes = small.m.memory_bytes();
  const size_t big_bytes = big.m.memory_bytes();
  float* out = small.out.data();
  Register("gemv_10k_d64/ours", small_bytes,
           [out] { core::DotAll(small.x.data(), small.m, out); benchmark::DoNotOptimize(out); });
  Register("gemv_10k_d64/blas", small_bytes, [out] { Sgemv(small, out); benchmark::DoNotOptimize(out); });
  Register("gemv_10k_d64/blas_mt", small_bytes, [out] {
    openblas_set_num_threads(g_blas_default_threads);
    Sgemv(small, out);
    benchmark::DoNotOptimize(out);
    openblas_set_num_threads(1);
  });
  Register("gemv_10k_d64/eigen", small_bytes, [out] { EigenGemv(small, out); benchmark::DoNotOptimize(out); });
  Register("topk10_10k_d64/ours", small_bytes, [] {
    static std::vector<core::ScoredRow> top;
    core::ScoreTopK(small.x.data(), 0.5f, small.m, small.bias.data(),
                    core::CandidateRows::All(), 10, &top);
    benchmark::DoNotOptimize(top.data());
  });
  Register("topk10_10k_d64/unfused", small_bytes, [out] {
    // DotAll, then bias + sigmoid + partial_sort over an intermediate array: the naive path.
    static std::vector<core::ScoredRow> all(small.n);
    core::DotAll(small.x.data(), small.m, out);
    for (size_t r = 0; r < small.n; ++r) {
      const float z = 0.5f + small.bias[r] + out[r];
      all[r] = core::ScoredRow{static_cast<uint32_t>(r), z, 1.0f / (1.0f + std::exp(-z))};
    }
    std::partial_sort(all.begin(), all.begin() + 10, all.end(), [](const auto& a, const auto& b) {
      return a.logit != b.logit ? a.logit > b.logit : a.row < b.row;
    });
    benchmark::DoNotOptimize(all.data());
  });
  float* big_out = big.out.data();
  Register("gemv_100k_d128/ours", big_bytes,
           [big_out] { core::DotAll(big.x.data(), big.m, big_out); benchmark::DoNotOptimize(big_out); });
  Register("gemv_100k_d128/blas", big.n * big.d * sizeof(float),
           [big_out] { Sgemv(big, big_out); benchmark::DoNotOptimize(big_out); });
  const float* stream_p = stream.get();
  Register("gemv_100k_d128/stream_read", stream_floats * sizeof(float), [stream_p, stream_floats] {
    float s = HWY_DYNAMIC_DISPATCH(StreamSum)(stream_p, stream_floats);
    benchmark::DoNotOptimize(s);
  });
  Register("gemm_64x10k_d64/ours", small_bytes, [out] {
    core::DotBlock(small.x.data(), small.users, small.d, small.m, out, small.n);
    benchmark::DoNotOptimize(out);
  });
  Register("gemm_64x10k_d64/blas", small_bytes, [out] { Sgemm(small, out); benchmark::DoNotOptimize(out); });
  Register("gemm_64x10k_d64/blas_mt", small_bytes, [out] {
    openblas_set_num_threads(g_blas_default_threads);
    Sgemm(small, out);
    benchmark::DoNotOptimize(out);
    openblas_set_num_threads(1);
  });
  Register("gemm_64x10k_d64/eigen", small_bytes, [out] { EigenGemm(small, out); benchmark::DoNotOptimize(out); });

  MedianReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  // --- summary from the medians ---
  // Two tables: real (wall) time, and CPU time of the benchmark thread. Every compared
  // case is single-threaded, so on this shared 2-vCPU VM the CPU-time table removes the
  // time a case spent descheduled (other builds running); both are printed.
  const auto us = [](double s) { return s * 1e6; };
  const auto row = [](const char* name, double ours, double base, const char* unit,
                      double ratio, bool lower_is_better, double target) {
    if (ours < 0 || base < 0) {
      std::printf("%-38s %s\n", name, "(not run)");
      return;
    }
    const bool pass = lower_is_better ? ratio <= target : ratio >= target;
    std::printf("%-38s %9.1f %-4s %9.1f %-4s %7.3f %2s %5.2f  %s\n", name, ours, unit, base,
                unit, ratio, lower_is_better ? "<=" : ">=", target, pass ? "PASS" : "FAIL");
  };
  const MedianReporter& r = reporter;
  for (const bool cpu : {false, true}) {
    std::printf("\nSummary: medians of %s\n", cpu ? "CPU time" : "real time");
    std::printf("%-38s %14s %14s %7s %8s  %s\n", "case", "ours", "baseline", "ratio", "target",
                "result");
    {
      const double o = r.Get("gemv_10k_d64/ours", cpu), b = r.Get("gemv_10k_d64/blas", cpu);
      row("1x10000x64 time / sgemv(1T) time", us(o), us(b), "us", o / b, true, 1.0);
    }
    {
      const double o = r.Get("gemv_100k_d128/ours", cpu);
      const double s = r.Get("gemv_100k_d128/stream_read", cpu);
      const double o_gbs = big_bytes / o * 1e-9, s_gbs = stream_floats * 4.0 / s * 1e-9;
      row("1x100000x128 GB/s / stream-read GB/s", o_gbs, s_gbs, "GB/s", o_gbs / s_gbs, false,
          0.85);
    }
    {
      const double o = r.Get("gemm_64x10k_d64/ours", cpu), b = r.Get("gemm_64x10k_d64/blas", cpu);
      row("64x10000x64 throughput / sgemm(1T)", us(o), us(b), "us", b / o, false, 0.8);
    }
    {
      const double o = r.Get("topk10_10k_d64/ours", cpu), b = r.Get("gemv_10k_d64/ours", cpu);
      row("fused sigmoid+top10 / bare dots", us(o), us(b), "us", o / b, true, 1.2);
    }
  }
  std::printf("\nFor reference (medians, real time):\n");
  for (const char* name :
       {"gemv_10k_d64/blas_mt", "gemv_10k_d64/eigen", "topk10_10k_d64/unfused",
        "gemv_100k_d128/blas", "gemm_64x10k_d64/blas_mt", "gemm_64x10k_d64/eigen"}) {
    const double t = r.Get(name, false);
    if (t >= 0) std::printf("  %-28s %10.1f us\n", name, us(t));
  }
  const double gemm_o = r.Get("gemm_64x10k_d64/ours", true);
  if (gemm_o > 0) {
    std::printf("  gemm ours: %.1f GFLOP/s (CPU time)\n", 2.0 * 64 * 10000 * 64 / gemm_o * 1e-9);
  }
  return 0;
}

}  // namespace
}  // namespace coupond::bench

int main(int argc, char** argv) { return coupond::bench::Main(argc, argv); }
#endif  // HWY_ONCE
