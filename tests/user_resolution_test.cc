// User cold start (core/user_resolution.h): placing a new user in the nearest segment by
// the attributes a request carries, against a plain reference of the documented rule, and
// what happens to odd input (unknown names and values, empty, NaN, huge, duplicate).
// Also its use by ScoreCoupons and CampaignPlan.

#include "core/user_resolution.h"

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/campaign.h"
#include "core/random.h"
#include "core/scorer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/models.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::core {
namespace {

using ::coupond::testing::StatusIs;
using ::coupond::testing::TinyModel;
using ::testing::HasSubstr;

std::shared_ptr<const ModelSnapshot> ResolutionSnapshot(const ModelData& m) {
  auto s = ModelSnapshot::Create(m, DescribeModel(m, 3));
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

// Segment space: two profile columns, then AGE (young, old) and INCOME (low, high) one-hot
// columns with weight 0.5 (scale 2), as the pipeline publishes them. Segment 0 is "young,
// low income", segment 1 "old, high income", segment 2 "old, low income"; on the profile
// columns segment 2 is far from everyone, so that a rule that used them (with any filling)
// would pick it.
ModelData SegmentedModel() {
  ModelData m = TinyModel(3, 6, 2);
  m.segment_features = {{"log_exposures", 1.0f, 0.5f}, {"redemption_rate", 0.01f, 0.02f},
                        {"AGE=young", 0.0f, 2.0f},     {"AGE=old", 0.0f, 2.0f},
                        {"INCOME=low", 0.0f, 2.0f},    {"INCOME=high", 0.0f, 2.0f}};
  const std::vector<std::vector<float>> centroids = {{0.0f, 0.0f, 0.45f, 0.05f, 0.4f, 0.1f},
                                                     {0.1f, 0.0f, 0.05f, 0.45f, 0.1f, 0.4f},
                                                     {-9.0f, 9.0f, 0.1f, 0.4f, 0.45f, 0.05f}};
  for (size_t s = 0; s < centroids.size(); ++s) {
    SegmentData seg;
    seg.name = absl::StrCat("segment-", s);
    seg.centroid = centroids[s];
    seg.prior_bias = 0.3f * static_cast<float>(s) - 0.2f;
    seg.prior_factors = {0.5f - 0.4f * static_cast<float>(s), 0.2f * static_cast<float>(s)};
    seg.redemption_rate = 0.01;
    seg.members = 10;
    m.segments.push_back(std::move(seg));
  }
  m.user_segment = {0, 1, 2};
  return m;
}

// Attributes that own their strings (UserAttribute holds views). Not copyable, so that the
// views can never point into a copy's dead buffers.
struct OwnedAttributes {
  explicit OwnedAttributes(std::vector<std::pair<std::string, std::string>> p)
      : pairs(std::move(p)) {
    for (const auto& [name, value] : pairs) views.push_back(UserAttribute{name, value});
  }
  OwnedAttributes(const OwnedAttributes&) = delete;
  OwnedAttributes& operator=(const OwnedAttributes&) = delete;

  std::vector<std::pair<std::string, std::string>> pairs;
  std::vector<UserAttribute> views;
};
OwnedAttributes Attributes(std::vector<std::pair<std::string, std::string>> pairs) {
  return OwnedAttributes(std::move(pairs));
}

// The documented rule, written plainly: encode the columns of each matched attribute
// ((raw - offset) / scale, raw 1 for the value and 0 for the attribute's other columns),
// squared distance over those columns only, lowest index on ties; -1 when nothing matched.
int32_t ReferenceNearest(const ModelData& m, const std::vector<UserAttribute>& attributes) {
  std::vector<bool> use(m.segment_features.size(), false);
  std::vector<double> raw(m.segment_features.size(), 0.0);
  std::vector<std::string> seen;
  for (const UserAttribute& a : attributes) {
    if (a.name.empty() || a.name.find('=') != absl::string_view::npos) continue;
    const std::string name = absl::AsciiStrToLower(a.name);
    bool found = false;
    for (size_t j = 0; j < m.segment_features.size() && !found; ++j) {
      const std::string& f = m.segment_features[j].name;
      const size_t eq = f.find('=');
      found = eq != std::string::npos && eq > 0 && absl::AsciiStrToLower(f.substr(0, eq)) == name &&
              f.substr(eq + 1) == a.value;
    }
    if (!found || std::find(seen.begin(), seen.end(), name) != seen.end()) continue;
    seen.push_back(name);
    for (size_t j = 0; j < m.segment_features.size(); ++j) {
      const std::string& f = m.segment_features[j].name;
      const size_t eq = f.find('=');
      if (eq == std::string::npos || eq == 0 || absl::AsciiStrToLower(f.substr(0, eq)) != name) {
        continue;
      }
      use[j] = true;
      raw[j] = f.substr(eq + 1) == a.value ? 1.0 : 0.0;
    }
  }
  if (seen.empty()) return -1;
  int32_t best = -1;
  double best_d = std::numeric_limits<double>::infinity();
  for (size_t s = 0; s < m.segments.size(); ++s) {
    double d = 0;
    for (size_t j = 0; j < use.size(); ++j) {
      if (!use[j]) continue;
      const SegmentFeature& f = m.segment_features[j];
      const double e = (raw[j] - f.offset) / f.scale - m.segments[s].centroid[j];
      d += e * e;
    }
    if (d < best_d) {
      best_d = d;
      best = static_cast<int32_t>(s);
    }
  }
  return best;
}

TEST(ResolveUserTest, KnownUserUsesItsOwnRowAndIgnoresAttributes) {
  const ModelData m = SegmentedModel();
  const auto snap = ResolutionSnapshot(m);
  const auto attributes = Attributes({{"AGE", "old"}, {"shoe_size", "9"}});
  const ResolvedUser r = ResolveUser(*snap, "u1", attributes.views);
  EXPECT_EQ(r.source, UserSource::kKnownUser);
  ASSERT_TRUE(r.row.has_value());
  EXPECT_EQ(*r.row, 1u);
  EXPECT_EQ(r.bias, m.user_bias[1]);
  EXPECT_EQ(r.factors, snap->user_factors(1));
  EXPECT_EQ(r.segment, -1);
  EXPECT_EQ(r.matched_attributes, 0u);
  EXPECT_EQ(r.ignored_attributes, 0u);  // not consulted
}

TEST(ResolveUserTest, NewUserTakesTheNearestSegmentByItsAttributesOnly) {
  const ModelData m = SegmentedModel();
  const auto snap = ResolutionSnapshot(m);
  struct Case {
    std::vector<std::pair<std::string, std::string>> attributes;
    int32_t segment;
  };
  const std::vector<Case> cases = {
      {{{"AGE", "young"}}, 0},
      {{{"AGE", "young"}, {"INCOME", "low"}}, 0},
      {{{"AGE", "old"}, {"INCOME", "high"}}, 1},
      {{{"INCOME", "high"}}, 1},
      {{{"AGE", "old"}, {"INCOME", "low"}}, 2},
      // Names ignoring ASCII case, as the two dunnhumby copies spell them.
      {{{"age", "old"}, {"Income", "low"}}, 2},
  };
  for (const Case& c : cases) {
    const auto attributes = Attributes(c.attributes);
    ASSERT_EQ(ReferenceNearest(m, attributes.views), c.segment);  // the fixture says what it means
    const ResolvedUser r = ResolveUser(*snap, "new-user", attributes.views);
    EXPECT_EQ(r.source, UserSource::kSegmentPrior);
    EXPECT_EQ(r.segment, c.segment) << c.attributes.size() << " " << c.attributes[0].second;
    EXPECT_EQ(r.matched_attributes, c.attributes.size());
    EXPECT_EQ(r.ignored_attributes, 0u);
    const SegmentData& s = m.segments[static_cast<size_t>(c.segment)];
    EXPECT_EQ(r.bias, s.prior_bias);
    ASSERT_NE(r.factors, nullptr);
    EXPECT_EQ(r.factors[0], s.prior_factors[0]);
    EXPECT_EQ(r.factors[1], s.prior_factors[1]);
    EXPECT_FALSE(r.row.has_value());
  }
}

// Random segment spaces and attribute sets against the reference.
TEST(ResolveUserTest, AgreesWithTheReferenceOnRandomModels) {
  SplitMix64 rng(20240611);
  auto uniform = [&rng]() { return static_cast<float>(rng.Uniform()); };
  for (int trial = 0; trial < 200; ++trial) {
    ModelData m = TinyModel(1, 1, 3);
    const int attributes = 1 + static_cast<int>(rng.Next() % 4);
    std::vector<int> values(attributes);
    m.segment_features.push_back({"log_exposures", uniform(), 0.5f + uniform()});
    for (int a = 0; a < attributes; ++a) {
      values[a] = 2 + static_cast<int>(rng.Next() % 4);
      for (int v = 0; v < values[a]; ++v) {
        m.segment_features.push_back(
            {absl::StrCat("A", a, "=v", v), 0.1f * uniform(), 1.0f + 3.0f * uniform()});
      }
    }
    const int k = 1 + static_cast<int>(rng.Next() % 8);
    for (int s = 0; s < k; ++s) {
      SegmentData seg;
      seg.name = absl::StrCat("s", s);
      for (size_t j = 0; j < m.segment_features.size(); ++j) seg.centroid.push_back(uniform());
      seg.prior_factors = {uniform(), uniform(), uniform()};
      m.segments.push_back(std::move(seg));
    }
    const auto snap = ResolutionSnapshot(m);
    std::vector<std::pair<std::string, std::string>> pairs;
    for (int a = 0; a < attributes; ++a) {
      const uint64_t roll = rng.Next() % 4;
      if (roll == 0) continue;  // not carried
      // One in four carried values is unknown to the model.
      const int v = static_cast<int>(rng.Next() % static_cast<uint64_t>(values[a] + 1));
      pairs.emplace_back(absl::StrCat(roll == 1 ? "a" : "A", a), absl::StrCat("v", v));
    }
    const auto carried = Attributes(pairs);
    const int32_t expected = ReferenceNearest(m, carried.views);
    const ResolvedUser r = ResolveUser(*snap, "nobody", carried.views);
    EXPECT_EQ(r.segment, expected) << "trial " << trial;
    EXPECT_EQ(r.source,
              expected >= 0 ? UserSource::kSegmentPrior : UserSource::kPopulationPrior);
    EXPECT_EQ(r.matched_attributes + r.ignored_attributes, carried.views.size());
  }
}

TEST(ResolveUserTest, UnknownNamesAndValuesAreIgnoredAndCounted) {
  const auto snap = ResolutionSnapshot(SegmentedModel());
  const auto attributes = Attributes({
      {"AGE", "young"},
      {"shoe_size", "9"},         // unknown name
      {"INCOME", "medium"},       // a value the model has no column for
      {"INCOME", ""},             // empty value
      {"", "young"},              // empty name
      {"AGE=young", ""},          // a whole feature name as the name
      {"log_exposures", "3.2"},   // a profile column: requests cannot speak to it
      {"INCOME", "NaN"},          // "NaN" is a value like any other: unknown here
      {"INCOME", std::string(1 << 20, 'x')},  // huge: no column, no harm
  });
  const ResolvedUser r = ResolveUser(*snap, "new-user", attributes.views);
  EXPECT_EQ(r.source, UserSource::kSegmentPrior);
  EXPECT_EQ(r.segment, 0);
  EXPECT_EQ(r.matched_attributes, 1u);
  EXPECT_EQ(r.ignored_attributes, 8u);
}

TEST(ResolveUserTest, ASecondSpellingOfAnAttributeIsIgnoredTheFirstWins) {
  const auto snap = ResolutionSnapshot(SegmentedModel());
  const auto young_first = Attributes({{"AGE", "young"}, {"age", "old"}, {"AGE", "old"}});
  const ResolvedUser a = ResolveUser(*snap, "new-user", young_first.views);
  EXPECT_EQ(a.segment, 0);
  EXPECT_EQ(a.matched_attributes, 1u);
  EXPECT_EQ(a.ignored_attributes, 2u);
  const auto old_first = Attributes({{"age", "old"}, {"AGE", "young"}, {"income", "low"}});
  const ResolvedUser b = ResolveUser(*snap, "new-user", old_first.views);
  EXPECT_EQ(b.segment, 2);
  EXPECT_EQ(b.ignored_attributes, 1u);
}

TEST(ResolveUserTest, NoUsableAttributeMeansThePopulationPrior) {
  const auto snap = ResolutionSnapshot(SegmentedModel());
  const ResolvedUser none = ResolveUser(*snap, "new-user", {});
  EXPECT_EQ(none.source, UserSource::kPopulationPrior);
  EXPECT_EQ(none.segment, -1);
  EXPECT_EQ(none.bias, 0.0f);
  EXPECT_EQ(none.factors, nullptr);
  EXPECT_EQ(none.ignored_attributes, 0u);
  const auto unknown = Attributes({{"shoe_size", "9"}, {"AGE", "ancient"}});
  const ResolvedUser r = ResolveUser(*snap, "new-user", unknown.views);
  EXPECT_EQ(r.source, UserSource::kPopulationPrior);
  EXPECT_EQ(r.ignored_attributes, 2u);
}

TEST(ResolveUserTest, ModelWithoutSegmentsIgnoresEveryAttribute) {
  const auto snap = ResolutionSnapshot(TinyModel(2, 3, 2));
  const auto attributes = Attributes({{"AGE", "young"}, {"INCOME", "low"}});
  const ResolvedUser r = ResolveUser(*snap, "new-user", attributes.views);
  EXPECT_EQ(r.source, UserSource::kPopulationPrior);
  EXPECT_EQ(r.factors, nullptr);
  EXPECT_EQ(r.ignored_attributes, 2u);
}

TEST(ResolveUserTest, TiesGoToTheLowestSegmentIndex) {
  ModelData m = SegmentedModel();
  m.segments[1].centroid = m.segments[0].centroid;
  m.segments[2].centroid = m.segments[0].centroid;
  const auto snap = ResolutionSnapshot(m);
  const auto attributes = Attributes({{"AGE", "old"}});
  EXPECT_EQ(ResolveUser(*snap, "new-user", attributes.views).segment, 0);
}

TEST(ResolveUserTest, DuplicateFeatureNamesDifferingInCaseFormOneAttribute) {
  ModelData m = SegmentedModel();
  m.segment_features[3].name = "age=young";  // same attribute and value as "AGE=young"
  const auto snap = ResolutionSnapshot(m);
  const SegmentAttributeIndex& index = snap->segment_attributes();
  EXPECT_EQ(index.num_attributes(), 2u);
  ASSERT_TRUE(index.Find("Age", "young").has_value());
  EXPECT_EQ(index.Find("Age", "young")->feature, 2u);  // the first
  EXPECT_EQ(index.columns(index.Find("Age", "young")->attribute).size(), 2u);
  EXPECT_FALSE(index.Find("AGE", "old").has_value());
}

// ScoreCoupons scores a placed user exactly as a known user with the segment's vector.
TEST(ScoreCouponsColdStartTest, SegmentPriorScoresLikeAUserWithThePriorVector) {
  ModelData m = SegmentedModel();
  const auto snap = ResolutionSnapshot(m);
  const auto attributes = Attributes({{"AGE", "old"}, {"INCOME", "high"}, {"pets", "cat"}});
  ScoreQuery q;
  q.user_id = "new-user";
  q.user_attributes = attributes.views;
  const ScoreResult r = ScoreCoupons(*snap, q);
  EXPECT_FALSE(r.known_user);
  EXPECT_EQ(r.user_source, UserSource::kSegmentPrior);
  EXPECT_EQ(r.segment, 1);
  EXPECT_EQ(r.ignored_attributes, 1u);
  ASSERT_EQ(r.scores.size(), m.num_coupons());

  // The reference: a model in which user u0 carries segment 1's prior.
  ModelData as_user = m;
  as_user.user_bias[0] = m.segments[1].prior_bias;
  as_user.user_factors[0] = m.segments[1].prior_factors[0];
  as_user.user_factors[1] = m.segments[1].prior_factors[1];
  for (const ScoredCoupon& s : r.scores) {
    EXPECT_NEAR(s.logit, coupond::testing::ReferenceLogit(as_user, 0, s.coupon_row), 1e-5);
  }
  // Without attributes: the population prior, as before cold start existed.
  q.user_attributes = {};
  const ScoreResult prior = ScoreCoupons(*snap, q);
  EXPECT_EQ(prior.user_source, UserSource::kPopulationPrior);
  for (const ScoredCoupon& s : prior.scores) {
    EXPECT_NEAR(s.logit, coupond::testing::ReferenceLogit(m, -1, s.coupon_row), 1e-5);
  }
}

TEST(CampaignPlanColdStartTest, UnknownUsersWithAttributesArePlannedWithTheirSegmentPrior) {
  const ModelData m = SegmentedModel();
  const auto snap = ResolutionSnapshot(m);
  CampaignSpec spec;
  spec.budget = 100;
  for (const std::string& id : m.coupon_ids) {
    CampaignCouponSpec c;
    c.coupon_id = id;
    spec.coupons.push_back(c);
  }
  Population population = Population::Users({"u0", "new-a", "new-b", "new-c"});
  population.user_attributes = {{{"AGE", "old"}},  // known user: not consulted
                                {{"age", "old"}, {"income", "low"}},
                                {},
                                {{"shoe_size", "9"}}};
  ASSERT_OK_AND_ASSIGN(auto plan, CampaignPlan::Create(snap, spec, population));
  EXPECT_EQ(plan->prior_segment(0), -1);
  EXPECT_EQ(plan->prior_segment(1), 2);
  EXPECT_EQ(plan->prior_segment(2), -1);
  EXPECT_EQ(plan->prior_segment(3), -1);
  EXPECT_EQ(plan->unknown_users(), 3u);
  const size_t n = m.num_coupons();
  std::vector<double> p(4 * n);
  ASSERT_OK(plan->Fill(0, 4, absl::MakeSpan(p)));
  ModelData as_user = m;  // user u1 carries segment 2's prior
  as_user.user_bias[1] = m.segments[2].prior_bias;
  as_user.user_factors[2] = m.segments[2].prior_factors[0];
  as_user.user_factors[3] = m.segments[2].prior_factors[1];
  for (size_t j = 0; j < n; ++j) {
    EXPECT_NEAR(p[0 * n + j], coupond::testing::ReferenceProbability(m, 0, j), 1e-6);
    EXPECT_NEAR(p[1 * n + j], coupond::testing::ReferenceProbability(as_user, 1, j), 1e-6);
    EXPECT_NEAR(p[2 * n + j], coupond::testing::ReferenceProbability(m, -1, j), 1e-6);
    EXPECT_NEAR(p[3 * n + j], coupond::testing::ReferenceProbability(m, -1, j), 1e-6);
  }

  Population mismatched = Population::Users({"a", "b"});
  mismatched.user_attributes = {{{"AGE", "old"}}};
  EXPECT_THAT(CampaignPlan::Create(snap, spec, mismatched),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("users.user_attributes: 1 entries for 2 users")));
}

}  // namespace
}  // namespace coupond::core
