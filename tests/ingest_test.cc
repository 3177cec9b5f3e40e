#include "pipeline/ingest.h"

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pipeline/csv.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::pipeline {
namespace {

using ::coupond::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

void Write(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

// Hand-written logs with one row of every quarantine class (line numbers in comments).
constexpr char kCoupons[] =
    "coupon_id,face_value,valid_from,valid_until,stock,category,products\n"
    "c1,5,0,0,-1,food,12;34\n"      // 2 kept
    "c2,2.5,,,10,drink,\n"          // 3 kept
    "c3,-1,0,0,-1,x,\n"             // 4 invalid_value
    "c4,abc,0,0,-1,x,\n"            // 5 unparsable
    "c1,5,0,0,-1,food,12;34\n"      // 6 duplicate
    "c1,6,0,0,-1,food,\n";          // 7 conflicting_duplicate_id
constexpr char kUsers[] =
    "\xEF\xBB\xBFuser_id,age,city\r\n"
    "u1,30-39,Paris\r\n"                  // 2 kept
    "u2,null,Lyon\r\n"                    // 3 kept
    "u3,40-49,\"Saint-Etienne, Loire\"\r\n"  // 4 kept
    "u1,30-39,Paris\r\n"                  // 5 duplicate
    "u4,1\r\n";                           // 6 wrong_column_count
constexpr char kExposures[] =
    "user_id,coupon_id,campaign_id,time\n"
    "u1,c1,k1,10\n"       // 2 kept, example 0
    "u1,c2,k1,10\n"       // 3 kept, example 1
    "u2,c1,k1,12\n"       // 4 kept, example 2
    "u2,c1,k1,12\n"       // 5 duplicate
    "u3,c9,k1,12\n"       // 6 unknown_coupon
    "u3,c2,k2,abc\n"      // 7 unparsable
    "u3,c2,k2,-3\n"       // 8 negative_time
    "u3,c2,k2,99999\n"    // 9 time_beyond_max
    ",c2,k2,5\n"          // 10 missing_value
    "u3,c2,k2\n"          // 11 wrong_column_count
    "u3,c\"2,k2,5\n"      // 12 malformed_csv
    "u5,c2,k2,20\n"       // 13 kept, example 3 (u5 has no users.csv row: allowed)
    "u1,c1,k2,40\n";      // 14 kept, example 4
constexpr char kRedemptions[] =
    "user_id,coupon_id,time,order_value\n"
    "u1,c1,15,20.5\n"     // 2 kept -> example 0
    "u1,c1,15,20.5\n"     // 3 duplicate
    "u1,c1,16,\n"         // 4 kept, merged into example 0
    "u1,c1,45,10\n"       // 5 kept -> example 4 (latest exposure before day 45)
    "u2,c1,5,1\n"         // 6 before_exposure
    "u2,c1,50,1\n"        // 7 outside_window (12 + 30 < 50)
    "u5,c1,20,1\n"        // 8 never_exposed
    "u3,c2,20,1\n"        // 9 never_exposed (u3's exposures were all quarantined)
    "u1,c2,x,1\n"         // 10 unparsable
    "u1,c2,12,-4\n"       // 11 invalid_value
    "u1,c2,12,,extra\n";  // 12 wrong_column_count

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    paths_.exposures = dir_.Sub("exposures.csv");
    paths_.redemptions = dir_.Sub("redemptions.csv");
    paths_.users = dir_.Sub("users.csv");
    paths_.coupons = dir_.Sub("coupons.csv");
    Write(paths_.exposures, kExposures);
    Write(paths_.redemptions, kRedemptions);
    Write(paths_.users, kUsers);
    Write(paths_.coupons, kCoupons);
    options_.max_day = 1000;
    options_.quarantine_path = dir_.Sub("quarantine.csv");
  }

  coupond::testing::TempDir dir_;
  LogPaths paths_;
  IngestOptions options_;
};

void ExpectNothingLost(const FileReport& f) {
  EXPECT_EQ(f.rows_read, f.kept + f.duplicates + f.quarantined_total()) << f.path;
}

TEST_F(IngestTest, CountsEveryRowByOutcome) {
  ASSERT_OK_AND_ASSIGN(IngestResult result, IngestLogs(paths_, options_));
  const IngestReport& r = result.report;

  EXPECT_EQ(r.coupons.rows_read, 6);
  EXPECT_EQ(r.coupons.kept, 2);
  EXPECT_EQ(r.coupons.duplicates, 1);
  EXPECT_THAT(r.coupons.quarantined,
              UnorderedElementsAre(Pair("invalid_value", 1), Pair("unparsable", 1),
                                   Pair("conflicting_duplicate_id", 1)));

  EXPECT_EQ(r.users.rows_read, 5);
  EXPECT_EQ(r.users.kept, 3);
  EXPECT_EQ(r.users.duplicates, 1);
  EXPECT_THAT(r.users.quarantined, UnorderedElementsAre(Pair("wrong_column_count", 1)));

  EXPECT_EQ(r.exposures.rows_read, 13);
  EXPECT_EQ(r.exposures.kept, 5);
  EXPECT_EQ(r.exposures.duplicates, 1);
  EXPECT_THAT(r.exposures.quarantined,
              UnorderedElementsAre(Pair("unknown_coupon", 1), Pair("unparsable", 1),
                                   Pair("negative_time", 1), Pair("time_beyond_max", 1),
                                   Pair("missing_value", 1), Pair("wrong_column_count", 1),
                                   Pair("malformed_csv", 1)));

  EXPECT_EQ(r.redemptions.rows_read, 11);
  EXPECT_EQ(r.redemptions.kept, 3);
  EXPECT_EQ(r.redemptions.duplicates, 1);
  EXPECT_THAT(r.redemptions.quarantined,
              UnorderedElementsAre(Pair("before_exposure", 1), Pair("outside_window", 1),
                                   Pair("never_exposed", 2), Pair("unparsable", 1),
                                   Pair("invalid_value", 1), Pair("wrong_column_count", 1)));

  for (const FileReport* f : {&r.coupons, &r.users, &r.exposures, &r.redemptions}) {
    ExpectNothingLost(*f);
    EXPECT_NE(f->xxh3, 0u);
    EXPECT_GT(f->bytes, 0u);
  }
  EXPECT_EQ(r.examples, 5);
  EXPECT_EQ(r.positives, 2);
  EXPECT_EQ(r.redemptions_merged, 1);
  const std::string text = r.ToString();
  EXPECT_THAT(text, HasSubstr("read 13, kept 5, duplicates 1, quarantined 7"));
  EXPECT_THAT(text, HasSubstr("never_exposed: 2"));
}

TEST_F(IngestTest, BuildsTrainingDataWithLabelsAndFeatures) {
  ASSERT_OK_AND_ASSIGN(IngestResult result, IngestLogs(paths_, options_));
  const learn::TrainingData& d = result.data;
  ASSERT_OK(d.Validate());
  EXPECT_THAT(d.user_ids, ElementsAre("u1", "u2", "u3", "u5"));
  EXPECT_THAT(d.coupon_ids, ElementsAre("c1", "c2"));
  EXPECT_THAT(d.campaign_ids, ElementsAre("k1", "k2"));
  ASSERT_EQ(d.examples.size(), 5u);
  const float labels[] = {1, 0, 0, 0, 1};
  const float values[] = {20.5f, 0, 0, 0, 10};
  const int32_t days[] = {10, 10, 12, 20, 40};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(d.examples[i].label, labels[i]) << i;
    EXPECT_EQ(d.examples[i].order_value, values[i]) << i;
    EXPECT_EQ(d.examples[i].day, days[i]) << i;
  }
  EXPECT_EQ(d.examples[4].campaign, 1u);

  auto names = [](const learn::SparseFeatures& f, size_t row) {
    std::vector<std::string> out;
    for (uint32_t k : f.row(row)) out.push_back(f.names[k]);
    return out;
  };
  EXPECT_THAT(names(d.user_features, 0), UnorderedElementsAre("age=30-39", "city=Paris"));
  EXPECT_THAT(names(d.user_features, 1), UnorderedElementsAre("city=Lyon"));  // null age
  EXPECT_THAT(names(d.user_features, 2),
              UnorderedElementsAre("age=40-49", "city=Saint-Etienne, Loire"));
  EXPECT_TRUE(names(d.user_features, 3).empty());
  EXPECT_THAT(names(d.coupon_features, 0),
              UnorderedElementsAre("category=food", "products=12", "products=34"));
  EXPECT_THAT(names(d.coupon_features, 1), UnorderedElementsAre("category=drink"));
  EXPECT_EQ(d.coupon_attributes[0].face_value, 5.0);
  EXPECT_EQ(d.coupon_attributes[1].face_value, 2.5);
  EXPECT_EQ(d.coupon_attributes[1].stock, 10);
  EXPECT_EQ(d.coupon_attributes[1].valid_until_unix_seconds, 0);
}

