#include "pipeline/ingest.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "common/status_macros.h"
#include "xxhash.h"

namespace coupond::pipeline {

const char* QuarantineReasonName(QuarantineReason reason) {
  switch (reason) {
    case QuarantineReason::kMalformedCsv: return "malformed_csv";
    case QuarantineReason::kWrongColumnCount: return "wrong_column_count";
    case QuarantineReason::kMissingValue: return "missing_value";
    case QuarantineReason::kUnparsable: return "unparsable";
    case QuarantineReason::kInvalidValue: return "invalid_value";
    case QuarantineReason::kNegativeTime: return "negative_time";
    case QuarantineReason::kTimeBeyondMax: return "time_beyond_max";
    case QuarantineReason::kUnknownCoupon: return "unknown_coupon";
    case QuarantineReason::kUnknownUser: return "unknown_user";
    case QuarantineReason::kConflictingDuplicateId: return "conflicting_duplicate_id";
    case QuarantineReason::kNeverExposed: return "never_exposed";
    case QuarantineReason::kBeforeExposure: return "before_exposure";
    case QuarantineReason::kOutsideWindow: return "outside_window";
  }
  return "unknown";
}

int64_t FileReport::quarantined_total() const {
  int64_t total = 0;
  for (const auto& [reason, n] : quarantined) total += n;
  return total;
}

std::string IngestReport::ToString() const {
  std::string out;
  auto file = [&](const char* name, const FileReport& f) {
    if (f.path.empty()) {
      absl::StrAppend(&out, name, ": (not given)\n");
      return;
    }
    absl::StrAppendFormat(&out,
                          "%s: %s (%d bytes, xxh3 %016x)\n  read %d, kept %d, duplicates %d, "
                          "quarantined %d\n",
                          name, f.path, f.bytes, f.xxh3, f.rows_read, f.kept, f.duplicates,
                          f.quarantined_total());
    for (const auto& [reason, n] : f.quarantined) {
      absl::StrAppendFormat(&out, "    %s: %d\n", reason, n);
    }
  };
  file("exposures", exposures);
  file("redemptions", redemptions);
  file("users", users);
  file("coupons", coupons);
  absl::StrAppendFormat(&out,
                        "examples %d, positives %d, redemptions merged into a positive %d\n"
                        "attribute features (column=value): users %d, coupons %d\n"
                        "input checksum %016x\n",
                        examples, positives, redemptions_merged, user_features,
                        coupon_features, input_checksum);
  return out;
}

absl::StatusOr<int64_t> ParseDay(absl::string_view text, TimeFormat format) {
  text = absl::StripAsciiWhitespace(text);
  switch (format) {
    case TimeFormat::kDayNumber: {
      int64_t day = 0;
      if (absl::SimpleAtoi(text, &day)) return day;
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "' is not a day number (time format day_number)"));
    }
    case TimeFormat::kIsoDate: {
      absl::CivilDay day;
      if (text.size() == 10 && absl::ParseCivilTime(text, &day)) {
        return static_cast<int64_t>(day - absl::CivilDay(1970, 1, 1));
      }
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "' is not a date YYYY-MM-DD (time format iso_date)"));
    }
    case TimeFormat::kUnixSeconds: {
      int64_t seconds = 0;
      if (absl::SimpleAtoi(text, &seconds)) {
        // Floor division: -1 s is day -1, not day 0. Written without negating `seconds`,
        // which overflows for INT64_MIN.
        return seconds / 86400 - (seconds % 86400 < 0 ? 1 : 0);
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "'", text, "' is not an integer of seconds (time format unix_seconds)"));
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a valid time"));
}

const char* TimeFormatName(TimeFormat format) {
  switch (format) {
    case TimeFormat::kDayNumber: return "day_number";
    case TimeFormat::kIsoDate: return "iso_date";
    case TimeFormat::kUnixSeconds: return "unix_seconds";
  }
  return "unknown";
}

absl::StatusOr<TimeFormat> ParseTimeFormat(absl::string_view name) {
  for (TimeFormat f : {TimeFormat::kDayNumber, TimeFormat::kIsoDate, TimeFormat::kUnixSeconds}) {
    if (name == TimeFormatName(f)) return f;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "'", name, "' is not a time format (day_number, iso_date or unix_seconds)"));
}

