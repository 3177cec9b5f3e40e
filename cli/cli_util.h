#ifndef COUPOND_CLI_CLI_UTIL_H_
#define COUPOND_CLI_CLI_UTIL_H_

// Helpers shared by couponctl's command files: exit statuses (1 for a failure, the status
// printed on stderr; 2 for a usage error) and the user id keyer read from its file.

#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/user_key.h"
#include "edge/secret_files.h"

namespace coupond::couponctl {

inline int Fail(const absl::Status& status) {
  std::fprintf(stderr, "couponctl: %s\n", status.ToString().c_str());
  return 1;
}

inline int Usage(const char* message) {
  std::fprintf(stderr, "couponctl: %s (see --help)\n", message);
  return 2;
}

// The keyer whose secret is in `path` (--user_id_key_file); errors name the file.
inline absl::StatusOr<core::UserKeyer> ReadUserKeyer(const std::string& path) {
  absl::StatusOr<std::string> secret = edge::ReadSecretFile(path, "user id key file");
  if (!secret.ok()) return secret.status();
  return core::UserKeyer::Create(*std::move(secret));
}

}  // namespace coupond::couponctl

#endif  // COUPOND_CLI_CLI_UTIL_H_
