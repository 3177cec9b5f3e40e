#include "pipeline/feature_logistic.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/str_format.h"
#include "learn/metrics.h"
#include "pipeline/simulate.h"
#include "pipeline/train_job.h"
#include "storage/model_store.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::pipeline {
namespace {

using ::coupond::testing::StatusIs;
using ::testing::HasSubstr;

// splitmix64: a deterministic stream on every platform (no std distributions).
struct FlRng {
  uint64_t state;
  double Uniform() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;
  }
};

// Users with one of 5 "age" values, coupons with one of 4 "type" values; the response is
// attribute-driven: p = sigmoid(-2.5 + age effect + type effect). Each user sees `per_user`
// random coupons. Examples are in user order, with day = example index (for splits by index).
learn::TrainingData AttributeDrivenData(int users, int coupons, int per_user, uint64_t seed) {
  const double age_effect[5] = {-1.5, -0.5, 0.0, 0.8, 1.6};
  const double type_effect[4] = {-1.0, 0.0, 0.7, 1.4};
  learn::TrainingData d;
  for (int a = 0; a < 5; ++a) d.user_features.names.push_back("age=" + std::to_string(a));
  for (int t = 0; t < 4; ++t) d.coupon_features.names.push_back("type=" + std::to_string(t));
  for (int u = 0; u < users; ++u) {
    d.user_ids.push_back("u" + std::to_string(u));
    d.user_features.AddRow({static_cast<uint32_t>(u % 5)});
  }
  for (int c = 0; c < coupons; ++c) {
    d.coupon_ids.push_back("c" + std::to_string(c));
    d.coupon_features.AddRow({static_cast<uint32_t>(c % 4)});
  }
  d.coupon_attributes.resize(static_cast<size_t>(coupons));
  d.campaign_ids = {"k"};
  FlRng rng{seed};
  for (int u = 0; u < users; ++u) {
    for (int k = 0; k < per_user; ++k) {
      const int c = static_cast<int>(rng.Uniform() * coupons) % coupons;
      const double z = -2.5 + age_effect[u % 5] + type_effect[c % 4];
      learn::Example e;
      e.user = static_cast<uint32_t>(u);
      e.coupon = static_cast<uint32_t>(c);
      e.day = static_cast<int32_t>(d.examples.size());
      e.label = rng.Uniform() < 1.0 / (1.0 + std::exp(-z)) ? 1.0f : 0.0f;
      d.examples.push_back(e);
    }
  }
  return d;
}

std::vector<uint32_t> FlRange(size_t begin, size_t end) {
  std::vector<uint32_t> v;
  for (size_t i = begin; i < end; ++i) v.push_back(static_cast<uint32_t>(i));
  return v;
}

// Interleaved thirds: every user appears in each part.
void FlThirds(size_t n, std::vector<uint32_t>* fit, std::vector<uint32_t>* validation,
              std::vector<uint32_t>* test) {
  for (size_t i = 0; i < n; ++i) {
    (i % 3 == 0 ? fit : i % 3 == 1 ? validation : test)->push_back(static_cast<uint32_t>(i));
  }
}

TEST(FeatureLogisticTest, BeatsAConstantPredictorOnAttributeDrivenData) {
  const learn::TrainingData d = AttributeDrivenData(600, 40, 10, 11);
  std::vector<uint32_t> fit, validation, test;
  FlThirds(d.examples.size(), &fit, &validation, &test);
  ASSERT_OK_AND_ASSIGN(FeatureLogisticModel m, FitFeatureLogistic(d, fit, 1e-4));
  EXPECT_EQ(m.active_features, 9);
  std::vector<float> labels;
  double positives = 0;
  for (uint32_t i : fit) positives += d.examples[i].label;
  for (uint32_t i : test) labels.push_back(d.examples[i].label);
  const std::vector<float> constant(test.size(),
                                    static_cast<float>(positives / static_cast<double>(fit.size())));
  const std::vector<float> p = m.Predict(d, test);
  ASSERT_OK_AND_ASSIGN(double loss, learn::LogLoss(p, labels));
  ASSERT_OK_AND_ASSIGN(double constant_loss, learn::LogLoss(constant, labels));
  ASSERT_OK_AND_ASSIGN(double auc, learn::RocAuc(p, labels));
  EXPECT_LT(loss, constant_loss - 0.02) << "loss " << loss << " vs constant " << constant_loss;
  EXPECT_GT(auc, 0.70);
  // The weights recover the effects' ORDER (the levels are only identified up to a shift).
  for (int a = 1; a < 5; ++a) EXPECT_GT(m.user_weights[a], m.user_weights[a - 1]) << a;
  for (int t = 1; t < 4; ++t) EXPECT_GT(m.coupon_weights[t], m.coupon_weights[t - 1]) << t;
}

