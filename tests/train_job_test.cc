#include "pipeline/train_job.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "core/scorer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pipeline/evaluation.h"
#include "pipeline/neighbour_features.h"
#include "pipeline/segment_priors.h"
#include "pipeline/simulate.h"
#include "storage/model_store.h"
#include "tests/test_util/models.h"
#include "tests/test_util/sanitizers.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::pipeline {
namespace {

using ::coupond::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using ::coupond::testing::kSanitizedBuild;

// Options for a pipeline over simulated logs in `sim`.
PipelineOptions OptionsFor(const SimulationResult& sim) {
  PipelineOptions o;
  o.source = PipelineSource::kLogs;
  o.logs = sim.paths;
  o.truth_factors = sim.truth_dir;
  o.threads = 1;
  return o;
}

// A small, fast configuration: it runs everywhere, sanitizers included.
SimulationOptions SmallSimulation() {
  SimulationOptions s;
  s.platform.num_users = 300;
  s.platform.num_coupons = 40;
  s.days = 10;
  s.coupons_per_exposure = 4;
  s.dirty_rows = 3;
  return s;
}
void MakeSmall(PipelineOptions* o) {
  o->grid.dimensions = {2};
  o->grid.l2_factors = {1e-2f};
  o->grid.learning_rates = {3e-3f, 1e-2f};
  o->trainer.epochs = 6;
  o->segments.kmeans.k = 3;
}

TEST(TrainJobTest, SimulatedLogsEndToEndIntoARealStore) {
  coupond::testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(SimulationResult sim, SimulateLogs(SmallSimulation(), dir.Sub("logs")));
  PipelineOptions o = OptionsFor(sim);
  MakeSmall(&o);
  o.store_path = dir.Sub("store");
  o.ingest.quarantine_path = dir.Sub("quarantine.csv");
  std::vector<std::string> messages;
  int epochs_seen = 0;
  PipelineProgress progress;
  progress.message = [&](const std::string& m) { messages.push_back(m); };
  progress.epoch = [&](const std::string&, const learn::LmfEpochStats&) { ++epochs_seen; };
  ASSERT_OK_AND_ASSIGN(PipelineResult r, RunPipeline(o, progress));

  // Ingest: the dirty rows were quarantined, not dropped silently.
  ASSERT_TRUE(r.ingest.has_value());
  EXPECT_EQ(r.ingest->exposures.quarantined_total() + r.ingest->redemptions.quarantined_total(), 3);
  // Splits are disjoint and cover the data; test campaigns are the latest days.
  EXPECT_EQ(r.train_examples + r.test_examples, r.examples);
  EXPECT_EQ(r.fit_examples + r.validation_examples, r.train_examples);
  EXPECT_GT(r.test_cutoff_day, r.validation_cutoff_day);
  EXPECT_EQ(r.test_campaigns.back(), "day-9");
  // Selection over the whole grid; the curve is the chosen run's.
  EXPECT_EQ(r.grid.size(), 2u);
  EXPECT_EQ(r.training_curve.size(), r.grid[r.chosen].history.size());
  EXPECT_GT(epochs_seen, 0);
  EXPECT_FALSE(messages.empty());
  ASSERT_TRUE(r.segments.has_value());
  EXPECT_EQ(r.segments->k, 3);
  // Evaluations: model, three baselines, the feature-logistic baseline, truth.
  ASSERT_EQ(r.evaluations.size(), 6u);
  EXPECT_EQ(r.evaluations[0].name, "model");
  EXPECT_EQ(r.evaluations[4].name, kFeatureLogisticName);
  ASSERT_TRUE(r.feature_logistic.has_value());
  EXPECT_EQ(r.feature_logistic->evaluation, 4u);
  EXPECT_EQ(r.evaluations[5].name, "truth");
  // Here the LMF wins on validation (the other case: feature_logistic_test.cc).
  EXPECT_EQ(r.published_model, PublishedModel::kLmf) << r.publish_reason;
  for (const Evaluation& e : r.evaluations) {
    EXPECT_TRUE(std::isfinite(e.auc) && std::isfinite(e.log_loss)) << e.name;
  }

  // The published version reads back with its metadata.
  ASSERT_TRUE(r.published.has_value());
  ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForRead(dir.Sub("store")));
  ASSERT_OK_AND_ASSIGN(core::ModelData back, store->ReadVersion(r.published->version));
  EXPECT_EQ(back.user_ids, r.model.user_ids);
  EXPECT_EQ(back.coupon_factors, r.model.coupon_factors);
  EXPECT_EQ(back.metadata, r.model.metadata);
  EXPECT_EQ(back.metadata.at("train.dimension"), "2");
  EXPECT_EQ(back.metadata.at("data.xxh3").size(), 16u);
  EXPECT_EQ(std::stod(back.metadata.at("eval.auc")), std::stod(absl::StrFormat("%.6g", r.evaluations[0].auc)));
  EXPECT_TRUE(back.metadata.count("eval.user_propensity.auc"));
  EXPECT_TRUE(back.metadata.count("eval.truth.log_loss"));
  EXPECT_TRUE(back.metadata.count("eval.feature_logistic_one_hot_attributes.auc"));
  EXPECT_EQ(back.metadata.at("publish.model"), "lmf");

