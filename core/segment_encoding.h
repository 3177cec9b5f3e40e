#ifndef COUPOND_CORE_SEGMENT_ENCODING_H_
#define COUPOND_CORE_SEGMENT_ENCODING_H_

// Lookup of a request's user attributes in a model's segment-feature space (see
// SegmentFeature in core/model.h): which one-hot column "AGE_DESC" -> "45-54" sets, and which
// columns belong to the same attribute. Built once per model version (ModelSnapshot holds
// one), so that resolving a new user costs one hash lookup per attribute.
//
// A segment feature is an ATTRIBUTE column when its name has the form "<name>=<value>" with
// a non-empty <name> (what the pipeline makes of a users.csv column, or of a dunnhumby
// demographic column: "AGE_DESC=45-54"). The attribute's columns are all features with the
// same <name>, compared ignoring ASCII case ("age_desc" and "AGE_DESC" are one attribute:
// the two published copies of dunnhumby differ only in header case). Values are compared
// exactly. Other features (the behavioural profile columns "log_exposures", ...) are not
// attribute columns: a request cannot speak to them.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/model.h"

namespace coupond::core {

// Immutable after Build; thread-safe for concurrent reads.
class SegmentAttributeIndex {
 public:
  struct Column {
    uint32_t attribute = 0;  // index of the attribute (see columns())
    uint32_t feature = 0;    // index into the model's segment_features
  };

  SegmentAttributeIndex() = default;
  // Indexes `features`. When two features name the same attribute and value ignoring the
  // case of the name ("age=1", "AGE=1"), Find returns the first; both stay columns of the
  // attribute.
  static SegmentAttributeIndex Build(absl::Span<const SegmentFeature> features);

  // The column `name` = `value` sets, or nullopt when the model has no such column (an
  // unknown attribute name, a value too rare to have become a column, an empty name, a
  // name holding '=').
  std::optional<Column> Find(absl::string_view name, absl::string_view value) const;
  // Number of distinct attributes, and the feature indices of attribute `a`'s columns
  // (ascending). REQUIRES: a < num_attributes().
  size_t num_attributes() const { return columns_.size(); }
  absl::Span<const uint32_t> columns(uint32_t a) const { return columns_[a]; }

  size_t memory_bytes() const;

 private:
  // Key: lower-cased name, '=', value.
  absl::flat_hash_map<std::string, Column> by_key_;
  std::vector<std::vector<uint32_t>> columns_;
};

}  // namespace coupond::core

#endif  // COUPOND_CORE_SEGMENT_ENCODING_H_