namespace {

// Quarantined rows of every file by reason, most frequent first (ties: by name).
std::vector<std::pair<std::string, int64_t>> QuarantineCountsByReason(const IngestReport& report) {
  std::map<std::string, int64_t> total;
  for (const FileReport* f : {&report.exposures, &report.redemptions, &report.users,
                              &report.coupons}) {
    for (const auto& [reason, n] : f->quarantined) total[reason] += n;
  }
  std::vector<std::pair<std::string, int64_t>> sorted(total.begin(), total.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return sorted;
}

}  // namespace

std::string QuarantineByReason(const IngestReport& report) {
  std::string out;
  for (const auto& [reason, n] : QuarantineCountsByReason(report)) {
    absl::StrAppend(&out, out.empty() ? "" : ", ", n, " ", reason);
  }
  return out;
}

absl::Status CheckTrainable(const IngestReport& report) {
  if (report.examples > 0 && report.positives > 0) return absl::OkStatus();
  std::string message =
      report.examples == 0
          ? std::string("0 examples after cleaning: ")
          : absl::StrCat("0 positive examples after cleaning (", report.examples,
                         " examples): ");
  if (QuarantineCountsByReason(report).empty()) {
    absl::StrAppend(&message, "no row was quarantined (exposures: ", report.exposures.rows_read,
                    " rows read; redemptions: ", report.redemptions.rows_read, " rows read)");
    return absl::FailedPreconditionError(message);
  }
  absl::StrAppend(&message, QuarantineByReason(report));
  // One example of the explaining file's most frequent reason (exposures for no example,
  // redemptions for no positive), e.g. the time that did not parse.
  const bool no_examples = report.examples == 0;
  const FileReport& file = no_examples ? report.exposures : report.redemptions;
  const std::string* top = nullptr;
  int64_t most = 0;
  for (const auto& [reason, n] : file.quarantined) {
    if (n > most) most = n, top = &reason;
  }
  if (top != nullptr) {
    auto it = file.first_quarantined.find(*top);
    if (it != file.first_quarantined.end()) {
      absl::StrAppend(&message, "; first ", *top, ": ", no_examples ? "exposures " : "redemptions ",
                      it->second);
    }
  }
  return absl::FailedPreconditionError(message);
}

namespace {

// What became of one data row.
struct Verdict {
  enum Kind { kKept, kDuplicate, kQuarantined } kind = kKept;
  QuarantineReason reason = QuarantineReason::kMalformedCsv;
  std::string detail;

  static Verdict Kept() { return {}; }
  static Verdict Duplicate() { return {kDuplicate, QuarantineReason::kMalformedCsv, {}}; }
  static Verdict Quarantine(QuarantineReason reason, std::string detail) {
    return {kQuarantined, reason, std::move(detail)};
  }
};

// The quarantine CSV file (or a sink that only counts).
class QuarantineSink {
 public:
  absl::Status Open(const std::string& path) {
    if (path.empty()) return absl::OkStatus();
    out_ = std::make_unique<std::ofstream>(path, std::ios::binary | std::ios::trunc);
    if (!*out_) return absl::UnavailableError(absl::StrCat("cannot write ", path));
    *out_ << "file,line,reason,detail,raw\n";
    path_ = path;
    return absl::OkStatus();
  }
  void Write(absl::string_view file, size_t line, QuarantineReason reason,
             absl::string_view detail, absl::string_view raw) {
    if (out_ == nullptr) return;
    std::string row;
    AppendCsvField(file, &row);
    absl::StrAppend(&row, ",", line, ",", QuarantineReasonName(reason), ",");
    AppendCsvField(detail, &row);
    row.push_back(',');
    AppendCsvField(raw, &row);
    row.push_back('\n');
    *out_ << row;
  }
  absl::Status Close() {
    if (out_ == nullptr) return absl::OkStatus();
    out_->flush();
    if (!*out_) return absl::DataLossError(absl::StrCat("error writing ", path_));
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<std::ofstream> out_;
  std::string path_;
};

// A required column is named as mapped; returns its index or InvalidArgument.
absl::StatusOr<size_t> Required(const CsvReader& reader, const ColumnMapping& mapping,
                                absl::string_view canonical) {
  return reader.RequireColumn(mapping.Resolve(canonical));
}
std::optional<size_t> Optional(const CsvReader& reader, const ColumnMapping& mapping,
                               absl::string_view canonical) {
  return reader.FindColumn(mapping.Resolve(canonical));
}

// Interns strings to dense indices in order of first appearance.
class Interner {
 public:
  uint32_t Intern(absl::string_view s, std::vector<std::string>* names) {
    auto [it, inserted] = index_.try_emplace(s, static_cast<uint32_t>(names->size()));
    if (inserted) names->emplace_back(s);
    return it->second;
  }
  std::optional<uint32_t> Find(absl::string_view s) const {
    auto it = index_.find(s);
    if (it == index_.end()) return std::nullopt;
    return it->second;
  }

