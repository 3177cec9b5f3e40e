#include "server/memory_check.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace coupond::server {
namespace {

constexpr uint64_t kNoLimit = UINT64_MAX;
// cgroup v1 writes "no limit" as LONG_MAX rounded down to a page; anything this large is
// not a limit anyone set.
constexpr uint64_t kUnlimitedThreshold = uint64_t{1} << 60;

std::string MiB(uint64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / 1048576.0);
}

// The whole file; NotFound when it cannot be read (absent on this system).
absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

uint64_t SubtractMargin(uint64_t bytes, uint64_t margin) {
  return bytes > margin ? bytes - margin : 0;
}

}  // namespace

absl::StatusOr<uint64_t> ParseCgroupMemoryLimit(const std::string& text) {
  const absl::string_view value = absl::StripAsciiWhitespace(text);
  if (value == "max") return kNoLimit;
  uint64_t bytes = 0;
  if (!absl::SimpleAtoi(value, &bytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cgroup memory limit: '", value.substr(0, 40), "' is not a byte count"));
  }
  return bytes >= kUnlimitedThreshold ? kNoLimit : bytes;
}

absl::StatusOr<uint64_t> ParseMemAvailable(const std::string& text) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, "MemAvailable:")) continue;
    line = absl::StripAsciiWhitespace(line);
    // "12345 kB": the kernel always reports kibibytes here.
    if (!absl::ConsumeSuffix(&line, "kB")) {
      return absl::InvalidArgumentError("meminfo: MemAvailable is not in kB");
    }
    uint64_t kib = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kib) || kib > (kNoLimit >> 10)) {
      return absl::InvalidArgumentError("meminfo: MemAvailable is not a number");
    }
    return kib << 10;
  }
  return absl::NotFoundError("meminfo: no MemAvailable line (kernel older than 3.14?)");
}

MemoryBudget ResolveMemoryBudget(const MemoryCheckOptions& options, uint64_t held_bytes) {
  MemoryBudget budget;
  if (options.limit_bytes != 0) {
    budget.limit_bytes = options.limit_bytes;
    budget.source = "--memory_limit_bytes";
    return budget;
  }
  const std::string margin = MiB(options.safety_margin_bytes);
  // The cgroup's limit (v2 first; v1 where v2 is not mounted).
  for (const std::string* path : {&options.cgroup_v2_memory_max, &options.cgroup_v1_memory_limit}) {
    absl::StatusOr<std::string> text = ReadSmallFile(*path);
    if (!text.ok()) continue;
    absl::StatusOr<uint64_t> limit = ParseCgroupMemoryLimit(*text);
    if (!limit.ok() || *limit == kNoLimit) break;
    budget.limit_bytes = SubtractMargin(*limit, options.safety_margin_bytes);
    budget.source = absl::StrCat("cgroup limit ", MiB(*limit), " (", *path, ") - margin ", margin);
    break;
  }
  // What the machine has free now, plus what the served snapshot already holds.
  if (absl::StatusOr<std::string> text = ReadSmallFile(options.meminfo); text.ok()) {
    if (absl::StatusOr<uint64_t> available = ParseMemAvailable(*text); available.ok()) {
      const uint64_t limit = SubtractMargin(*available + held_bytes, options.safety_margin_bytes);
      if (limit < budget.limit_bytes) {
        budget.limit_bytes = limit;
        budget.source = absl::StrCat("MemAvailable ", MiB(*available), " + served snapshot ",
                                     MiB(held_bytes), " - margin ", margin);
      }
    }
  }
  if (budget.limit_bytes == kNoLimit) {
    budget.source = absl::StrCat("unknown (no cgroup limit, ", options.meminfo,
                                 " unreadable): memory check off");
  }
  return budget;
}

absl::Status CheckNextSnapshotFits(uint64_t version, uint64_t next_bytes, uint64_t held_bytes,
                                   const MemoryBudget& budget) {
  if (budget.limit_bytes == kNoLimit) return absl::OkStatus();
  if (next_bytes <= budget.limit_bytes && held_bytes <= budget.limit_bytes - next_bytes) {
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("model version ", version, " needs about ", MiB(next_bytes), " (", next_bytes,
                   " bytes, estimated from its manifest) beside the served snapshot's ",
                   MiB(held_bytes), ", over the memory limit of ", MiB(budget.limit_bytes), " (",
                   budget.limit_bytes, " bytes; ", budget.source, ")"));
}

}  // namespace coupond::server
