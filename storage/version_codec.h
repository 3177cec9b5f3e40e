#ifndef COUPOND_STORAGE_VERSION_CODEC_H_
#define COUPOND_STORAGE_VERSION_CODEC_H_

// The bytes of a stored model version (see model_store.h for the layout): encoding and
// verified decoding of its rows and manifest, and the checksum over its rows. No RocksDB
// here: the store (model_store.cc) moves these bytes in and out of the database. Internal to
// storage/; not for other callers.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/model.h"
#include "core/snapshot.h"
#include "xxhash.h"

namespace coupond::storage::internal {

// Streaming XXH3-64 over (key, value) pairs, each length-prefixed so that no two different
// sequences of pairs hash the same bytes. A version's checksum is this over its data rows in
// key order (the manifest excluded).
class RowHasher {
 public:
  RowHasher() : state_(XXH3_createState()) { XXH3_64bits_reset(state_); }
  ~RowHasher() { XXH3_freeState(state_); }
  RowHasher(const RowHasher&) = delete;
  RowHasher& operator=(const RowHasher&) = delete;

  void Add(absl::string_view key, absl::string_view value) {
    const uint64_t lengths[2] = {key.size(), value.size()};
    XXH3_64bits_update(state_, lengths, sizeof(lengths));
    XXH3_64bits_update(state_, key.data(), key.size());
    XXH3_64bits_update(state_, value.data(), value.size());
  }
  uint64_t Digest() const { return XXH3_64bits_digest(state_); }

 private:
  XXH3_state_t* state_;
};

// Values of the newest format (the one the writer writes), from rows of a model that
// core::ValidateModelData accepts. REQUIRES: row / i in range.
std::string EncodeUser(const core::ModelData& m, size_t row);
std::string EncodeSegment(const core::ModelData& m, size_t i);
std::string EncodeSegmentFeatures(const core::ModelData& m);
std::string EncodeCoupon(const core::ModelData& m, size_t row);
std::string EncodeManifest(const core::ModelVersionInfo& info);

// Parses the manifest stored under `version`'s key, of any readable format; `*format_out`
// (when not null) receives its format. DataLoss naming what is wrong: a line without '=', a
// bad or missing value, an unsupported format, segment counts out of range or inconsistent,
// a version other than `version`, a dimension outside [1, core::kMaxDimension].
absl::StatusOr<core::ModelVersionInfo> DecodeManifest(uint64_t version, absl::string_view text,
                                                      int* format_out = nullptr);

// DataLoss "version <version>: <what>": how every damaged-version error of a read reads.
absl::Status VersionDataLoss(uint64_t version, absl::string_view what);

// Row decoders of ModelStore::ReadVersion. `info` and `format` are the version's manifest and
// its format. Each checks what the value says (finite numbers, flags and indices in range,
// for variable-size values their size), appends the row to *m, and returns
// VersionDataLoss(info.version, ...) naming the row on damage (*m is then partly filled).
//
// A coupon row; *any_predicted becomes true when its predicted-from-attributes flag is 1.
// REQUIRES: value.size() == CouponValueBytes(info.dimension, format).
absl::Status DecodeCouponRow(const core::ModelVersionInfo& info, int format, absl::string_view id,
                             absl::string_view value, core::ModelData* m, bool* any_predicted);
// Segment m->segments.size() (its key's suffix `id` must be that index, zero-padded).
absl::Status DecodeSegmentRow(const core::ModelVersionInfo& info, absl::string_view id,
                              absl::string_view value, core::ModelData* m);
// The segment features value; exactly info.num_segment_features features.
absl::Status DecodeSegmentFeatures(const core::ModelVersionInfo& info, absl::string_view value,
                                   core::ModelData* m);
// A user row; *any_segment becomes true when its segment index is not -1.
// REQUIRES: value.size() == UserValueBytes(info.dimension, format).
absl::Status DecodeUserRow(const core::ModelVersionInfo& info, int format, absl::string_view id,
                           absl::string_view value, core::ModelData* m, bool* any_segment);

}  // namespace coupond::storage::internal

#endif  // COUPOND_STORAGE_VERSION_CODEC_H_
