#ifndef COUPOND_TESTS_TEST_UTIL_TEMP_DIR_H_
#define COUPOND_TESTS_TEST_UTIL_TEMP_DIR_H_

#include <optional>
#include <string>

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
// $COUPOND_SHARED_DATA), or nullopt when it is absent. Tests that need it GTEST_SKIP with a
// reason when it is nullopt.
std::optional<std::string> SharedDataDir();

}  // namespace coupond::testing

#endif  // COUPOND_TESTS_TEST_UTIL_TEMP_DIR_H_
