#include "analysis/decision_log.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "pipeline/csv.h"

namespace coupond::analysis {
namespace {

// The columns in kDecisionLogHeader's order.
enum Column : size_t {
  kDecisionId,
  kUnixSeconds,
  kUserKey,
  kCampaignId,
  kArm,
  kModelVersion,
  kPricesSequence,
  kChosenCouponId,
  kPropensity,
  kRedeemed,
  kOrderValue,
  kCandidates,
  kNumColumns,
};

constexpr const char* kColumnNames[kNumColumns] = {
    "decision_id", "unix_seconds",  "user_key",        "campaign_id",
    "arm",         "model_version", "prices_sequence", "chosen_coupon_id",
    "propensity",  "redeemed",      "order_value",     "candidates"};

// Shortest text that reads back as the same double.
void AppendDouble(double v, std::string* out) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

absl::Status CheckCouponId(absl::string_view id, absl::string_view field) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": empty"));
  if (id.find_first_of(":;") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": '", id, "' contains ':' or ';' (reserved by the candidates field)"));
  }
  return absl::OkStatus();
}

absl::Status ParseDouble(absl::string_view text, absl::string_view field, double* out) {
  if (!absl::SimpleAtod(text, out)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": '", text, "' is not a number"));
  }
  return absl::OkStatus();
}

}  // namespace

std::optional<size_t> LoggedDecision::ChosenAction() const {
  if (chosen_coupon_id.empty()) return candidates.size();
  for (size_t j = 0; j < candidates.size(); ++j) {
    if (candidates[j].coupon_id == chosen_coupon_id) return j;
  }
  return std::nullopt;
}

double LoggedDecision::NothingPropensity() const {
  double sum = 0.0;
  for (const LoggedCandidate& c : candidates) sum += c.propensity;
  sum += omitted_propensity;
  return sum >= 1.0 ? 0.0 : 1.0 - sum;
}

