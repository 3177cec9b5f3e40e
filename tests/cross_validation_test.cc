// Cross-validation: pair-grouped, seeded folds; a deterministic grid search that prefers the
// sensible hyperparameters; bad input named.

#include "learn/cross_validation.h"

#include <numeric>
#include <set>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "learn/lmf_synthetic.h"
#include "tests/test_util/sanitizers.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::learn {
namespace {

using ::coupond::testing::StatusIs;
using ::testing::HasSubstr;

constexpr size_t kExamples = ::coupond::testing::kSanitizedBuild ? 8000 : 40000;

SyntheticTrainingSet MakeSet() {
  SyntheticTrainingOptions o;
  o.num_users = 500;
  o.num_coupons = 50;
  o.num_examples = kExamples;
  o.attribute_share = 0.9;
  auto s = GenerateSyntheticTrainingSet(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return *std::move(s);
}

std::vector<uint32_t> All(const TrainingData& d) {
  std::vector<uint32_t> v(d.examples.size());
  std::iota(v.begin(), v.end(), 0u);
  return v;
}

TEST(AssignFoldsTest, GroupsPairsBalancesAndIsSeeded) {
  const SyntheticTrainingSet s = MakeSet();
  const std::vector<uint32_t> all = All(s.data);
  ASSERT_OK_AND_ASSIGN(std::vector<int> a, AssignFoldsByPair(s.data, all, 4, 1));
  ASSERT_OK_AND_ASSIGN(std::vector<int> b, AssignFoldsByPair(s.data, all, 4, 1));
  ASSERT_OK_AND_ASSIGN(std::vector<int> c, AssignFoldsByPair(s.data, all, 4, 2));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::vector<size_t> count(4, 0);
  std::set<std::pair<uint32_t, uint32_t>> pairs_in[4];
  for (size_t i = 0; i < all.size(); ++i) {
    ASSERT_GE(a[i], 0);
    ASSERT_LT(a[i], 4);
    ++count[static_cast<size_t>(a[i])];
    const Example& e = s.data.examples[i];
    pairs_in[a[i]].insert({e.user, e.coupon});
  }
  for (size_t f = 0; f < 4; ++f) {
    EXPECT_NEAR(static_cast<double>(count[f]) / static_cast<double>(all.size()), 0.25, 0.03);
    for (size_t g = f + 1; g < 4; ++g) {  // no pair straddles two folds
      for (const auto& p : pairs_in[f]) EXPECT_EQ(pairs_in[g].count(p), 0u);
    }
  }
  EXPECT_THAT(AssignFoldsByPair(s.data, all, 1, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("folds")));
  EXPECT_THAT(AssignFoldsByPair(s.data, std::vector<uint32_t>{0, 1u << 30}, 3, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("examples[1]")));
}

TEST(CrossValidateTest, ChoosesByMeanLogLossDeterministically) {
  const SyntheticTrainingSet s = MakeSet();
  const std::vector<uint32_t> all = All(s.data);
  CrossValidationOptions o;
  o.folds = 3;
  o.dimensions = {8};
  // A hopeless L2 (every row pulled to zero) against a sensible one.
  o.l2_factors = {1e-2f, 3.0f};
  o.learning_rates = {0.002f};
  o.base.threads = 1;
  o.base.epochs = 8;
  int calls = 0;
  ASSERT_OK_AND_ASSIGN(CrossValidationResult r,
                       CrossValidateLmf(s.data, all, o, [&](const GridPointResult&) { ++calls; }));
  EXPECT_EQ(calls, 2);
  ASSERT_EQ(r.grid.size(), 2u);
  for (const GridPointResult& g : r.grid) {
    ASSERT_EQ(g.folds.size(), 3u);
    double mean = 0;
    for (const FoldMetrics& f : g.folds) {
      mean += f.log_loss / 3;
      EXPECT_GE(f.best_epoch, 1);
    }
    EXPECT_DOUBLE_EQ(g.mean_log_loss, mean);
    std::printf("dim=%u l2=%g lr=%g: mean AUC %.4f, mean log loss %.4f\n", g.dimension,
                g.l2_factors, g.learning_rate, g.mean_auc, g.mean_log_loss);
  }
  EXPECT_EQ(r.best_index, 0u);
  EXPECT_EQ(r.best_options.l2_id_factors, 1e-2f);
  EXPECT_EQ(r.best_options.l2_feature_factors, 1e-2f);
  EXPECT_EQ(r.best_options.dimension, 8u);
  EXPECT_GT(r.grid[0].mean_auc, 0.7);
  EXPECT_GT(r.grid[0].mean_auc, r.grid[1].mean_auc);

  ASSERT_OK_AND_ASSIGN(CrossValidationResult again, CrossValidateLmf(s.data, all, o));
  for (size_t i = 0; i < r.grid.size(); ++i) {
    EXPECT_EQ(again.grid[i].mean_log_loss, r.grid[i].mean_log_loss);
    EXPECT_EQ(again.grid[i].mean_auc, r.grid[i].mean_auc);
  }
}

TEST(CrossValidateTest, RejectsBadOptionsNamingTheField) {
  const SyntheticTrainingSet s = MakeSet();
  const std::vector<uint32_t> all = All(s.data);
  CrossValidationOptions o;
  o.dimensions = {};
  EXPECT_THAT(CrossValidateLmf(s.data, all, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dimensions")));
  o = CrossValidationOptions{};
  o.learning_rates = {0.01f, -1.0f};
  EXPECT_THAT(CrossValidateLmf(s.data, all, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("learning_rate")));
  o = CrossValidationOptions{};
  o.inner_validation_fraction = 0.0;
  EXPECT_THAT(CrossValidateLmf(s.data, all, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("inner_validation_fraction")));
  o = CrossValidationOptions{};
  o.folds = 0;
  EXPECT_THAT(CrossValidateLmf(s.data, all, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("folds")));
  EXPECT_THAT(CrossValidateLmf(s.data, {}, CrossValidationOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("examples")));
}

}  // namespace
}  // namespace coupond::learn
