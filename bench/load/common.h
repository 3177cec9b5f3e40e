// What every part of load_bench shares: the clock, the two RPC methods it calls, the
// machine's load average, a process's CPU time, medians, and how a failed step's error is
// worded for the user.

#ifndef COUPOND_BENCH_LOAD_COMMON_H_
#define COUPOND_BENCH_LOAD_COMMON_H_

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace coupond::load_bench {

using Clock = std::chrono::steady_clock;

inline constexpr char kNoopMethod[] = "/grpc.health.v1.Health/Check";
inline constexpr char kScoreMethod[] = "/coupond.v1.CouponScoring/Score";

// The first three fields of /proc/loadavg ("unknown" when unreadable).
std::string LoadAverage();

// CPU seconds (user + system) used so far by process `pid` (0: this process), from
// /proc/<pid>/stat; NaN when unreadable. Resolution: one clock tick (10 ms).
double ProcessCpuSeconds(pid_t pid);

// The median (the mean of the middle two for an even count); NaN when empty.
double Median(std::vector<double> v);

// `status` with `context` and its whole text (code included) as the message: what the
// program prints after "load_bench: " when a step fails.
absl::Status Annotate(const absl::Status& status, absl::string_view context = "");

}  // namespace coupond::load_bench

#endif  // COUPOND_BENCH_LOAD_COMMON_H_
