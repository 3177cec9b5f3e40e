#include "pipeline/dunnhumby.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "xxhash.h"

namespace coupond::pipeline {
namespace {

// One data row with its required columns resolved.
struct Row {
  const CsvRecord* record;
  const std::vector<size_t>* columns;
  const std::string* file;

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(*file, ":", record->line(), ": ", what));
  }
  // Field k of the required columns, trimmed; InvalidArgument when missing.
  absl::StatusOr<absl::string_view> Text(size_t k, absl::string_view name) const {
    std::optional<absl::string_view> v = record->Get((*columns)[k]);
    if (!v.has_value()) return Error(absl::StrCat("column '", name, "': no value"));
    return absl::StripAsciiWhitespace(*v);
  }
  absl::StatusOr<int64_t> Int(size_t k, absl::string_view name) const {
    COUPOND_ASSIGN_OR_RETURN(absl::string_view text, Text(k, name));
    int64_t v = 0;
    if (!absl::SimpleAtoi(text, &v)) {
      return Error(absl::StrCat("column '", name, "': '", text, "' is not an integer"));
    }
    return v;
  }
};

// Reads `dir/file`, resolving `required` columns, and calls `on_row` for each data row.
// Malformed records and wrong widths are errors. Returns the file's XXH3-64.
absl::StatusOr<uint64_t> ReadTable(
    const std::string& dir, const std::string& file, const std::vector<std::string>& required,
    const std::function<absl::Status(const Row&, const CsvReader&)>& on_row) {
  const std::string path = absl::StrCat(dir, "/", file);
  COUPOND_ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> reader, CsvReader::Open(path));
  std::vector<size_t> columns;
  for (const std::string& name : required) {
    COUPOND_ASSIGN_OR_RETURN(size_t c, reader->RequireColumn(name));
    columns.push_back(c);
  }
  for (;;) {
    COUPOND_ASSIGN_OR_RETURN(const bool more, reader->Next());
    if (!more) break;
    const CsvRecord& record = reader->record();
    Row row{&record, &columns, &path};
    if (!record.ok()) return row.Error(record.error());
    if (record.size() != reader->header().size()) {
      return row.Error(absl::StrCat("has ", record.size(), " columns, the header has ",
                                    reader->header().size()));
    }
    COUPOND_RETURN_IF_ERROR(on_row(row, *reader));
  }
  return reader->checksum();
}

// Sorted-numeric-key interner: ids are collected first, then indexed in ascending order.
class NumericIds {
 public:
  void Add(int64_t id) { ids_.insert(id); }
  void Freeze(std::vector<std::string>* names) {
    std::vector<int64_t> sorted(ids_.begin(), ids_.end());
    std::sort(sorted.begin(), sorted.end());
    for (int64_t id : sorted) {
      index_[id] = static_cast<uint32_t>(names->size());
      names->push_back(absl::StrCat(id));
    }
  }
  std::optional<uint32_t> Find(int64_t id) const {
    auto it = index_.find(id);
    if (it == index_.end()) return std::nullopt;
    return it->second;
  }

 private:
  absl::flat_hash_set<int64_t> ids_;
  absl::flat_hash_map<int64_t, uint32_t> index_;
};

uint32_t InternName(const std::string& name, absl::flat_hash_map<std::string, uint32_t>* index,
                    std::vector<std::string>* names) {
  auto [it, inserted] = index->try_emplace(name, static_cast<uint32_t>(names->size()));
  if (inserted) names->push_back(name);
  return it->second;
}

}  // namespace

