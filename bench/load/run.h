// load_bench's run: the Tianchi O2O request stream replayed against a real coupond process
// (started here, or --server), phase by phase (see bench/load_bench_main.cc and
// bench/RESULTS-load.md).

#ifndef COUPOND_BENCH_LOAD_RUN_H_
#define COUPOND_BENCH_LOAD_RUN_H_

#include "bench/load/options.h"

namespace coupond::load_bench {

// Runs the whole load test and prints its report. Returns the exit status: 0 when the run
// completed without failed calls, or was skipped because the data are absent (targets are
// reported, not enforced); 1 on any error or failed call.
int Run(const LoadBenchOptions& options);

}  // namespace coupond::load_bench

#endif  // COUPOND_BENCH_LOAD_RUN_H_