TEST_F(IngestTest, QuarantineFileHoldsEveryRejectedRow) {
  ASSERT_OK_AND_ASSIGN(IngestResult result, IngestLogs(paths_, options_));
  ASSERT_OK_AND_ASSIGN(auto reader, CsvReader::Open(options_.quarantine_path));
  EXPECT_THAT(reader->header(), ElementsAre("file", "line", "reason", "detail", "raw"));
  std::map<std::string, std::vector<std::string>> by_file_line;  // "file:line" -> fields
  size_t rows = 0;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(bool more, reader->Next());
    if (!more) break;
    const CsvRecord& r = reader->record();
    ASSERT_TRUE(r.ok()) << r.error();
    ASSERT_EQ(r.size(), 5u);
    by_file_line[absl::StrCat(r.Text(0), ":", r.Text(1))] = {
        std::string(r.Text(2)), std::string(r.Text(3)), std::string(r.Text(4))};
    ++rows;
  }
  const IngestReport& rep = result.report;
  EXPECT_EQ(static_cast<int64_t>(rows),
            rep.coupons.quarantined_total() + rep.users.quarantined_total() +
                rep.exposures.quarantined_total() + rep.redemptions.quarantined_total());
  EXPECT_EQ(rows, 18u);

  const auto& malformed = by_file_line[paths_.exposures + ":12"];
  ASSERT_EQ(malformed.size(), 3u);
  EXPECT_EQ(malformed[0], "malformed_csv");
  EXPECT_EQ(malformed[2], "u3,c\"2,k2,5");  // raw text survives the CSV round trip
  const auto& outside = by_file_line[paths_.redemptions + ":7"];
  ASSERT_EQ(outside.size(), 3u);
  EXPECT_EQ(outside[0], "outside_window");
  EXPECT_THAT(outside[1], HasSubstr("latest exposure on day 12"));
  EXPECT_EQ(outside[2], "u2,c1,50,1");
  EXPECT_EQ(by_file_line[paths_.exposures + ":6"][0], "unknown_coupon");
  EXPECT_EQ(by_file_line[paths_.users + ":6"][0], "wrong_column_count");
  EXPECT_EQ(by_file_line[paths_.coupons + ":7"][0], "conflicting_duplicate_id");
  EXPECT_EQ(by_file_line[paths_.redemptions + ":6"][0], "before_exposure");
}