TEST(FeatureLogisticTest, ConvergesToTheStationaryPointAndIsDeterministic) {
  const learn::TrainingData d = AttributeDrivenData(200, 12, 8, 3);
  const std::vector<uint32_t> train = FlRange(0, d.examples.size());
  const double l2 = 1e-3;
  ASSERT_OK_AND_ASSIGN(FeatureLogisticModel a, FitFeatureLogistic(d, train, l2));
  ASSERT_OK_AND_ASSIGN(FeatureLogisticModel b, FitFeatureLogistic(d, train, l2));
  EXPECT_EQ(a.intercept, b.intercept);
  EXPECT_EQ(a.user_weights, b.user_weights);
  EXPECT_EQ(a.coupon_weights, b.coupon_weights);
  // Gradient of mean log loss + l2/2 |w|^2 at the solution, computed here independently.
  std::vector<double> gu(a.user_weights.size(), 0.0), gc(a.coupon_weights.size(), 0.0);
  double g0 = 0.0;
  const std::vector<float> p = a.Predict(d, train);
  for (size_t k = 0; k < train.size(); ++k) {
    const learn::Example& e = d.examples[train[k]];
    const double r = static_cast<double>(p[k]) - e.label;
    g0 += r;
    for (uint32_t f : d.user_features.row(e.user)) gu[f] += r;
    for (uint32_t g : d.coupon_features.row(e.coupon)) gc[g] += r;
  }
  const double n = static_cast<double>(train.size());
  // p is float: the tolerance is float rounding, far below any unconverged gradient.
  EXPECT_NEAR(g0 / n, 0.0, 1e-6);
  for (size_t f = 0; f < gu.size(); ++f) EXPECT_NEAR(gu[f] / n + l2 * a.user_weights[f], 0.0, 1e-6);
  for (size_t g = 0; g < gc.size(); ++g) {
    EXPECT_NEAR(gc[g] / n + l2 * a.coupon_weights[g], 0.0, 1e-6);
  }
}

TEST(FeatureLogisticTest, L2ChoiceReadsOnlyFitAndValidationExamples) {
  learn::TrainingData d = AttributeDrivenData(300, 20, 9, 5);
  std::vector<uint32_t> fit, validation, test;
  FlThirds(d.examples.size(), &fit, &validation, &test);
  FeatureLogisticOptions o;
  o.l2_grid = {1e-5, 1e-3, 1e-1, 10.0};
  ASSERT_OK_AND_ASSIGN(FeatureLogisticSelection before, SelectFeatureLogisticL2(d, fit, validation, o));
  ASSERT_EQ(before.grid.size(), 4u);
  // A huge L2 (10: every attribute weight ~0, a constant) must lose on validation here.
  EXPECT_NE(before.chosen, 3u);
  // Flipping every test label changes nothing chosen or measured.
  for (uint32_t i : test) d.examples[i].label = 1.0f - d.examples[i].label;
  ASSERT_OK_AND_ASSIGN(FeatureLogisticSelection after, SelectFeatureLogisticL2(d, fit, validation, o));
  EXPECT_EQ(after.chosen, before.chosen);
  for (size_t k = 0; k < before.grid.size(); ++k) {
    EXPECT_EQ(after.grid[k].validation_log_loss, before.grid[k].validation_log_loss) << k;
    EXPECT_EQ(after.grid[k].validation_auc, before.grid[k].validation_auc) << k;
  }
  // ...while flipping the validation labels does change the figures (the check can fail).
  for (uint32_t i : validation) d.examples[i].label = 1.0f - d.examples[i].label;
  ASSERT_OK_AND_ASSIGN(FeatureLogisticSelection flipped, SelectFeatureLogisticL2(d, fit, validation, o));
  EXPECT_NE(flipped.grid[0].validation_log_loss, before.grid[0].validation_log_loss);
}

