// Nothing from the test period, and nothing observed after a cutoff, reaches what the pipeline
// trains (issue 14): the real pipeline (RunPipeline over canonical CSV logs, threads 1) on
// small hand-made logs, run on variants of the same logs:
//   * every test-period label permuted: the published model is bit-identical;
//   * every test-period row deleted: bit-identical (the test period is locked by its day,
//     PipelineOptions::test_cutoff_day, so that deleting it does not move the split);
//   * a redemption of a training-period exposure dated on or after the test cutoff: the
//     model is bit-identical to the one without it; the same redemption dated before the
//     cutoff does change the model (so the comparison can fail).
// "The published model" is everything trained: ids, factors, biases, segments and their
// priors, cold-start flags, and the metadata except what describes the data or the test
// evaluation (data.*, eval.*, split.test_examples, the description with its test AUC).

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "core/random.h"
#include "gtest/gtest.h"
#include "pipeline/ingest.h"
#include "pipeline/train_job.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::pipeline {
namespace leakage_test {

// The hand-made platform: 40 users in 4 regions, 12 coupons in 4 categories; a user redeems
// mostly coupons of the category matching its region. 8 campaigns start on days 0, 10, ...,
// 70, each offering 4 coupons to 30 users on its start day; redemptions come 0-19 days after
// the exposure, so those of campaigns 5-6 (days 50, 60) often fall after the day-60 cutoff.
// User u39 and coupon c11 appear only in the test campaigns (days 60 and 70).
constexpr int kUsers = 40, kCoupons = 12, kCampaigns = 8;
constexpr int32_t kTestCutoffDay = 60;

struct Exposure {
  int user, coupon, campaign;
  int32_t day;
  bool redeemed;
  int32_t redemption_day;
};

std::vector<Exposure> Platform() {
  std::vector<Exposure> out;
  core::SplitMix64 rng(14);
  for (int k = 0; k < kCampaigns; ++k) {
    const int32_t day = 10 * k;
    const bool test = day >= kTestCutoffDay;
    for (int slot = 0; slot < 30; ++slot) {
      const int u = test ? (slot + 7 * k) % kUsers : (slot + 7 * k) % (kUsers - 1);
      for (int j = 0; j < 4; ++j) {
        const int c = test ? (u + 3 * j + k) % kCoupons : (u + 3 * j + k) % (kCoupons - 1);
        const bool match = c % 4 == u % 4;
        const uint64_t draw = rng.Next() % 100;
        const bool redeemed = draw < (match ? 45u : 6u);
        out.push_back({u, c, k, day, redeemed, day + static_cast<int32_t>(rng.Next() % 20)});
      }
    }
  }
  return out;
}

// Writes the logs of `exposures` into `dir` (all users and coupons in users.csv and
// coupons.csv, so that deleting rows does not change who the model knows).
LogPaths WriteLogs(const std::string& dir, const std::vector<Exposure>& exposures,
                   const std::vector<std::string>& extra_redemptions = {}) {
  LogPaths p;
  p.exposures = dir + "/exposures.csv";
  p.redemptions = dir + "/redemptions.csv";
  p.users = dir + "/users.csv";
  p.coupons = dir + "/coupons.csv";
  std::ofstream users(p.users), coupons(p.coupons), ex(p.exposures), red(p.redemptions);
  users << "user_id,region\n";
  for (int u = 0; u < kUsers; ++u) users << absl::StrFormat("u%02d,r%d\n", u, u % 4);
  coupons << "coupon_id,category\n";
  for (int c = 0; c < kCoupons; ++c) coupons << absl::StrFormat("c%02d,k%d\n", c, c % 4);
  ex << "user_id,coupon_id,campaign_id,time\n";
  red << "user_id,coupon_id,time\n";
  for (const Exposure& e : exposures) {
    ex << absl::StrFormat("u%02d,c%02d,camp%d,%d\n", e.user, e.coupon, e.campaign, e.day);
    if (e.redeemed) {
      red << absl::StrFormat("u%02d,c%02d,%d\n", e.user, e.coupon, e.redemption_day);
    }
  }
  for (const std::string& row : extra_redemptions) red << row << "\n";
  return p;
}

PipelineOptions Options(const LogPaths& logs) {
  PipelineOptions o;
  o.logs = logs;
  o.test_cutoff_day = kTestCutoffDay;
  o.threads = 1;
  o.grid.dimensions = {2};
  o.grid.l2_factors = {1e-2f};
  o.grid.learning_rates = {1e-2f, 3e-2f};
  o.trainer.epochs = 8;
  o.segments.kmeans.k = 3;
  o.feature_logistic.l2_grid = {0.1, 1.0};
  return o;
}

template <typename T>
bool BitIdentical(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// The metadata a trained model is made of: without the keys that describe the data read or
// the test evaluation.
std::map<std::string, std::string> TrainedMetadata(const core::ModelData& m) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : m.metadata) {
    if (absl::StartsWith(key, "data.") || absl::StartsWith(key, "eval.") ||
        key == "split.test_examples") {
      continue;
    }
    out[key] = value;
  }
  return out;
}

