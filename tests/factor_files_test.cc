// Factor files: exact round trip, and clear file:line errors on messy or bad input.

#include "pipeline/factor_files.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/models.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::pipeline {
namespace {

using ::coupond::testing::StatusIs;
using ::coupond::testing::TempDir;
using ::coupond::testing::TinyModel;
using ::testing::HasSubstr;

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

TEST(FactorFilesTest, RoundTripIsExact) {
  TempDir dir;
  core::ModelData m = TinyModel(20, 9, 6);
  m.coupon_attributes[3].valid_from_unix_seconds = 1'700'000'000;
  m.coupon_attributes[3].valid_until_unix_seconds = 1'800'000'000;
  m.coupon_attributes[4].stock = 12;
  m.coupon_attributes[5].face_value = 0.1;
  ASSERT_OK(WriteFactorFiles(m, dir.path()));
  ASSERT_OK_AND_ASSIGN(core::ModelData back, ReadFactorFiles(dir.path()));
  EXPECT_EQ(back.dimension, m.dimension);
  EXPECT_EQ(back.global_bias, m.global_bias);
  EXPECT_EQ(back.description, m.description);
  EXPECT_EQ(back.user_ids, m.user_ids);
  EXPECT_EQ(back.user_bias, m.user_bias);  // %.9g round-trips float exactly
  EXPECT_EQ(back.user_factors, m.user_factors);
  EXPECT_EQ(back.coupon_ids, m.coupon_ids);
  EXPECT_EQ(back.coupon_factors, m.coupon_factors);
  EXPECT_EQ(back.coupon_attributes, m.coupon_attributes);
}


// Factor files carry no segments (factor_files.h): a segmented model writes without them,
// reads back without them, and the rest of it is unchanged.
TEST(FactorFilesTest, SegmentsAreLeftOut) {
  TempDir dir;
  core::ModelData m = TinyModel(3, 2, 2);
  m.segment_features = {{"log_exposures", 1.0f, 0.5f}};
  core::SegmentData seg;
  seg.name = "segment-0";
  seg.centroid = {0.25f};
  seg.prior_factors = {0.1f, -0.1f};
  seg.redemption_rate = 0.05;
  seg.members = 3;
  m.segments.push_back(seg);
  m.user_segment = {0, 0, -1};
  ASSERT_OK(core::ValidateModelData(m));
  ASSERT_OK(WriteFactorFiles(m, dir.path()));
  ASSERT_OK_AND_ASSIGN(core::ModelData back, ReadFactorFiles(dir.path()));
  EXPECT_TRUE(back.segments.empty());
  EXPECT_TRUE(back.segment_features.empty());
  EXPECT_TRUE(back.user_segment.empty());
  EXPECT_EQ(back.user_ids, m.user_ids);
  EXPECT_EQ(back.user_factors, m.user_factors);
}

class FactorFilesErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_.Sub("model.tsv"), "format\t1\ndimension\t2\nglobal_bias\t-2.5\n");
    WriteFile(dir_.Sub("users.tsv"), "user_id\tbias\tf1\tf2\nu1\t0.1\t0.2\t0.3\n");
    WriteFile(dir_.Sub("coupons.tsv"),
              "coupon_id\tbias\tface_value\tvalid_from\tvalid_until\tstock\tf1\tf2\n"
              "c1\t0.5\t10\t0\t0\t-1\t1\t2\n");
  }
  absl::StatusOr<core::ModelData> Read() { return ReadFactorFiles(dir_.path()); }
  TempDir dir_;
};

TEST_F(FactorFilesErrorTest, AcceptsTheMinimalFiles) {
  ASSERT_OK_AND_ASSIGN(core::ModelData m, Read());
  EXPECT_EQ(m.num_users(), 1u);
  EXPECT_EQ(m.coupon_factors, (std::vector<float>{1, 2}));
}

TEST_F(FactorFilesErrorTest, AcceptsCrlfCommentsAndBlankLines) {
  WriteFile(dir_.Sub("users.tsv"),
            "# exported by a spreadsheet\r\nuser_id\tbias\tf1\tf2\r\n\r\nu1\t0.1\t0.2\t0.3\r\n");
  ASSERT_OK_AND_ASSIGN(core::ModelData m, Read());
  EXPECT_EQ(m.user_ids, std::vector<std::string>{"u1"});
}

