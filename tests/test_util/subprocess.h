#ifndef COUPOND_TESTS_TEST_UTIL_SUBPROCESS_H_
#define COUPOND_TESTS_TEST_UTIL_SUBPROCESS_H_

// A child process for integration tests (a real coupond or collectord on a real port),
// killed with SIGKILL when the test ends without stopping it.

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace coupond::testing {

class Subprocess {
 public:
  // Starts `args[0]` with `args`; see spawned().
  explicit Subprocess(std::vector<std::string> args);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  bool spawned() const { return spawned_; }
  bool running() const { return spawned_ && !exited_; }
  pid_t pid() const { return pid_; }

  // Sends `sig` and waits up to `timeout` for the exit: its exit code, 128 + the signal
  // number when a signal ended it, or -1 on timeout.
  int StopWith(int sig, absl::Duration timeout);

 private:
  pid_t pid_ = 0;
  bool spawned_ = false;
  bool exited_ = false;
};

// The port a server wrote to `port_file` (its --port_file), waiting up to `timeout`; 0 when
// none appeared.
int WaitForPort(const std::string& port_file, absl::Duration timeout);

}  // namespace coupond::testing

#endif  // COUPOND_TESTS_TEST_UTIL_SUBPROCESS_H_