 private:
  absl::flat_hash_map<std::string, uint32_t> index_;
};

// The key that makes two rows "exact duplicates": every field's text, ids trimmed.
std::string RowKey(const CsvRecord& record) {
  std::string key;
  for (size_t i = 0; i < record.size(); ++i) {
    absl::StrAppend(&key, absl::StripAsciiWhitespace(record.Text(i)), "\x1f");
  }
  return key;
}

class Ingester {
 public:
  explicit Ingester(const IngestOptions& options) : options_(options) {}

  absl::StatusOr<IngestResult> Run(const LogPaths& paths) {
    if (paths.exposures.empty() || paths.redemptions.empty()) {
      return absl::InvalidArgumentError("LogPaths: exposures and redemptions are required");
    }
    if (options_.redemption_window_days < 0) {
      return absl::InvalidArgumentError("IngestOptions.redemption_window_days: must be >= 0");
    }
    COUPOND_RETURN_IF_ERROR(sink_.Open(options_.quarantine_path));
    IngestReport& report = result_.report;
    if (!paths.coupons.empty()) COUPOND_RETURN_IF_ERROR(ReadCoupons(paths.coupons));
    if (!paths.users.empty()) COUPOND_RETURN_IF_ERROR(ReadUsers(paths.users));
    COUPOND_RETURN_IF_ERROR(ReadExposures(paths.exposures));
    COUPOND_RETURN_IF_ERROR(ReadRedemptions(paths.redemptions));
    COUPOND_RETURN_IF_ERROR(sink_.Close());
    Finish();

    uint8_t bytes[32];
    const FileReport* files[] = {&report.exposures, &report.redemptions, &report.users,
                                 &report.coupons};
    for (int f = 0; f < 4; ++f) {
      for (int b = 0; b < 8; ++b) bytes[f * 8 + b] = static_cast<uint8_t>(files[f]->xxh3 >> (8 * b));
    }
    report.input_checksum = XXH3_64bits(bytes, sizeof(bytes));
    if (absl::Status s = result_.data.Validate(); !s.ok()) {
      return absl::InternalError(absl::StrCat("ingest produced invalid data: ", s.message()));
    }
    return std::move(result_);
  }

 private:
  // Reads every data row of `path`, handles malformed records, wrong widths and exact
  // duplicates, and asks `judge` about the rest. `judge` returns kKept or kQuarantined;
  // a kept row's key is remembered so that its repeats count as duplicates.
  template <typename Judge>
  absl::Status ForEachRow(const std::string& path, FileReport* report,
                          const std::function<absl::Status(const CsvReader&)>& on_header,
                          Judge&& judge) {
    report->path = path;
    COUPOND_ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> reader,
                             CsvReader::Open(path, options_.csv));
    COUPOND_RETURN_IF_ERROR(on_header(*reader));
    const size_t width = reader->header().size();
    absl::flat_hash_set<std::string> kept_keys;
    for (;;) {
      COUPOND_ASSIGN_OR_RETURN(const bool more, reader->Next());
      if (!more) break;
      const CsvRecord& record = reader->record();
      ++report->rows_read;
      Verdict verdict;
      std::string key;
      if (!record.ok()) {
        verdict = Verdict::Quarantine(QuarantineReason::kMalformedCsv, record.error());
      } else if (record.size() != width) {
        verdict = Verdict::Quarantine(
            QuarantineReason::kWrongColumnCount,
            absl::StrCat("has ", record.size(), " columns, the header has ", width));
      } else {
        key = RowKey(record);
        if (kept_keys.contains(key)) {
          verdict = Verdict::Duplicate();
        } else {
          verdict = judge(record);
        }
      }
      switch (verdict.kind) {
        case Verdict::kKept:
          ++report->kept;
          kept_keys.insert(std::move(key));
          break;
        case Verdict::kDuplicate:
          ++report->duplicates;
          break;
        case Verdict::kQuarantined:
          ++report->quarantined[QuarantineReasonName(verdict.reason)];
          report->first_quarantined.try_emplace(
              QuarantineReasonName(verdict.reason),
              absl::StrCat("line ", record.line(), ": ", verdict.detail));
          sink_.Write(path, record.line(), verdict.reason, verdict.detail, record.raw());
          break;
      }
    }
    report->bytes = reader->bytes_read();
    report->xxh3 = reader->checksum();
    return absl::OkStatus();
  }

