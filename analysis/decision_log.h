#ifndef COUPOND_ANALYSIS_DECISION_LOG_H_
#define COUPOND_ANALYSIS_DECISION_LOG_H_

// The decision log: one row per online decision, with what the policy could have done, how
// likely each action was, and (once the collector has joined it) what happened. It is what
// the collector's `couponctl export --decisions_out` writes and what `couponctl ope` and the
// A/B report read.
//
// CSV (RFC 4180, pipeline/csv.h), UTF-8, this header in this order:
//
//   decision_id,unix_seconds,user_key,campaign_id,arm,model_version,prices_sequence,
//   chosen_coupon_id,propensity,redeemed,order_value,candidates
//
//   decision_id       non-empty, unique per decision
//   unix_seconds      integer, when the decision was made
//   user_key          the user (an id or a pseudonymous key), may be empty
//   campaign_id       may be empty
//   arm               experiment arm name (core/experiment.h), may be empty
//   model_version     integer >= 0 (0: no model involved, e.g. a control arm)
//   prices_sequence   integer >= 0: which published prices of the campaign were used
//   chosen_coupon_id  the coupon given, or empty for "nothing"
//   propensity        the logging probability of the chosen action, in (0, 1]
//   redeemed          1, 0, or empty (no outcome reported yet)
//   order_value       number >= 0 or empty: the order's value when redeemed
//   candidates        the eligible coupons, ';'-separated, each
//                     coupon_id:probability:score:propensity
//                     (model probability p in [0, 1], budget-adjusted score
//                     p (w - lambda c) - mu, finite, and the logging probability of choosing
//                     that coupon, in [0, 1]); empty when no coupon was eligible. The
//                     propensity of "nothing" is 1 - the sum of the candidates' propensities.
//
// Then five optional columns (kDecisionLogSlateHeader; a log without them, or an empty
// field, reads as the default), for decisions that give several coupons (a slate) and for
// records the scorer's logger truncated (collector/decision_logger.h):
//
//   slots               every coupon given, in order, ';'-separated, each coupon_id:propensity
//                       (the probability of that slot given the earlier ones, in (0, 1]);
//                       slots[0] is chosen_coupon_id. Default: not recorded
//   slate_propensity    the probability of the whole slate, in (0, 1]. Default: propensity
//   max_slots           the campaign's max_coupons_per_user, >= 1. Default 1
//   candidates_total    when `candidates` was truncated, the full count. Default: complete
//   omitted_propensity  the left-out candidates' propensity sum, in [0, 1]. Default 0
//
// Consistency rules (checked on write and on read): the candidates' coupon ids are non-empty,
// unique, and contain no ':' or ';'; their propensities sum to at most 1 (+1e-6); a chosen
// coupon is among the candidates and `propensity` equals its candidate propensity, and for
// "nothing" equals 1 - sum, each within kPropensityTolerance; redeemed = 1 requires a chosen
// coupon. Numbers are written as the shortest text that reads back to the same double, so a
// log written here round-trips exactly; other writers must print at least 9 significant
// digits of each propensity so that the tolerance holds. No value is a "null" marker: only an
// empty field is missing. Columns are found by name (case-insensitive); extra columns are
// ignored, so the format can grow.

#include <cstddef>
#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace coupond::pipeline {
class CsvReader;
}  // namespace coupond::pipeline

