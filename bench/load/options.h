// Everything a load_bench run is told: one field per command-line flag of load_bench (see
// bench/load_bench_main.cc for what each means). Values are as given; Run() applies the
// lower bounds (at least 1 connection, stream, repetition, ...).

#ifndef COUPOND_BENCH_LOAD_OPTIONS_H_
#define COUPOND_BENCH_LOAD_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace coupond::load_bench {

struct LoadBenchOptions {
  // The request stream: the Tianchi O2O test CSV (empty: DefaultDataPath()).
  std::string data;

  // The server: started from `coupond` (with `server_env` and `server_flags`), unless
  // `server` names a running one.
  std::string coupond;
  std::string server_env;    // comma-separated NAME=VALUE
  std::string server_flags;  // space-separated
  std::string server_cpus;   // comma-separated CPU indices; empty: no pinning
  std::string client_cpus;   // the same for this process
  std::string server;        // host:port of a running coupond; empty: start one
  absl::Duration poll_interval = absl::Milliseconds(100);

  // The store and the work directory.
  std::string store;
  std::string work_dir;
  bool keep_work_dir = false;

  // The load.
  int connections = 4;
  int streams = 16;
  int client_threads = 2;
  int candidates = 1000;
  std::string candidate_source = "campaign";  // campaign or list
  int campaigns = 64;
  int top_k = 0;
  int dimension = 64;
  uint64_t seed = 42;
  int reps = 3;
  absl::Duration warmup = absl::Seconds(1);
  absl::Duration duration = absl::Seconds(5);
  double open_fraction = 0.5;
  int max_in_flight = 4096;
  absl::Duration timeout = absl::Seconds(10);
  std::vector<std::string> phases = {"noop", "score", "open", "noop_open", "reload"};

  // The reload phase.
  absl::Duration reload_interval = absl::Seconds(1);
  bool stage_versions = true;
  bool publisher_idle = true;

  // Before and after the load.
  bool breakdown = true;
  bool h2load = false;

  bool WantsPhase(const char* phase) const {
    for (const std::string& p : phases) {
      if (p == phase) return true;
    }
    return false;
  }
};

}  // namespace coupond::load_bench

#endif  // COUPOND_BENCH_LOAD_OPTIONS_H_