  // A required field: trimmed text, or a missing_value verdict.
  static std::optional<Verdict> RequireField(const CsvRecord& record, size_t column,
                                             absl::string_view name, absl::string_view* out) {
    std::optional<absl::string_view> v = record.Get(column);
    if (v.has_value()) *out = absl::StripAsciiWhitespace(*v);
    if (!v.has_value() || out->empty()) {
      return Verdict::Quarantine(QuarantineReason::kMissingValue,
                                 absl::StrCat("column '", name, "': no value"));
    }
    return std::nullopt;
  }

  // A time field as a checked day number.
  std::optional<Verdict> DayField(const CsvRecord& record, size_t column, absl::string_view name,
                                  int32_t* day) const {
    absl::string_view text;
    if (auto v = RequireField(record, column, name, &text)) return v;
    absl::StatusOr<int64_t> parsed = ParseDay(text, options_.time_format);
    if (!parsed.ok()) {
      return Verdict::Quarantine(QuarantineReason::kUnparsable,
                                 absl::StrCat("column '", name, "': ", parsed.status().message()));
    }
    if (*parsed < 0) {
      return Verdict::Quarantine(QuarantineReason::kNegativeTime,
                                 absl::StrCat("column '", name, "': day ", *parsed, " < 0"));
    }
    if (*parsed > options_.max_day || *parsed > std::numeric_limits<int32_t>::max()) {
      return Verdict::Quarantine(
          QuarantineReason::kTimeBeyondMax,
          absl::StrCat("column '", name, "': day ", *parsed, " > max_day ", options_.max_day));
    }
    *day = static_cast<int32_t>(*parsed);
    return std::nullopt;
  }

  // Attribute columns of users.csv / coupons.csv: every column not reserved.
  struct AttributeColumns {
    std::vector<size_t> index;
    std::vector<std::string> name;
    std::vector<bool> multi;
  };
  AttributeColumns Attributes(const CsvReader& reader,
                              const std::vector<size_t>& reserved) const {
    AttributeColumns a;
    for (size_t i = 0; i < reader.header().size(); ++i) {
      if (std::find(reserved.begin(), reserved.end(), i) != reserved.end()) continue;
      a.index.push_back(i);
      a.name.push_back(reader.header()[i]);
      bool multi = false;
      for (const std::string& m : options_.multi_value_columns) {
        multi = multi || absl::EqualsIgnoreCase(m, reader.header()[i]);
      }
      a.multi.push_back(multi);
    }
    return a;
  }
  static std::vector<uint32_t> RowFeatures(const CsvRecord& record, const AttributeColumns& a,
                                           char separator, Interner* interner,
                                           std::vector<std::string>* names) {
    std::vector<uint32_t> row;
    for (size_t k = 0; k < a.index.size(); ++k) {
      std::optional<absl::string_view> v = record.Get(a.index[k]);
      if (!v.has_value()) continue;
      auto add = [&](absl::string_view value) {
        value = absl::StripAsciiWhitespace(value);
        if (!value.empty()) row.push_back(interner->Intern(absl::StrCat(a.name[k], "=", value), names));
      };
      if (a.multi[k]) {
        for (absl::string_view part : absl::StrSplit(*v, separator)) add(part);
      } else {
        add(*v);
      }
    }
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    return row;
  }

