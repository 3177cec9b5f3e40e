#include "bench/load/server_process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/load/common.h"

extern char** environ;

namespace coupond::load_bench {

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::string& binary, const std::string& store, const std::string& dir,
    absl::Duration poll_interval, const std::string& extra_env, const std::string& extra_flags) {
  const std::string port_file = dir + "/coupond.port";
  const std::string log_file = dir + "/coupond.log";
  std::error_code ignored;
  std::filesystem::remove(port_file, ignored);
  std::vector<std::string> args = {binary,
                                   "--store=" + store,
                                   "--listen=127.0.0.1:0",
                                   "--port_file=" + port_file,
                                   "--poll_interval=" + absl::FormatDuration(poll_interval),
                                   "--log_level=warn"};
  for (absl::string_view flag : absl::StrSplit(extra_flags, ' ', absl::SkipEmpty())) {
    args.emplace_back(flag);
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  for (absl::string_view e : absl::StrSplit(extra_env, ',', absl::SkipEmpty())) {
    env_strings.emplace_back(e);
  }
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot start ", binary, ": ", std::strerror(rc), " (build it, or --coupond)"));
  }
  auto process = std::unique_ptr<ServerProcess>(new ServerProcess(pid, log_file));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    std::ifstream in(port_file);
    int port = 0;
    if (in >> port && port > 0) {
      process->port_ = port;
      return process;
    }
    if (waitpid(pid, nullptr, WNOHANG) == pid) {
      process->pid_ = 0;
      return absl::InternalError(absl::StrCat("coupond exited at start; see ", log_file));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat("coupond did not report a port; see ", log_file));
}

ServerProcess::~ServerProcess() {
  if (pid_ == 0) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 500; ++i) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
    absl::SleepFor(absl::Milliseconds(20));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

absl::StatusOr<std::optional<cpu_set_t>> ParseCpus(const std::string& list) {
  if (list.empty()) return std::optional<cpu_set_t>();
  cpu_set_t set;
  CPU_ZERO(&set);
  for (absl::string_view part : absl::StrSplit(list, ',')) {
    int cpu = -1;
    if (!absl::SimpleAtoi(part, &cpu) || cpu < 0 || cpu >= CPU_SETSIZE) {
      return absl::InvalidArgumentError(absl::StrCat("'", list, "' is not a list of CPU indices"));
    }
    CPU_SET(cpu, &set);
  }
  return std::optional<cpu_set_t>(set);
}

absl::StatusOr<Server> StartPinnedServer(const LoadBenchOptions& options,
                                         const std::string& store_path,
                                         const std::string& work_dir) {
  Server server;
  server.target = options.server;
  absl::StatusOr<std::optional<cpu_set_t>> server_cpus = ParseCpus(options.server_cpus);
  absl::StatusOr<std::optional<cpu_set_t>> client_cpus = ParseCpus(options.client_cpus);
  if (!server_cpus.ok() || !client_cpus.ok()) {
    return Annotate(server_cpus.ok() ? client_cpus.status() : server_cpus.status(),
                    "--server_cpus/--client_cpus: ");
  }
  cpu_set_t original;
  if ((server_cpus->has_value() || client_cpus->has_value()) &&
      sched_getaffinity(0, sizeof(original), &original) != 0) {
    return absl::InternalError(absl::StrCat("sched_getaffinity: ", std::strerror(errno)));
  }
  if (server.target.empty()) {
    // The child inherits this thread's affinity at spawn: set it to the server's, then to
    // the client's (threads created later inherit that).
    if (server_cpus->has_value() && sched_setaffinity(0, sizeof(cpu_set_t), &**server_cpus) != 0) {
      return absl::InternalError(absl::StrCat("--server_cpus: ", std::strerror(errno)));
    }
    absl::StatusOr<std::unique_ptr<ServerProcess>> started =
        ServerProcess::Start(options.coupond, store_path, work_dir, options.poll_interval,
                             options.server_env, options.server_flags);
    if (server_cpus->has_value()) sched_setaffinity(0, sizeof(cpu_set_t), &original);
    if (!started.ok()) return Annotate(started.status());
    server.process = std::move(*started);
    server.target = absl::StrCat("127.0.0.1:", server.process->port());
    std::printf("server: %s on %s, --poll_interval=%s, log %s%s\n", options.coupond.c_str(),
                server.target.c_str(), absl::FormatDuration(options.poll_interval).c_str(),
                server.process->log_file().c_str(),
                options.server_env.empty()
                    ? ""
                    : absl::StrCat(", environment ", options.server_env).c_str());
  } else {
    std::printf("server: %s (running; started elsewhere)\n", server.target.c_str());
  }
  if (client_cpus->has_value() && sched_setaffinity(0, sizeof(cpu_set_t), &**client_cpus) != 0) {
    return absl::InternalError(absl::StrCat("--client_cpus: ", std::strerror(errno)));
  }
  if (server_cpus->has_value() || client_cpus->has_value()) {
    std::printf("pinning: server on CPUs {%s}, this client (load generator, publisher) on {%s}\n",
                options.server_cpus.c_str(), options.client_cpus.c_str());
  }
  return server;
}

}  // namespace coupond::load_bench