  // The served model, scored by id as the server does, reproduces the pipeline's own test
  // predictions' AUC on the same examples (evaluate == pipeline).
  ASSERT_OK_AND_ASSIGN(PipelineResult ev,
                       EvaluateStoredModel(o, dir.Sub("store"), 0));
  EXPECT_NEAR(ev.evaluations[0].auc, r.evaluations[0].auc, 1e-4);
}

// Issue 5: the segments cold start will use are stored with the model version.
TEST(TrainJobTest, PublishedVersionCarriesSegmentsAndTheirPriors) {
  coupond::testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(SimulationResult sim, SimulateLogs(SmallSimulation(), dir.Sub("logs")));
  PipelineOptions o = OptionsFor(sim);
  MakeSmall(&o);
  o.store_path = dir.Sub("store");
  ASSERT_OK_AND_ASSIGN(PipelineResult r, RunPipeline(o));
  ASSERT_TRUE(r.segments.has_value());
  ASSERT_TRUE(r.published.has_value());
  EXPECT_EQ(r.published->num_segments, 3u);

  ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForRead(dir.Sub("store")));
  ASSERT_OK_AND_ASSIGN(core::ModelData back, store->ReadVersion(r.published->version));
  EXPECT_EQ(back.segments, r.model.segments);
  EXPECT_EQ(back.segment_features, r.model.segment_features);
  EXPECT_EQ(back.metadata.at("segments.k"), "3");
  ASSERT_EQ(back.segments.size(), 3u);
  // The priors' bias rule was chosen on the validation period (step 4b), the lower of the
  // two log losses, and the published model carries it.
  ASSERT_TRUE(r.prior_bias_choice.has_value());
  EXPECT_GT(r.prior_bias_choice->examples, 0);
  EXPECT_EQ(r.prior_bias, r.prior_bias_choice->mean_log_loss < r.prior_bias_choice->calibrated_log_loss
                              ? PriorBias::kMean
                              : PriorBias::kCalibrated);
  EXPECT_EQ(back.metadata.at("segments.prior_bias"), PriorBiasName(r.prior_bias));

  // The encoding: the segmentation's columns, numeric ones standardised, one-hot ones
  // scaled so that a centroid holds weight x (share of members with the attribute).
  ASSERT_EQ(back.segment_features.size(), r.segments->column_names.size());
  EXPECT_EQ(back.segment_features[0].name, "log_exposures");
  EXPECT_GT(back.segment_features.size(), 5u) << "the simulated users' attributes are one-hot";
  for (size_t j = 0; j < back.segment_features.size(); ++j) {
    EXPECT_EQ(back.segment_features[j].name, r.segments->column_names[j]);
    if (j < 5) continue;
    EXPECT_EQ(back.segment_features[j].offset, 0.0f);
    for (const core::SegmentData& seg : back.segments) {
      const float share = seg.centroid[j] * back.segment_features[j].scale;
      EXPECT_GE(share, -1e-5f) << back.segment_features[j].name;
      EXPECT_LE(share, 1.0f + 1e-5f) << back.segment_features[j].name;
    }
  }

  // Every user has a segment; members and priors are those of the published users.
  ASSERT_EQ(back.user_segment.size(), back.num_users());
  const size_t d = back.dimension;
  std::vector<uint64_t> members(3, 0);
  std::vector<double> bias(3, 0.0), factors(3 * d, 0.0);
  for (size_t u = 0; u < back.num_users(); ++u) {
    const int32_t seg = back.user_segment[u];
    ASSERT_GE(seg, 0);
    ASSERT_LT(seg, 3);
    ++members[seg];
    bias[seg] += back.user_bias[u];
    for (size_t k = 0; k < d; ++k) factors[seg * d + k] += back.user_factors[u * d + k];
  }
  for (size_t c = 0; c < 3; ++c) {
    const core::SegmentData& seg = back.segments[c];
    EXPECT_EQ(seg.members, members[c]);
    EXPECT_EQ(static_cast<int64_t>(seg.members), r.segments->segments[c].users);
    EXPECT_EQ(seg.redemption_rate, r.segments->segments[c].redemption_rate);
    ASSERT_GT(members[c], 0u);
    // The bias is calibrated in probability space (CalibratedPriorBias, tested below), so
    // it is not the members' mean bias; it is finite and near it.
    EXPECT_TRUE(std::isfinite(seg.prior_bias));
    EXPECT_NEAR(seg.prior_bias, bias[c] / members[c], 5.0);
    ASSERT_EQ(seg.prior_factors.size(), d);
    for (size_t k = 0; k < d; ++k) {
      EXPECT_NEAR(seg.prior_factors[k], factors[c * d + k] / members[c], 1e-5);
    }
  }

  // The server's snapshot carries them too.
  ASSERT_OK_AND_ASSIGN(auto snapshot, store->LoadSnapshot(r.published->version));
  EXPECT_EQ(snapshot->num_segments(), 3u);
  EXPECT_EQ(snapshot->user_segment(0), back.user_segment[0]);
}