TEST_F(IngestTest, WithoutCouponsFileUnknownCouponsAreCreated) {
  paths_.coupons.clear();
  ASSERT_OK_AND_ASSIGN(IngestResult result, IngestLogs(paths_, options_));
  EXPECT_EQ(result.report.exposures.kept, 6);  // c9 now accepted
  EXPECT_TRUE(result.report.coupons.path.empty());
  EXPECT_THAT(result.data.coupon_ids, ElementsAre("c1", "c2", "c9"));
  EXPECT_EQ(result.data.coupon_attributes.size(), 3u);
  EXPECT_THAT(result.report.ToString(), HasSubstr("coupons: (not given)"));
}

TEST_F(IngestTest, RequireKnownUsersQuarantinesStrangers) {
  options_.require_known_users = true;
  ASSERT_OK_AND_ASSIGN(IngestResult result, IngestLogs(paths_, options_));
  EXPECT_EQ(result.report.exposures.quarantined.at("unknown_user"), 1);  // u5
  ExpectNothingLost(result.report.exposures);
}

TEST_F(IngestTest, RedemptionWindowIsAnOption) {
  options_.redemption_window_days = 40;
  ASSERT_OK_AND_ASSIGN(IngestResult result, IngestLogs(paths_, options_));
  EXPECT_EQ(result.report.redemptions.quarantined.count("outside_window"), 0u);
  EXPECT_EQ(result.data.examples[2].label, 1.0f);  // u2 c1 day 12, redeemed day 50
}

