#include "pipeline/simulate.h"

#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pipeline/factor_files.h"
#include "pipeline/ingest.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::pipeline {
namespace {

using ::coupond::testing::StatusIs;
using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

SimulationOptions Small() {
  SimulationOptions o;
  o.platform.num_users = 200;
  o.platform.num_coupons = 30;
  o.days = 6;
  return o;
}

TEST(SimulateTest, WritesCanonicalLogsThatIngestCleanly) {
  coupond::testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(SimulationResult sim, SimulateLogs(Small(), dir.path()));
  EXPECT_GT(sim.exposures, 0);
  EXPECT_GT(sim.redemptions, 0);
  IngestOptions io;
  ASSERT_OK_AND_ASSIGN(IngestResult in, IngestLogs(sim.paths, io));
  EXPECT_EQ(in.report.exposures.rows_read, sim.exposures);
  EXPECT_EQ(in.report.exposures.quarantined_total(), 0);
  EXPECT_EQ(in.report.redemptions.quarantined_total(), 0);
  EXPECT_EQ(in.data.user_ids.size(), 200u);
  EXPECT_EQ(in.data.coupon_ids.size(), 30u);
  EXPECT_EQ(in.data.campaign_ids.size(), 6u);
  // Side attributes from the truth: a segment and a tier per user, a category per coupon.
  EXPECT_EQ(in.data.user_features.row(0).size(), 2u);
  EXPECT_EQ(in.data.coupon_features.row(0).size(), 1u);
  // The truth is readable and matches the ids.
  ASSERT_OK_AND_ASSIGN(core::ModelData truth, ReadFactorFiles(sim.truth_dir));
  EXPECT_EQ(truth.user_ids, in.data.user_ids);
  // The label rate matches the mean true probability (law of large numbers, loosely).
  const double rate = static_cast<double>(sim.redemptions) / static_cast<double>(sim.exposures);
  EXPECT_NEAR(rate, sim.mean_true_p, 0.02);
}

TEST(SimulateTest, IsDeterministicForASeed) {
  coupond::testing::TempDir a, b;
  ASSERT_OK_AND_ASSIGN(SimulationResult ra, SimulateLogs(Small(), a.path()));
  ASSERT_OK_AND_ASSIGN(SimulationResult rb, SimulateLogs(Small(), b.path()));
  EXPECT_EQ(ReadAll(ra.paths.exposures), ReadAll(rb.paths.exposures));
  EXPECT_EQ(ReadAll(ra.paths.redemptions), ReadAll(rb.paths.redemptions));
  SimulationOptions other = Small();
  other.seed = 8;
  coupond::testing::TempDir c;
  ASSERT_OK_AND_ASSIGN(SimulationResult rc, SimulateLogs(other, c.path()));
  EXPECT_NE(ReadAll(ra.paths.exposures), ReadAll(rc.paths.exposures));
}

TEST(SimulateTest, DirtyRowsEndInQuarantine) {
  coupond::testing::TempDir dir;
  SimulationOptions o = Small();
  o.dirty_rows = 6;
  ASSERT_OK_AND_ASSIGN(SimulationResult sim, SimulateLogs(o, dir.path()));
  ASSERT_OK_AND_ASSIGN(IngestResult in, IngestLogs(sim.paths, IngestOptions()));
  EXPECT_EQ(in.report.exposures.quarantined_total(), 4);
  EXPECT_EQ(in.report.redemptions.quarantined_total(), 2);
}

TEST(SimulateTest, RejectsBadOptions) {
  coupond::testing::TempDir dir;
  SimulationOptions o = Small();
  o.days = 1;
  EXPECT_THAT(SimulateLogs(o, dir.path()), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("days")));
  o = Small();
  o.coupons_per_exposure = 31;
  EXPECT_THAT(SimulateLogs(o, dir.path()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("coupons_per_exposure")));
}

}  // namespace
}  // namespace coupond::pipeline