TEST(FeatureLogisticTest, BadInputNamesTheField) {
  const learn::TrainingData d = AttributeDrivenData(20, 4, 5, 1);
  const std::vector<uint32_t> all = FlRange(0, d.examples.size());
  EXPECT_THAT(FitFeatureLogistic(d, all, 0.0), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("l2")));
  EXPECT_THAT(FitFeatureLogistic(d, all, std::nan("")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("l2")));
  EXPECT_THAT(FitFeatureLogistic(d, {}, 1e-3), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("train")));
  const std::vector<uint32_t> out_of_range = {0, 100000};
  EXPECT_THAT(FitFeatureLogistic(d, out_of_range, 1e-3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("train[1]")));
  std::vector<uint32_t> negatives;
  for (uint32_t i : all) {
    if (d.examples[i].label == 0.0f) negatives.push_back(i);
  }
  EXPECT_THAT(FitFeatureLogistic(d, negatives, 1e-3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("single class")));
  FeatureLogisticOptions o;
  o.l2_grid = {};
  EXPECT_THAT(SelectFeatureLogisticL2(d, all, all, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("l2_grid")));
  o.l2_grid = {1e-3, -1.0};
  EXPECT_THAT(SelectFeatureLogisticL2(d, all, all, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("l2_grid[1]")));
  // The pipeline rejects such a grid before it trains anything.
  PipelineOptions po;
  po.logs.exposures = "/nonexistent/exposures.csv";
  po.feature_logistic.l2_grid = {1e-3, std::nan("")};
  EXPECT_THAT(RunPipeline(po), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("feature_logistic.l2_grid[1]")));
}

TEST(FeatureLogisticTest, AsAModelItServesTheSamePredictions) {
  learn::TrainingData d = AttributeDrivenData(50, 8, 6, 9);
  // A user and a coupon without attributes get bias 0 (the intercept alone).
  d.user_ids.push_back("bare-user");
  d.user_features.AddRow({});
  d.coupon_ids.push_back("bare-coupon");
  d.coupon_features.AddRow({});
  d.coupon_attributes.emplace_back();
  learn::Example bare;
  bare.user = 50;
  bare.coupon = 8;
  d.examples.push_back(bare);
  const std::vector<uint32_t> all = FlRange(0, d.examples.size());
  ASSERT_OK_AND_ASSIGN(FeatureLogisticModel m, FitFeatureLogistic(d, all, 1e-3));
  ASSERT_OK_AND_ASSIGN(core::ModelData served, FeatureLogisticAsModel(m, d));
  ASSERT_OK(core::ValidateModelData(served));
  EXPECT_EQ(served.dimension, 1u);
  EXPECT_EQ(served.user_bias[50], 0.0f);
  EXPECT_EQ(served.coupon_bias[8], 0.0f);
  const std::vector<float> direct = m.Predict(d, all);
  const std::vector<float> as_served = PredictWithModel(served, d, all);
  ASSERT_EQ(direct.size(), as_served.size());
  for (size_t k = 0; k < direct.size(); ++k) EXPECT_NEAR(direct[k], as_served[k], 1e-6) << k;
}

// ChoosePublishedModel on constructed results: the baseline only when it is better on
// VALIDATION; test figures play no part.
PipelineResult FlConstructedResult(double lmf_validation, double baseline_validation) {
  PipelineResult r;
  GridPointRun g;
  g.validation_log_loss = lmf_validation;
  r.grid.push_back(g);
  r.chosen = 0;
  FeatureLogisticSummary fl;
  FeatureLogisticGridPoint p;
  p.validation_log_loss = baseline_validation;
  fl.selection.grid.push_back(p);
  r.feature_logistic = fl;
  // Test figures that favour the OTHER model each time: they must not matter.
  Evaluation lmf, baseline;
  lmf.log_loss = baseline_validation < lmf_validation ? 0.01 : 0.9;
  baseline.log_loss = baseline_validation < lmf_validation ? 0.9 : 0.01;
  r.evaluations = {lmf, baseline};
  r.feature_logistic->evaluation = 1;
  return r;
}

