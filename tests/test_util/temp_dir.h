#ifndef COUPOND_TESTS_TEST_UTIL_TEMP_DIR_H_
#define COUPOND_TESTS_TEST_UTIL_TEMP_DIR_H_

#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace coupond::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The shared datasets folder (../shared/data next to the repository, or
// $COUPOND_SHARED_DATA), or nullopt when it is absent. Tests that need it call
// COUPOND_SKIP_WITHOUT_SHARED_DATA when it is nullopt.
std::optional<std::string> SharedDataDir();

// True when $COUPOND_REQUIRE_SHARED_DATA is "1": .ci/run sets it, because CI always has the
// shared data and a test that skipped there would pass without testing anything.
bool SharedDataRequired();

// Ends the current test for want of the shared data: a skip with `reason` on a user's clone,
// a failure with `reason` where SharedDataRequired(). Use inside a TEST body or SetUp().
#define COUPOND_SKIP_WITHOUT_SHARED_DATA(reason)                                          \
  do {                                                                                     \
    if (::coupond::testing::SharedDataRequired()) {                                        \
      GTEST_FAIL() << (reason) << " (COUPOND_REQUIRE_SHARED_DATA=1: the shared data must " \
                   << "be present, see ../shared/data/README)";                           \
    }                                                                                      \
    GTEST_SKIP() << (reason);                                                              \
  } while (false)

}  // namespace coupond::testing

#endif  // COUPOND_TESTS_TEST_UTIL_TEMP_DIR_H_