absl::Status ValidateLoggedDecision(const LoggedDecision& d) {
  if (d.decision_id.empty()) return absl::InvalidArgumentError("decision_id: empty");
  // Written so that NaN fails every check (comparisons with NaN are false).
  if (!(d.propensity > 0.0 && d.propensity <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("propensity: ", d.propensity, " is not in (0, 1]"));
  }
  // Field names are built only on the error path: this runs once per decision of a log.
  auto field = [](size_t j, absl::string_view name) {
    return absl::StrCat("candidates[", j, "]", name);
  };
  // Duplicate ids: a pairwise scan for the usual short lists, a hash set for long ones.
  constexpr size_t kPairwiseLimit = 16;
  absl::flat_hash_set<absl::string_view> ids;
  double sum = 0.0;
  for (size_t j = 0; j < d.candidates.size(); ++j) {
    const LoggedCandidate& c = d.candidates[j];
    if (c.coupon_id.empty() || c.coupon_id.find_first_of(":;") != std::string::npos) {
      return CheckCouponId(c.coupon_id, field(j, ".coupon_id"));
    }
    bool repeated = false;
    if (d.candidates.size() <= kPairwiseLimit) {
      for (size_t k = 0; k < j && !repeated; ++k)
        repeated = d.candidates[k].coupon_id == c.coupon_id;
    } else {
      repeated = !ids.insert(c.coupon_id).second;
    }
    if (repeated) {
      return absl::InvalidArgumentError(
          absl::StrCat(field(j, ".coupon_id"), ": '", c.coupon_id, "' appears twice"));
    }
    if (!(c.probability >= 0.0 && c.probability <= 1.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field(j, ".probability"), ": ", c.probability, " is not in [0, 1]"));
    }
    if (!std::isfinite(c.score)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field(j, ".score"), ": ", c.score, " is not finite"));
    }
    if (!(c.propensity >= 0.0 && c.propensity <= 1.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field(j, ".propensity"), ": ", c.propensity, " is not in [0, 1]"));
    }
    sum += c.propensity;
  }
  if (!(d.omitted_propensity >= 0.0 && d.omitted_propensity <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("omitted_propensity: ", d.omitted_propensity, " is not in [0, 1]"));
  }
  sum += d.omitted_propensity;
  if (sum > 1.0 + kPropensityTolerance) {
    return absl::InvalidArgumentError(
        absl::StrCat("candidates: propensities sum to ", sum, ", more than 1"));
  }
  if (d.candidates_total != 0 && d.candidates_total < d.candidates.size()) {
    return absl::InvalidArgumentError(absl::StrCat("candidates_total: ", d.candidates_total,
                                                   " is below the ", d.candidates.size(),
                                                   " candidates listed"));
  }
  if (d.max_slots < 1) return absl::InvalidArgumentError("max_slots: 0 is below 1");
  if (d.slots.size() > d.max_slots) {
    return absl::InvalidArgumentError(
        absl::StrCat("slots: ", d.slots.size(), " coupons, more than max_slots ", d.max_slots));
  }
  for (size_t s = 0; s < d.slots.size(); ++s) {
    const LoggedSlot& slot = d.slots[s];
    COUPOND_RETURN_IF_ERROR(CheckCouponId(slot.coupon_id, absl::StrCat("slots[", s, "].coupon_id")));
    if (!(slot.propensity > 0.0 && slot.propensity <= 1.0)) {
      return absl::InvalidArgumentError(absl::StrCat("slots[", s, "].propensity: ",
                                                     slot.propensity, " is not in (0, 1]"));
    }
    const bool listed = std::any_of(d.candidates.begin(), d.candidates.end(),
                                    [&](const LoggedCandidate& c) { return c.coupon_id == slot.coupon_id; });
    if (!listed) {
      return absl::InvalidArgumentError(absl::StrCat("slots[", s, "].coupon_id: '", slot.coupon_id,
                                                     "' is not among the candidates"));
    }
    for (size_t t = 0; t < s; ++t) {
      if (d.slots[t].coupon_id == slot.coupon_id) {
        return absl::InvalidArgumentError(absl::StrCat("slots[", s, "].coupon_id: '",
                                                       slot.coupon_id, "' appears twice"));
      }
    }
  }
  if (!d.slots.empty() && d.slots[0].coupon_id != d.chosen_coupon_id) {
    return absl::InvalidArgumentError(absl::StrCat("slots[0].coupon_id: '", d.slots[0].coupon_id,
                                                   "' is not chosen_coupon_id '",
                                                   d.chosen_coupon_id, "'"));
  }
  if (d.slate_propensity.has_value() &&
      !(*d.slate_propensity > 0.0 && *d.slate_propensity <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("slate_propensity: ", *d.slate_propensity, " is not in (0, 1]"));
  }
  const std::optional<size_t> chosen = d.ChosenAction();
  if (!chosen.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("chosen_coupon_id: '", d.chosen_coupon_id, "' is not among the candidates"));
  }
  const double expected =
      *chosen == d.candidates.size() ? d.NothingPropensity() : d.candidates[*chosen].propensity;
  if (!(std::fabs(d.propensity - expected) <= kPropensityTolerance)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "propensity: ", d.propensity, " does not match the candidates' ", expected, " for ",
        d.chosen_coupon_id.empty() ? std::string("nothing (1 - sum)")
                                   : absl::StrCat("'", d.chosen_coupon_id, "'")));
  }
  if (d.redeemed.value_or(false) && d.chosen_coupon_id.empty()) {
    return absl::InvalidArgumentError("redeemed: 1 but no coupon was given");
  }
  if (d.order_value.has_value() && !(std::isfinite(*d.order_value) && *d.order_value >= 0.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("order_value: ", *d.order_value, " is not finite and >= 0"));
  }
  return absl::OkStatus();
}

