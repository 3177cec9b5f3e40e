#ifndef COUPOND_EDGE_SECRET_FILES_H_
#define COUPOND_EDGE_SECRET_FILES_H_

// Secrets come from files, never from flag values, which any local user can read in `ps`.
// Both readers are for a process's start-up (they read the whole file); thread-compatible.

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace coupond::edge {

// Tokens and secrets shorter than this are refused. `openssl rand -hex 32` makes a good one.
inline constexpr size_t kMinSecretBytes = 16;

// A bearer token (e.g. --admin_token_file): the file's content without leading and trailing
// whitespace (so the newline of `echo ... > file` does not count). `what` names the file in
// errors ("admin token file"). NotFound when the file cannot be read; InvalidArgument when
// the token is shorter than kMinSecretBytes, longer than 4096 bytes, or holds anything but
// visible ASCII (0x21-0x7e: it travels as a gRPC metadata value). Logs a warning when the
// file is readable by its group or by others.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path, absl::string_view what);

// A binary secret (e.g. --user_id_key_file, the HMAC key of core::UserKeyer): the file's
// bytes, less one trailing newline. NotFound when the file cannot be read; InvalidArgument,
// naming the file, when fewer than kMinSecretBytes remain.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path, absl::string_view what);

}  // namespace coupond::edge

#endif  // COUPOND_EDGE_SECRET_FILES_H_
