#ifndef COUPOND_TESTS_TEST_UTIL_PROCESS_H_
#define COUPOND_TESTS_TEST_UTIL_PROCESS_H_

// Child processes for integration tests: the real coupond and couponctl binaries.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"

extern char** environ;

namespace coupond::testing {

// The file's content, or "" when it cannot be read.
inline std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A child process started with posix_spawnp (argv[0] is looked up on PATH unless it has a
// slash), its stdout and stderr appended to `output_file` (when given). Killed with
// SIGKILL on destruction if still running.
class ChildProcess {
 public:
  explicit ChildProcess(std::vector<std::string> args, const std::string& output_file = "") {
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (!output_file.empty()) {
      posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, output_file.c_str(),
                                       O_WRONLY | O_CREAT | O_APPEND, 0644);
      posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    }
    spawned_ = posix_spawnp(&pid_, argv[0], &actions, nullptr, argv.data(), environ) == 0;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~ChildProcess() {
    if (running()) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool spawned() const { return spawned_; }
  // The child's process id (0 when it was not spawned).
  pid_t pid() const { return pid_; }
  bool running() const { return spawned_ && !exited_; }

  // Waits up to `timeout` for the exit status (128 + signal when killed); -1 on timeout.
  int Wait(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (running()) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (absl::Now() >= deadline) return -1;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return exit_status_;
  }
  // Sends `sig`, then Wait(timeout).
  int StopWith(int sig, absl::Duration timeout) {
    if (running()) kill(pid_, sig);
    return Wait(timeout);
  }

 private:
  pid_t pid_ = 0;
  bool spawned_ = false;
  bool exited_ = false;
  int exit_status_ = -1;
};

// Runs a command to completion (killed after `timeout`); its exit status, with stdout and
// stderr together in *output. -1 when it could not be started or timed out.
inline int RunCommand(const std::vector<std::string>& args, const std::string& output_file,
                      std::string* output, absl::Duration timeout = absl::Seconds(60)) {
  std::remove(output_file.c_str());
  ChildProcess child(args, output_file);
  if (!child.spawned()) return -1;
  const int status = child.Wait(timeout);
  *output = ReadFileOrEmpty(output_file);
  return status;
}

// The port a server wrote to `port_file` (coupond --port_file), or 0 after `timeout`.
inline int WaitForPortFile(const std::string& port_file, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::ifstream in(port_file);
    int port = 0;
    if (in >> port && port > 0) return port;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return 0;
}

}  // namespace coupond::testing

#endif  // COUPOND_TESTS_TEST_UTIL_PROCESS_H_
