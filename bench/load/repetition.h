// The load phases of one run, repeated: noop and score closed loop, open and noop_open at a
// fraction of the repetition's Score rate, noop_half at that fraction of the no-op's own
// rate, and reload (the open loop while a Reloader publishes versions). Each phase's row is
// printed as it completes.

#ifndef COUPOND_BENCH_LOAD_REPETITION_H_
#define COUPOND_BENCH_LOAD_REPETITION_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/load/load_generator.h"
#include "bench/load/options.h"
#include "bench/load/requests.h"
#include "bench/load/server_process.h"
#include "client/coupond_client.h"
#include "core/model.h"
#include "storage/model_store.h"

namespace coupond::load_bench {

// The results of one repetition; a phase not run is nullopt.
struct RepResult {
  std::optional<PhaseResult> noop, score, open, noop_open, reload, noop_half;
  double open_rate = 0;
  int reloads_published = 0, reloads_observed = 0;
  double publish_ms = 0;
};

// What the phases run against.
struct LoadTarget {
  LoadGenerator* generator = nullptr;
  const RequestSet* requests = nullptr;
  const ServerProcess* server = nullptr;   // null: started elsewhere (no server CPU figures)
  storage::ModelStore* store = nullptr;    // null: no reload phase
  const core::ModelData* model = nullptr;  // what the reload phase publishes
  const client::CoupondClient* control = nullptr;  // the reload phase's version watcher
};

// Runs options.reps repetitions of the phases in options.phases (options with Run()'s
// lower bounds applied), printing the table header, one line per repetition and one row per
// phase; adds every phase's failed calls to *total_errors. Fails (worded for
// "load_bench: <message>") when the reload phase cannot stage or publish a version.
absl::StatusOr<std::vector<RepResult>> RunRepetitions(const LoadBenchOptions& options,
                                                      const LoadTarget& target,
                                                      uint64_t* total_errors);

}  // namespace coupond::load_bench

#endif  // COUPOND_BENCH_LOAD_REPETITION_H_