absl::Status AppendDecisionLogRow(const LoggedDecision& d, std::string* out) {
  if (absl::Status s = ValidateLoggedDecision(d); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("decision '", d.decision_id, "': ", s.message()));
  }
  std::string row;
  pipeline::AppendCsvField(d.decision_id, &row);
  absl::StrAppend(&row, ",", d.unix_seconds, ",");
  pipeline::AppendCsvField(d.user_key, &row);
  row += ',';
  pipeline::AppendCsvField(d.campaign_id, &row);
  row += ',';
  pipeline::AppendCsvField(d.arm, &row);
  absl::StrAppend(&row, ",", d.model_version, ",", d.prices_sequence, ",");
  pipeline::AppendCsvField(d.chosen_coupon_id, &row);
  row += ',';
  AppendDouble(d.propensity, &row);
  row += ',';
  if (d.redeemed.has_value()) row += *d.redeemed ? '1' : '0';
  row += ',';
  if (d.order_value.has_value()) AppendDouble(*d.order_value, &row);
  row += ',';
  std::string candidates;
  for (size_t j = 0; j < d.candidates.size(); ++j) {
    const LoggedCandidate& c = d.candidates[j];
    if (j > 0) candidates += ';';
    absl::StrAppend(&candidates, c.coupon_id, ":");
    AppendDouble(c.probability, &candidates);
    candidates += ':';
    AppendDouble(c.score, &candidates);
    candidates += ':';
    AppendDouble(c.propensity, &candidates);
  }
  pipeline::AppendCsvField(candidates, &row);
  // The optional columns, empty at their defaults.
  row += ',';
  std::string slots;
  for (size_t s = 0; s < d.slots.size(); ++s) {
    if (s > 0) slots += ';';
    absl::StrAppend(&slots, d.slots[s].coupon_id, ":");
    AppendDouble(d.slots[s].propensity, &slots);
  }
  pipeline::AppendCsvField(slots, &row);
  row += ',';
  if (d.slate_propensity.has_value()) AppendDouble(*d.slate_propensity, &row);
  row += ',';
  if (d.max_slots != 1) absl::StrAppend(&row, d.max_slots);
  row += ',';
  if (d.candidates_total != 0) absl::StrAppend(&row, d.candidates_total);
  row += ',';
  if (d.omitted_propensity != 0.0) AppendDouble(d.omitted_propensity, &row);
  row += '\n';
  out->append(row);
  return absl::OkStatus();
}

absl::Status WriteDecisionLog(const std::string& path, absl::Span<const LoggedDecision> decisions) {
  std::string text = absl::StrCat(kDecisionLogHeader, ",", kDecisionLogSlateHeader, "\n");
  for (size_t i = 0; i < decisions.size(); ++i) {
    if (absl::Status s = AppendDecisionLogRow(decisions[i], &text); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("decisions[", i, "]: ", s.message()));
    }
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::InternalError(absl::StrCat(path, ": cannot open for writing"));
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) return absl::InternalError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<LoggedCandidate>> ParseCandidates(absl::string_view text) {
  std::vector<LoggedCandidate> out;
  if (text.empty()) return out;
  // Field names are built only on the error path (this runs for every candidate of a log).
  auto field = [](size_t j, absl::string_view name) {
    return absl::StrCat("candidates[", j, "]", name);
  };
  size_t j = 0;
  for (absl::string_view entry : absl::StrSplit(text, ';')) {
    absl::string_view parts[4];
    size_t count = 0;
    for (absl::string_view part : absl::StrSplit(entry, ':')) {
      if (count < 4) parts[count] = part;
      ++count;
    }
    if (count != 4) {
      return absl::InvalidArgumentError(absl::StrCat(
          field(j, ""), ": '", entry, "' is not coupon_id:probability:score:propensity"));
    }
    LoggedCandidate c;
    if (parts[0].empty()) return CheckCouponId(parts[0], field(j, ".coupon_id"));
    c.coupon_id = std::string(parts[0]);
    if (!absl::SimpleAtod(parts[1], &c.probability)) {
      return ParseDouble(parts[1], field(j, ".probability"), &c.probability);
    }
    if (!absl::SimpleAtod(parts[2], &c.score)) {
      return ParseDouble(parts[2], field(j, ".score"), &c.score);
    }
    if (!absl::SimpleAtod(parts[3], &c.propensity)) {
      return ParseDouble(parts[3], field(j, ".propensity"), &c.propensity);
    }
    out.push_back(std::move(c));
    ++j;
  }
  return out;
}