TEST_F(IngestTest, ChecksumFollowsContent) {
  ASSERT_OK_AND_ASSIGN(IngestResult a, IngestLogs(paths_, options_));
  ASSERT_OK_AND_ASSIGN(IngestResult b, IngestLogs(paths_, options_));
  EXPECT_EQ(a.report.input_checksum, b.report.input_checksum);
  Write(paths_.redemptions, std::string(kRedemptions) + "u1,c2,11,3\n");
  ASSERT_OK_AND_ASSIGN(IngestResult c, IngestLogs(paths_, options_));
  EXPECT_NE(a.report.input_checksum, c.report.input_checksum);
  EXPECT_EQ(a.report.exposures.xxh3, c.report.exposures.xxh3);
  EXPECT_NE(a.report.redemptions.xxh3, c.report.redemptions.xxh3);
}

TEST_F(IngestTest, ColumnMappingAndTimeFormats) {
  Write(paths_.exposures, "uid,offer,when\nu1,c1,2024-01-02\nu1,c2,2024-01-03\n");
  Write(paths_.redemptions, "uid,offer,when\nu1,c1,2024-01-05\n");
  paths_.users.clear();
  options_.columns.exposures.renames = {{"user_id", "uid"}, {"coupon_id", "offer"},
                                        {"time", "when"}};
  options_.columns.redemptions = options_.columns.exposures;
  options_.time_format = TimeFormat::kIsoDate;
  options_.max_day = 100000;
  ASSERT_OK_AND_ASSIGN(IngestResult result, IngestLogs(paths_, options_));
  ASSERT_EQ(result.data.examples.size(), 2u);
  EXPECT_EQ(result.data.examples[0].day, 19724);  // 2024-01-02
  EXPECT_EQ(result.data.examples[0].label, 1.0f);
  EXPECT_THAT(result.data.campaign_ids, ElementsAre(""));  // no campaign column

  EXPECT_EQ(ParseDay("86399", TimeFormat::kUnixSeconds).value_or(-999), 0);
  EXPECT_EQ(ParseDay("86400", TimeFormat::kUnixSeconds).value_or(-999), 1);
  EXPECT_EQ(ParseDay("-1", TimeFormat::kUnixSeconds).value_or(-999), -1);
  EXPECT_EQ(ParseDay("1970-01-01", TimeFormat::kIsoDate).value_or(-999), 0);
  EXPECT_THAT(ParseDay("2024-13-01", TimeFormat::kIsoDate),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(ParseDay(" 7 ", TimeFormat::kDayNumber).value_or(-999), 7);
}

// The same logs written with each time format give the same examples: ISO dates and Unix
// seconds (any second of the day, since the day is floored) become days since 1970-01-01.
TEST_F(IngestTest, IsoDatesAndUnixSecondsGiveTheSameExamplesAsDayNumbers) {
  paths_.users.clear();
  paths_.coupons.clear();
  options_.max_day = 100000;
  options_.quarantine_path.clear();
  // (user, coupon, campaign, day) and redemptions (user, coupon, day); days near 2024.
  const int64_t base = 19700;
  struct Row { const char* user; const char* coupon; int64_t day; };
  const Row exposures[] = {{"u1", "c1", base}, {"u2", "c1", base + 3}, {"u1", "c2", base + 40},
                           {"u3", "c2", base + 41}};
  const Row redemptions[] = {{"u1", "c1", base + 2}, {"u2", "c1", base + 50},
                             {"u3", "c2", base + 41}};
  auto write = [&](auto format_day) {
    std::string e = "user_id,coupon_id,campaign_id,time\n", r = "user_id,coupon_id,time\n";
    for (const Row& x : exposures) {
      absl::StrAppend(&e, x.user, ",", x.coupon, ",k", x.day / 10, ",", format_day(x.day), "\n");
    }
    for (const Row& x : redemptions) absl::StrAppend(&r, x.user, ",", x.coupon, ",", format_day(x.day), "\n");
    Write(paths_.exposures, e);
    Write(paths_.redemptions, r);
  };
  write([](int64_t day) { return absl::StrCat(day); });
  options_.time_format = TimeFormat::kDayNumber;
  ASSERT_OK_AND_ASSIGN(IngestResult days, IngestLogs(paths_, options_));
  ASSERT_EQ(days.data.examples.size(), 4u);
  EXPECT_EQ(days.report.positives, 2);  // u2's redemption is outside the 30-day window

  write([](int64_t day) {
    const absl::CivilDay d = absl::CivilDay(1970, 1, 1) + day;
    return absl::StrFormat("%04d-%02d-%02d", d.year(), d.month(), d.day());
  });
  options_.time_format = TimeFormat::kIsoDate;
  ASSERT_OK_AND_ASSIGN(IngestResult iso, IngestLogs(paths_, options_));

  write([](int64_t day) { return absl::StrCat(day * 86400 + 86399); });  // the day's last second
  options_.time_format = TimeFormat::kUnixSeconds;
  ASSERT_OK_AND_ASSIGN(IngestResult unix_seconds, IngestLogs(paths_, options_));

  for (const IngestResult* other : {&iso, &unix_seconds}) {
    ASSERT_EQ(other->data.examples.size(), days.data.examples.size());
    for (size_t i = 0; i < days.data.examples.size(); ++i) {
      const learn::Example& a = days.data.examples[i];
      const learn::Example& b = other->data.examples[i];
      EXPECT_EQ(a.day, b.day) << i;
      EXPECT_EQ(a.label, b.label) << i;
      EXPECT_EQ(a.user, b.user) << i;
      EXPECT_EQ(a.coupon, b.coupon) << i;
      EXPECT_EQ(a.campaign, b.campaign) << i;
    }
    EXPECT_EQ(other->report.positives, days.report.positives);
    EXPECT_EQ(other->report.redemptions.quarantined, days.report.redemptions.quarantined);
  }
  EXPECT_EQ(iso.data.examples[0].day, base);

  // Read with the wrong format, every time is unparsable and the message says what was expected.
  write([](int64_t day) { return absl::StrCat(day * 86400); });
  options_.time_format = TimeFormat::kIsoDate;
  ASSERT_OK_AND_ASSIGN(IngestResult wrong, IngestLogs(paths_, options_));
  EXPECT_EQ(wrong.report.examples, 0);
  EXPECT_THAT(wrong.report.exposures.quarantined, ElementsAre(Pair("unparsable", 4)));
  EXPECT_EQ(wrong.report.exposures.first_quarantined.at("unparsable"),
            absl::StrCat("line 2: column 'time': '", base * 86400,
                         "' is not a date YYYY-MM-DD (time format iso_date)"));
}

TEST(TimeFormatTest, NamesRoundTripAndUnknownNamesAreRefused) {
  for (TimeFormat f : {TimeFormat::kDayNumber, TimeFormat::kIsoDate, TimeFormat::kUnixSeconds}) {
    ASSERT_OK_AND_ASSIGN(TimeFormat back, ParseTimeFormat(TimeFormatName(f)));
    EXPECT_EQ(back, f);
  }
  EXPECT_THAT(ParseTimeFormat("iso"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("'iso' is not a time format (day_number, iso_date or unix_seconds)")));
  EXPECT_THAT(ParseTimeFormat("ISO_DATE"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseTimeFormat(""), StatusIs(absl::StatusCode::kInvalidArgument));
}

// Huge and odd times: the extremes of int64 seconds floor without overflow; an ISO date must
// be exactly YYYY-MM-DD; day numbers past int64 do not parse.
TEST(ParseDayTest, ExtremesAndNonsense) {
  EXPECT_EQ(ParseDay("-9223372036854775808", TimeFormat::kUnixSeconds).value_or(0),
            -106751991167301);
  EXPECT_EQ(ParseDay("9223372036854775807", TimeFormat::kUnixSeconds).value_or(0),
            106751991167300);
  EXPECT_EQ(ParseDay("-86400", TimeFormat::kUnixSeconds).value_or(0), -1);
  EXPECT_EQ(ParseDay("-86401", TimeFormat::kUnixSeconds).value_or(0), -2);
  EXPECT_THAT(ParseDay("1.5", TimeFormat::kUnixSeconds),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unix_seconds")));
  EXPECT_THAT(ParseDay("2024-1-02", TimeFormat::kIsoDate),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("YYYY-MM-DD")));
  EXPECT_THAT(ParseDay("", TimeFormat::kIsoDate), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseDay("99999999999999999999", TimeFormat::kDayNumber),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("day_number")));
  EXPECT_THAT(ParseDay("nan", TimeFormat::kDayNumber), StatusIs(absl::StatusCode::kInvalidArgument));
}

// Columns named in multi_value_columns are split on ';' in users.csv and coupons.csv alike;
// others stay one value, separators and all.
TEST_F(IngestTest, MultiValueColumnsAreSplitInUsersAndCoupons) {
  Write(paths_.users, "user_id,brands,city\nu1,a;b; c,x;y\nu2,a,\nu3,,x\n");
  Write(paths_.coupons, "coupon_id,brands,products\nc1,a;d,12;34\nc2,b,\n");
  auto names = [](const learn::SparseFeatures& f, size_t row) {
    std::vector<std::string> out;
    for (uint32_t k : f.row(row)) out.push_back(f.names[k]);
    return out;
  };
  options_.multi_value_columns = {"Brands"};  // header lookups ignore case
  ASSERT_OK_AND_ASSIGN(IngestResult split, IngestLogs(paths_, options_));
  EXPECT_THAT(names(split.data.user_features, 0),
              UnorderedElementsAre("brands=a", "brands=b", "brands=c", "city=x;y"));
  EXPECT_THAT(names(split.data.coupon_features, 0),
              UnorderedElementsAre("brands=a", "brands=d", "products=12;34"));
  EXPECT_EQ(split.report.user_features, 5);    // brands=a, b, c, city=x;y, city=x
  EXPECT_EQ(split.report.coupon_features, 4);  // brands=a, d, b, products=12;34
  EXPECT_THAT(split.report.ToString(),
              HasSubstr("attribute features (column=value): users 5, coupons 4"));

  options_.multi_value_columns = {};  // none: every value whole
  ASSERT_OK_AND_ASSIGN(IngestResult whole, IngestLogs(paths_, options_));
  EXPECT_THAT(names(whole.data.user_features, 0), UnorderedElementsAre("brands=a;b; c", "city=x;y"));
}

// Nothing to train on: the message gives the quarantine counts by reason, most frequent first,
// and the explaining file's first row of its most frequent reason.
TEST_F(IngestTest, CheckTrainableNamesTheQuarantineCountsByReason) {
  ASSERT_OK_AND_ASSIGN(IngestResult ok, IngestLogs(paths_, options_));
  EXPECT_OK(CheckTrainable(ok.report));
  EXPECT_EQ(QuarantineByReason(ok.report),
            "3 unparsable, 3 wrong_column_count, 2 invalid_value, 2 never_exposed, "
            "1 before_exposure, 1 conflicting_duplicate_id, 1 malformed_csv, 1 missing_value, "
            "1 negative_time, 1 outside_window, 1 time_beyond_max, 1 unknown_coupon");

  // Every exposure unparsable, as with ISO dates read as day numbers.
  Write(paths_.exposures, "user_id,coupon_id,campaign_id,time\nu1,c1,k1,2024-01-02\n"
                          "u2,c1,k1,2024-01-02\nu1,c2,k1,\n");
  Write(paths_.redemptions, "user_id,coupon_id,time\nu1,c1,2024-01-05\n");
  paths_.users.clear();
  paths_.coupons.clear();
  ASSERT_OK_AND_ASSIGN(IngestResult none, IngestLogs(paths_, options_));
  EXPECT_THAT(CheckTrainable(none.report),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "0 examples after cleaning: 3 unparsable, 1 missing_value; first "
                       "unparsable: exposures line 2: column 'time': '2024-01-02' is not a day "
                       "number (time format day_number)"));

  // Examples, but every redemption outside the window.
  Write(paths_.exposures, "user_id,coupon_id,time\nu1,c1,10\nu2,c1,10\n");
  Write(paths_.redemptions, "user_id,coupon_id,time\nu1,c1,45\nu2,c1,41\nu9,c1,41\n");
  ASSERT_OK_AND_ASSIGN(IngestResult late, IngestLogs(paths_, options_));
  EXPECT_THAT(CheckTrainable(late.report),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "0 positive examples after cleaning (2 examples): 2 outside_window, 1 "
                       "never_exposed; first outside_window: redemptions line 2: redeemed on "
                       "day 45, latest exposure on day 10 (window 30 days)"));
  options_.redemption_window_days = 32;  // day 41 is in, day 45 still out
  ASSERT_OK_AND_ASSIGN(IngestResult wider, IngestLogs(paths_, options_));
  EXPECT_OK(CheckTrainable(wider.report));
  EXPECT_EQ(wider.report.positives, 1);

  // Empty logs: nothing quarantined, and the message says so.
  Write(paths_.exposures, "user_id,coupon_id,time\n");
  Write(paths_.redemptions, "user_id,coupon_id,time\n");
  ASSERT_OK_AND_ASSIGN(IngestResult empty, IngestLogs(paths_, options_));
  EXPECT_THAT(CheckTrainable(empty.report),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "0 examples after cleaning: no row was quarantined (exposures: 0 rows "
                       "read; redemptions: 0 rows read)"));
}