learn::SparseFeatures DunnhumbyCouponFeatures(const DunnhumbyData& d,
                                              std::optional<int32_t> before_day,
                                              const DunnhumbyOptions& options) {
  const size_t coupons = d.data.coupon_ids.size();
  // Per coupon, the last start day whose rows count: the day before `before_day` when the
  // coupon has a row before it, else its first campaign's start day.
  std::vector<int32_t> first(coupons, std::numeric_limits<int32_t>::max());
  std::vector<char> has_early(coupons, 0);
  for (const DunnhumbyCouponRow& r : d.coupon_rows) {
    const int32_t start = d.campaign_start_day[r.campaign];
    first[r.coupon] = std::min(first[r.coupon], start);
    if (before_day.has_value() && start < *before_day) has_early[r.coupon] = 1;
  }
  learn::SparseFeatures out;
  std::vector<std::vector<uint32_t>> rows(coupons);
  absl::flat_hash_map<std::string, uint32_t> index;
  for (const DunnhumbyCouponRow& r : d.coupon_rows) {
    const int32_t start = d.campaign_start_day[r.campaign];
    if (before_day.has_value() &&
        (has_early[r.coupon] ? start >= *before_day : start > first[r.coupon])) {
      continue;
    }
    std::vector<uint32_t>& f = rows[r.coupon];
    if (options.product_features) {
      f.push_back(InternName(absl::StrCat("product=", r.product), &index, &out.names));
    }
    if (options.campaign_type_features) {
      f.push_back(InternName(absl::StrCat("campaign_type=", d.campaign_type[r.campaign]), &index,
                             &out.names));
    }
  }
  for (auto& f : rows) {
    std::sort(f.begin(), f.end());
    f.erase(std::unique(f.begin(), f.end()), f.end());
    out.AddRow(f);
  }
  return out;
}

