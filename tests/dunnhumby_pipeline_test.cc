// The pipeline on real data (dunnhumby "The Complete Journey"), trained for this whole suite
// in SetUpTestSuite (tests/CMakeLists.txt registers the suite as one CTest test, so the
// training is paid once), and every claim checked on those runs:
//
//   FULL run: the issue's configuration: every household, default options, threads 1.
//      Campaigns 18-25 are its test period, read once at the end; every choice is made on
//      the validation campaigns 13-17. Checked: the split, what the cutoffs hid (against a
//      count made here from the raw data), that every choice is the validation rule's, and
//      the issue's targets on the test campaigns: AUC >= 0.822, log loss <= 0.0212, above
//      every baseline (the feature-logistic one included).
//   COLD run, for user cold start:
//   1. households that have demographics (hh_demographic.csv) are split by a seeded hash;
//      one third is HELD OUT: removed from the data before the pipeline sees it (no
//      examples, no profile, no segment, not in the published model);
//   2. the pipeline trains on the rest, with the choices (grid point, feature-logistic L2,
//      the segment priors' bias rule) the FULL run made on validation: one grid point
//      instead of eight, which keeps the suite at about one full training;
//   3. every candidate (household, campaign, coupon) of a held-out household in the test
//      period is scored the way the server scores a new user (ScoreCoupons with the
//      household's demographics as user attributes, nothing else);
//   4. the AUC of those scores is compared with the coupon-popularity baseline (fitted by
//      FitBaselines on the same training period, as known at the cutoff) on the same pairs,
//      with a household-level (cluster) bootstrap of the difference.
//   Also printed, to tell where the margin comes from: the population prior (the same model
//   and coupons, no user term) and the segment each held-out household was placed in.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "core/random.h"
#include "core/scorer.h"
#include "core/snapshot.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "learn/metrics.h"
#include "pipeline/baselines.h"
#include "pipeline/dunnhumby.h"
#include "pipeline/ingest.h"
#include "pipeline/train_job.h"
#include "tests/test_util/sanitizers.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::pipeline {
namespace {

using ::coupond::testing::kSanitizedBuild;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr uint64_t kHoldOutSeed = 6;
constexpr int kBootstrapReplicates = 400;

// AUC over the examples of the households `weights` selects (each household's examples
// counted `weights[h]` times: a bootstrap replicate).
double WeightedAuc(const std::vector<std::vector<uint32_t>>& by_household,
                   const std::vector<uint32_t>& weights, const std::vector<float>& score,
                   const std::vector<float>& label) {
  std::vector<float> s, y;
  for (size_t h = 0; h < by_household.size(); ++h) {
    for (uint32_t w = 0; w < weights[h]; ++w) {
      for (uint32_t k : by_household[h]) {
        s.push_back(score[k]);
        y.push_back(label[k]);
      }
    }
  }
  const absl::StatusOr<double> auc = learn::RocAuc(s, y);
  if (!auc.ok()) ADD_FAILURE() << auc.status();
  return auc.ok() ? *auc : std::nan("");
}

absl::StatusOr<std::shared_ptr<const core::ModelSnapshot>> Snapshot(const core::ModelData& m) {
  return core::ModelSnapshot::Create(m, core::DescribeModel(m, 1));
}

// The two training runs of the suite and what every test reads.
struct SharedRuns {
  std::string dir;
  DunnhumbyData loaded;  // every household
  PipelineOptions full_options;
  absl::StatusOr<PipelineResult> full = absl::UnknownError("not run");
  std::vector<std::string> held_out;
  absl::flat_hash_set<uint32_t> held_out_index;
  int64_t with_demographics = 0;
  PipelineOptions cold_options;
  absl::StatusOr<PipelineResult> cold = absl::UnknownError("not run");
};

class DunnhumbyPipelineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::optional<std::string> shared = coupond::testing::SharedDataDir();
    if (!shared.has_value() || kSanitizedBuild) return;  // SetUp skips (or fails) each test
    runs_ = new SharedRuns;
    SharedRuns& s = *runs_;
    s.dir = *shared + "/dunnhumby_coupons";
    absl::StatusOr<DunnhumbyData> loaded = LoadDunnhumby(s.dir);
    if (!loaded.ok()) {
      s.full = s.cold = loaded.status();
      return;
    }
    s.loaded = *std::move(loaded);
    // FULL: the issue's configuration.
    s.full_options.source = PipelineSource::kDunnhumby;
    s.full_options.dunnhumby_dir = s.dir;
    s.full_options.threads = 1;  // bit-reproducible
    s.full = RunPipeline(s.full_options);
    if (!s.full.ok()) {
      s.cold = s.full.status();
      return;
    }
    // COLD: hold out a third of the households with demographics.
    const learn::TrainingData& full = s.loaded.data;
    for (uint32_t u = 0; u < full.user_ids.size(); ++u) {
      if (full.user_features.row(u).empty()) continue;
      ++s.with_demographics;
      core::SplitMix64 hash(kHoldOutSeed * 0x9E3779B97F4A7C15ull + u);
      if (hash.Next() % 3 == 0) {
        s.held_out.push_back(full.user_ids[u]);
        s.held_out_index.insert(u);
      }
    }
    s.cold_options = s.full_options;
    s.cold_options.exclude_users = s.held_out;
    const GridPointRun& chosen = s.full->grid[s.full->chosen];
    s.cold_options.grid.dimensions = {chosen.dimension};
    s.cold_options.grid.l2_factors = {chosen.l2_factors};
    s.cold_options.grid.learning_rates = {chosen.learning_rate};
    s.cold_options.feature_logistic.l2_grid = {s.full->feature_logistic->l2};
    s.cold_options.prior_bias = s.full->prior_bias;
    s.cold = RunPipeline(s.cold_options);
  }
  static void TearDownTestSuite() {
    delete runs_;
    runs_ = nullptr;
  }
  void SetUp() override {
    if (!coupond::testing::SharedDataDir().has_value()) {
      COUPOND_SKIP_WITHOUT_SHARED_DATA("shared data (COUPOND_SHARED_DATA) not available");
    }
    if (kSanitizedBuild) {
      GTEST_SKIP() << "trains the full dunnhumby pipeline (8 grid points over 600k candidates): "
                      "minutes under ASan; it runs in the Release suite";
    }
    ASSERT_NE(runs_, nullptr);
    ASSERT_TRUE(runs_->full.ok()) << runs_->full.status();
    ASSERT_TRUE(runs_->cold.ok()) << runs_->cold.status();
  }
  static const SharedRuns& runs() { return *runs_; }

 private:
  static SharedRuns* runs_;
};
SharedRuns* DunnhumbyPipelineTest::runs_ = nullptr;

