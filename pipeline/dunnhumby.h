#ifndef COUPOND_PIPELINE_DUNNHUMBY_H_
#define COUPOND_PIPELINE_DUNNHUMBY_H_

// Adapter for dunnhumby "The Complete Journey" coupon tables (../shared/data/
// dunnhumby_coupons; see its SOURCE.txt) -> learn::TrainingData.
//
// Files read from `dir`: campaign_desc.csv (DESCRIPTION, CAMPAIGN, START_DAY, END_DAY),
// campaign_table.csv (DESCRIPTION, household_key, CAMPAIGN), coupon.csv (COUPON_UPC,
// PRODUCT_ID, CAMPAIGN), coupon_redempt.csv (household_key, DAY, COUPON_UPC, CAMPAIGN),
// hh_demographic.csv (household_key, then demographic columns). Column names are matched
// ignoring case (the copies differ in case).
//
// Candidates: one Example per (household, campaign, coupon UPC) such that the household
// received the campaign (campaign_table) and the campaign carries the UPC (coupon.csv).
// label = 1 iff coupon_redempt.csv has that (household, UPC, campaign); repeat redemptions
// of one triple make one positive. day = the campaign's START_DAY. order_value = 0 (the
// redemption tables carry no basket value).
// Entities: users = households of campaign_table.csv and hh_demographic.csv (ascending
// numeric key; households with demographics but no campaign are kept for cold start);
// coupons = UPCs of coupon.csv (ascending); campaigns = CAMPAIGN numbers (ascending).
// Examples are ordered by campaign_table.csv row, then coupon index.
// Features: coupons "product=<PRODUCT_ID>" and "campaign_type=<DESCRIPTION>" over every
// campaign carrying them; users "<COLUMN>=<value>" for each demographic column, the
// column name upper-cased ("AGE_DESC=45-54") so that both published copies agree.
// CouponAttributes stay at their defaults (no face value or Unix dates in the data).
//
// The data are a fixed, published snapshot: any row that does not parse, or refers to a
// campaign absent from campaign_desc.csv, is an InvalidArgument error naming file and
// line. Redemptions that match no candidate are counted (DunnhumbyStats), not dropped
// silently.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "learn/training_data.h"
#include "pipeline/csv.h"

namespace coupond::pipeline {

struct DunnhumbyOptions {
  bool product_features = true;        // "product=..." coupon features. Default true.
  bool campaign_type_features = true;  // "campaign_type=..." coupon features. Default true.
  bool demographic_features = true;    // household demographic features. Default true.
};

struct DunnhumbyStats {
  int64_t exposures = 0;               // distinct (household, campaign) rows
  int64_t duplicate_exposures = 0;     // repeated campaign_table rows
  int64_t redemption_rows = 0;
  int64_t repeat_redemptions = 0;      // rows of an already redeemed triple
  int64_t unmatched_redemptions = 0;   // rows that match no candidate
  int64_t redemptions_outside_campaign = 0;  // DAY outside [START_DAY, END_DAY] (still used)
  int64_t households_with_demographics = 0;
  int64_t exposed_households_with_demographics = 0;
  uint64_t input_checksum = 0;         // XXH3-64 over the five files' XXH3-64s
};

// One row of coupon.csv: the coupon (index), a product it covers, the campaign (index)
// that carried it.
struct DunnhumbyCouponRow {
  uint32_t coupon = 0;
  int64_t product = 0;
  uint32_t campaign = 0;
};

struct DunnhumbyData {
  learn::TrainingData data;
  std::vector<DunnhumbyCouponRow> coupon_rows;  // coupon.csv order
  std::vector<int32_t> campaign_start_day;  // per campaign index
  std::vector<int32_t> campaign_end_day;    // per campaign index
  std::vector<std::string> campaign_type;   // per campaign index ("TypeA", ...)
  DunnhumbyStats stats;
};

// Reads the five files from `dir`. NotFound when a file is missing.
absl::StatusOr<DunnhumbyData> LoadDunnhumby(const std::string& dir,
                                            const DunnhumbyOptions& options = {});

// The coupon features as known on `before_day` (one row per coupon of d.data), for a model
// fitted on the campaigns before that day: a coupon's "product=" and "campaign_type="
// features come only from the coupon.csv rows of campaigns starting before it, so that a
// coupon's later campaigns (their types, their product lists) do not reach what is fitted
// on the earlier ones. A coupon without such a row (first offered on or after the day) gets
// those of the campaigns of its first start day: what a coupon is, is known when it is first
// offered (that is how a cold coupon is scored), but not its later campaigns.
// before_day nullopt: every row (what LoadDunnhumby puts in d.data.coupon_features).
learn::SparseFeatures DunnhumbyCouponFeatures(const DunnhumbyData& d,
                                              std::optional<int32_t> before_day,
                                              const DunnhumbyOptions& options = {});

}  // namespace coupond::pipeline

#endif  // COUPOND_PIPELINE_DUNNHUMBY_H_
