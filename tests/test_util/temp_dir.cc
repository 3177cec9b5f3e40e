#include "tests/test_util/temp_dir.h"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace coupond::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                        "/coupond-test-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) std::abort();  // a test cannot run without it
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::optional<std::string> SharedDataDir() {
  const char* env = std::getenv("COUPOND_SHARED_DATA");
  if (env != nullptr && std::filesystem::is_directory(env)) return std::string(env);
  return std::nullopt;
}

bool SharedDataRequired() {
  const char* env = std::getenv("COUPOND_REQUIRE_SHARED_DATA");
  return env != nullptr && std::string(env) == "1";
}

}  // namespace coupond::testing