  absl::Status ReadCoupons(const std::string& path) {
    have_coupons_ = true;
    const ColumnMapping& m = options_.columns.coupons;
    size_t id = 0;
    std::optional<size_t> face, from, until, stock;
    AttributeColumns attributes;
    auto on_header = [&](const CsvReader& r) -> absl::Status {
      COUPOND_ASSIGN_OR_RETURN(id, Required(r, m, "coupon_id"));
      face = Optional(r, m, "face_value");
      from = Optional(r, m, "valid_from");
      until = Optional(r, m, "valid_until");
      stock = Optional(r, m, "stock");
      std::vector<size_t> reserved = {id};
      for (const auto& c : {face, from, until, stock}) {
        if (c.has_value()) reserved.push_back(*c);
      }
      attributes = Attributes(r, reserved);
      return absl::OkStatus();
    };
    learn::TrainingData& data = result_.data;
    return ForEachRow(path, &result_.report.coupons, on_header, [&](const CsvRecord& rec) {
      absl::string_view coupon;
      if (auto v = RequireField(rec, id, m.Resolve("coupon_id"), &coupon)) return *v;
      core::CouponAttributes a;
      auto integer = [&](std::optional<size_t> column, absl::string_view name, int64_t min,
                         int64_t* out) -> std::optional<Verdict> {
        if (!column.has_value()) return std::nullopt;
        std::optional<absl::string_view> text = rec.Get(*column);
        if (!text.has_value()) return std::nullopt;
        if (!absl::SimpleAtoi(*text, out)) {
          return Verdict::Quarantine(QuarantineReason::kUnparsable,
                                     absl::StrCat("column '", name, "': '", *text,
                                                  "' is not an integer"));
        }
        if (*out < min) {
          return Verdict::Quarantine(QuarantineReason::kInvalidValue,
                                     absl::StrCat("column '", name, "': ", *out, " < ", min));
        }
        return std::nullopt;
      };
      if (face.has_value()) {
        if (std::optional<absl::string_view> text = rec.Get(*face)) {
          if (!absl::SimpleAtod(*text, &a.face_value) || !std::isfinite(a.face_value)) {
            return Verdict::Quarantine(QuarantineReason::kUnparsable,
                                       absl::StrCat("column 'face_value': '", *text,
                                                    "' is not a finite number"));
          }
          if (a.face_value < 0) {
            return Verdict::Quarantine(QuarantineReason::kInvalidValue,
                                       absl::StrCat("column 'face_value': ", *text, " < 0"));
          }
        }
      }
      if (auto v = integer(from, "valid_from", 0, &a.valid_from_unix_seconds)) return *v;
      if (auto v = integer(until, "valid_until", 0, &a.valid_until_unix_seconds)) return *v;
      if (auto v = integer(stock, "stock", -1, &a.stock)) return *v;
      if (a.valid_from_unix_seconds != 0 && a.valid_until_unix_seconds != 0 &&
          a.valid_until_unix_seconds <= a.valid_from_unix_seconds) {
        return Verdict::Quarantine(QuarantineReason::kInvalidValue,
                                   "valid_until is not after valid_from");
      }
      if (coupon_index_.Find(coupon).has_value()) {
        return Verdict::Quarantine(QuarantineReason::kConflictingDuplicateId,
                                   absl::StrCat("coupon_id '", coupon,
                                                "' appeared before with other values"));
      }
      coupon_index_.Intern(coupon, &data.coupon_ids);
      data.coupon_attributes.push_back(a);
      coupon_rows_.push_back(RowFeatures(rec, attributes, options_.multi_value_separator,
                                         &coupon_feature_index_, &data.coupon_features.names));
      return Verdict::Kept();
    });
  }

  absl::Status ReadUsers(const std::string& path) {
    have_users_ = true;
    const ColumnMapping& m = options_.columns.users;
    size_t id = 0;
    AttributeColumns attributes;
    auto on_header = [&](const CsvReader& r) -> absl::Status {
      COUPOND_ASSIGN_OR_RETURN(id, Required(r, m, "user_id"));
      attributes = Attributes(r, {id});
      return absl::OkStatus();
    };
    learn::TrainingData& data = result_.data;
    return ForEachRow(path, &result_.report.users, on_header, [&](const CsvRecord& rec) {
      absl::string_view user;
      if (auto v = RequireField(rec, id, m.Resolve("user_id"), &user)) return *v;
      if (user_index_.Find(user).has_value()) {
        return Verdict::Quarantine(QuarantineReason::kConflictingDuplicateId,
                                   absl::StrCat("user_id '", user,
                                                "' appeared before with other values"));
      }
      user_index_.Intern(user, &data.user_ids);
      user_rows_.push_back(RowFeatures(rec, attributes, options_.multi_value_separator,
                                       &user_feature_index_, &data.user_features.names));
      return Verdict::Kept();
    });
  }

