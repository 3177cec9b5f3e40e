// What load_bench prints about the load: the table of phases (one row per phase, latency in
// microseconds), the in-process handler breakdown, the medians over repetitions and the
// targets. bench/RESULTS-load.md quotes this format.

#ifndef COUPOND_BENCH_LOAD_REPORT_H_
#define COUPOND_BENCH_LOAD_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "bench/load/handler_cost.h"
#include "bench/load/repetition.h"

namespace coupond::load_bench {

// `v` with `decimals` digits after the point ("%.*f"), or "-" when NaN.
std::string Cell(double v, int decimals);

// The table's header and one row.
void PrintHeader();
void PrintRow(const std::string& name, double qps, double p50, double p99, double p999,
              double errors, double server_cpu_us, double client_cpu_us, const std::string& note);

// The "handler in process" lines of the breakdown.
void PrintHandlerCost(const HandlerCost& cost);

// The table of each phase's medians over the repetitions (errors: their total).
void PrintMedians(std::vector<RepResult>& results, int reps);

// The targets, each the median over repetitions of each repetition's ratio, and the failed
// calls (`total_errors`) against 0. `open_fraction` is --open_fraction.
void PrintTargets(std::vector<RepResult>& results, double open_fraction, uint64_t total_errors);

}  // namespace coupond::load_bench

#endif  // COUPOND_BENCH_LOAD_REPORT_H_
