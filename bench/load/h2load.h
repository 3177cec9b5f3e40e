// The independent cross-check (--h2load): h2load (nghttp2-client) against the same server,
// Health/Check and one Score body, with the same connections x streams.

#ifndef COUPOND_BENCH_LOAD_H2LOAD_H_
#define COUPOND_BENCH_LOAD_H2LOAD_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/load/options.h"
#include "bench/load/requests.h"
#include "bench/load/server_process.h"

namespace coupond::load_bench {

struct H2loadResult {
  double rps = 0;
  // h2load does not read grpc-status, but a failed gRPC call carries no response message:
  // DATA bytes per completed request equal to 5 + the OK response's size mean every call
  // succeeded.
  double data_bytes_per_request = 0;
  double requests_done = 0;
  std::string summary;
};

// Runs h2load for `duration` on 127.0.0.1:`port` with `message` (gRPC-framed, written to
// `dir`/`name`.body) as every request's body; `name` "noop" calls Health/Check, anything
// else Score.
absl::StatusOr<H2loadResult> RunH2load(const std::string& dir, const std::string& name,
                                       const std::string& message, int port, int connections,
                                       int streams, absl::Duration duration);

// The cross-check section of the report: h2load with the no-op and with row 1's Score
// request (options with Run()'s lower bounds applied), each judged by its DATA bytes against
// an OK response's (`check_response_bytes` for Score); a run with failed calls adds 1 to
// *total_errors. Needs a server on 127.0.0.1.
void H2loadCrossCheck(const LoadBenchOptions& options, const Server& server,
                      const std::string& work_dir, const RequestSet& requests,
                      size_t check_response_bytes, uint64_t* total_errors);

}  // namespace coupond::load_bench

#endif  // COUPOND_BENCH_LOAD_H2LOAD_H_
