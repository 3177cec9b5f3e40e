#ifndef COUPOND_PIPELINE_INGEST_H_
#define COUPOND_PIPELINE_INGEST_H_

// Ingest and clean: canonical CSV logs (pipeline/logs.h) -> learn::TrainingData.
//
// Nothing is dropped silently. Every data row of every file ends in exactly one of:
//   kept         used (for redemptions: attributed to an exposure);
//   duplicate    an exact repeat (same field values, after trimming ids) of an earlier kept
//                row of the same file;
//   quarantined  written to the quarantine file with its source file, line, reason, detail
//                and raw text, and counted by reason.
// so that for every file: rows_read == kept + duplicates + quarantined.
//
// Quarantine reasons (QuarantineReasonName gives the snake_case names used in reports):
//   malformed_csv            the record does not parse as CSV (bad quoting, unterminated)
//   wrong_column_count       the record's width differs from the header's
//   missing_value            a required field is empty or null
//   unparsable               a number or time that does not parse
//   invalid_value            parses but is out of its domain (negative face value, ...)
//   negative_time            a time before day 0
//   time_beyond_max          a day after IngestOptions::max_day
//   unknown_coupon           exposure of a coupon absent from coupons.csv (when given)
//   unknown_user             exposure of a user absent from users.csv (when given and
//                            IngestOptions::require_known_users)
//   conflicting_duplicate_id users.csv / coupons.csv: an id seen before with other values
//   never_exposed            redemption whose (user, coupon) has no exposure at all
//   before_exposure          redemption earlier than every exposure of its (user, coupon)
//   outside_window           redemption later than redemption_window_days after every
//                            exposure of its (user, coupon) that precedes it
//
// Label rule: exposure e = (u, c, campaign, d) is positive iff a kept redemption
// (u, c, t) is attributed to it; a redemption is attributed to the latest exposure of the
// same user and coupon with d <= t <= d + redemption_window_days (ties on d: the first in
// file order). Several redemptions attributed to one exposure make one positive; its
// order_value is their sum (IngestReport::redemptions_merged counts the extra ones).
//
// Entities: users are those of users.csv (file order) followed by users first seen in
// exposures; coupons likewise with coupons.csv (without coupons.csv: first seen in
// exposures); campaigns in order of first exposure. Examples follow exposures.csv order.

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "learn/training_data.h"
#include "pipeline/csv.h"
#include "pipeline/logs.h"

namespace coupond::pipeline {

enum class QuarantineReason {
  kMalformedCsv,
  kWrongColumnCount,
  kMissingValue,
  kUnparsable,
  kInvalidValue,
  kNegativeTime,
  kTimeBeyondMax,
  kUnknownCoupon,
  kUnknownUser,
  kConflictingDuplicateId,
  kNeverExposed,
  kBeforeExposure,
  kOutsideWindow,
};
const char* QuarantineReasonName(QuarantineReason reason);

struct IngestOptions {
  LogColumns columns;                      // default: canonical names
  TimeFormat time_format = TimeFormat::kDayNumber;
  // Rows with a day after this are quarantined (time_beyond_max). Set it to the extraction
  // day to catch future-dated rows. Default: no limit beyond int32.
  int64_t max_day = std::numeric_limits<int32_t>::max();
  // A redemption counts for an exposure up to this many days after it. Default 30.
  int32_t redemption_window_days = 30;
  // Quarantine exposures of users missing from users.csv (when users.csv is given).
  // Default false: users without attributes are normal (they simply get no features).
  bool require_known_users = false;
  // users.csv / coupons.csv columns holding several values; default {"products"}.
  std::vector<std::string> multi_value_columns = {"products"};
  char multi_value_separator = ';';
  // Where quarantined rows are written as CSV (header: file,line,reason,detail,raw).
  // "" = do not write them (they are still counted). Default "".
  std::string quarantine_path;
  CsvOptions csv;                          // for every file
};

// Counts for one input file.
struct FileReport {
  std::string path;        // "" when the optional file was not given
  uint64_t bytes = 0;
  uint64_t xxh3 = 0;       // XXH3-64 of the file's bytes
  int64_t rows_read = 0;   // data records (header and blank lines excluded)
  int64_t kept = 0;
  int64_t duplicates = 0;
  std::map<std::string, int64_t> quarantined;  // reason name -> rows
  // reason name -> "line N: <detail>" of the first row quarantined for it: one example per
  // reason, for messages that cannot list every row.
  std::map<std::string, std::string> first_quarantined;
  int64_t quarantined_total() const;
};

struct IngestReport {
  FileReport exposures, redemptions, users, coupons;
  int64_t examples = 0;            // == exposures.kept
  int64_t positives = 0;           // examples with label 1
  int64_t redemptions_merged = 0;  // kept redemptions attributed to an already positive exposure
  // Distinct "column=value" features of users.csv and coupons.csv (a multi-value column
  // gives one per value; IngestOptions::multi_value_columns).
  int64_t user_features = 0, coupon_features = 0;
  // XXH3-64 over the four files' checksums in the order above (absent files count as 0);
  // the model manifest records it as the training data's identity.
  uint64_t input_checksum = 0;