TEST_F(IngestTest, FileLevelErrors) {
  options_.quarantine_path.clear();
  Write(paths_.exposures, "user_id,coupon_id\nu1,c1\n");
  EXPECT_THAT(IngestLogs(paths_, options_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("exposures.csv:1: no column 'time'")));
  paths_.exposures = dir_.Sub("missing.csv");
  EXPECT_THAT(IngestLogs(paths_, options_), StatusIs(absl::StatusCode::kNotFound));
  options_.quarantine_path = dir_.Sub("no/such/dir/q.csv");
  EXPECT_THAT(IngestLogs(paths_, options_), StatusIs(absl::StatusCode::kUnavailable));
}

learn::TrainingData SplitData() {
  // Campaign c starts on day starts[c] and holds sizes[c] examples.
  learn::TrainingData d;
  d.user_ids = {"u"};
  d.coupon_ids = {"c"};
  d.coupon_attributes.resize(1);
  d.user_features.AddRow({});
  d.coupon_features.AddRow({});
  const int32_t starts[] = {0, 10, 20, 20, 30};
  const int sizes[] = {50, 20, 10, 5, 15};
  for (uint32_t c = 0; c < 5; ++c) {
    d.campaign_ids.push_back(absl::StrCat("k", c));
    for (int i = 0; i < sizes[c]; ++i) {
      learn::Example e;
      e.campaign = c;
      e.day = starts[c] + i % 3;  // a campaign starts on its earliest example's day
      d.examples.push_back(e);
    }
  }
  return d;
}

