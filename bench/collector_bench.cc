// Outcome-report throughput of the collector's store (collector/collector_store.h) with the
// WAL synced before each acknowledgement, as collectord runs by default: T threads each
// report outcomes as fast as the store answers, with group commit (concurrent reports share
// one batch and one fsync) and, as the named baseline in the same run, without it (one
// batch and one fsync per report). A fresh database per measurement, in --dir (default:
// under $TMPDIR, i.e. the disk CI and this machine write to).
//
// usage: collector_bench [--threads=1,4,16,64] [--seconds=2] [--reps=3] [--dir=DIR]
// Prints, per thread count, the median reports/s of each mode over the repetitions, the
// ratio, and how many reports each fsync carried.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "collector/collector_store.h"

ABSL_FLAG(std::string, threads, "1,4,16,64", "Concurrent reporters, comma-separated.");
ABSL_FLAG(double, seconds, 2.0, "Measured time per mode and thread count.");
ABSL_FLAG(int, reps, 3, "Repetitions; medians are reported.");
ABSL_FLAG(std::string, dir, "", "Where the databases go (default: a new directory in $TMPDIR).");

namespace {

using Clock = std::chrono::steady_clock;

struct Result {
  double reports_per_second = 0;
  double reports_per_commit = 0;
};

// One measurement: `threads` reporters for `seconds` against a fresh store.
Result Measure(const std::string& path, bool group_commit, int threads, double seconds) {
  coupond::collector::CollectorOptions options;
  options.sync = true;
  options.group_commit = group_commit;
  auto store = coupond::collector::CollectorStore::Open(path, options);
  if (!store.ok()) {
    std::fprintf(stderr, "collector_bench: %s\n", store.status().ToString().c_str());
    std::exit(1);
  }
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reports{0};
  std::vector<std::thread> workers;
  const Clock::time_point start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        coupond::v1::ReportOutcomeRequest outcome;
        outcome.set_decision_id(absl::StrCat("decision-", t, "-", i));
        outcome.set_redeemed(i % 7 == 0);
        outcome.set_order_value(i % 7 == 0 ? 42.5 : 0.0);
        if (!(*store)->RecordOutcome(outcome, 1700000000).ok()) {
          std::fprintf(stderr, "collector_bench: a report failed\n");
          std::exit(1);
        }
        reports.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (std::thread& w : workers) w.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  Result r;
  r.reports_per_second = static_cast<double>(reports.load()) / elapsed;
  r.reports_per_commit =
      static_cast<double>(reports.load()) / static_cast<double>(std::max<uint64_t>((*store)->commits(), 1));
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::string dir = absl::GetFlag(FLAGS_dir);
  bool remove = false;
  if (dir.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "collector-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::fprintf(stderr, "collector_bench: cannot create a directory\n");
      return 1;
    }
    dir = tmpl;
    remove = true;
  }
  const double seconds = absl::GetFlag(FLAGS_seconds);
  const int reps = std::max(1, absl::GetFlag(FLAGS_reps));
  std::printf("collector_bench: RecordOutcome with a synced WAL, %d repetitions of %.1f s, "
              "databases in %s (%u hardware threads)\n",
              reps, seconds, dir.c_str(), std::thread::hardware_concurrency());
  std::printf("%8s %16s %16s %8s %18s\n", "threads", "group commit/s", "one fsync each/s",
              "ratio", "reports per fsync");
  int run = 0;
  for (absl::string_view t : absl::StrSplit(absl::GetFlag(FLAGS_threads), ',')) {
    const int threads = std::max(1, std::atoi(std::string(t).c_str()));
    std::vector<double> grouped, single, per_commit;
    for (int r = 0; r < reps; ++r) {
      // Alternate the order so a drift of the machine does not favour one mode.
      for (const bool group_commit : r % 2 == 0 ? std::vector<bool>{true, false}
                                                 : std::vector<bool>{false, true}) {
        const std::string path = absl::StrCat(dir, "/db-", run++);
        const Result result = Measure(path, group_commit, threads, seconds);
        (group_commit ? grouped : single).push_back(result.reports_per_second);
        if (group_commit) per_commit.push_back(result.reports_per_commit);
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
      }
    }
    std::printf("%8d %16.0f %16.0f %7.2fx %18.1f\n", threads, Median(grouped), Median(single),
                Median(grouped) / Median(single), Median(per_commit));
    std::fflush(stdout);
  }
  if (remove) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  return 0;
}
