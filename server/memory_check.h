#ifndef COUPOND_SERVER_MEMORY_CHECK_H_
#define COUPOND_SERVER_MEMORY_CHECK_H_

// The check ModelManager makes before loading a model version: while the new snapshot is
// built, the served one stays in memory (requests keep using it until the swap), so both
// must fit at once. A version that would not fit is refused, with a log line and a status
// the operator can read (Admin.GetServerStatus), and the served version keeps serving:
// better an old model than a process killed by the kernel's OOM killer mid-load.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace coupond::server {

struct MemoryCheckOptions {
  // Bytes that the served snapshot and the one being loaded may take together. Used as
  // given (no margin subtracted). 0 (default): derived from the system at each check:
  //  * the cgroup's memory limit (cgroup v2 memory.max, or v1 memory.limit_in_bytes) when
  //    one is set, minus safety_margin_bytes;
  //  * the memory available now (MemAvailable in /proc/meminfo) plus what the served
  //    snapshot already holds, minus safety_margin_bytes;
  // whichever is smaller. When neither can be read the check is off (and says so).
  uint64_t limit_bytes = 0;
  // Left for everything else the process needs (gRPC buffers, RocksDB's reads while a
  // version loads, the load's transient copy of the coupon factors, request handling)
  // when the limit comes from the system. Default 256 MiB.
  uint64_t safety_margin_bytes = uint64_t{256} << 20;
  // Where the system's figures are read; tests point them at files of their own.
  std::string cgroup_v2_memory_max = "/sys/fs/cgroup/memory.max";
  std::string cgroup_v1_memory_limit = "/sys/fs/cgroup/memory/memory.limit_in_bytes";
  std::string meminfo = "/proc/meminfo";
};

struct MemoryBudget {
  // What the served snapshot and the next one may take together; UINT64_MAX when unknown
  // (the check is then off).
  uint64_t limit_bytes = UINT64_MAX;
  // Where the figure came from, for logs and status, e.g. "--memory_limit_bytes" or
  // "cgroup memory.max 2048.0 MiB - margin 256.0 MiB".
  std::string source;
};

// The budget as of now. `held_bytes` is what the served snapshot takes (0 without one):
// MemAvailable does not count it, so it is added back. Never fails: an unreadable or
// unparsable system file is skipped, and the budget says what it was based on.
MemoryBudget ResolveMemoryBudget(const MemoryCheckOptions& options, uint64_t held_bytes);

// OK when a version of `next_bytes` fits beside `held_bytes` within the budget;
// ResourceExhausted otherwise, with a message that gives the version and all three figures.
absl::Status CheckNextSnapshotFits(uint64_t version, uint64_t next_bytes, uint64_t held_bytes,
                                   const MemoryBudget& budget);

// Parsers of the system files' contents (exposed for tests).
// memory.max / memory.limit_in_bytes: a byte count, or "max" for no limit, which is
// returned as UINT64_MAX, as are values of 2^60 and above (cgroup v1 reports "unlimited"
// as a huge page-aligned number). InvalidArgument for anything else.
absl::StatusOr<uint64_t> ParseCgroupMemoryLimit(const std::string& text);
// /proc/meminfo: the MemAvailable line, in bytes.
absl::StatusOr<uint64_t> ParseMemAvailable(const std::string& text);

}  // namespace coupond::server

#endif  // COUPOND_SERVER_MEMORY_CHECK_H_
