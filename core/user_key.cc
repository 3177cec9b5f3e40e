#include "core/user_key.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "openssl/evp.h"
#include "openssl/hmac.h"

namespace coupond::core {
namespace {

constexpr absl::string_view kKeyPrefix = "k1:";
constexpr size_t kKeyBytes = 16;

}  // namespace

absl::StatusOr<UserKeyer> UserKeyer::Create(std::string secret) {
  if (secret.size() < 16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "user id key: ", secret.size(), " bytes, at least 16 are needed (e.g. head -c 32 /dev/urandom)"));
  }
  return UserKeyer(std::move(secret));
}

bool IsUserKey(absl::string_view id) {
  if (id.size() != kKeyPrefix.size() + 2 * kKeyBytes || !absl::StartsWith(id, kKeyPrefix)) return false;
  for (char c : id.substr(kKeyPrefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::StatusOr<std::string> UserKeyer::Key(absl::string_view user_id) const {
  if (IsUserKey(user_id)) return std::string(user_id);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  const unsigned char* mac =
      HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
           reinterpret_cast<const unsigned char*>(user_id.data()), user_id.size(), digest, &length);
  if (mac == nullptr || length < kKeyBytes) {
    return absl::InternalError("user id key: HMAC-SHA256 failed (out of memory in libcrypto)");
  }
  return absl::StrCat(kKeyPrefix,
                      absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), kKeyBytes)));
}

absl::Status UserKeyer::KeyAll(std::vector<std::string>* ids) const {
  for (std::string& id : *ids) {
    absl::StatusOr<std::string> key = Key(id);
    if (!key.ok()) return key.status();
    id = *std::move(key);
  }
  return absl::OkStatus();
}

absl::Status PseudonymiseUsers(const UserKeyer& keyer, ModelData* model) {
  absl::flat_hash_map<std::string, size_t> seen;
  for (size_t u = 0; u < model->user_ids.size(); ++u) {
    COUPOND_ASSIGN_OR_RETURN(std::string key, keyer.Key(model->user_ids[u]));
    auto [it, inserted] = seen.emplace(key, u);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          "user_ids[", u, "]: has the same key as user_ids[", it->second,
          "] (one user present both raw and keyed)"));
    }
    model->user_ids[u] = std::move(key);
  }
  return absl::OkStatus();
}

}  // namespace coupond::core
