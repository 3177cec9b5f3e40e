#include "edge/secret_files.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace coupond::edge {
namespace {

constexpr size_t kMaxTokenBytes = 4096;

absl::StatusOr<std::string> ReadWhole(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(what, " '", path, "': cannot open"));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<std::string> ReadTokenFile(const std::string& path, absl::string_view what) {
  absl::StatusOr<std::string> text = ReadWhole(path, what);
  if (!text.ok()) return text.status();
  const std::string token(absl::StripAsciiWhitespace(*text));
  if (token.size() < kMinSecretBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " '", path, "': the token has ", token.size(), " bytes, at least ", kMinSecretBytes,
        " are needed (e.g. `openssl rand -hex 32 > ", path, "`)"));
  }
  if (token.size() > kMaxTokenBytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "': the token has ",
                                                   token.size(), " bytes, limit ", kMaxTokenBytes));
  }
  for (size_t i = 0; i < token.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(token[i]);
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " '", path, "': byte ", i,
          " of the token is not visible ASCII (0x21-0x7e); it must fit in a metadata value"));
    }
  }
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    spdlog::warn("{} '{}' is accessible to its group or to others (mode {:o}); chmod 600 it", std::string(what),
                 path, st.st_mode & 0777);
  }
  return token;
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path, absl::string_view what) {
  absl::StatusOr<std::string> secret = ReadWhole(path, what);
  if (!secret.ok()) return secret.status();
  if (!secret->empty() && secret->back() == '\n') secret->pop_back();
  if (secret->size() < kMinSecretBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " '", path, "': ", secret->size(), " bytes, at least ", kMinSecretBytes,
        " are needed (e.g. head -c 32 /dev/urandom)"));
  }
  return secret;
}

}  // namespace coupond::edge