TEST_F(FactorFilesErrorTest, NaNIsRejectedWithLineAndColumn) {
  WriteFile(dir_.Sub("users.tsv"), "user_id\tbias\tf1\tf2\nu1\t0.1\t0.2\t0.3\nu2\t0\tnan\t1\n");
  EXPECT_THAT(Read(), StatusIs(absl::StatusCode::kInvalidArgument,
                               HasSubstr("users.tsv:3: column 'f1': 'nan'")));
}

TEST_F(FactorFilesErrorTest, HugeNumberIsRejected) {
  WriteFile(dir_.Sub("users.tsv"), "user_id\tbias\tf1\tf2\nu1\t1e999\t0\t0\n");
  EXPECT_THAT(Read(), StatusIs(absl::StatusCode::kInvalidArgument,
                               HasSubstr("users.tsv:2: column 'bias'")));
}

TEST_F(FactorFilesErrorTest, WrongColumnCountIsRejected) {
  WriteFile(dir_.Sub("coupons.tsv"),
            "coupon_id\tbias\tface_value\tvalid_from\tvalid_until\tstock\tf1\tf2\n"
            "c1\t0.5\t10\t0\t0\t-1\t1\n");
  EXPECT_THAT(Read(), StatusIs(absl::StatusCode::kInvalidArgument,
                               HasSubstr("coupons.tsv:2: has 7 columns, expected 8")));
}

TEST_F(FactorFilesErrorTest, HeaderMustMatchDimension) {
  WriteFile(dir_.Sub("model.tsv"), "format\t1\ndimension\t3\nglobal_bias\t0\n");
  EXPECT_THAT(Read(), StatusIs(absl::StatusCode::kInvalidArgument,
                               HasSubstr("users.tsv:1: header must be")));
}

TEST_F(FactorFilesErrorTest, DuplicateIdIsRejected) {
  WriteFile(dir_.Sub("users.tsv"), "user_id\tbias\tf1\tf2\nu1\t0\t0\t0\nu1\t0\t0\t0\n");
  EXPECT_THAT(Read(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("duplicate")));
}

TEST_F(FactorFilesErrorTest, MissingFileIsNotFound) {
  std::filesystem::remove(dir_.Sub("coupons.tsv"));
  EXPECT_THAT(Read(), StatusIs(absl::StatusCode::kNotFound, HasSubstr("coupons.tsv")));
}

TEST_F(FactorFilesErrorTest, MetaNeedsRequiredKeysAndKnownFormat) {
  WriteFile(dir_.Sub("model.tsv"), "format\t1\ndimension\t2\n");
  EXPECT_THAT(Read(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("global_bias")));
  WriteFile(dir_.Sub("model.tsv"), "format\t2\ndimension\t2\nglobal_bias\t0\n");
  EXPECT_THAT(Read(), StatusIs(absl::StatusCode::kInvalidArgument,
                               HasSubstr("format 2 is not supported")));
  WriteFile(dir_.Sub("model.tsv"), "format\t1\ndimension\t0\nglobal_bias\t0\n");
  EXPECT_THAT(Read(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dimension 0")));
}

TEST_F(FactorFilesErrorTest, BadAttributeIsRejected) {
  WriteFile(dir_.Sub("coupons.tsv"),
            "coupon_id\tbias\tface_value\tvalid_from\tvalid_until\tstock\tf1\tf2\n"
            "c1\t0.5\t10\t0\t0\tlots\t1\t2\n");
  EXPECT_THAT(Read(), StatusIs(absl::StatusCode::kInvalidArgument,
                               HasSubstr("coupons.tsv:2: column 'stock'")));
  WriteFile(dir_.Sub("coupons.tsv"),
            "coupon_id\tbias\tface_value\tvalid_from\tvalid_until\tstock\tf1\tf2\n"
            "c1\t0.5\t-10\t0\t0\t1\t1\t2\n");
  EXPECT_THAT(Read(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("face_value")));
}

}  // namespace
}  // namespace coupond::pipeline