namespace {

// A `slots` field: coupon_id:propensity entries, ';'-separated.
absl::StatusOr<std::vector<LoggedSlot>> ParseSlots(absl::string_view text) {
  std::vector<LoggedSlot> out;
  if (text.empty()) return out;
  for (absl::string_view entry : absl::StrSplit(text, ';')) {
    const std::vector<absl::string_view> parts = absl::StrSplit(entry, ':');
    const std::string field = absl::StrCat("slots[", out.size(), "]");
    if (parts.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": '", entry, "' is not coupon_id:propensity"));
    }
    LoggedSlot slot;
    slot.coupon_id = std::string(parts[0]);
    COUPOND_RETURN_IF_ERROR(ParseDouble(parts[1], field + ".propensity", &slot.propensity));
    out.push_back(std::move(slot));
  }
  return out;
}

}  // namespace

DecisionLogReader::DecisionLogReader(std::unique_ptr<pipeline::CsvReader> csv)
    : csv_(std::move(csv)) {}
DecisionLogReader::~DecisionLogReader() = default;

const std::string& DecisionLogReader::name() const { return csv_->name(); }

namespace {

pipeline::CsvOptions DecisionLogCsvOptions() {
  pipeline::CsvOptions options;
  options.null_markers.clear();                 // a user key or coupon id may well be "NULL"
  options.max_record_bytes = size_t{16} << 20;  // long candidate lists
  return options;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DecisionLogReader>> DecisionLogReader::Open(
    const std::string& path) {
  COUPOND_ASSIGN_OR_RETURN(std::unique_ptr<pipeline::CsvReader> csv,
                           pipeline::CsvReader::Open(path, DecisionLogCsvOptions()));
  std::unique_ptr<DecisionLogReader> reader(new DecisionLogReader(std::move(csv)));
  COUPOND_RETURN_IF_ERROR(reader->FindColumns());
  return reader;
}

absl::StatusOr<std::unique_ptr<DecisionLogReader>> DecisionLogReader::FromStream(
    std::unique_ptr<std::istream> input, const std::string& name) {
  COUPOND_ASSIGN_OR_RETURN(
      std::unique_ptr<pipeline::CsvReader> csv,
      pipeline::CsvReader::FromStream(std::move(input), name, DecisionLogCsvOptions()));
  std::unique_ptr<DecisionLogReader> reader(new DecisionLogReader(std::move(csv)));
  COUPOND_RETURN_IF_ERROR(reader->FindColumns());
  return reader;
}

absl::Status DecisionLogReader::FindColumns() {
  columns_.clear();
  for (size_t c = 0; c < kNumColumns; ++c) {
    COUPOND_ASSIGN_OR_RETURN(size_t index, csv_->RequireColumn(kColumnNames[c]));
    columns_.push_back(index);
  }
  optional_columns_.clear();
  for (absl::string_view name : absl::StrSplit(kDecisionLogSlateHeader, ',')) {
    optional_columns_.push_back(csv_->FindColumn(name));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> DecisionLogReader::Next(LoggedDecision* d) {
  COUPOND_ASSIGN_OR_RETURN(bool more, csv_->Next());
  if (!more) return false;
  const pipeline::CsvRecord& r = csv_->record();
  line_ = r.line();
  auto error = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(csv_->name(), ":", r.line(), ": ", why));
  };
  if (!r.ok()) return error(r.error());
  if (r.size() < csv_->header().size()) {
    return error(
        absl::StrCat("the row has ", r.size(), " fields, the header ", csv_->header().size()));
  }
  auto text = [&](Column c) { return r.Text(columns_[c]); };
  auto parse = [&]() -> absl::Status {
    *d = LoggedDecision();
    d->decision_id = std::string(text(kDecisionId));
    if (!absl::SimpleAtoi(text(kUnixSeconds), &d->unix_seconds)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unix_seconds: '", text(kUnixSeconds), "' is not an integer"));
    }
    d->user_key = std::string(text(kUserKey));
    d->campaign_id = std::string(text(kCampaignId));
    d->arm = std::string(text(kArm));
    if (!absl::SimpleAtoi(text(kModelVersion), &d->model_version)) {
      return absl::InvalidArgumentError(
          absl::StrCat("model_version: '", text(kModelVersion), "' is not an integer >= 0"));
    }
    if (!absl::SimpleAtoi(text(kPricesSequence), &d->prices_sequence)) {
      return absl::InvalidArgumentError(
          absl::StrCat("prices_sequence: '", text(kPricesSequence), "' is not an integer >= 0"));
    }
    d->chosen_coupon_id = std::string(text(kChosenCouponId));
    COUPOND_RETURN_IF_ERROR(ParseDouble(text(kPropensity), "propensity", &d->propensity));
    const absl::string_view redeemed = text(kRedeemed);
    if (redeemed == "1") {
      d->redeemed = true;
    } else if (redeemed == "0") {
      d->redeemed = false;
    } else if (!redeemed.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("redeemed: '", redeemed, "' is not 0, 1 or empty"));
    }
    if (!text(kOrderValue).empty()) {
      double v = 0.0;
      COUPOND_RETURN_IF_ERROR(ParseDouble(text(kOrderValue), "order_value", &v));
      d->order_value = v;
    }
    COUPOND_ASSIGN_OR_RETURN(d->candidates, ParseCandidates(text(kCandidates)));
    // The optional columns, in kDecisionLogSlateHeader's order; absent or empty: default.
    auto optional = [&](size_t i) -> absl::string_view {
      return optional_columns_[i].has_value() ? r.Text(*optional_columns_[i]) : absl::string_view();
    };
    COUPOND_ASSIGN_OR_RETURN(d->slots, ParseSlots(optional(0)));
    if (!optional(1).empty()) {
      double v = 0.0;
      COUPOND_RETURN_IF_ERROR(ParseDouble(optional(1), "slate_propensity", &v));
      d->slate_propensity = v;
    }
    if (!optional(2).empty() && !absl::SimpleAtoi(optional(2), &d->max_slots)) {
      return absl::InvalidArgumentError(
          absl::StrCat("max_slots: '", optional(2), "' is not an integer >= 1"));
    }
    if (!optional(3).empty() && !absl::SimpleAtoi(optional(3), &d->candidates_total)) {
      return absl::InvalidArgumentError(
          absl::StrCat("candidates_total: '", optional(3), "' is not an integer >= 0"));
    }
    if (!optional(4).empty()) {
      COUPOND_RETURN_IF_ERROR(ParseDouble(optional(4), "omitted_propensity", &d->omitted_propensity));
    }
    return ValidateLoggedDecision(*d);
  };
  if (absl::Status s = parse(); !s.ok()) return error(s.message());
  return true;
}

absl::StatusOr<std::vector<LoggedDecision>> ReadDecisionLog(const std::string& path) {
  COUPOND_ASSIGN_OR_RETURN(std::unique_ptr<DecisionLogReader> reader,
                           DecisionLogReader::Open(path));
  std::vector<LoggedDecision> out;
  LoggedDecision d;
  while (true) {
    COUPOND_ASSIGN_OR_RETURN(bool more, reader->Next(&d));
    if (!more) break;
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace coupond::analysis