  absl::Status ReadExposures(const std::string& path) {
    const ColumnMapping& m = options_.columns.exposures;
    size_t user = 0, coupon = 0, time = 0;
    std::optional<size_t> campaign;
    auto on_header = [&](const CsvReader& r) -> absl::Status {
      COUPOND_ASSIGN_OR_RETURN(user, Required(r, m, "user_id"));
      COUPOND_ASSIGN_OR_RETURN(coupon, Required(r, m, "coupon_id"));
      COUPOND_ASSIGN_OR_RETURN(time, Required(r, m, "time"));
      campaign = Optional(r, m, "campaign_id");
      return absl::OkStatus();
    };
    learn::TrainingData& data = result_.data;
    COUPOND_RETURN_IF_ERROR(
        ForEachRow(path, &result_.report.exposures, on_header, [&](const CsvRecord& rec) {
          absl::string_view u, c;
          int32_t day = 0;
          if (auto v = RequireField(rec, user, m.Resolve("user_id"), &u)) return *v;
          if (auto v = RequireField(rec, coupon, m.Resolve("coupon_id"), &c)) return *v;
          if (auto v = DayField(rec, time, m.Resolve("time"), &day)) return *v;
          std::optional<uint32_t> ci = coupon_index_.Find(c);
          if (have_coupons_ && !ci.has_value()) {
            return Verdict::Quarantine(QuarantineReason::kUnknownCoupon,
                                       absl::StrCat("coupon_id '", c, "' is not in coupons.csv"));
          }
          std::optional<uint32_t> ui = user_index_.Find(u);
          if (have_users_ && options_.require_known_users && !ui.has_value()) {
            return Verdict::Quarantine(QuarantineReason::kUnknownUser,
                                       absl::StrCat("user_id '", u, "' is not in users.csv"));
          }
          learn::Example e;
          e.user = ui.has_value() ? *ui : user_index_.Intern(u, &data.user_ids);
          if (ci.has_value()) {
            e.coupon = *ci;
          } else {
            e.coupon = coupon_index_.Intern(c, &data.coupon_ids);
            if (data.coupon_attributes.size() < data.coupon_ids.size()) {
              data.coupon_attributes.emplace_back();
            }
          }
          absl::string_view campaign_id;
          if (campaign.has_value()) {
            campaign_id = absl::StripAsciiWhitespace(rec.Get(*campaign).value_or(""));
          }
          e.campaign = campaign_index_.Intern(campaign_id, &data.campaign_ids);
          e.day = day;
          data.examples.push_back(e);
          return Verdict::Kept();
        }));
    // Index exposures by (user, coupon), sorted by (day, file order), for attribution.
    for (uint32_t i = 0; i < data.examples.size(); ++i) {
      const learn::Example& e = data.examples[i];
      exposures_[PairKey(e.user, e.coupon)].push_back({e.day, i});
    }
    for (auto& [key, list] : exposures_) std::sort(list.begin(), list.end());
    return absl::OkStatus();
  }