// The calibrated prior's mean probability over the exposures is the target rate, where
// the mean-logit prior falls far below the members' own mean probability when their logits
// spread.
TEST(CalibratedPriorBiasTest, MatchesTheTargetRateOverTheExposures) {
  core::ModelData m = coupond::testing::TinyModel(3, 4, 2);
  m.global_bias = -4.0;
  m.user_bias = {3.0f, -2.0f, -2.0f};  // one frequent redeemer, two rare ones
  const std::vector<float> prior = {
      (m.user_factors[0] + m.user_factors[2] + m.user_factors[4]) / 3,
      (m.user_factors[1] + m.user_factors[3] + m.user_factors[5]) / 3};
  std::vector<std::pair<uint32_t, uint32_t>> exposures;
  for (uint32_t u = 0; u < 3; ++u) {
    for (uint32_t c = 0; c < 4; ++c) exposures.emplace_back(u, c);
  }
  exposures.emplace_back(0, 1);  // a coupon shown twice counts twice
  auto mean_p = [&](auto logit) {
    double sum = 0;
    for (const auto& [u, c] : exposures) sum += core::Sigmoid(logit(u, c));
    return sum / static_cast<double>(exposures.size());
  };
  auto dot = [&](const float* x, uint32_t c) {
    return double{x[0]} * m.coupon_factors[c * 2] + double{x[1]} * m.coupon_factors[c * 2 + 1];
  };
  const double members = mean_p([&](uint32_t u, uint32_t c) {
    return m.global_bias + m.user_bias[u] + m.coupon_bias[c] + dot(&m.user_factors[u * 2], c);
  });
  auto prior_mean_p = [&](double bias) {
    return mean_p([&](uint32_t, uint32_t c) {
      return m.global_bias + bias + m.coupon_bias[c] + dot(prior.data(), c);
    });
  };
  const double mean_bias = (3.0 - 2.0 - 2.0) / 3;
  EXPECT_LT(prior_mean_p(mean_bias), 0.5 * members) << "the mean-logit prior is far too low";
  for (double target : {members, 0.01, 0.5, 1e-6}) {
    const std::optional<float> b = CalibratedPriorBias(m, prior, exposures, target);
    ASSERT_TRUE(b.has_value()) << target;
    EXPECT_NEAR(prior_mean_p(*b), target, 1e-5 * target) << target;
  }
  EXPECT_GT(*CalibratedPriorBias(m, prior, exposures, members), mean_bias);

  // Nothing to calibrate on, or no rate to reach: nullopt (the caller keeps the mean bias).
  EXPECT_FALSE(CalibratedPriorBias(m, prior, {}, 0.1).has_value());
  for (double bad : {0.0, 1.0, -0.5, std::nan("")}) {
    EXPECT_FALSE(CalibratedPriorBias(m, prior, exposures, bad).has_value()) << bad;
  }
}