absl::StatusOr<DunnhumbyData> LoadDunnhumby(const std::string& dir,
                                            const DunnhumbyOptions& options) {
  DunnhumbyData out;
  learn::TrainingData& data = out.data;
  DunnhumbyStats& stats = out.stats;
  uint64_t checksums[5] = {};

  // Campaigns: number -> (type, start, end).
  struct Campaign {
    std::string type;
    int32_t start = 0, end = 0;
  };
  std::map<int64_t, Campaign> campaigns;
  COUPOND_ASSIGN_OR_RETURN(
      checksums[0],
      ReadTable(dir, "campaign_desc.csv", {"DESCRIPTION", "CAMPAIGN", "START_DAY", "END_DAY"},
                [&](const Row& row, const CsvReader&) -> absl::Status {
                  COUPOND_ASSIGN_OR_RETURN(absl::string_view type, row.Text(0, "DESCRIPTION"));
                  COUPOND_ASSIGN_OR_RETURN(int64_t number, row.Int(1, "CAMPAIGN"));
                  COUPOND_ASSIGN_OR_RETURN(int64_t start, row.Int(2, "START_DAY"));
                  COUPOND_ASSIGN_OR_RETURN(int64_t end, row.Int(3, "END_DAY"));
                  if (start < 0 || end < start || end > std::numeric_limits<int32_t>::max()) {
                    return row.Error(absl::StrCat("bad campaign window [", start, ", ", end, "]"));
                  }
                  if (!campaigns.emplace(number, Campaign{std::string(type),
                                                          static_cast<int32_t>(start),
                                                          static_cast<int32_t>(end)})
                           .second) {
                    return row.Error(absl::StrCat("campaign ", number, " listed twice"));
                  }
                  return absl::OkStatus();
                }));
  absl::flat_hash_map<int64_t, uint32_t> campaign_index;
  for (const auto& [number, c] : campaigns) {
    campaign_index[number] = static_cast<uint32_t>(data.campaign_ids.size());
    data.campaign_ids.push_back(absl::StrCat(number));
    out.campaign_type.push_back(c.type);
    out.campaign_start_day.push_back(c.start);
    out.campaign_end_day.push_back(c.end);
  }
  auto find_campaign = [&](const Row& row, int64_t number) -> absl::StatusOr<uint32_t> {
    auto it = campaign_index.find(number);
    if (it == campaign_index.end()) {
      return row.Error(absl::StrCat("campaign ", number, " is not in campaign_desc.csv"));
    }
    return it->second;
  };

  // Coupons: (upc, product, campaign) rows.
  struct CouponRow {
    int64_t upc, product;
    uint32_t campaign;
  };
  std::vector<CouponRow> coupon_rows;
  NumericIds coupon_ids;
  COUPOND_ASSIGN_OR_RETURN(
      checksums[1], ReadTable(dir, "coupon.csv", {"COUPON_UPC", "PRODUCT_ID", "CAMPAIGN"},
                              [&](const Row& row, const CsvReader&) -> absl::Status {
                                COUPOND_ASSIGN_OR_RETURN(int64_t upc, row.Int(0, "COUPON_UPC"));
                                COUPOND_ASSIGN_OR_RETURN(int64_t product,
                                                         row.Int(1, "PRODUCT_ID"));
                                COUPOND_ASSIGN_OR_RETURN(int64_t number, row.Int(2, "CAMPAIGN"));
                                COUPOND_ASSIGN_OR_RETURN(uint32_t c, find_campaign(row, number));
                                coupon_rows.push_back({upc, product, c});
                                coupon_ids.Add(upc);
                                return absl::OkStatus();
                              }));
  coupon_ids.Freeze(&data.coupon_ids);
  // Per campaign, its coupons (ascending index, unique).
  std::vector<std::vector<uint32_t>> campaign_coupons(data.campaign_ids.size());
  for (const CouponRow& r : coupon_rows) {
    const uint32_t coupon = *coupon_ids.Find(r.upc);
    campaign_coupons[r.campaign].push_back(coupon);
    out.coupon_rows.push_back({coupon, r.product, r.campaign});
  }
  for (auto& list : campaign_coupons) {
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
  }
  data.coupon_features = DunnhumbyCouponFeatures(out, std::nullopt, options);
  data.coupon_attributes.assign(data.coupon_ids.size(), core::CouponAttributes{});

  // Exposures (household, campaign) and demographics; households are indexed after both.
  std::vector<std::pair<int64_t, uint32_t>> exposures;
  absl::flat_hash_set<uint64_t> seen_exposures;
  NumericIds households;
  COUPOND_ASSIGN_OR_RETURN(
      checksums[2], ReadTable(dir, "campaign_table.csv", {"household_key", "CAMPAIGN"},
                              [&](const Row& row, const CsvReader&) -> absl::Status {
                                COUPOND_ASSIGN_OR_RETURN(int64_t h, row.Int(0, "household_key"));
                                COUPOND_ASSIGN_OR_RETURN(int64_t number, row.Int(1, "CAMPAIGN"));
                                COUPOND_ASSIGN_OR_RETURN(uint32_t c, find_campaign(row, number));
                                if (h < 0 || h >= (int64_t{1} << 32)) {
                                  return row.Error(absl::StrCat("household_key ", h,
                                                                " out of range"));
                                }
                                if (!seen_exposures.insert((static_cast<uint64_t>(h) << 32) | c)
                                         .second) {
                                  ++stats.duplicate_exposures;
                                  return absl::OkStatus();
                                }
                                exposures.emplace_back(h, c);
                                households.Add(h);
                                return absl::OkStatus();
                              }));
  stats.exposures = static_cast<int64_t>(exposures.size());

  std::vector<std::pair<int64_t, std::vector<std::string>>> demographics;
  COUPOND_ASSIGN_OR_RETURN(
      checksums[3],
      ReadTable(dir, "hh_demographic.csv", {"household_key"},
                [&](const Row& row, const CsvReader& reader) -> absl::Status {
                  COUPOND_ASSIGN_OR_RETURN(int64_t h, row.Int(0, "household_key"));
                  std::vector<std::string> features;
                  for (size_t i = 0; i < reader.header().size(); ++i) {
                    if (i == (*row.columns)[0]) continue;
                    std::optional<absl::string_view> v = row.record->Get(i);
                    if (!v.has_value()) continue;
                    features.push_back(absl::StrCat(absl::AsciiStrToUpper(reader.header()[i]),
                                                    "=", absl::StripAsciiWhitespace(*v)));
                  }
                  demographics.emplace_back(h, std::move(features));
                  households.Add(h);
                  return absl::OkStatus();
                }));
  households.Freeze(&data.user_ids);
  std::vector<std::vector<uint32_t>> user_rows(data.user_ids.size());
  absl::flat_hash_map<std::string, uint32_t> user_feature_index;
  absl::flat_hash_set<int64_t> exposed;
  for (const auto& [h, c] : exposures) exposed.insert(h);
  for (auto& [h, features] : demographics) {
    ++stats.households_with_demographics;
    if (exposed.contains(h)) ++stats.exposed_households_with_demographics;
    if (!options.demographic_features) continue;
    std::vector<uint32_t>& row = user_rows[*households.Find(h)];
    for (const std::string& f : features) {
      row.push_back(InternName(f, &user_feature_index, &data.user_features.names));
    }
  }
  for (auto& row : user_rows) {
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    data.user_features.AddRow(row);
  }

  // Candidates: each exposure x each coupon of its campaign, contiguous per exposure.
  absl::flat_hash_map<uint64_t, uint32_t> first_example;  // (user, campaign) -> index
  for (const auto& [h, c] : exposures) {
    const uint32_t user = *households.Find(h);
    first_example[(static_cast<uint64_t>(user) << 32) | c] =
        static_cast<uint32_t>(data.examples.size());
    for (uint32_t coupon : campaign_coupons[c]) {
      learn::Example e;
      e.user = user;
      e.coupon = coupon;
      e.campaign = c;
      e.day = out.campaign_start_day[c];
      data.examples.push_back(e);
    }
  }

  COUPOND_ASSIGN_OR_RETURN(
      checksums[4],
      ReadTable(dir, "coupon_redempt.csv", {"household_key", "DAY", "COUPON_UPC", "CAMPAIGN"},
                [&](const Row& row, const CsvReader&) -> absl::Status {
                  ++stats.redemption_rows;
                  COUPOND_ASSIGN_OR_RETURN(int64_t h, row.Int(0, "household_key"));
                  COUPOND_ASSIGN_OR_RETURN(int64_t day, row.Int(1, "DAY"));
                  if (day < 0 || day > std::numeric_limits<int32_t>::max()) {
                    return row.Error(absl::StrCat("column 'DAY': ", day, " out of range"));
                  }
                  COUPOND_ASSIGN_OR_RETURN(int64_t upc, row.Int(2, "COUPON_UPC"));
                  COUPOND_ASSIGN_OR_RETURN(int64_t number, row.Int(3, "CAMPAIGN"));
                  COUPOND_ASSIGN_OR_RETURN(uint32_t c, find_campaign(row, number));
                  if (day < out.campaign_start_day[c] || day > out.campaign_end_day[c]) {
                    ++stats.redemptions_outside_campaign;
                  }
                  std::optional<uint32_t> user = households.Find(h);
                  std::optional<uint32_t> coupon = coupon_ids.Find(upc);
                  auto first = user.has_value()
                                   ? first_example.find((static_cast<uint64_t>(*user) << 32) | c)
                                   : first_example.end();
                  const std::vector<uint32_t>& list = campaign_coupons[c];
                  auto pos = coupon.has_value()
                                 ? std::lower_bound(list.begin(), list.end(), *coupon)
                                 : list.end();
                  if (first == first_example.end() || pos == list.end() || *pos != *coupon) {
                    ++stats.unmatched_redemptions;
                    return absl::OkStatus();
                  }
                  learn::Example& e = data.examples[first->second + (pos - list.begin())];
                  if (e.label == 1.0f) {
                    ++stats.repeat_redemptions;
                    e.label_day = std::min(e.label_day, static_cast<int32_t>(day));
                  } else {
                    e.label_day = static_cast<int32_t>(day);
                  }
                  e.label = 1.0f;
                  return absl::OkStatus();
                }));

  uint8_t bytes[40];
  for (int f = 0; f < 5; ++f) {
    for (int b = 0; b < 8; ++b) bytes[f * 8 + b] = static_cast<uint8_t>(checksums[f] >> (8 * b));
  }
  stats.input_checksum = XXH3_64bits(bytes, sizeof(bytes));
  if (absl::Status s = data.Validate(); !s.ok()) {
    return absl::InternalError(absl::StrCat("dunnhumby adapter produced invalid data: ",
                                            s.message()));
  }
  return out;
}

}  // namespace coupond::pipeline