// Empty when `a` and `b` are the same trained model bit for bit; else what differs.
std::string TrainedModelDifference(const core::ModelData& a, const core::ModelData& b) {
  std::string d;
  auto check = [&d](bool same, const char* what) {
    if (!same) absl::StrAppend(&d, what, " differ; ");
  };
  check(a.dimension == b.dimension, "dimensions");
  check(std::memcmp(&a.global_bias, &b.global_bias, sizeof(double)) == 0, "global biases");
  check(a.user_ids == b.user_ids, "user ids");
  check(a.coupon_ids == b.coupon_ids, "coupon ids");
  check(BitIdentical(a.user_bias, b.user_bias), "user biases");
  check(BitIdentical(a.user_factors, b.user_factors), "user factors");
  check(BitIdentical(a.coupon_bias, b.coupon_bias), "coupon biases");
  check(BitIdentical(a.coupon_factors, b.coupon_factors), "coupon factors");
  check(a.coupon_predicted_from_attributes == b.coupon_predicted_from_attributes,
        "cold-start flags");
  check(a.user_segment == b.user_segment, "user segments");
  check(a.segment_features.size() == b.segment_features.size(), "segment feature counts");
  for (size_t k = 0; k < a.segment_features.size() && k < b.segment_features.size(); ++k) {
    const core::SegmentFeature &x = a.segment_features[k], &y = b.segment_features[k];
    check(x.name == y.name && std::memcmp(&x.offset, &y.offset, sizeof(float)) == 0 &&
              std::memcmp(&x.scale, &y.scale, sizeof(float)) == 0,
          "segment features");
  }
  check(a.segments.size() == b.segments.size(), "segment counts");
  for (size_t k = 0; k < a.segments.size() && k < b.segments.size(); ++k) {
    const core::SegmentData &x = a.segments[k], &y = b.segments[k];
    check(BitIdentical(x.centroid, y.centroid), "segment centroids");
    check(std::memcmp(&x.prior_bias, &y.prior_bias, sizeof(float)) == 0, "segment prior biases");
    check(BitIdentical(x.prior_factors, y.prior_factors), "segment prior factors");
    check(std::memcmp(&x.redemption_rate, &y.redemption_rate, sizeof(double)) == 0 &&
              x.members == y.members,
          "segment rates or members");
  }
  check(TrainedMetadata(a) == TrainedMetadata(b), "trained metadata");
  return d;
}

class LeakageTest : public ::testing::Test {
 protected:
  PipelineResult Run(const std::string& name, const std::vector<Exposure>& exposures,
                     const std::vector<std::string>& extra_redemptions = {}) {
    const std::string dir = tmp_.Sub(name);
    std::filesystem::create_directories(dir);
    absl::StatusOr<PipelineResult> r =
        RunPipeline(Options(WriteLogs(dir, exposures, extra_redemptions)));
    EXPECT_TRUE(r.ok()) << name << ": " << r.status();
    return r.ok() ? *std::move(r) : PipelineResult{};
  }

  coupond::testing::TempDir tmp_;
};

TEST_F(LeakageTest, PermutingEveryTestLabelLeavesThePublishedModelBitIdentical) {
  const std::vector<Exposure> platform = Platform();
  const PipelineResult original = Run("original", platform);
  ASSERT_GT(original.test_examples, 0);
  ASSERT_GT(original.censored_train_positives, 0) << "the platform must cross the cutoff";
  // Rotate the labels (and redemption days) of the test exposures by one.
  std::vector<Exposure> permuted = platform;
  std::vector<size_t> test;
  for (size_t i = 0; i < permuted.size(); ++i) {
    if (permuted[i].day >= kTestCutoffDay) test.push_back(i);
  }
  for (size_t k = 0; k < test.size(); ++k) {
    const Exposure& from = platform[test[(k + 1) % test.size()]];
    permuted[test[k]].redeemed = from.redeemed;
    permuted[test[k]].redemption_day = permuted[test[k]].day + (from.redemption_day - from.day);
  }
  const PipelineResult other = Run("permuted", permuted);
  EXPECT_NE(other.evaluations[0].auc, original.evaluations[0].auc)
      << "the test labels did change: so do the test figures";
  EXPECT_EQ(TrainedModelDifference(original.model, other.model), "");

  // The comparison can fail: the same rotation over the training period changes the model.
  std::vector<Exposure> train_permuted = platform;
  std::vector<size_t> train;
  for (size_t i = 0; i < platform.size(); ++i) {
    if (platform[i].day < kTestCutoffDay) train.push_back(i);
  }
  for (size_t k = 0; k < train.size(); ++k) {
    const Exposure& from = platform[train[(k + 1) % train.size()]];
    train_permuted[train[k]].redeemed = from.redeemed;
    train_permuted[train[k]].redemption_day =
        platform[train[k]].day + (from.redemption_day - from.day);
  }
  EXPECT_NE(TrainedModelDifference(original.model, Run("train_permuted", train_permuted).model),
            "");
}

