#include "edge/bearer_token.h"

#include <iterator>

#include "absl/strings/match.h"
#include "openssl/crypto.h"

namespace coupond::edge {

bool ConstantTimeEquals(absl::string_view presented, absl::string_view expected) {
  // CRYPTO_memcmp is OpenSSL's comparison that does not branch on the bytes it compares,
  // which a hand-written loop cannot promise once the compiler has optimised it.
  // A presented token of another length still costs one full pass over `expected`.
  if (presented.size() != expected.size()) {
    (void)CRYPTO_memcmp(expected.data(), expected.data(), expected.size());
    return false;
  }
  return CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) == 0;
}

bool HasBearerToken(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                    absl::string_view token) {
  constexpr absl::string_view kBearer = "bearer ";
  auto [first, last] = metadata.equal_range("authorization");
  if (first == last || std::next(first) != last) return false;
  const absl::string_view value(first->second.data(), first->second.size());
  if (value.size() < kBearer.size() || !absl::EqualsIgnoreCase(value.substr(0, kBearer.size()), kBearer)) {
    return false;
  }
  return ConstantTimeEquals(value.substr(kBearer.size()), token);
}

}  // namespace coupond::edge