TEST(TrainJobTest, WithoutSegmentationPublishesNoSegments) {
  coupond::testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(SimulationResult sim, SimulateLogs(SmallSimulation(), dir.Sub("logs")));
  PipelineOptions o = OptionsFor(sim);
  MakeSmall(&o);
  o.segment_users = false;
  o.store_path = dir.Sub("store");
  ASSERT_OK_AND_ASSIGN(PipelineResult r, RunPipeline(o));
  ASSERT_TRUE(r.published.has_value());
  EXPECT_EQ(r.published->num_segments, 0u);
  ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForRead(dir.Sub("store")));
  ASSERT_OK_AND_ASSIGN(core::ModelData back, store->ReadVersion(r.published->version));
  EXPECT_TRUE(back.segments.empty());
  EXPECT_TRUE(back.user_segment.empty());
}

template <typename T>
bool SameBytes(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// Default threads (every core): two runs publish the same bytes and report the same
// figures, and so does a run on one thread.
TEST(TrainJobTest, DeterministicByDefault) {
  coupond::testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(SimulationResult sim, SimulateLogs(SmallSimulation(), dir.Sub("logs")));
  PipelineOptions o = OptionsFor(sim);
  MakeSmall(&o);
  o.threads = PipelineOptions{}.threads;
  ASSERT_OK_AND_ASSIGN(PipelineResult a, RunPipeline(o));
  o.store_path = dir.Sub("store");
  ASSERT_OK_AND_ASSIGN(PipelineResult b, RunPipeline(o));
  // Its own store: the checksum covers the keys, which hold the version number.
  o.store_path = dir.Sub("store_one_thread");
  o.threads = 1;
  ASSERT_OK_AND_ASSIGN(PipelineResult c, RunPipeline(o));
  for (const PipelineResult* other : {&b, &c}) {
    EXPECT_TRUE(SameBytes(a.model.user_factors, other->model.user_factors));
    EXPECT_TRUE(SameBytes(a.model.user_bias, other->model.user_bias));
    EXPECT_TRUE(SameBytes(a.model.coupon_factors, other->model.coupon_factors));
    EXPECT_TRUE(SameBytes(a.model.coupon_bias, other->model.coupon_bias));
    EXPECT_EQ(a.model.global_bias, other->model.global_bias);
    EXPECT_EQ(a.model.metadata, other->model.metadata);
    EXPECT_EQ(a.chosen, other->chosen);
    ASSERT_EQ(a.grid.size(), other->grid.size());
    for (size_t k = 0; k < a.grid.size(); ++k) {
      EXPECT_EQ(a.grid[k].validation_log_loss, other->grid[k].validation_log_loss);
    }
    ASSERT_EQ(a.evaluations.size(), other->evaluations.size());
    for (size_t k = 0; k < a.evaluations.size(); ++k) {
      EXPECT_EQ(a.evaluations[k].auc, other->evaluations[k].auc) << a.evaluations[k].name;
      EXPECT_EQ(a.evaluations[k].log_loss, other->evaluations[k].log_loss);
    }
  }
  ASSERT_TRUE(b.published.has_value() && c.published.has_value());
  EXPECT_EQ(c.published->version, b.published->version);
  EXPECT_EQ(b.published->checksum, c.published->checksum) << "the same data bytes";
}

// The default pipeline (its whole grid) on simulated logs comes within 0.03 AUC of the true
// probabilities, and beats every baseline. Sized to train in ~6 CPU-s (500 users, 120k
// exposures, 1 thread; the demo's 2,000 users took 40 s). The bar is one the baselines miss
// (checked), so a model that learnt no user-coupon interaction fails it.
TEST(TrainJobTest, TrainedAucIsCloseToTheTruthsAuc) {
  if (kSanitizedBuild) GTEST_SKIP() << "trains the default grid: a minute under ASan";
  coupond::testing::TempDir dir;
  SimulationOptions s;  // the demo's platform with fewer users, more exposures per user
  s.platform.num_users = 500;
  s.coupons_per_exposure = 16;
  ASSERT_OK_AND_ASSIGN(SimulationResult sim, SimulateLogs(s, dir.Sub("logs")));
  PipelineOptions o = OptionsFor(sim);
  ASSERT_OK_AND_ASSIGN(PipelineResult r, RunPipeline(o));
  ASSERT_EQ(r.evaluations.back().name, "truth");
  const double model = r.evaluations[0].auc, truth = r.evaluations.back().auc;
  std::cout << absl::StrFormat("%d exposures, %d test examples (%d positives): model AUC %.4f, "
                               "truth %.4f\n",
                               sim.exposures, r.test_examples, r.test_positives, model, truth);
  EXPECT_GT(model, truth - 0.03) << "model " << model << " truth " << truth;
  // The bar discriminates: the best baseline (no user-coupon interaction) is below it.
  double best_baseline = 0;
  for (size_t k = 1; k + 1 < r.evaluations.size(); ++k) {
    best_baseline = std::max(best_baseline, r.evaluations[k].auc);
  }
  EXPECT_LT(best_baseline, truth - 0.03) << "the bar no longer tells a model from a baseline";
  RecordProperty("model_auc", absl::StrFormat("%.4f", model));
  RecordProperty("truth_auc", absl::StrFormat("%.4f", truth));
  for (size_t k = 1; k + 1 < r.evaluations.size(); ++k) {
    EXPECT_GT(model, r.evaluations[k].auc) << r.evaluations[k].name;
  }
}

TEST(TrainJobTest, ColdCouponsGetTheirNearestTrainingCouponByProducts) {
  learn::TrainingData d;
  d.user_ids = {"u"};
  d.user_features.AddRow({});
  d.coupon_ids = {"c0", "c1", "c2", "c3"};
  d.coupon_features.names = {"product=1", "product=2", "product=3", "product=4", "type=A"};
  d.coupon_features.AddRow({0, 1, 4});  // c0 {1,2}, seen
  d.coupon_features.AddRow({1, 2});     // c1 {2,3}, seen
  d.coupon_features.AddRow({2});        // c2 {3}, cold: Jaccard 0 with c0, 1/2 with c1
  d.coupon_features.AddRow({3, 4});     // c3 {4}, cold, no shared product
  d.coupon_attributes.resize(4);
  d.campaign_ids = {"k"};
  for (uint32_t c = 0; c < 4; ++c) {
    learn::Example e;
    e.coupon = c;
    d.examples.push_back(e);
  }
  const std::vector<uint32_t> train = {0, 1};
  const std::vector<std::string> prefixes = {"product="};
  PipelineResult counts;
  ReplaceListsByNeighbours(&d, train, prefixes, &counts);
  auto names = [&](uint32_t c) {
    std::vector<std::string> n;
    for (uint32_t f : d.coupon_features.row(c)) n.push_back(d.coupon_features.names[f]);
    return n;
  };
  EXPECT_THAT(names(0), ElementsAre("type=A", "like=c0"));
  EXPECT_THAT(names(1), ElementsAre("like=c1"));
  EXPECT_THAT(names(2), ElementsAre("like=c1"));
  EXPECT_THAT(names(3), ElementsAre("type=A"));
  EXPECT_EQ(counts.neighbour_coupons, 4);
  EXPECT_EQ(counts.neighbour_cold_coupons, 2);
  EXPECT_EQ(counts.neighbour_cold_matched, 1);
  ASSERT_OK(d.Validate());
}

// Cold start in the pipeline: excluded users vanish from every step and from the model;
// coupons without training examples get vectors predicted from their attributes (the
// simulation's "category" column), flagged, published and read back with their flag.
TEST(TrainJobTest, ExcludedUsersAreUnknownAndColdCouponsArePredictedAndFlagged) {
  coupond::testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(SimulationResult sim, SimulateLogs(SmallSimulation(), dir.Sub("logs")));
  // Four coupons are offered on the last day only, so the training period never sees them.
  {
    std::ifstream in(sim.paths.exposures);
    std::string line, kept;
    std::getline(in, line);
    kept = line + "\n";
    while (std::getline(in, line)) {
      const bool cold = line.find(",c00001,") != std::string::npos ||
                        line.find(",c00002,") != std::string::npos ||
                        line.find(",c00003,") != std::string::npos ||
                        line.find(",c00004,") != std::string::npos;
      if (cold && line.find(",day-9,") == std::string::npos) continue;
      kept += line + "\n";
    }
    std::ofstream(sim.paths.exposures) << kept;
  }
  PipelineOptions o = OptionsFor(sim);
  MakeSmall(&o);
  o.store_path = dir.Sub("store");
  ASSERT_OK_AND_ASSIGN(LoadedData loaded, LoadPipelineData(o));
  const learn::TrainingData& data = loaded.data;
  o.exclude_users = {data.user_ids[0], data.user_ids[5], "not-a-user"};
  ASSERT_OK_AND_ASSIGN(PipelineResult r, RunPipeline(o));

  EXPECT_EQ(r.excluded_users, 2);
  EXPECT_EQ(r.users, static_cast<int64_t>(data.user_ids.size()) - 2);
  for (const std::string& id : {data.user_ids[0], data.user_ids[5]}) {
    EXPECT_EQ(std::count(r.model.user_ids.begin(), r.model.user_ids.end(), id), 0) << id;
  }
  EXPECT_EQ(r.model.metadata.at("data.excluded_users"), "2");

  // Flagged exactly: coupons without an example in the training campaigns.
  std::set<std::string> test_campaigns(r.test_campaigns.begin(), r.test_campaigns.end());
  std::set<std::string> trained;
  for (const learn::Example& e : data.examples) {
    if (!test_campaigns.count(data.campaign_ids[e.campaign])) {
      trained.insert(data.coupon_ids[e.coupon]);
    }
  }
  ASSERT_TRUE(r.cold_coupons.has_value());
  ASSERT_EQ(r.model.coupon_predicted_from_attributes.size(), r.model.num_coupons());
  int64_t flagged = 0;
  for (size_t c = 0; c < r.model.num_coupons(); ++c) {
    const bool cold = !trained.count(r.model.coupon_ids[c]);
    EXPECT_EQ(r.model.coupon_predicted_from_attributes[c] == 1, cold) << r.model.coupon_ids[c];
    flagged += r.model.coupon_predicted_from_attributes[c];
  }
  EXPECT_EQ(flagged, 4);
  EXPECT_EQ(r.cold_coupons->fit.predicted_coupons, 4);
  EXPECT_EQ(r.model.metadata.at("cold_start.predicted_coupons"), "4");
  EXPECT_GT(r.cold_coupons->test_examples, 0);

  // Published with the flags; the server-side snapshot reports them per coupon.
  ASSERT_TRUE(r.published.has_value());
  ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForRead(dir.Sub("store")));
  ASSERT_OK_AND_ASSIGN(auto snapshot, store->LoadSnapshot(r.published->version));
  for (size_t c = 0; c < r.model.num_coupons(); ++c) {
    const std::optional<uint32_t> row = snapshot->FindCoupon(r.model.coupon_ids[c]);
    ASSERT_TRUE(row.has_value());
    EXPECT_EQ(snapshot->coupon_predicted_from_attributes(*row),
              r.model.coupon_predicted_from_attributes[c] == 1);
  }

  // Off: nothing predicted, nothing flagged.
  o.predict_cold_coupons = false;
  o.store_path.clear();
  ASSERT_OK_AND_ASSIGN(PipelineResult off, RunPipeline(o));
  EXPECT_FALSE(off.cold_coupons.has_value());
  EXPECT_TRUE(off.model.coupon_predicted_from_attributes.empty());
  o.predict_cold_coupons = true;
  o.cold_coupons.l2 = 0;
  EXPECT_THAT(RunPipeline(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cold_coupons.l2")));
}

TEST(TrainJobTest, BadOptionsNameTheField) {
  PipelineOptions o;
  o.logs.exposures = "x";
  o.test_fraction = 1.5;
  EXPECT_THAT(RunPipeline(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("test_fraction")));
  o = PipelineOptions();
  o.source = PipelineSource::kDunnhumby;
  EXPECT_THAT(RunPipeline(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dunnhumby_dir")));
  o = PipelineOptions();
  o.logs.exposures = "/nonexistent/exposures.csv";
  o.logs.redemptions = "/nonexistent/redemptions.csv";
  EXPECT_THAT(RunPipeline(o), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace coupond::pipeline