  absl::Status ReadRedemptions(const std::string& path) {
    const ColumnMapping& m = options_.columns.redemptions;
    size_t user = 0, coupon = 0, time = 0;
    std::optional<size_t> value;
    auto on_header = [&](const CsvReader& r) -> absl::Status {
      COUPOND_ASSIGN_OR_RETURN(user, Required(r, m, "user_id"));
      COUPOND_ASSIGN_OR_RETURN(coupon, Required(r, m, "coupon_id"));
      COUPOND_ASSIGN_OR_RETURN(time, Required(r, m, "time"));
      value = Optional(r, m, "order_value");
      return absl::OkStatus();
    };
    learn::TrainingData& data = result_.data;
    const int32_t window = options_.redemption_window_days;
    return ForEachRow(path, &result_.report.redemptions, on_header, [&](const CsvRecord& rec) {
      absl::string_view u, c;
      int32_t day = 0;
      if (auto v = RequireField(rec, user, m.Resolve("user_id"), &u)) return *v;
      if (auto v = RequireField(rec, coupon, m.Resolve("coupon_id"), &c)) return *v;
      if (auto v = DayField(rec, time, m.Resolve("time"), &day)) return *v;
      double order_value = 0;
      if (value.has_value()) {
        if (std::optional<absl::string_view> text = rec.Get(*value)) {
          if (!absl::SimpleAtod(*text, &order_value) || !std::isfinite(order_value)) {
            return Verdict::Quarantine(QuarantineReason::kUnparsable,
                                       absl::StrCat("column 'order_value': '", *text,
                                                    "' is not a finite number"));
          }
          if (order_value < 0) {
            return Verdict::Quarantine(QuarantineReason::kInvalidValue,
                                       absl::StrCat("column 'order_value': ", *text, " < 0"));
          }
        }
      }
      std::optional<uint32_t> ui = user_index_.Find(u);
      std::optional<uint32_t> ci = coupon_index_.Find(c);
      auto it = ui.has_value() && ci.has_value() ? exposures_.find(PairKey(*ui, *ci))
                                                 : exposures_.end();
      if (it == exposures_.end()) {
        return Verdict::Quarantine(QuarantineReason::kNeverExposed,
                                   absl::StrCat("user '", u, "' was never exposed to coupon '", c,
                                                "'"));
      }
      const std::vector<std::pair<int32_t, uint32_t>>& list = it->second;
      // The latest exposure day <= day; among equal days the first in file order.
      auto after = std::upper_bound(list.begin(), list.end(),
                                    std::make_pair(day, std::numeric_limits<uint32_t>::max()));
      if (after == list.begin()) {
        return Verdict::Quarantine(
            QuarantineReason::kBeforeExposure,
            absl::StrCat("redeemed on day ", day, ", first exposure on day ", list.front().first));
      }
      const int32_t exposure_day = std::prev(after)->first;
      if (static_cast<int64_t>(day) > static_cast<int64_t>(exposure_day) + window) {
        return Verdict::Quarantine(
            QuarantineReason::kOutsideWindow,
            absl::StrCat("redeemed on day ", day, ", latest exposure on day ", exposure_day,
                         " (window ", window, " days)"));
      }
      const uint32_t example = std::lower_bound(list.begin(), list.end(),
                                                std::make_pair(exposure_day, uint32_t{0}))
                                   ->second;
      learn::Example& e = data.examples[example];
      if (e.label == 1.0f) {
        ++result_.report.redemptions_merged;
        e.label_day = std::min(e.label_day, day);
      } else {
        e.label_day = day;
      }
      e.label = 1.0f;
      e.order_value += static_cast<float>(order_value);
      return Verdict::Kept();
    });
  }

  void Finish() {
    learn::TrainingData& data = result_.data;
    user_rows_.resize(data.user_ids.size());
    coupon_rows_.resize(data.coupon_ids.size());
    data.coupon_attributes.resize(data.coupon_ids.size());
    for (const auto& row : user_rows_) data.user_features.AddRow(row);
    for (const auto& row : coupon_rows_) data.coupon_features.AddRow(row);
    IngestReport& report = result_.report;
    report.examples = static_cast<int64_t>(data.examples.size());
    for (const learn::Example& e : data.examples) report.positives += e.label == 1.0f ? 1 : 0;
    report.user_features = static_cast<int64_t>(data.user_features.names.size());
    report.coupon_features = static_cast<int64_t>(data.coupon_features.names.size());
  }

  static uint64_t PairKey(uint32_t user, uint32_t coupon) {
    return (static_cast<uint64_t>(user) << 32) | coupon;
  }