TEST(SplitTest, HoldsOutLatestCampaignsByStartDayWholeDaysAtATime) {
  const learn::TrainingData d = SplitData();
  ASSERT_OK_AND_ASSIGN(TimeSplit split, SplitByCampaignStart(d, 0.2));
  // 15 examples (15%) from day 30 are not enough; day 20 brings both of its campaigns.
  EXPECT_EQ(split.cutoff_day, 20);
  EXPECT_THAT(split.test_campaigns, ElementsAre(2u, 3u, 4u));
  EXPECT_EQ(split.test.size(), 30u);
  EXPECT_EQ(split.train.size(), 70u);
  // Validation from the training period, the same way.
  ASSERT_OK_AND_ASSIGN(TimeSplit validation, SplitByCampaignStart(d, 0.2, split.train));
  EXPECT_THAT(validation.test_campaigns, ElementsAre(1u));
  EXPECT_EQ(validation.test.size(), 20u);
  EXPECT_EQ(validation.train.size(), 50u);
  EXPECT_THAT(SplitByCampaignStart(d, 0.0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SplitByCampaignStart(d, 0.99), StatusIs(absl::StatusCode::kInvalidArgument,
                                                      HasSubstr("every campaign")));
}

}  // namespace
}  // namespace coupond::pipeline
