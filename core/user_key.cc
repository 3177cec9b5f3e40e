#include "core/user_key.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
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

absl::StatusOr<UserKeyer> UserKeyer::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("user id key file '", path, "': cannot open"));
  std::ostringstream contents;
  contents << in.rdbuf();
  std::string secret = contents.str();
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  absl::StatusOr<UserKeyer> keyer = Create(std::move(secret));
  if (!keyer.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("user id key file '", path, "': ", keyer.status().message()));
  }
  return keyer;
}

bool IsUserKey(absl::string_view id) {
  if (id.size() != kKeyPrefix.size() + 2 * kKeyBytes || !absl::StartsWith(id, kKeyPrefix)) return false;
  for (char c : id.substr(kKeyPrefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string UserKeyer::Key(absl::string_view user_id) const {
  if (IsUserKey(user_id)) return std::string(user_id);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(user_id.data()), user_id.size(), digest, &length);
  return absl::StrCat(kKeyPrefix,
                      absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), kKeyBytes)));
}

absl::Status PseudonymiseUsers(const UserKeyer& keyer, TrainingData* data) {
  absl::flat_hash_map<std::string, uint32_t> index;
  std::vector<std::string> ids;
  std::vector<uint32_t> remap(data->user_ids.size());
  std::vector<std::vector<uint32_t>> features;
  for (size_t u = 0; u < data->user_ids.size(); ++u) {
    std::string key = keyer.Key(data->user_ids[u]);
    auto [it, inserted] = index.emplace(key, static_cast<uint32_t>(ids.size()));
    if (inserted) {
      ids.push_back(std::move(key));
      features.emplace_back();
    }
    remap[u] = it->second;
    if (u < data->user_features.rows()) {
      absl::Span<const uint32_t> row = data->user_features.row(u);
      std::vector<uint32_t>& merged = features[it->second];
      merged.insert(merged.end(), row.begin(), row.end());
    }
  }
  for (Example& e : data->examples) e.user = remap[e.user];
  if (data->user_features.rows() == data->user_ids.size()) {
    SparseFeatures merged;
    merged.names = std::move(data->user_features.names);
    for (std::vector<uint32_t>& row : features) {
      std::sort(row.begin(), row.end());
      row.erase(std::unique(row.begin(), row.end()), row.end());
      merged.AddRow(row);
    }
    data->user_features = std::move(merged);
  }
  data->user_ids = std::move(ids);
  return data->Validate();
}

absl::Status PseudonymiseUsers(const UserKeyer& keyer, ModelData* model) {
  absl::flat_hash_map<std::string, size_t> seen;
  for (size_t u = 0; u < model->user_ids.size(); ++u) {
    std::string key = keyer.Key(model->user_ids[u]);
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
