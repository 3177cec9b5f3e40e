#ifndef COUPOND_STORAGE_KEYS_H_
#define COUPOND_STORAGE_KEYS_H_

// Key and value encoding of the model store (see model_store.h for the layout). Exposed for
// the store's own tests, which damage stored versions on purpose; not for other callers.

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace coupond::storage::internal {

static_assert(std::endian::native == std::endian::little,
              "the store's value encoding is little-endian; port EncodeRow for big-endian");

// Little-endian fixed-width fields of stored values: Append writes one, Take reads one and
// advances `p` (the caller has checked the value's size).
template <typename T>
void Append(std::string* out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out->append(buf, sizeof(T));
}
template <typename T>
T Take(const char*& p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  p += sizeof(T);
  return v;
}

inline std::string VersionTag(uint64_t version) { return absl::StrFormat("%020d", version); }
// Every key of version v starts with VersionPrefix(v) = "v/<20 digits>/", so versions occupy
// disjoint key ranges (see model_store.h for why that matters).
inline constexpr absl::string_view kVersionsPrefix = "v/";
inline std::string VersionPrefix(uint64_t version) { return "v/" + VersionTag(version) + "/"; }
inline std::string CouponPrefix(uint64_t version) { return VersionPrefix(version) + "c/"; }
inline std::string UserPrefix(uint64_t version) { return VersionPrefix(version) + "u/"; }
// Format 2. Within a version, keys sort c/ < s/ < sf < u/ < ~manifest ('/' < 'f' < 'u' < '~').
inline std::string SegmentPrefix(uint64_t version) { return VersionPrefix(version) + "s/"; }
inline std::string SegmentKey(uint64_t version, size_t index) {
  return SegmentPrefix(version) + absl::StrFormat("%06d", index);
}
inline std::string SegmentFeaturesKey(uint64_t version) { return VersionPrefix(version) + "sf"; }
// '~' sorts after every letter: the manifest is the last key of its version, so the writer
// can hash all rows before writing it.
inline std::string ManifestKey(uint64_t version) { return VersionPrefix(version) + "~manifest"; }
inline std::string CouponKey(uint64_t version, absl::string_view id) {
  return CouponPrefix(version) + std::string(id);
}
inline std::string UserKey(uint64_t version, absl::string_view id) {
  return UserPrefix(version) + std::string(id);
}

// Campaign records: "p/<campaign_id>/<20-digit sequence>". Ids never contain '/', so
// CampaignPrefix(id) is the range of exactly that campaign's records.
inline constexpr absl::string_view kCampaignsPrefix = "p/";
inline std::string CampaignPrefix(absl::string_view campaign_id) {
  return absl::StrCat(kCampaignsPrefix, campaign_id, "/");
}
inline std::string CampaignKey(absl::string_view campaign_id, uint64_t sequence) {
  return absl::StrCat(CampaignPrefix(campaign_id), VersionTag(sequence));
}
// Bytes of a campaign record's header: u32 format, i64 published time, u64 payload hash.
inline constexpr size_t kCampaignHeaderBytes = sizeof(uint32_t) + sizeof(int64_t) + sizeof(uint64_t);

// Bytes of a user row (manifest format 1: bias and factors; format 2 and later: then an i32
// segment index) and a coupon row for dimension `dim`.
inline size_t UserValueBytes(uint32_t dim, int format = 3) {
  return sizeof(float) * (1 + size_t{dim}) + (format >= 2 ? sizeof(int32_t) : 0);
}
// Coupon row: formats 1 and 2: bias, factors, face value, validity window, stock; format 3:
// then a u8 flag (1: factors predicted from attributes, 0: trained).
inline size_t CouponValueBytes(uint32_t dim, int format = 3) {
  return sizeof(float) * (1 + size_t{dim}) + sizeof(double) + 3 * sizeof(int64_t) +
         (format >= 3 ? sizeof(uint8_t) : 0);
}
// Bytes of a segment row with a name of `name_bytes`, for dimension `dim` and `features`
// segment features: u32 name length, name, f32 prior bias, f32 x dim prior factors,
// f32 x features centroid, f64 redemption rate, u64 members.
inline size_t SegmentValueBytes(size_t name_bytes, uint32_t dim, size_t features) {
  return sizeof(uint32_t) + name_bytes + sizeof(float) * (1 + size_t{dim} + features) +
         sizeof(double) + sizeof(uint64_t);
}

}  // namespace coupond::storage::internal

#endif  // COUPOND_STORAGE_KEYS_H_