// The split is the issue's, and the cutoffs hid exactly what was observed after them.
TEST_F(DunnhumbyPipelineTest, SplitsByCampaignAndHidesWhatCameAfterEachCutoff) {
  const PipelineResult& r = *runs().full;
  EXPECT_EQ(r.train_examples, 606078);
  EXPECT_EQ(r.test_examples, 257592);
  EXPECT_EQ(r.test_positives, 886);
  EXPECT_THAT(r.test_campaigns, ElementsAre("18", "19", "20", "21", "22", "23", "24", "25"));
  EXPECT_THAT(r.validation_campaigns, ElementsAre("13", "14", "15", "16", "17"));
  EXPECT_EQ(r.test_cutoff_day, 587);
  EXPECT_EQ(r.validation_cutoff_day, 504);
  // Counted here from the raw data: positives whose campaign starts before a cutoff but
  // whose first redemption is on or after it.
  const learn::TrainingData& full = runs().loaded.data;
  int64_t after_test_cutoff = 0, after_validation_cutoff = 0, train_positives = 0;
  for (const learn::Example& e : full.examples) {
    if (e.label != 1.0f) continue;
    if (e.day < 587) {
      ++train_positives;
      after_test_cutoff += e.label_day >= 587 ? 1 : 0;
    }
    if (e.day < 504) after_validation_cutoff += e.label_day >= 504 ? 1 : 0;
  }
  EXPECT_GT(after_test_cutoff, 0) << "campaigns 14-17 run into the test window";
  EXPECT_EQ(r.censored_train_positives, after_test_cutoff);
  EXPECT_EQ(r.censored_fit_positives, after_validation_cutoff);
  EXPECT_EQ(r.train_positives, train_positives) << "counted before censoring";
  // dunnhumby dates every exposure at its campaign's start: none falls after its cutoff.
  EXPECT_EQ(r.late_train_exposures, 0);
  EXPECT_EQ(r.late_fit_exposures, 0);
  // Step 2b: every coupon's product list became a neighbour feature (coupon features as of
  // the cutoff); of the 234 coupons never offered in the training period, 161 share a
  // product with one that was.
  EXPECT_EQ(r.neighbour_coupons, 1135);
  EXPECT_EQ(r.neighbour_cold_coupons, 234);
  EXPECT_EQ(r.neighbour_cold_matched, 161);
}

