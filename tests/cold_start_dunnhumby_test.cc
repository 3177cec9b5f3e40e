// The cold-start test on real data (dunnhumby "The Complete Journey"):
//
//   1. households that have demographics (hh_demographic.csv) are split by a seeded hash;
//      one third is HELD OUT: removed from the data before the pipeline sees it (no
//      examples, no profile, no segment, not in the published model);
//   2. the ordinary pipeline (defaults: grid, segments, coupon cold start) trains on the
//      rest and publishes a model;
//   3. every candidate (household, campaign, coupon) of a held-out household in the test
//      period (the pipeline's test campaigns) is scored the way the server scores a new user:
//      ScoreCoupons with the household's demographics as user attributes, nothing else;
//   4. the AUC of those scores is compared with the coupon-popularity baseline (fitted by the
//      pipeline's own FitBaselines on the same training period) on the same pairs, with a
//      household-level (cluster) bootstrap of the difference.
//
// Also printed, to tell where the margin comes from: the population prior (the same model
// and coupons, no user term) and the segment each held-out household was placed in.

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
  core::ModelVersionInfo info;
  info.version = 1;
  info.dimension = m.dimension;
  info.num_users = m.num_users();
  info.num_coupons = m.num_coupons();
  info.num_segments = m.num_segments();
  info.num_segment_features = static_cast<uint32_t>(m.segment_features.size());
  return core::ModelSnapshot::Create(m, info);
}

TEST(ColdStartDunnhumbyTest, SegmentPriorBeatsCouponPopularityForHeldOutHouseholds) {
  const std::optional<std::string> shared = coupond::testing::SharedDataDir();
  if (!shared.has_value()) COUPOND_SKIP_WITHOUT_SHARED_DATA("shared data (COUPOND_SHARED_DATA) not available");
  if (kSanitizedBuild) {
    GTEST_SKIP() << "trains the full dunnhumby pipeline (8 grid points over 600k candidates): "
                    "minutes under ASan; it runs in the Release suite";
  }
  const std::string dir = *shared + "/dunnhumby_coupons";
  ASSERT_OK_AND_ASSIGN(DunnhumbyData loaded, LoadDunnhumby(dir));
  const learn::TrainingData& full = loaded.data;

  // 1. Hold out a third of the households with demographics.
  std::vector<std::string> held_out;
  absl::flat_hash_set<uint32_t> held_out_index;
  int64_t with_demographics = 0;
  for (uint32_t u = 0; u < full.user_ids.size(); ++u) {
    if (full.user_features.row(u).empty()) continue;
    ++with_demographics;
    core::SplitMix64 hash(kHoldOutSeed * 0x9E3779B97F4A7C15ull + u);
    if (hash.Next() % 3 == 0) {
      held_out.push_back(full.user_ids[u]);
      held_out_index.insert(u);
    }
  }
  ASSERT_GT(held_out.size(), 150u);

  // 2. The ordinary pipeline on the rest.
  PipelineOptions o;
  o.source = PipelineSource::kDunnhumby;
  o.dunnhumby_dir = dir;
  o.threads = 1;  // bit-reproducible
  o.exclude_users = held_out;
  ASSERT_OK_AND_ASSIGN(PipelineResult r, RunPipeline(o));
  EXPECT_EQ(r.excluded_users, static_cast<int64_t>(held_out.size()));
  ASSERT_TRUE(r.segments.has_value());
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const core::ModelSnapshot> model, Snapshot(r.model));
  for (const std::string& id : held_out) ASSERT_FALSE(model->FindUser(id).has_value()) << id;

  // The popularity baseline, fitted as the pipeline fits it: on the training period of the
  // data without the held-out households (coupon indices are shared with `full`).
  learn::TrainingData rest = full;
  ASSERT_EQ(RemoveUsers(&rest, held_out), static_cast<int64_t>(held_out.size()));
  ASSERT_OK_AND_ASSIGN(TimeSplit split, SplitByCampaignStart(rest, o.test_fraction));
  ASSERT_EQ(split.cutoff_day, r.test_cutoff_day);
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

  // The target, and a margin that is not noise: the household bootstrap's 95%
  // interval of the difference lies above 0.
  EXPECT_GT(auc_cold, auc_popularity);
  EXPECT_GT(pop_lo, 0.0);
  // Calibration: the segment prior's bias is fitted to its members' training redemption
  // rate (AttachSegments), so a new user's probabilities are on the training period's
  // scale: better log loss than popularity's, and a mean within 2x of popularity's (which is
  // the training rate of each coupon; the test period itself redeems ~2x more).
  EXPECT_LT(log_loss(cold), log_loss(popularity));
  EXPECT_GT(mean(cold), 0.5 * mean(popularity));
  EXPECT_LT(mean(cold), 2.0 * mean(popularity));
}

}  // namespace
}  // namespace coupond::pipeline