TEST(ChoosePublishedModelTest, PublishesTheBetterOnValidation) {
  PipelineOptions o;
  PipelineResult r = FlConstructedResult(0.030, 0.020);
  ChoosePublishedModel(o, &r);
  EXPECT_EQ(r.published_model, PublishedModel::kFeatureLogistic);
  EXPECT_THAT(r.publish_reason, HasSubstr("feature-logistic"));
  EXPECT_THAT(r.publish_reason, HasSubstr("0.02000"));

  r = FlConstructedResult(0.020, 0.030);
  ChoosePublishedModel(o, &r);
  EXPECT_EQ(r.published_model, PublishedModel::kLmf);
  EXPECT_THAT(r.publish_reason, HasSubstr("the LMF"));

  r = FlConstructedResult(0.020, 0.020);  // a tie keeps the LMF
  ChoosePublishedModel(o, &r);
  EXPECT_EQ(r.published_model, PublishedModel::kLmf);

  r = FlConstructedResult(0.030, 0.020);
  r.selection = SelectionMethod::kPairFolds;  // not comparable: the LMF
  ChoosePublishedModel(o, &r);
  EXPECT_EQ(r.published_model, PublishedModel::kLmf);
  EXPECT_THAT(r.publish_reason, HasSubstr("cross-validation"));

  r = FlConstructedResult(0.030, 0.020);
  o.publish_better_on_validation = false;
  ChoosePublishedModel(o, &r);
  EXPECT_EQ(r.published_model, PublishedModel::kLmf);
}

// End to end: an LMF crippled to a near-constant (one epoch at a tiny learning rate) loses
// to the baseline on validation, and the baseline is what lands in the store; with the
// baseline crippled instead (a huge L2), the LMF is published.
TEST(ChoosePublishedModelTest, PipelinePublishesTheBaselineWhenTheLmfIsWorseOnValidation) {
  coupond::testing::TempDir dir;
  SimulationOptions s;
  s.platform.num_users = 300;
  s.platform.num_coupons = 40;
  s.days = 10;
  s.coupons_per_exposure = 4;
  ASSERT_OK_AND_ASSIGN(SimulationResult sim, SimulateLogs(s, dir.Sub("logs")));
  PipelineOptions o;
  o.source = PipelineSource::kLogs;
  o.logs = sim.paths;
  o.threads = 1;
  o.segments.kmeans.k = 3;
  o.grid.dimensions = {2};
  o.grid.l2_factors = {1e-2f};
  o.grid.learning_rates = {1e-7f};
  o.trainer.epochs = 1;
  o.store_path = dir.Sub("store");
  ASSERT_OK_AND_ASSIGN(PipelineResult r, RunPipeline(o));
  ASSERT_TRUE(r.feature_logistic.has_value());
  EXPECT_EQ(r.published_model, PublishedModel::kFeatureLogistic) << r.publish_reason;
  ASSERT_TRUE(r.published.has_value());
  ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForRead(o.store_path));
  ASSERT_OK_AND_ASSIGN(core::ModelData stored, store->ReadVersion(r.published->version));
  EXPECT_EQ(stored.dimension, 1u);
  EXPECT_EQ(stored.metadata["publish.model"], "feature_logistic");
  const Evaluation& fl = r.evaluations[r.feature_logistic->evaluation];
  EXPECT_EQ(fl.name, kFeatureLogisticName);
  EXPECT_EQ(stored.metadata["eval.auc"], absl::StrFormat("%.6g", fl.auc));

  o.grid.learning_rates = {1e-2f};
  o.trainer.epochs = 8;
  o.feature_logistic.l2_grid = {100.0};  // the baseline crippled to a near-constant instead
  o.store_path = "";
  ASSERT_OK_AND_ASSIGN(PipelineResult lmf, RunPipeline(o));
  EXPECT_EQ(lmf.published_model, PublishedModel::kLmf) << lmf.publish_reason;
  EXPECT_EQ(lmf.model.dimension, 2u);
}

}  // namespace
}  // namespace coupond::pipeline