// Every choice is made on the validation campaigns: the grid point by the validation rule
// (lowest log loss, near-ties to the best AUC), its epochs by early stopping there, and the
// model published (LMF or feature-logistic baseline) by validation log loss.
TEST_F(DunnhumbyPipelineTest, EveryChoiceIsMadeOnTheValidationCampaigns) {
  const PipelineResult& r = *runs().full;
  double lowest = r.grid[0].validation_log_loss;
  for (const GridPointRun& g : r.grid) lowest = std::min(lowest, g.validation_log_loss);
  EXPECT_LE(r.grid[r.chosen].validation_log_loss,
            lowest * (1 + runs().full_options.selection_tie_tolerance));
  EXPECT_EQ(r.final_epochs, r.grid[r.chosen].best_epoch);
  ASSERT_TRUE(r.feature_logistic.has_value());
  const double fl = r.feature_logistic->selection.grid[r.feature_logistic->selection.chosen]
                        .validation_log_loss;
  EXPECT_EQ(r.published_model == PublishedModel::kFeatureLogistic,
            fl < r.grid[r.chosen].validation_log_loss);
  EXPECT_THAT(r.publish_reason, HasSubstr("validation log loss"));
  // Step 4b: the segment priors' bias rule, the lower validation log loss.
  ASSERT_TRUE(r.prior_bias_choice.has_value());
  const PriorBiasChoice& prior = *r.prior_bias_choice;
  std::cout << absl::StrFormat(
      "segment priors: %s bias chosen on validation (%d examples as new users: log loss "
      "calibrated %.5f, mean %.5f)\n",
      PriorBiasName(prior.rule), prior.examples, prior.calibrated_log_loss, prior.mean_log_loss);
  EXPECT_GT(prior.examples, 0);
  EXPECT_EQ(r.prior_bias, prior.mean_log_loss < prior.calibrated_log_loss ? PriorBias::kMean
                                                                          : PriorBias::kCalibrated);
}

// The issue's targets on the test campaigns 18-25.
TEST_F(DunnhumbyPipelineTest, MeetsTheIssueTargetsOnTheTestCampaigns) {
  const PipelineResult& r = *runs().full;
  const Evaluation& m = r.evaluations[0];
  RecordProperty("test_auc", absl::StrFormat("%.4f", m.auc));
  RecordProperty("test_log_loss", absl::StrFormat("%.5f", m.log_loss));
  std::cout << absl::StrFormat("test campaigns 18-25: model AUC %.4f, log loss %.5f\n", m.auc,
                               m.log_loss);
  EXPECT_EQ(r.published_model, PublishedModel::kLmf) << r.publish_reason;
  EXPECT_GE(m.auc, 0.822);
  EXPECT_LE(m.log_loss, 0.0212);
  for (size_t k = 1; k < r.evaluations.size(); ++k) {
    std::cout << absl::StrFormat("  %s: AUC %.4f, log loss %.5f\n", r.evaluations[k].name,
                                 r.evaluations[k].auc, r.evaluations[k].log_loss);
    EXPECT_GT(m.auc, r.evaluations[k].auc) << r.evaluations[k].name;
    EXPECT_LT(m.log_loss, r.evaluations[k].log_loss) << r.evaluations[k].name;
  }
  ASSERT_TRUE(r.feature_logistic.has_value());
  EXPECT_EQ(r.evaluations[r.feature_logistic->evaluation].name, kFeatureLogisticName);
}