  // A multi-line, human-readable summary for CLIs.
  std::string ToString() const;
};

struct IngestResult {
  learn::TrainingData data;
  IngestReport report;
};

// Quarantined rows of every file, by reason, most frequent first:
// "2078 outside_window, 38 unknown_coupon"; "" when none was quarantined.
std::string QuarantineByReason(const IngestReport& report);

// OK when the cleaned logs hold something to train on: at least one example and one
// positive. Otherwise FailedPrecondition, its message
//   "0 examples after cleaning: <QuarantineByReason>; first <reason>: exposures line N: <detail>"
// or "0 positive examples after cleaning (N examples): ..." (the example row then from
// redemptions), the first row shown being that file's first of its most frequent reason,
// so that a wrong time format or redemption window shows at once. Without any quarantined
// row the message says so and gives the rows read.
absl::Status CheckTrainable(const IngestReport& report);

// Reads, cleans and joins the logs. Returns NotFound for a missing required file,
// InvalidArgument for a file whose header lacks a required column (with file and line),
// Unavailable when the quarantine file cannot be written; bad rows never fail the call.
absl::StatusOr<IngestResult> IngestLogs(const LogPaths& paths, const IngestOptions& options);

// Parses a time field as `format` into a day number. InvalidArgument, naming what was
// expected, when it does not parse. (Exposed for adapters and tests.)
absl::StatusOr<int64_t> ParseDay(absl::string_view text, TimeFormat format);

// The names of the time formats, as couponctl's --time_format takes them: "day_number",
// "iso_date", "unix_seconds". ParseTimeFormat is exact (case-sensitive); InvalidArgument
// listing the valid names otherwise.
const char* TimeFormatName(TimeFormat format);
absl::StatusOr<TimeFormat> ParseTimeFormat(absl::string_view name);

// ------------------------------------------------------------------ time-based splits

// A split of example indices by campaign start.
struct TimeSplit {
  std::vector<uint32_t> train;       // example indices, ascending
  std::vector<uint32_t> test;        // example indices, ascending
  std::vector<uint32_t> test_campaigns;  // campaign indices, ascending
  int32_t cutoff_day = 0;            // test campaigns are those starting on or after it
};

// Holds out the latest campaigns: a campaign starts on the smallest Example::day among its
// examples in `subset` (all examples when `subset` is empty). Campaigns are taken in
// order of decreasing start day, all campaigns of one start day together, until the
// held-out examples reach `test_fraction` of the subset. So the test set is at least the
// fraction (it may be well above it when one campaign is large). InvalidArgument when
// test_fraction is not in (0, 1) or when the rule would leave no training example.
// For a validation split, pass the training indices of a first split as `subset`.
absl::StatusOr<TimeSplit> SplitByCampaignStart(const learn::TrainingData& data,
                                               double test_fraction,
                                               absl::Span<const uint32_t> subset = {});

// The same split with the cutoff given: the test campaigns are those starting on or after
// `cutoff_day` (a locked hold-out: adding later data does not move it). The test set may be
// empty; InvalidArgument when no example of `subset` starts before the cutoff or an index is
// out of range.
absl::StatusOr<TimeSplit> SplitAtDay(const learn::TrainingData& data, int32_t cutoff_day,
                                     absl::Span<const uint32_t> subset = {});

// What was known on `cutoff_day`, for a model fitted before it: every example of `examples`
// whose label is positive with label_day >= cutoff_day (redeemed on or after the cutoff)
// becomes a negative, order_value 0. Returns how many were censored. Labels of examples not
// listed are left as they are.
int64_t CensorLabelsAt(int32_t cutoff_day, absl::Span<const uint32_t> examples,
                       learn::TrainingData* data);

}  // namespace coupond::pipeline

#endif  // COUPOND_PIPELINE_INGEST_H_
