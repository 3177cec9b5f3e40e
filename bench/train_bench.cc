// LMF training throughput (samples per second, d = 32): serial (one shard, the default), and
// 4 shards on 1 and 2 threads (the same model either way: lmf_trainer.h), beside a named
// baseline measured in the same run on the same examples: one forward-only scoring pass
// (materialised factors, dot + sigmoid per example, one thread), i.e. the cheapest thing
// that touches every example once. Training does that forward pass plus lazy-Adam updates of
// every touched row, so the ratio says what the learning costs on top of reading the data.
//
// usage: train_bench [--examples=1000000] [--users=100000] [--coupons=2000] [--reps=5]
//        (--help lists the flags)
//
// Each figure is the median of --reps repetitions. A training repetition runs 3 epochs and
// times epochs 2..3 from the progress callback (so parameter initialisation is excluded; the
// per-epoch shuffle is included). Exits 1 if training produced a non-finite loss or the
// trained model ranks no better than chance on its own training examples.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "benchmark/benchmark.h"
#include "learn/lmf_synthetic.h"
#include "learn/lmf_trainer.h"
#include "learn/metrics.h"

ABSL_FLAG(size_t, examples, 1000000, "Synthetic training examples.");
ABSL_FLAG(uint32_t, users, 100000, "Users of the synthetic training set.");
ABSL_FLAG(uint32_t, coupons, 2000, "Coupons of the synthetic training set.");
ABSL_FLAG(int, reps, 5, "Repetitions of each measurement; medians are reported (at least 1).");

namespace {

using coupond::learn::LmfEpochStats;
using coupond::learn::LmfTrainerOptions;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "LMF training throughput (d = 32; 1 shard; 4 shards on 1 and 2 threads) beside a forward-only scoring pass over "
      "the same synthetic examples.");
  absl::ParseCommandLine(argc, argv);
  coupond::learn::SyntheticTrainingOptions so;
  so.num_examples = absl::GetFlag(FLAGS_examples);
  so.num_users = absl::GetFlag(FLAGS_users);
  so.num_coupons = absl::GetFlag(FLAGS_coupons);
  so.dimension = 32;
  so.user_segments = 50;
  so.coupon_categories = 50;
  so.coupon_brands = 200;
  const int reps = std::max(1, absl::GetFlag(FLAGS_reps));
  auto set = coupond::learn::GenerateSyntheticTrainingSet(so);
  if (!set.ok()) {
    std::fprintf(stderr, "%s\n", set.status().ToString().c_str());
    return 1;
  }
  const coupond::learn::TrainingData& data = set->data;
  const size_t n = data.examples.size();
  std::vector<uint32_t> all(n);
  std::iota(all.begin(), all.end(), 0u);

  coupond::learn::LmfTrainerOptions o;
  o.dimension = 32;
  o.epochs = 3;
  o.learning_rate = 0.002f;
  std::printf(
      "examples=%zu users=%u coupons=%u d=%u, 5 parameter rows per example (user id + segment,"
      " coupon id + category + brand)\n",
      n, so.num_users, so.num_coupons, o.dimension);

  // Train once to get a model for the baseline (and to check training worked).
  o.threads = 1;
  auto trained = coupond::learn::TrainLmf(data, all, {}, o);
  if (!trained.ok()) {
    std::fprintf(stderr, "%s\n", trained.status().ToString().c_str());
    return 1;
  }
  auto model = coupond::learn::MaterializeLmfModel(trained->model, data);
  if (!model.ok()) return 1;
  const size_t d = model->dimension;

  // Baseline: forward-only scoring pass over the same examples.
  std::vector<double> base_rate;
  std::vector<float> p(n);
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < n; ++i) {
      const auto& e = data.examples[i];
      const float* x = model->user_factors.data() + size_t{e.user} * d;
      const float* y = model->coupon_factors.data() + size_t{e.coupon} * d;
      float acc[8] = {};
      for (size_t k = 0; k < d; k += 8) {
        for (size_t j = 0; j < 8; ++j) acc[j] += x[k + j] * y[k + j];
      }
      float z = static_cast<float>(model->global_bias) + model->user_bias[e.user] +
                model->coupon_bias[e.coupon];
      for (float a : acc) z += a;
      p[i] = 1.0f / (1.0f + std::exp(-z));
    }
    benchmark::DoNotOptimize(p.data());
    benchmark::ClobberMemory();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    base_rate.push_back(static_cast<double>(n) / s);
  }
  std::vector<float> labels(n);
  for (size_t i = 0; i < n; ++i) labels[i] = data.examples[i].label;
  auto auc = coupond::learn::RocAuc(p, labels);
  const double base = Median(base_rate);
  std::printf("%-40s %12.0f samples/s  (1.00x)\n", "baseline: forward-only scoring, 1 thread",
              base);

  for (auto [shards, threads] : {std::pair{1, 1}, std::pair{4, 1}, std::pair{4, 2}}) {
    o.shards = shards;
    o.threads = threads;
    std::vector<double> rates;
    for (int r = 0; r < reps; ++r) {
      std::vector<double> elapsed;
      auto res = coupond::learn::TrainLmf(data, all, {}, o, [&](const coupond::learn::LmfEpochStats& s) {
        elapsed.push_back(absl::ToDoubleSeconds(s.elapsed));
      });
      if (!res.ok() || !std::isfinite(res->history.back().train_log_loss)) {
        std::fprintf(stderr, "training failed\n");
        return 1;
      }
      rates.push_back(2.0 * static_cast<double>(n) / (elapsed[2] - elapsed[0]));
    }
    const double rate = Median(rates);
    std::printf("train (Adam, lazy rows), %d shard%s, %d thread%s %12.0f samples/s  (%.2fx baseline)\n",
                shards, shards == 1 ? " " : "s", threads, threads == 1 ? " " : "s", rate,
                rate / base);
  }
  std::printf("check: train AUC after 3 epochs (1 thread) = %.4f\n", auc.ok() ? *auc : 0.0);
  return auc.ok() && *auc > 0.6 ? 0 : 1;
}