TEST_F(LeakageTest, DeletingEveryTestRowLeavesThePublishedModelBitIdentical) {
  const std::vector<Exposure> platform = Platform();
  const PipelineResult original = Run("original", platform);
  std::vector<Exposure> kept;
  for (const Exposure& e : platform) {
    if (e.day < kTestCutoffDay) kept.push_back(e);
  }
  ASSERT_LT(kept.size(), platform.size());
  const PipelineResult other = Run("deleted", kept);
  // Nothing to evaluate on: trained and published all the same, without test figures.
  EXPECT_EQ(other.test_examples, 0);
  EXPECT_TRUE(other.evaluations.empty());
  EXPECT_EQ(TrainedModelDifference(original.model, other.model), "");
  // The user and the coupon of the test period alone are still known (users.csv,
  // coupons.csv) and placed by what was fitted before the cutoff.
  EXPECT_EQ(other.model.user_ids.back(), "u39");
  EXPECT_EQ(other.model.coupon_ids.back(), "c11");
}

TEST_F(LeakageTest, ARedemptionObservedAfterTheCutoffChangesNothingTrained) {
  std::vector<Exposure> platform = Platform();
  // A training-period exposure without a redemption, from the validation campaign (day 50),
  // whose pair is not offered again (a later redemption is attributed to it, not to a test
  // exposure).
  size_t pick = platform.size();
  for (size_t i = 0; i < platform.size() && pick == platform.size(); ++i) {
    if (platform[i].day != 50 || platform[i].redeemed) continue;
    bool offered_again = false;
    for (const Exposure& x : platform) {
      offered_again |= x.user == platform[i].user && x.coupon == platform[i].coupon &&
                       x.day > platform[i].day;
    }
    if (!offered_again) pick = i;
  }
  ASSERT_LT(pick, platform.size());
  const Exposure& e = platform[pick];
  auto redemption = [&e](int32_t day) {
    return absl::StrFormat("u%02d,c%02d,%d", e.user, e.coupon, day);
  };
  const PipelineResult original = Run("original", platform);
  const PipelineResult late = Run("late", platform, {redemption(kTestCutoffDay)});
  EXPECT_EQ(late.censored_train_positives, original.censored_train_positives + 1);
  EXPECT_EQ(TrainedModelDifference(original.model, late.model), "");
  // The same redemption a day earlier was observed before the cutoff: it is trained on.
  const PipelineResult early = Run("early", platform, {redemption(kTestCutoffDay - 1)});
  EXPECT_EQ(early.train_positives, original.train_positives + 1);
  EXPECT_NE(TrainedModelDifference(original.model, early.model), "");
}

// CensorLabelsAt on hand-made examples: only listed positives redeemed on or after the day.
TEST(CensorLabelsAtTest, TurnsOnlyLaterRedemptionsOfListedExamplesIntoNegatives) {
  learn::TrainingData d;
  for (int32_t label_day : {5, 9, 10, 30, 12}) {
    learn::Example e;
    e.label = 1.0f;
    e.label_day = label_day;
    e.order_value = 3.0f;
    d.examples.push_back(e);
  }
  d.examples.push_back(learn::Example{});  // a negative (label_day 0): untouched
  const std::vector<uint32_t> listed = {0, 1, 2, 3, 5};  // not 4
  EXPECT_EQ(CensorLabelsAt(10, listed, &d), 2);
  std::vector<float> labels;
  for (const learn::Example& e : d.examples) labels.push_back(e.label);
  EXPECT_EQ(labels, (std::vector<float>{1, 1, 0, 0, 1, 0}));
  EXPECT_EQ(d.examples[2].order_value, 0.0f);
  EXPECT_EQ(d.examples[4].order_value, 3.0f);
  EXPECT_EQ(CensorLabelsAt(10, {}, &d), 0);  // empty list: nothing
}

}  // namespace leakage_test
}  // namespace coupond::pipeline
