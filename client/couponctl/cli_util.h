#ifndef COUPOND_CLIENT_COUPONCTL_CLI_UTIL_H_
#define COUPOND_CLIENT_COUPONCTL_CLI_UTIL_H_

// Exit-status helpers shared by couponctl's command files: 1 for a failure (the status is
// printed on stderr), 2 for a usage error.

#include <cstdio>

#include "absl/status/status.h"

namespace coupond::couponctl {

inline int Fail(const absl::Status& status) {
  std::fprintf(stderr, "couponctl: %s\n", status.ToString().c_str());
  return 1;
}

inline int Usage(const char* message) {
  std::fprintf(stderr, "couponctl: %s (see --help)\n", message);
  return 2;
}

}  // namespace coupond::couponctl

#endif  // COUPOND_CLIENT_COUPONCTL_CLI_UTIL_H_