  const IngestOptions& options_;
  IngestResult result_;
  QuarantineSink sink_;
  bool have_users_ = false, have_coupons_ = false;
  Interner user_index_, coupon_index_, campaign_index_;
  Interner user_feature_index_, coupon_feature_index_;
  std::vector<std::vector<uint32_t>> user_rows_, coupon_rows_;
  absl::flat_hash_map<uint64_t, std::vector<std::pair<int32_t, uint32_t>>> exposures_;
};

}  // namespace

absl::StatusOr<IngestResult> IngestLogs(const LogPaths& paths, const IngestOptions& options) {
  Ingester ingester(options);
  return ingester.Run(paths);
}

namespace {

// Campaign start days (smallest Example::day in `subset`) and example counts, for the splits.
struct CampaignStarts {
  std::vector<int32_t> start;
  std::vector<size_t> count;
};

absl::StatusOr<CampaignStarts> StartsOf(const learn::TrainingData& data,
                                        absl::Span<const uint32_t> subset) {
  const size_t campaigns = std::max<size_t>(data.campaign_ids.size(), 1);
  CampaignStarts s;
  s.start.assign(campaigns, std::numeric_limits<int32_t>::max());
  s.count.assign(campaigns, 0);
  for (uint32_t i : subset) {
    if (i >= data.examples.size() || data.examples[i].campaign >= campaigns) {
      return absl::InvalidArgumentError(absl::StrCat("subset: example ", i, " out of range"));
    }
    const learn::Example& e = data.examples[i];
    s.start[e.campaign] = std::min(s.start[e.campaign], e.day);
    ++s.count[e.campaign];
  }
  return s;
}

std::vector<uint32_t> AllExamples(const learn::TrainingData& data) {
  std::vector<uint32_t> all(data.examples.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint32_t>(i);
  return all;
}

// Fills split's campaigns and example lists for split->cutoff_day.
void AssignByCutoff(const learn::TrainingData& data, absl::Span<const uint32_t> subset,
                    const CampaignStarts& s, TimeSplit* split) {
  for (size_t c = 0; c < s.start.size(); ++c) {
    if (s.count[c] > 0 && s.start[c] >= split->cutoff_day) {
      split->test_campaigns.push_back(static_cast<uint32_t>(c));
    }
  }
  for (uint32_t i : subset) {
    (s.start[data.examples[i].campaign] >= split->cutoff_day ? split->test : split->train)
        .push_back(i);
  }
  std::sort(split->train.begin(), split->train.end());
  std::sort(split->test.begin(), split->test.end());
}

}  // namespace

absl::StatusOr<TimeSplit> SplitByCampaignStart(const learn::TrainingData& data,
                                               double test_fraction,
                                               absl::Span<const uint32_t> subset) {
  if (!(test_fraction > 0.0 && test_fraction < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("test_fraction: ", test_fraction, " is not in (0, 1)"));
  }
  std::vector<uint32_t> all;
  if (subset.empty()) {
    all = AllExamples(data);
    subset = all;
  }
  COUPOND_ASSIGN_OR_RETURN(const CampaignStarts s, StartsOf(data, subset));
  // Start days, latest first; take whole days until the fraction is reached.
  std::vector<int32_t> days;
  for (size_t c = 0; c < s.start.size(); ++c) {
    if (s.count[c] > 0) days.push_back(s.start[c]);
  }
  std::sort(days.begin(), days.end(), std::greater<>());
  days.erase(std::unique(days.begin(), days.end()), days.end());
  const double target = test_fraction * static_cast<double>(subset.size());
  TimeSplit split;
  size_t held = 0;
  for (int32_t day : days) {
    for (size_t c = 0; c < s.start.size(); ++c) {
      if (s.count[c] > 0 && s.start[c] == day) held += s.count[c];
    }
    split.cutoff_day = day;
    if (static_cast<double>(held) >= target) break;
  }
  if (held >= subset.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a test fraction of ", test_fraction, " would hold out every campaign (",
        days.size(), " start days)"));
  }
  AssignByCutoff(data, subset, s, &split);
  return split;
}

absl::StatusOr<TimeSplit> SplitAtDay(const learn::TrainingData& data, int32_t cutoff_day,
                                     absl::Span<const uint32_t> subset) {
  std::vector<uint32_t> all;
  if (subset.empty()) {
    all = AllExamples(data);
    subset = all;
  }
  COUPOND_ASSIGN_OR_RETURN(const CampaignStarts s, StartsOf(data, subset));
  TimeSplit split;
  split.cutoff_day = cutoff_day;
  AssignByCutoff(data, subset, s, &split);
  if (split.train.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "test_cutoff_day: ", cutoff_day, " leaves no campaign starting before it (",
        subset.size(), " examples)"));
  }
  return split;
}

int64_t CensorLabelsAt(int32_t cutoff_day, absl::Span<const uint32_t> examples,
                       learn::TrainingData* data) {
  int64_t censored = 0;
  for (uint32_t i : examples) {
    learn::Example& e = data->examples[i];
    if (e.label == 1.0f && e.label_day >= cutoff_day) {
      e.label = 0.0f;
      e.order_value = 0.0f;
      ++censored;
    }
  }
  return censored;
}

}  // namespace coupond::pipeline
