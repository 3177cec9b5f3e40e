#include "edge/bearer_token.h"

#include <iterator>

#include "absl/strings/match.h"

namespace coupond::edge {

bool ConstantTimeEquals(absl::string_view presented, absl::string_view expected) {
  // Walk `expected` in full whatever was presented; a length difference is folded into the
  // result instead of returning early.
  unsigned char diff = presented.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char p =
        presented.empty() ? 0 : static_cast<unsigned char>(presented[i % presented.size()]);
    diff |= static_cast<unsigned char>(p ^ static_cast<unsigned char>(expected[i]));
  }
  return diff == 0;
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
