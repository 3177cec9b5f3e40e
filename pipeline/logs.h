#ifndef COUPOND_PIPELINE_LOGS_H_
#define COUPOND_PIPELINE_LOGS_H_

// The canonical input format of coupond's offline pipeline: behaviour logs as CSV files.
//
// All files are CSV as pipeline/csv.h reads them (RFC 4180 quoting, LF or CRLF, optional
// UTF-8 BOM, a header row; "", null and NULL are missing values). Columns are found by
// header name, ignoring case and order; extra columns are ignored in exposures.csv and
// redemptions.csv. Ids are opaque strings (surrounding spaces are trimmed).
//
// Time: by default an integer *day number* (days since any fixed epoch the dataset
// chooses; >= 0). TimeFormat (couponctl --time_format) selects alternatives: ISO dates
// "YYYY-MM-DD" (day number = days since 1970-01-01) or Unix seconds (day number =
// floor(seconds / 86400), so also days since 1970-01-01, UTC).
//
//   exposures.csv    (required) one row per coupon shown/offered to a user
//     user_id        required
//     coupon_id      required
//     campaign_id    optional column; missing value or column -> campaign "" (one default)
//     time           required; the day of the exposure
//
//   redemptions.csv  (required; may hold only its header)
//     user_id        required
//     coupon_id      required
//     time           required; the day of the redemption
//     order_value    optional column; >= 0, the value of the redeeming order (missing -> 0)
//
//   users.csv        (optional) one row per user
//     user_id        required, unique
//     any other column C: a categorical feature "C=value" when the value is present;
//       columns in IngestOptions::multi_value_columns are split as in coupons.csv
//
//   coupons.csv      (optional) one row per coupon
//     coupon_id      required, unique
//     face_value     optional column; >= 0 (missing -> 0)
//     valid_from     optional column; Unix seconds, inclusive, 0 = unbounded (missing -> 0)
//     valid_until    optional column; Unix seconds, exclusive, 0 = unbounded (missing -> 0)
//     stock          optional column; -1 = unlimited (missing -> -1)
//     any other column C: feature "C=value"; columns named in
//       IngestOptions::multi_value_columns hold several values separated by
//       IngestOptions::multi_value_separator (';'), e.g. products "12;34" ->
//       "products=12", "products=34".
//
// Label rule (documented in pipeline/ingest.h): an exposure is positive iff some
// redemption of the same user and coupon falls on a day t with exposure_day <= t <=
// exposure_day + redemption_window_days. A redemption is attributed to the latest such
// exposure.
//
// Other CSV logs: a ColumnMapping renames canonical columns to the file's own names.

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace coupond::pipeline {

// Paths of the four log files. "" for an optional file that is absent.
struct LogPaths {
  std::string exposures;    // required
  std::string redemptions;  // required
  std::string users;        // optional
  std::string coupons;      // optional
};

// How the `time` columns are written.
enum class TimeFormat {
  kDayNumber,    // integer day number (default)
  kIsoDate,      // "YYYY-MM-DD" -> days since 1970-01-01
  kUnixSeconds,  // integer seconds since the Unix epoch -> floor(s / 86400)
};

// canonical column name ("user_id", "time", ...) -> the column's name in the file.
// Unmapped canonical names are looked up as they are.
struct ColumnMapping {
  absl::flat_hash_map<std::string, std::string> renames;

  std::string Resolve(absl::string_view canonical) const {
    auto it = renames.find(canonical);
    return it == renames.end() ? std::string(canonical) : it->second;
  }
};

// One mapping per file. Default: identity everywhere.
struct LogColumns {
  ColumnMapping exposures;
  ColumnMapping redemptions;
  ColumnMapping users;
  ColumnMapping coupons;
};

}  // namespace coupond::pipeline

#endif  // COUPOND_PIPELINE_LOGS_H_
