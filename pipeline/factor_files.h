#ifndef COUPOND_PIPELINE_FACTOR_FILES_H_
#define COUPOND_PIPELINE_FACTOR_FILES_H_

// Factor files: the plain-text exchange format for a model version, for models produced
// outside coupond (or by `couponctl generate`) and published with `couponctl publish`.
//
// A directory with three tab-separated UTF-8 files. Lines starting with '#' and blank lines
// are ignored; CRLF line ends are accepted. Numbers are decimal ("1.5", "-2e-3"); "nan" and
// "inf" are rejected.
//
//   model.tsv    one "key<TAB>value" per line:
//                  format       1
//                  dimension    d (1..4096)
//                  global_bias  b
//                  description  free text (optional)
//   users.tsv    header, then one row per user:
//                  user_id  bias  f1 ... fd
//   coupons.tsv  header, then one row per coupon:
//                  coupon_id  bias  face_value  valid_from  valid_until  stock  f1 ... fd
//                valid_from / valid_until: seconds since the Unix epoch, 0 = unbounded
//                (valid_until is exclusive); stock: -1 = unlimited.
//
// Errors name the file, the line and the column.
//
// Factor files carry no user segments (ModelData::segments, segment_features,
// user_segment): those are computed by the training pipeline (pipeline/train_job.h) and
// published straight into the model store. WriteFactorFiles leaves them out, and a model
// read from factor files has none (its version serves without cold-start segments).

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/model.h"

namespace coupond::pipeline {

// Writes `model` into directory `dir` (created if missing), replacing the three files.
// Segments, if any, are not written (see above).
absl::Status WriteFactorFiles(const core::ModelData& model, const std::string& dir);

// Reads and validates the three files in `dir`. InvalidArgument with file:line on bad
// content; NotFound if a file is missing.
absl::StatusOr<core::ModelData> ReadFactorFiles(const std::string& dir);

}  // namespace coupond::pipeline

#endif  // COUPOND_PIPELINE_FACTOR_FILES_H_
