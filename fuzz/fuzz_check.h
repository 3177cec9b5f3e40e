#ifndef COUPOND_FUZZ_FUZZ_CHECK_H_
#define COUPOND_FUZZ_FUZZ_CHECK_H_

// Contract checks inside fuzz targets. A violated contract aborts, which libFuzzer reports
// as a crash and saves the input: a wrong answer is a finding just like a memory error.

#include <cstdio>
#include <cstdlib>
#include <initializer_list>

#include "absl/status/status.h"

namespace coupond::fuzz {

[[noreturn]] inline void Fail(const char* what, const absl::Status& status = absl::OkStatus()) {
  std::fprintf(stderr, "FUZZ CHECK FAILED: %s %s\n", what,
               status.ok() ? "" : status.ToString().c_str());
  std::abort();
}

// With COUPOND_FUZZ_TRACE set in the environment, prints each stage's status: for seeing
// how far an input gets when running a target on single files.
inline void Trace(const char* stage, const absl::Status& status) {
  static const bool enabled = std::getenv("COUPOND_FUZZ_TRACE") != nullptr;
  if (enabled) std::fprintf(stderr, "[fuzz] %s: %s\n", stage, status.ToString().c_str());
}

inline void Check(bool condition, const char* what) {
  if (!condition) Fail(what);
}

// The clean failures `status` may carry (OK is always allowed). Anything else (Internal,
// Unknown, an RocksDB error leaking through, ...) or an error without a message is a
// finding: callers are promised a clean, explained status.
inline void CheckStatusIn(const absl::Status& status, std::initializer_list<absl::StatusCode> codes,
                          const char* where) {
  Trace(where, status);
  if (status.ok()) return;
  if (status.message().empty()) Fail(where, status);
  for (absl::StatusCode code : codes) {
    if (status.code() == code) return;
  }
  Fail(where, status);
}

}  // namespace coupond::fuzz

#endif  // COUPOND_FUZZ_FUZZ_CHECK_H_
