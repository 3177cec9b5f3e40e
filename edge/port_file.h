#ifndef COUPOND_EDGE_PORT_FILE_H_
#define COUPOND_EDGE_PORT_FILE_H_

// The --port_file contract of coupond and collectord: once a server listens, it writes the
// port it bound (useful with port 0) to a file that tests, scripts and orchestration read.

#include <string>

#include "absl/status/status.h"

namespace coupond::edge {

// Writes "<port>\n" to `path` atomically: to `path`.tmp first, then renamed, so a reader
// never sees a partial file. Unavailable, naming the path, when the write or the rename
// fails.
absl::Status WritePortFile(const std::string& path, int port);

}  // namespace coupond::edge

#endif  // COUPOND_EDGE_PORT_FILE_H_
