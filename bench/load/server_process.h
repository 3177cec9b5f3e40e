// The coupond process under load: started from its binary on a free port (read back from
// its --port_file), optionally pinned to some CPUs with this process pinned to others, and
// stopped (SIGTERM, then SIGKILL) when done.

#ifndef COUPOND_BENCH_LOAD_SERVER_PROCESS_H_
#define COUPOND_BENCH_LOAD_SERVER_PROCESS_H_

#include <sched.h>
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/load/options.h"

namespace coupond::load_bench {

class ServerProcess {
 public:
  // Starts `binary` on 127.0.0.1, port 0, serving `store` (polled every `poll_interval`),
  // its output in `dir`/coupond.log, with `extra_env` (comma-separated NAME=VALUE) added to
  // this process's environment and `extra_flags` (space-separated) after its own flags.
  // Waits up to 30 s for the port file `dir`/coupond.port.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::string& binary, const std::string& store, const std::string& dir,
      absl::Duration poll_interval, const std::string& extra_env, const std::string& extra_flags);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& log_file() const { return log_file_; }

 private:
  ServerProcess(pid_t pid, std::string log_file) : pid_(pid), log_file_(std::move(log_file)) {}
  pid_t pid_;
  int port_ = 0;
  std::string log_file_;
};

// A CPU set from "0,2,3"; nullopt for "" (no pinning). InvalidArgument for anything else.
absl::StatusOr<std::optional<cpu_set_t>> ParseCpus(const std::string& list);

// The server the load goes to.
struct Server {
  std::unique_ptr<ServerProcess> process;  // null when options.server names a running one
  std::string target;                      // host:port
};

// Starts options.coupond on `store_path` (pinned to options.server_cpus) unless
// options.server names a running server, then pins this process to options.client_cpus.
// Prints the "server:" and "pinning:" lines. The error's message is worded for
// "load_bench: <message>".
absl::StatusOr<Server> StartPinnedServer(const LoadBenchOptions& options,
                                         const std::string& store_path,
                                         const std::string& work_dir);

}  // namespace coupond::load_bench

#endif  // COUPOND_BENCH_LOAD_SERVER_PROCESS_H_