namespace coupond::analysis {

inline constexpr char kDecisionLogHeader[] =
    "decision_id,unix_seconds,user_key,campaign_id,arm,model_version,prices_sequence,"
    "chosen_coupon_id,propensity,redeemed,order_value,candidates";

// The optional columns, after kDecisionLogHeader's, that writers add (see above).
inline constexpr char kDecisionLogSlateHeader[] =
    "slots,slate_propensity,max_slots,candidates_total,omitted_propensity";

// How far a logged propensity may be from what the candidate list implies.
inline constexpr double kPropensityTolerance = 1e-6;

struct LoggedCandidate {
  std::string coupon_id;
  double probability = 0.0;  // p: the model's redemption probability
  double score = 0.0;        // p (w - lambda c) - mu at the prices used
  double propensity = 0.0;   // logging probability of choosing this coupon
};

struct LoggedSlot {
  std::string coupon_id;
  double propensity = 1.0;  // given the slots before it
};

struct LoggedDecision {
  std::string decision_id;
  int64_t unix_seconds = 0;
  std::string user_key;
  std::string campaign_id;
  std::string arm;
  uint64_t model_version = 0;
  uint64_t prices_sequence = 0;
  std::string chosen_coupon_id;  // empty: nothing given
  double propensity = 1.0;       // of the chosen action
  std::optional<bool> redeemed;  // nullopt: no outcome reported
  std::optional<double> order_value;
  std::vector<LoggedCandidate> candidates;
  // Slates and truncation (the optional columns). Empty: not recorded.
  std::vector<LoggedSlot> slots;
  std::optional<double> slate_propensity;  // nullopt: as `propensity`
  uint32_t max_slots = 1;
  size_t candidates_total = 0;      // 0: `candidates` is complete
  double omitted_propensity = 0.0;  // propensity of the candidates left out

  // Whether the candidate list was truncated (the target policy cannot be computed).
  bool truncated() const { return candidates_total > candidates.size(); }

  // Index of the chosen action among candidates, candidates.size() for "nothing", or
  // nullopt when the chosen id is not a candidate (an invalid decision).
  std::optional<size_t> ChosenAction() const;
  // 1 - sum of the candidates' propensities - omitted_propensity, clamped at 0.
  double NothingPropensity() const;
};

// OK, or InvalidArgument naming the field ("propensity: ...", "candidates[2].score: ...",
// "chosen_coupon_id: ..."); see the consistency rules above. NaN anywhere is an error.
absl::Status ValidateLoggedDecision(const LoggedDecision& decision);

// Appends one CSV row (with its "\n") to `out`; InvalidArgument "decision 'ID': ..." if the
// decision is invalid (nothing is appended then).
absl::Status AppendDecisionLogRow(const LoggedDecision& decision, std::string* out);

// Writes the header and the rows to `path` (replacing it). InvalidArgument for an invalid
// decision (naming its index and id), Internal on an I/O error.
absl::Status WriteDecisionLog(const std::string& path, absl::Span<const LoggedDecision> decisions);

// Streams a decision log. Not thread-safe; one reader per file. Memory: one row.
class DecisionLogReader {
 public:
  // NotFound when the file cannot be opened; InvalidArgument "path:line: ..." when the header
  // lacks a column.
  static absl::StatusOr<std::unique_ptr<DecisionLogReader>> Open(const std::string& path);
  static absl::StatusOr<std::unique_ptr<DecisionLogReader>> FromStream(
      std::unique_ptr<std::istream> input, const std::string& name);

  // Reads the next row into *decision: true, or false at the end of the input.
  // InvalidArgument "name:line: field: why" on a malformed or invalid row (the file is not
  // trusted past it: analyses should not run on a log with holes), DataLoss on a read error.
  absl::StatusOr<bool> Next(LoggedDecision* decision);
  // The line where the last row read starts.
  size_t line() const { return line_; }
  const std::string& name() const;

  ~DecisionLogReader();
  DecisionLogReader(const DecisionLogReader&) = delete;
  DecisionLogReader& operator=(const DecisionLogReader&) = delete;

 private:
  explicit DecisionLogReader(std::unique_ptr<pipeline::CsvReader> csv);
  absl::Status FindColumns();

  std::unique_ptr<pipeline::CsvReader> csv_;
  std::vector<size_t> columns_;  // index in the file of each of the 12 fields
  // Index of each optional column (kDecisionLogSlateHeader's order), nullopt when absent.
  std::vector<std::optional<size_t>> optional_columns_;
  size_t line_ = 0;
};

// Reads a whole log into memory (for tests and small logs; OPE streams).
absl::StatusOr<std::vector<LoggedDecision>> ReadDecisionLog(const std::string& path);

// Parses a `candidates` field (as above). InvalidArgument "candidates[i]...: why".
absl::StatusOr<std::vector<LoggedCandidate>> ParseCandidates(absl::string_view text);

}  // namespace coupond::analysis

#endif  // COUPOND_ANALYSIS_DECISION_LOG_H_
