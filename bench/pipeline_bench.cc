// The whole offline pipeline on the real dunnhumby data (ingest + split + profiles + grid
// selection + final training + evaluation + materialisation; no publish), timed end to end,
// beside named baselines measured in the same run on the same training period:
//   - the logistic-regression baseline's fit (pipeline/baselines.h: smoothed rates + Newton),
//     the cheapest model the pipeline evaluates;
//   - LMF training throughput at d = 32 (samples/s, 1 and 2 threads) on the features the
//     pipeline trains on (ids, campaign type, demographics, product lists replaced by the
//     neighbour feature), timed over epochs 2..3 from the progress callback
//     (initialisation excluded, shuffles included).
//
// usage: pipeline_bench [--data=DIR] [--reps=3] [--threads=2]   (--help lists the flags)
//   DIR defaults to $COUPOND_SHARED_DATA/dunnhumby_coupons, else ../shared/data/...
// Each figure is the median of --reps runs. Exits 1 if the data are missing, a run fails,
// or the trained model does not beat the baselines' AUC (a benchmark checks its output).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "learn/lmf_trainer.h"
#include "pipeline/baselines.h"
#include "pipeline/dunnhumby.h"
#include "pipeline/ingest.h"
#include "pipeline/neighbour_features.h"
#include "pipeline/report.h"
#include "pipeline/train_job.h"

ABSL_FLAG(std::string, data, "",
          "Directory of the dunnhumby coupon tables. Default: $COUPOND_SHARED_DATA/"
          "dunnhumby_coupons, else ../shared/data/dunnhumby_coupons from the working directory.");
ABSL_FLAG(int, reps, 3, "Repetitions of each measurement; medians are reported (at least 1).");
ABSL_FLAG(int, threads, 2,
          "Threads of the pipeline and of the second LMF throughput figure (at least 1).");

namespace {

using Clock = std::chrono::steady_clock;
using namespace coupond;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "the whole dunnhumby pipeline timed end to end, beside the logistic-regression baseline's "
      "fit and LMF training throughput at d = 32 on the same data.");
  absl::ParseCommandLine(argc, argv);
  const char* env = std::getenv("COUPOND_SHARED_DATA");
  const std::string data_dir =
      absl::GetFlag(FLAGS_data).empty()
          ? std::string(env != nullptr ? env : "../shared/data") + "/dunnhumby_coupons"
          : absl::GetFlag(FLAGS_data);
  const int reps = std::max(1, absl::GetFlag(FLAGS_reps));
  const int threads = std::max(1, absl::GetFlag(FLAGS_threads));

  // 1. The whole pipeline, as `couponctl pipeline --dunnhumby` runs it (minus publish).
  pipeline::PipelineOptions o;
  o.source = pipeline::PipelineSource::kDunnhumby;
  o.dunnhumby_dir = data_dir;
  o.threads = threads;
  std::vector<double> total, load, select, train, eval;
  pipeline::PipelineResult last;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    auto res = pipeline::RunPipeline(o);
    const auto t1 = Clock::now();
    if (!res.ok()) {
      std::fprintf(stderr, "pipeline: %s\n", res.status().ToString().c_str());
      return 1;
    }
    total.push_back(Seconds(t0, t1));
    load.push_back(res->load_seconds);
    select.push_back(res->select_seconds);
    train.push_back(res->train_seconds);
    eval.push_back(res->evaluate_seconds);
    last = *std::move(res);
  }

  // 2. Baseline: the logistic-regression baseline's fit on the same training period.
  auto loaded = pipeline::LoadDunnhumby(data_dir, o.dunnhumby);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().ToString().c_str());
    return 1;
  }
  const learn::TrainingData& data = loaded->data;
  auto split = pipeline::SplitByCampaignStart(data, o.test_fraction);
  if (!split.ok()) return 1;
  // The features the pipeline trains on: product lists -> neighbour features (step 2b).
  learn::TrainingData train_data = data;
  pipeline::PipelineResult counts;
  pipeline::ReplaceListsByNeighbours(&train_data, split->train, o.neighbour_list_prefixes,
                                     &counts);
  std::vector<double> fit;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    auto b = pipeline::FitBaselines(data, split->train);
    fit.push_back(Seconds(t0, Clock::now()));
    if (!b.ok()) return 1;
  }

  // 3. LMF throughput at d = 32 on the training period, 1 and `threads` threads.
  auto throughput = [&](int t) {
    std::vector<double> rates;
    for (int r = 0; r < reps; ++r) {
      learn::LmfTrainerOptions lo = pipeline::PipelineOptions::DefaultTrainerOptions();
      lo.dimension = 32;
      lo.epochs = 3;
      lo.threads = t;
      absl::Duration after_first;
      absl::Duration end;
      auto res = learn::TrainLmf(train_data, split->train, {}, lo, [&](const learn::LmfEpochStats& s) {
        if (s.epoch == 1) after_first = s.elapsed;
        end = s.elapsed;
      });
      if (!res.ok()) return -1.0;
      rates.push_back(2.0 * static_cast<double>(split->train.size()) /
                      absl::ToDoubleSeconds(end - after_first));
    }
    return Median(rates);
  };
  const double tp1 = throughput(1);
  const double tpn = throughput(threads);

  std::printf("dunnhumby pipeline, %d thread(s), median of %d\n", threads, reps);
  std::printf("  whole pipeline (load+split+profiles+select %zu grid points+train+evaluate): %.2f s\n",
              last.grid.size(), Median(total));
  std::printf("    load+split %.2f s, profiles+selection %.2f s, final training %.2f s, "
              "evaluation %.2f s\n",
              Median(load), Median(select), Median(train), Median(eval));
  std::printf("  baseline: logistic-regression baseline fit (606,078 examples): %.3f s\n", Median(fit));
  std::printf("  LMF training throughput, d = 32: 1 thread %.0f samples/s, %d threads %.0f samples/s\n",
              tp1, threads, tpn);
  std::printf("  test period (campaigns 18-25):\n%s", pipeline::SummaryLines(last).c_str());
  for (size_t k = 1; k < last.evaluations.size(); ++k) {
    if (last.evaluations[0].auc <= last.evaluations[k].auc) {
      std::fprintf(stderr, "the model does not beat %s\n", last.evaluations[k].name.c_str());
      return 1;
    }
  }
  if (tp1 <= 0 || tpn <= 0) return 1;
  return 0;
}
