// couponctl's offline pipeline commands as a user runs them: the real couponctl binary on
// hand-made canonical logs in a temporary directory (no shared data needed). Guards the
// flags that fit real logs (--time_format, --redemption_window_days, --multi_value_columns,
// --test_fraction, --validation_fraction), the failure when cleaning leaves nothing to
// train on, the periods' shares of the rows, the base rate shift warning, and help texts.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/process.h"
#include "tests/test_util/temp_dir.h"

namespace coupond {
namespace {

using ::coupond::testing::ReadFileOrEmpty;
using ::coupond::testing::RunCommand;
using ::testing::HasSubstr;
using ::testing::Not;

struct Exposure {
  std::string user, coupon, campaign;
  int64_t day;
};
struct Redemption {
  std::string user, coupon;
  int64_t day;
};
struct Logs {
  std::vector<Exposure> exposures;
  std::vector<Redemption> redemptions;
  // users.csv / coupons.csv bodies ("" = no file), header included.
  std::string users, coupons;
};

// Day numbers as each --time_format writes them (ISO and Unix count from 1970-01-01).
std::string FormatDay(int64_t day, const std::string& format) {
  if (format == "iso_date") {
    const absl::CivilDay d = absl::CivilDay(1970, 1, 1) + day;
    return absl::StrFormat("%04d-%02d-%02d", d.year(), d.month(), d.day());
  }
  if (format == "unix_seconds") return absl::StrCat(day * 86400 + 43210);  // mid-day
  return absl::StrCat(day);
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

void WriteLogs(const Logs& logs, const std::string& dir, const std::string& format) {
  std::filesystem::create_directories(dir);
  std::string e = "user_id,coupon_id,campaign_id,time\n";
  for (const Exposure& x : logs.exposures) {
    absl::StrAppend(&e, x.user, ",", x.coupon, ",", x.campaign, ",", FormatDay(x.day, format), "\n");
  }
  std::string r = "user_id,coupon_id,time\n";
  for (const Redemption& x : logs.redemptions) {
    absl::StrAppend(&r, x.user, ",", x.coupon, ",", FormatDay(x.day, format), "\n");
  }
  WriteFile(dir + "/exposures.csv", e);
  WriteFile(dir + "/redemptions.csv", r);
  if (!logs.users.empty()) WriteFile(dir + "/users.csv", logs.users);
  if (!logs.coupons.empty()) WriteFile(dir + "/coupons.csv", logs.coupons);
}

// Ten campaigns, one every 3 days (days 19000 + 3i: near 2022, so that ISO dates look
// real), 60 users; campaigns 0-8 offer each user 2 of 10 coupons, the last one 6 (so whole
// campaigns cannot make a 20% test period). A redemption the next day when `redeems`.
Logs CampaignLogs(const std::function<bool(int u, int c, int campaign)>& redeems) {
  Logs logs;
  for (int i = 0; i < 10; ++i) {
    const int64_t day = 19000 + 3 * i;
    for (int u = 0; u < 60; ++u) {
      std::vector<int> coupons = {(u + i) % 10, (u + i + 5) % 10};
      if (i == 9) coupons = {(u + 9) % 10, (u + 1) % 10, (u + 2) % 10, (u + 3) % 10, (u + 4) % 10, (u + 5) % 10};
      for (int c : coupons) {
        logs.exposures.push_back({absl::StrCat("u", u), absl::StrCat("c", c), absl::StrCat("k", i), day});
        if (redeems(u, c, i)) logs.redemptions.push_back({absl::StrCat("u", u), absl::StrCat("c", c), day + 1});
      }
    }
  }
  return logs;
}

bool SteadyRate(int u, int c, int campaign) { return (3 * u + c + campaign) % 16 == 0; }

class CouponctlPipelineTest : public ::testing::Test {
 protected:
  // Runs couponctl with `args`; its exit status, stdout and stderr together in *output.
  int Couponctl(std::vector<std::string> args, std::string* output) {
    args.insert(args.begin(), COUPONCTL_BINARY);
    return RunCommand(args, dir_.Sub("couponctl.out"), output, absl::Seconds(120));
  }
  // The ingest report without what differs between encodings of the same logs: file paths,
  // sizes and checksums.
  static std::string CountsOnly(const std::string& report) {
    std::string out;
    for (absl::string_view line : absl::StrSplit(report, '\n')) {
      if (absl::StrContains(line, " bytes, xxh3 ") || absl::StartsWith(line, "input checksum")) {
        continue;
      }
      absl::StrAppend(&out, line, "\n");
    }
    return out;
  }

  coupond::testing::TempDir dir_;
};

// The same logs written as day numbers, ISO dates and Unix seconds ingest to the same
// counts, rows and positives; read with the wrong --time_format they leave nothing.
TEST_F(CouponctlPipelineTest, IsoDatesAndUnixSecondsIngestLikeDayNumbers) {
  const Logs logs = CampaignLogs(SteadyRate);
  std::string days, out;
  WriteLogs(logs, dir_.Sub("days"), "day_number");
  ASSERT_EQ(Couponctl({"ingest", "--logs=" + dir_.Sub("days")}, &days), 0) << days;
  EXPECT_THAT(days, HasSubstr(absl::StrFormat("examples %d, positives %d,", logs.exposures.size(),
                                              logs.redemptions.size())));
  for (const std::string format : {"iso_date", "unix_seconds"}) {
    WriteLogs(logs, dir_.Sub(format), format);
    ASSERT_EQ(Couponctl({"ingest", "--logs=" + dir_.Sub(format), "--time_format=" + format}, &out), 0)
        << out;
    EXPECT_EQ(CountsOnly(out), CountsOnly(days)) << format;
  }
}

// Cleaning that leaves no example is a failure (exit 1), for ingest and pipeline alike, and
// the message names the quarantine counts by reason and shows the first bad row.
TEST_F(CouponctlPipelineTest, NothingLeftAfterCleaningFailsNamingTheCountsByReason) {
  Logs logs = CampaignLogs(SteadyRate);
  logs.exposures.push_back({"u1", "c1", "", 19000});  // no campaign: still an exposure
  logs.exposures.push_back({"u1", "", "k1", 19000});  // missing_value
  WriteLogs(logs, dir_.Sub("iso"), "iso_date");
  const std::string expected = absl::StrFormat(
      "couponctl: FAILED_PRECONDITION: 0 examples after cleaning: %d unparsable, 1 "
      "missing_value; first unparsable: exposures line 2: column 'time': '2022-01-08' is not "
      "a day number (time format day_number)\n",
      logs.exposures.size() - 1 + logs.redemptions.size());
  std::string out;
  EXPECT_EQ(Couponctl({"ingest", "--logs=" + dir_.Sub("iso")}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr(expected));
  EXPECT_THAT(out, HasSubstr("examples 0, positives 0"));  // the report is printed first
  EXPECT_EQ(Couponctl({"pipeline", "--logs=" + dir_.Sub("iso"), "--store=" + dir_.Sub("store"),
                       "--report=" + dir_.Sub("r.md")},
                      &out),
            1)
      << out;
  EXPECT_THAT(out, HasSubstr(expected));
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("r.md")));
  // With the right format there is data again.
  EXPECT_EQ(Couponctl({"ingest", "--logs=" + dir_.Sub("iso"), "--time_format=iso_date"}, &out), 0)
      << out;
}

// Redemptions dated at campaign end fall outside the default 30-day window: no positive is
// left, which fails with the counts; --redemption_window_days brings them back.
TEST_F(CouponctlPipelineTest, RedemptionWindowDaysFlag) {
  Logs logs;
  for (int u = 0; u < 5; ++u) {
    logs.exposures.push_back({absl::StrCat("u", u), "c1", "k1", 10});
    logs.redemptions.push_back({absl::StrCat("u", u), "c1", 50});
  }
  WriteLogs(logs, dir_.Sub("late"), "day_number");
  std::string out;
  EXPECT_EQ(Couponctl({"ingest", "--logs=" + dir_.Sub("late")}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("couponctl: FAILED_PRECONDITION: 0 positive examples after cleaning "
                             "(5 examples): 5 outside_window; first outside_window: redemptions "
                             "line 2: redeemed on day 50, latest exposure on day 10 (window 30 "
                             "days)\n"));
  EXPECT_EQ(Couponctl({"ingest", "--logs=" + dir_.Sub("late"), "--redemption_window_days=40"}, &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("examples 5, positives 5,"));
  EXPECT_EQ(Couponctl({"ingest", "--logs=" + dir_.Sub("late"), "--redemption_window_days=39"}, &out), 1)
      << out;
}

// Positives lost to a short window in the test period only: the pipeline's period error
// names the quarantine counts too, and a wider window brings the run back.
TEST_F(CouponctlPipelineTest, APeriodWithoutPositivesNamesTheQuarantineCounts) {
  Logs logs = CampaignLogs(SteadyRate);
  int64_t delayed = 0;
  for (Redemption& r : logs.redemptions) {
    if (r.day >= 19027) r.day += 40, ++delayed;  // campaign 9: redeemed 41 days later
  }
  ASSERT_GT(delayed, 0);
  WriteLogs(logs, dir_.Sub("late"), "day_number");
  std::string out;
  EXPECT_EQ(Couponctl({"train", "--logs=" + dir_.Sub("late"), "--threads=1"}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrFormat(
                       "couponctl: INVALID_ARGUMENT: test period (campaigns from day 19027): a "
                       "single class (0 positives of 360); metrics are undefined (quarantined "
                       "rows: %d outside_window)\n",
                       delayed)));
  EXPECT_EQ(Couponctl({"train", "--logs=" + dir_.Sub("late"), "--threads=1",
                       "--redemption_window_days=45"},
                      &out),
            0)
      << out;
}

// Redemptions of the validation campaigns (7-8) that come only after the test cutoff (day
// 19027) were not seen when the choices were made: the run stops, saying so, however wide
// the window.
TEST_F(CouponctlPipelineTest, ValidationRedemptionsAfterTheTestCutoffAreNotSeen) {
  Logs logs = CampaignLogs(SteadyRate);
  int64_t delayed = 0;
  for (Redemption& r : logs.redemptions) {
    if (r.day >= 19021 && r.day < 19027) r.day += 40, ++delayed;  // campaigns 7-8
  }
  ASSERT_GT(delayed, 0);
  WriteLogs(logs, dir_.Sub("late_validation"), "day_number");
  std::string out;
  EXPECT_EQ(Couponctl({"train", "--logs=" + dir_.Sub("late_validation"), "--threads=1",
                       "--redemption_window_days=45"},
                      &out),
            1)
      << out;
  EXPECT_THAT(out, HasSubstr(absl::StrFormat(
                       "couponctl: INVALID_ARGUMENT: validation period (campaigns from day "
                       "19021): no positive redeemed before the test cutoff (day 19027; %d "
                       "redeemed on or after it, unseen at the cutoff)",
                       delayed)));
}

// --multi_value_columns splits the named users.csv/coupons.csv columns on ';' (one feature
// per value); by default only products is, as before.
TEST_F(CouponctlPipelineTest, MultiValueColumnsFlag) {
  Logs logs = CampaignLogs(SteadyRate);
  logs.users = "user_id,brands\n";
  for (int u = 0; u < 60; ++u) absl::StrAppend(&logs.users, "u", u, ",b", u % 3, ";b", 3 + u % 4, "\n");
  logs.coupons = "coupon_id,products,brand\n";
  for (int c = 0; c < 10; ++c) absl::StrAppend(&logs.coupons, "c", c, ",p", c, ";p", c + 1, ",x", c % 2, ";y\n");
  WriteLogs(logs, dir_.Sub("attrs"), "day_number");
  std::string out;
  ASSERT_EQ(Couponctl({"ingest", "--logs=" + dir_.Sub("attrs")}, &out), 0) << out;
  // Users: 12 distinct "b_;b_" pairs; coupons: products p0..p10 split, brand 2 whole values.
  EXPECT_THAT(out, HasSubstr("attribute features (column=value): users 12, coupons 13"));
  ASSERT_EQ(Couponctl({"ingest", "--logs=" + dir_.Sub("attrs"), "--multi_value_columns=brands,Brand,products"}, &out), 0)
      << out;
  // Users: b0..b2 and b3..b6; coupons: p0..p10, x0, x1, y.
  EXPECT_THAT(out, HasSubstr("attribute features (column=value): users 7, coupons 14"));
  ASSERT_EQ(Couponctl({"ingest", "--logs=" + dir_.Sub("attrs"), "--multi_value_columns="}, &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("attribute features (column=value): users 12, coupons 12"));
  EXPECT_EQ(Couponctl({"ingest", "--logs=" + dir_.Sub("attrs"), "--multi_value_columns=brands,,x"}, &out), 2)
      << out;
  EXPECT_THAT(out, HasSubstr("couponctl: --multi_value_columns: an empty column name"));
}

// Every new flag refuses a bad value as a usage error (exit 2) naming the flag.
TEST_F(CouponctlPipelineTest, BadValuesAreUsageErrorsNamingTheFlag) {
  WriteLogs(CampaignLogs(SteadyRate), dir_.Sub("logs"), "day_number");
  const std::string logs = "--logs=" + dir_.Sub("logs");
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"ingest", logs, "--time_format=iso"},
       "couponctl: --time_format: 'iso' is not a time format (day_number, iso_date or unix_seconds)"},
      {{"ingest", logs, "--redemption_window_days=-1"}, "couponctl: --redemption_window_days: -1 is negative"},
      {{"train", logs, "--test_fraction=1"}, "couponctl: --test_fraction: 1 is not in (0, 1)"},
      {{"train", logs, "--test_fraction=nan"}, "couponctl: --test_fraction: nan is not in (0, 1)"},
      {{"pipeline", logs, "--store=s", "--report=r.md", "--validation_fraction=0"},
       "couponctl: --validation_fraction: 0 is not in (0, 1)"},
      {{"ingest", "--dunnhumby=" + dir_.Sub("none"), "--time_format=iso_date"},
       "couponctl: --time_format: applies to --logs only, not --dunnhumby"},
      {{"ingest", "--dunnhumby=" + dir_.Sub("none"), "--redemption_window_days=60"},
       "couponctl: --redemption_window_days: applies to --logs only, not --dunnhumby"},
      {{"train", logs, "--grid_dimensions=0"},
       "couponctl: --grid_dimensions: '0' is not a dimension in 1..4096"},
      {{"train", logs, "--grid_dimensions=2,x"},
       "couponctl: --grid_dimensions: 'x' is not a dimension in 1..4096"},
      {{"train", logs, "--grid_dimensions=2,2"}, "couponctl: --grid_dimensions: '2' is given twice"},
      {{"train", logs, "--grid_l2=nan"}, "couponctl: --grid_l2: 'nan' is not a finite number above 0"},
      {{"train", logs, "--grid_learning_rates=-0.1"},
       "couponctl: --grid_learning_rates: '-0.1' is not a finite number above 0"},
      {{"train", logs, "--prior_bias=median"},
       "couponctl: --prior_bias: 'median' is not auto, calibrated or mean"},
  };
  for (const auto& [args, message] : cases) {
    std::string out;
    EXPECT_EQ(Couponctl(args, &out), 2) << absl::StrJoin(args, " ") << "\n" << out;
    EXPECT_THAT(out, HasSubstr(message)) << absl::StrJoin(args, " ");
  }
}

// The grid and the segment priors' bias rule come from the flags: one grid point trained,
// the rule as given. Without --prior_bias the rule is chosen on the validation period, where
// it can be: these logs have no users.csv, so no user can be placed in a segment as a new
// user and the report says the default was kept.
TEST_F(CouponctlPipelineTest, GridAndPriorBiasFlags) {
  WriteLogs(CampaignLogs(SteadyRate), dir_.Sub("logs"), "day_number");
  const std::string logs = "--logs=" + dir_.Sub("logs");
  std::string out;
  ASSERT_EQ(Couponctl({"train", logs, "--threads=1", "--grid_dimensions=3", "--grid_l2=0.05",
                       "--grid_learning_rates=0.02", "--prior_bias=mean", "--like_neighbours=false"},
                      &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("select d=3 l2=0.05 lr=0.02"));
  EXPECT_THAT(out, Not(HasSubstr("select d=1 ")));
  EXPECT_THAT(out, HasSubstr("segment priors (user cold start): mean bias, as configured"));
  ASSERT_EQ(Couponctl({"train", logs, "--threads=1", "--grid_dimensions=2",
                       "--grid_learning_rates=0.02"},
                      &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("calibrated bias, the default: no validation example's user could "
                             "be placed in a segment by attributes alone"));
}

// A whole pipeline run on logs whose base rate jumps in the last campaign, without
// coupons.csv: the periods are printed with their real shares of the rows, the shift is
// warned about (output and report), and the cold-start line says there was nothing to score
// instead of printing NaN.
TEST_F(CouponctlPipelineTest, PipelinePrintsPeriodSharesAndWarnsOfAShift) {
  const Logs logs = CampaignLogs([](int u, int c, int campaign) {
    return campaign == 9 ? (u + c) % 3 == 0 : SteadyRate(u, c, campaign);
  });
  WriteLogs(logs, dir_.Sub("shift"), "day_number");
  // Expected periods, counted here from the logs: test = the last campaign (360 of 1440
  // rows; the 20% asked for cannot be met with whole campaigns), validation = campaigns 7-8.
  int64_t positives[10] = {}, examples[10] = {};
  for (const Exposure& e : logs.exposures) ++examples[e.campaign.back() - '0'];
  for (const Redemption& r : logs.redemptions) ++positives[(r.day - 19001) / 3];
  const int64_t total = static_cast<int64_t>(logs.exposures.size());
  int64_t fit = 0, fit_pos = 0;
  for (int i = 0; i < 7; ++i) fit += examples[i], fit_pos += positives[i];
  const int64_t val = examples[7] + examples[8], val_pos = positives[7] + positives[8];
  const int64_t test = examples[9], test_pos = positives[9];
  ASSERT_EQ(test, 360);
  ASSERT_EQ(total, 1440);

  std::string out;
  ASSERT_EQ(Couponctl({"pipeline", "--logs=" + dir_.Sub("shift"), "--store=" + dir_.Sub("store"),
                       "--report=" + dir_.Sub("report.md"), "--threads=1"},
                      &out),
            0)
      << out;
  auto pct = [](int64_t a, int64_t b) { return 100.0 * static_cast<double>(a) / static_cast<double>(b); };
  EXPECT_THAT(out, HasSubstr(absl::StrFormat(
                       "fit period: %d examples, %.1f%% of the rows, %d positives (%.3f%%), "
                       "campaigns before day 19021\n",
                       fit, pct(fit, total), fit_pos, pct(fit_pos, fit))));
  EXPECT_THAT(out, HasSubstr(absl::StrFormat(
                       "validation period: %d examples, %.1f%% of the rows (requested 20%% of "
                       "the training period, got %.1f%%), %d positives (%.3f%%), campaigns from "
                       "day 19021 to 19026\n",
                       val, pct(val, total), pct(val, fit + val), val_pos, pct(val_pos, val))));
  EXPECT_THAT(out, HasSubstr(absl::StrFormat(
                       "test period: 360 examples, 25.0%% of the rows (requested 20%%), %d "
                       "positives (%.3f%%), campaigns from day 19027\n",
                       test_pos, pct(test_pos, test))));
  EXPECT_THAT(out, HasSubstr("warning: base rate shift: test period"));
  EXPECT_THAT(out, HasSubstr("no test example has a predicted coupon"));
  EXPECT_THAT(out, Not(HasSubstr(" nan")));
  const std::string report = ReadFileOrEmpty(dir_.Sub("report.md"));
  EXPECT_THAT(report, HasSubstr("Warning: base rate shift: test period"));
  EXPECT_THAT(report, HasSubstr("| test | 360 | 25.0% (requested 20%) |"));

  // --test_fraction moves the cutoff: 40% takes campaigns 7-9 (600 of 1440 rows).
  ASSERT_EQ(Couponctl({"train", "--logs=" + dir_.Sub("shift"), "--threads=1", "--test_fraction=0.4"},
                      &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("test period: 600 examples, 41.7% of the rows (requested 40%)"));
}

// Help texts say what the flags do everywhere they are used.
TEST_F(CouponctlPipelineTest, HelpTextsAreTrue) {
  std::string out;
  Couponctl({"--helpfull"}, &out);  // absl's help exits non-zero; the text is what counts
  // absl wraps help at 80 columns: compare with every run of whitespace made one space.
  std::string text;
  for (absl::string_view word : absl::StrSplit(out, absl::ByAnyChar(" \n\t"), absl::SkipEmpty())) {
    absl::StrAppend(&text, word, " ");
  }
  EXPECT_THAT(text, HasSubstr("--seed (Random seed of generate and simulate (the platform and its "
                              "logs), simulate-traffic (the outcomes drawn), and train and "
                              "pipeline (trainer initialisation, k-means).)"));
  EXPECT_THAT(text, HasSubstr("counted from 1970-01-01 (UTC), day 0"));
  for (const char* flag : {"--time_format (", "--redemption_window_days (", "--multi_value_columns (",
                           "--test_fraction (", "--validation_fraction (", "--like_neighbours (",
                           "--grid_dimensions (", "--grid_l2 (", "--grid_learning_rates (",
                           "--prior_bias ("}) {
    EXPECT_THAT(text, HasSubstr(flag));
  }
}

}  // namespace
}  // namespace coupond
