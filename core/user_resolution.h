#ifndef COUPOND_CORE_USER_RESOLUTION_H_
#define COUPOND_CORE_USER_RESOLUTION_H_

// User cold start: which bias b_u and factors x_u score a request's user.
//
//   known user            the model's own row.
//   unknown, attributes   SEGMENT PRIOR: the attributes are encoded in the model's segment
//                          space (SegmentFeature: encoded = (raw - offset) / scale, raw 1 for
//                          the attribute's value and 0 for the attribute's other columns)
//                          and the user takes the nearest segment centroid's prior_bias and
//                          prior_factors (the mean of its members' trained vectors).
//   otherwise             POPULATION PRIOR: b_u = 0, x_u = 0 (the model's prior mean).
//
// Nearest in which space: the centroids also have behavioural profile columns
// ("log_exposures", "days_since_redemption", ...) that a request cannot speak to, and
// attributes the request does not carry. Those dimensions are MISSING, not zero: the distance
// is taken over the columns of the attributes the request matched only (the usual
// partial-distance rule for k-means with missing values). Filling them in with a zero-history
// profile instead would place every new user by its lack of history (one behavioural cluster
// for everyone), and filling absent attributes with zeros would treat "not said" as "has none
// of the values". Ties go to the lowest segment index.
//
// Which attributes count: those whose name and value form one of the model's attribute
// columns (core/segment_encoding.h: names compared ignoring ASCII case, values exactly).
// Ignored, and counted in `ignored_attributes`: an empty or unknown name, a value that is
// not a column (unknown, too rare when the model was trained, empty, "NaN" unless a category
// is literally called that), and a second attribute of the same name ignoring case (the
// first in the given order wins). A model without segments ignores every attribute. Input
// size is the caller's to bound (the server allows 64 attributes of <= 256 bytes).
//
// Thread-safe (reads only the immutable snapshot). Allocates only small per-call vectors.

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/snapshot.h"

namespace coupond::core {

// One attribute a request carries for its user, e.g. {"AGE_DESC", "45-54"}.
struct UserAttribute {
  absl::string_view name;
  absl::string_view value;
};

enum class UserSource {
  kKnownUser,        // the model's row for the user
  kSegmentPrior,     // a new user placed in a segment by its attributes
  kPopulationPrior,  // a new user with no usable attribute, or a model without segments
};

struct ResolvedUser {
  UserSource source = UserSource::kPopulationPrior;
  // kKnownUser: the user's row in the snapshot.
  std::optional<uint32_t> row;
  // kSegmentPrior: the index of the segment used (ModelSnapshot::segment); else -1.
  int32_t segment = -1;
  // b_u and x_u to score with. `factors` points into the snapshot (dimension() floats) and
  // lives as long as it; nullptr means the zero vector (population prior).
  float bias = 0.0f;
  const float* factors = nullptr;
  // Attributes read (unknown users only; 0 for a known user, whose attributes are not
  // consulted) that matched a column, and those ignored (see the file comment).
  uint32_t matched_attributes = 0;
  uint32_t ignored_attributes = 0;
};

// Resolves `user_id` (and, when the model does not know it, `attributes`) against `model`.
ResolvedUser ResolveUser(const ModelSnapshot& model, absl::string_view user_id,
                         absl::Span<const UserAttribute> attributes);

// The segment-prior step alone: the nearest segment to `attributes`, or -1 when none of
// them matches a column (or the model has no segments). `matched` and `ignored` (when not
// null) receive the counts described above.
int32_t NearestSegment(const ModelSnapshot& model, absl::Span<const UserAttribute> attributes,
                       uint32_t* matched = nullptr, uint32_t* ignored = nullptr);

}  // namespace coupond::core

#endif  // COUPOND_CORE_USER_RESOLUTION_H_
