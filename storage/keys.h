#ifndef COUPOND_STORAGE_KEYS_H_
#define COUPOND_STORAGE_KEYS_H_

// Key and value encoding of the model store (see model_store.h for the layout). Exposed for
// the store's own tests, which damage stored versions on purpose; not for other callers.

#include <bit>
#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/strings/str_format.h"

namespace coupond::storage::internal {

static_assert(std::endian::native == std::endian::little,
              "the store's value encoding is little-endian; port EncodeRow for big-endian");

inline std::string VersionTag(uint64_t version) { return absl::StrFormat("%020d", version); }
// Every key of version v starts with VersionPrefix(v) = "v/<20 digits>/", so versions occupy
// disjoint key ranges (see model_store.h for why that matters).
inline constexpr absl::string_view kVersionsPrefix = "v/";
inline std::string VersionPrefix(uint64_t version) { return "v/" + VersionTag(version) + "/"; }
inline std::string CouponPrefix(uint64_t version) { return VersionPrefix(version) + "c/"; }
inline std::string UserPrefix(uint64_t version) { return VersionPrefix(version) + "u/"; }
// '~' sorts after every letter: the manifest is the last key of its version, so the writer
// can hash all rows before writing it.
inline std::string ManifestKey(uint64_t version) { return VersionPrefix(version) + "~manifest"; }
inline std::string CouponKey(uint64_t version, absl::string_view id) {
  return CouponPrefix(version) + std::string(id);
}
inline std::string UserKey(uint64_t version, absl::string_view id) {
  return UserPrefix(version) + std::string(id);
}

// Bytes of a user row and a coupon row for dimension `dim`.
inline size_t UserValueBytes(uint32_t dim) { return sizeof(float) * (1 + size_t{dim}); }
inline size_t CouponValueBytes(uint32_t dim) {
  return sizeof(float) * (1 + size_t{dim}) + sizeof(double) + 3 * sizeof(int64_t);
}

}  // namespace coupond::storage::internal

#endif  // COUPOND_STORAGE_KEYS_H_