TEST_F(DunnhumbyPipelineTest, SegmentPriorBeatsCouponPopularityForHeldOutHouseholds) {
  const PipelineResult& r = *runs().cold;
  const learn::TrainingData& full = runs().loaded.data;
  const std::vector<std::string>& held_out = runs().held_out;
  const absl::flat_hash_set<uint32_t>& held_out_index = runs().held_out_index;
  const int64_t with_demographics = runs().with_demographics;
  const PipelineOptions& o = runs().cold_options;
  EXPECT_EQ(r.excluded_users, static_cast<int64_t>(held_out.size()));
  ASSERT_GT(held_out.size(), 150u);
  ASSERT_TRUE(r.segments.has_value());
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const core::ModelSnapshot> model, Snapshot(r.model));
  for (const std::string& id : held_out) ASSERT_FALSE(model->FindUser(id).has_value()) << id;

  // The popularity baseline, fitted as the pipeline fits it: on the training period of the
  // data without the held-out households (coupon indices are shared with `full`).
  learn::TrainingData rest = full;
  ASSERT_EQ(RemoveUsers(&rest, held_out), static_cast<int64_t>(held_out.size()));
  ASSERT_OK_AND_ASSIGN(TimeSplit split, SplitByCampaignStart(rest, o.test_fraction));
  ASSERT_EQ(split.cutoff_day, r.test_cutoff_day);
  // As known at the cutoff: redemptions on or after it are not yet seen.
  CensorLabelsAt(split.cutoff_day, split.train, &rest);
  ASSERT_OK_AND_ASSIGN(Baselines baselines, FitBaselines(rest, split.train, o.baselines));

  // 3. The held-out households' test-period candidates.
  absl::flat_hash_set<std::string> test_campaigns(r.test_campaigns.begin(),
                                                  r.test_campaigns.end());
  std::map<uint32_t, std::vector<uint32_t>> examples_of;  // held-out user -> example indices
  for (uint32_t i = 0; i < full.examples.size(); ++i) {
    const learn::Example& e = full.examples[i];
    if (held_out_index.contains(e.user) && test_campaigns.contains(full.campaign_ids[e.campaign])) {
      examples_of[e.user].push_back(i);
    }
  }
  std::vector<uint32_t> pairs;
  std::vector<std::vector<uint32_t>> by_household;  // positions in `pairs`
  for (const auto& [user, idx] : examples_of) {
    by_household.emplace_back();
    for (uint32_t i : idx) {
      by_household.back().push_back(static_cast<uint32_t>(pairs.size()));
      pairs.push_back(i);
    }
  }
  const std::vector<float> popularity =
      baselines.Predict(BaselineKind::kCouponPopularity, full, pairs);

  // Cold-start scores: one ScoreCoupons per household over its distinct test coupons, with
  // only its demographics ("age_desc" -> "45-54", names as hh_demographic.csv spells them).
  std::vector<float> cold(pairs.size()), population(pairs.size()), label(pairs.size());
  std::map<std::string, int> placed;  // segment name -> held-out households
  int64_t ignored_attributes = 0;
  size_t k = 0;
  for (const auto& [user, idx] : examples_of) {
    std::vector<std::string> names, values;
    for (uint32_t f : full.user_features.row(user)) {
      const std::string& feature = full.user_features.names[f];
      const size_t eq = feature.find('=');
      names.push_back(absl::AsciiStrToLower(feature.substr(0, eq)));
      values.push_back(feature.substr(eq + 1));
    }
    std::vector<core::UserAttribute> attributes;
    for (size_t a = 0; a < names.size(); ++a) attributes.push_back({names[a], values[a]});
    std::vector<std::string> coupon_ids;
    for (uint32_t i : idx) coupon_ids.push_back(full.coupon_ids[full.examples[i].coupon]);
    std::sort(coupon_ids.begin(), coupon_ids.end());
    coupon_ids.erase(std::unique(coupon_ids.begin(), coupon_ids.end()), coupon_ids.end());
    std::vector<absl::string_view> candidates(coupon_ids.begin(), coupon_ids.end());

    core::ScoreQuery q;
    q.user_id = full.user_ids[user];
    q.user_attributes = attributes;
    q.coupon_ids = candidates;
    const core::ScoreResult with = core::ScoreCoupons(*model, q);
    ASSERT_EQ(with.user_source, core::UserSource::kSegmentPrior) << q.user_id;
    ASSERT_TRUE(with.unknown_coupons.empty());
    ++placed[model->segment(static_cast<size_t>(with.segment)).name];
    ignored_attributes += with.ignored_attributes;
    q.user_attributes = {};
    const core::ScoreResult without = core::ScoreCoupons(*model, q);
    ASSERT_EQ(without.user_source, core::UserSource::kPopulationPrior);
    absl::flat_hash_map<std::string, double> p_with, p_without;
    for (const core::ScoredCoupon& s : with.scores) p_with[model->coupon_id(s.coupon_row)] = s.probability;
    for (const core::ScoredCoupon& s : without.scores) {
      p_without[model->coupon_id(s.coupon_row)] = s.probability;
    }
    for (uint32_t i : idx) {
      const std::string& c = full.coupon_ids[full.examples[i].coupon];
      cold[k] = static_cast<float>(p_with.at(c));
      population[k] = static_cast<float>(p_without.at(c));
      label[k] = full.examples[i].label;
      ++k;
    }
  }
  ASSERT_EQ(k, pairs.size());

  // 4. AUCs and the household bootstrap of the difference.
  const std::vector<uint32_t> once(by_household.size(), 1);
  const double auc_cold = WeightedAuc(by_household, once, cold, label);
  const double auc_population = WeightedAuc(by_household, once, population, label);
  const double auc_popularity = WeightedAuc(by_household, once, popularity, label);
  core::SplitMix64 rng(kHoldOutSeed);
  std::vector<double> diff_popularity, diff_population;
  for (int b = 0; b < kBootstrapReplicates; ++b) {
    std::vector<uint32_t> weights(by_household.size(), 0);
    for (size_t h = 0; h < by_household.size(); ++h) ++weights[rng.Below(by_household.size())];
    const double c = WeightedAuc(by_household, weights, cold, label);
    diff_popularity.push_back(c - WeightedAuc(by_household, weights, popularity, label));
    diff_population.push_back(c - WeightedAuc(by_household, weights, population, label));
  }
  auto interval = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return std::make_pair(v[n * 25 / 1000], v[n * 975 / 1000 - 1]);
  };
  const auto [pop_lo, pop_hi] = interval(diff_popularity);
  const auto [prior_lo, prior_hi] = interval(diff_population);
  int64_t positives = 0;
  for (float y : label) positives += y == 1.0f ? 1 : 0;
  auto mean = [](const std::vector<float>& p) {
    double sum = 0;
    for (float v : p) sum += v;
    return sum / static_cast<double>(p.size());
  };
  auto log_loss = [&label](const std::vector<float>& p) {
    const absl::StatusOr<double> v = learn::LogLoss(p, label);
    return v.ok() ? *v : std::nan("");
  };

  std::cout << absl::StrFormat(
      "held out %d of %d households with demographics; %d of them in the test period: "
      "%d candidates, %d positives; %d attributes ignored\n"
      "model: d=%d, %d segments (k by silhouette), %d segment features; %d coupons predicted "
      "from attributes\n"
      "AUC cold start (segment prior) %.4f | population prior %.4f | coupon popularity %.4f\n"
      "log loss                       %.5f |                  %.5f |                   %.5f\n"
      "mean p (observed rate %.5f)    %.5f |                  %.5f |                   %.5f\n"
      "cold - popularity %+.4f, 95%% household-bootstrap interval [%+.4f, %+.4f]\n"
      "cold - population prior %+.4f, 95%% interval [%+.4f, %+.4f]\n",
      held_out.size(), with_demographics, by_household.size(), pairs.size(), positives,
      ignored_attributes, r.model.dimension, r.model.num_segments(),
      r.model.segment_features.size(),
      r.cold_coupons.has_value() ? r.cold_coupons->fit.predicted_coupons : 0, auc_cold,
      auc_population, auc_popularity, log_loss(cold), log_loss(population), log_loss(popularity),
      static_cast<double>(positives) / static_cast<double>(pairs.size()), mean(cold),
      mean(population), mean(popularity),
      auc_cold - auc_popularity, pop_lo, pop_hi,
      auc_cold - auc_population, prior_lo, prior_hi);
  std::cout << absl::StrFormat("pipeline: test AUC (all households in the model) %.4f",
                               r.evaluations[0].auc);
  if (r.cold_coupons.has_value()) {
    std::cout << absl::StrFormat(
        "; on the %d test examples of the %d coupons predicted from attributes: AUC %.4f "
        "(trainer's feature-sum vectors: %.4f; whole test period with those: %.4f)",
        r.cold_coupons->test_examples, r.cold_coupons->fit.predicted_coupons,
        r.cold_coupons->test_auc_predicted, r.cold_coupons->test_auc_trainer,
        r.cold_coupons->model_auc_trainer);
  }
  std::cout << "\n";
  for (const auto& [name, count] : placed) {
    std::cout << "  " << name << ": " << count << " held-out households\n";
  }
  RecordProperty("auc_cold_start", absl::StrFormat("%.4f", auc_cold));
  RecordProperty("auc_population_prior", absl::StrFormat("%.4f", auc_population));
  RecordProperty("auc_coupon_popularity", absl::StrFormat("%.4f", auc_popularity));

  // The issue's target, and a margin that is not noise: the household bootstrap's 95%
  // interval of the difference lies above 0.
  EXPECT_GT(auc_cold, auc_popularity);
  EXPECT_GT(pop_lo, 0.0);
  // The priors' bias is the FULL run's choice on the validation campaigns (step 4b), not a
  // claim about these test figures: on dunnhumby validation chose the members' mean bias,
  // which ranks as well but under-predicts new households' level here (log loss and mean p
  // above; docs/cold-start.md has both rules' figures). So only the ranking is asserted.
  EXPECT_EQ(runs().cold->prior_bias, runs().full->prior_bias);
  EXPECT_FALSE(runs().cold->prior_bias_choice.has_value()) << "given, not chosen again";
}

}  // namespace
}  // namespace coupond::pipeline
