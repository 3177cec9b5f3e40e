// CampaignPlan: a campaign resolved against a model — validation naming the field,
// eligibility, probabilities against the double reference, cancellation.

#include "core/campaign.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "core/scorer.h"
#include "core/vector_math.h"
#include "tests/test_util/models.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::core {
namespace {

using ::coupond::testing::ReferenceProbability;
using ::coupond::testing::StatusIs;
using ::coupond::testing::TinyModel;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class CampaignPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = TinyModel(6, 5, 4);
    data_.coupon_attributes[2].valid_until_unix_seconds = 100;  // expired at t=1000
    data_.coupon_attributes[3].stock = 7;
    ModelVersionInfo info;
    info.version = 3;
    info.dimension = 4;
    info.num_users = 6;
    info.num_coupons = 5;
    auto s = ModelSnapshot::Create(data_, info);
    ASSERT_TRUE(s.ok()) << s.status();
    model_ = *s;
  }
  CampaignSpec Spec() {
    CampaignSpec spec;
    spec.campaign_id = "spring";
    spec.budget = 10;
    spec.as_of_unix_seconds = 1000;
    for (const char* id : {"c0", "c2", "c3"}) spec.coupons.push_back({id, 1.0, std::nullopt, {}});
    return spec;
  }
  absl::StatusOr<std::unique_ptr<CampaignPlan>> Plan(const CampaignSpec& spec,
                                                     Population population = Population::All()) {
    return CampaignPlan::Create(model_, spec, std::move(population));
  }
  ModelData data_;
  std::shared_ptr<const ModelSnapshot> model_;
};

TEST_F(CampaignPlanTest, ProbabilitiesMatchTheReferenceAndInactiveCouponsAreIneligible) {
  ASSERT_OK_AND_ASSIGN(auto plan, Plan(Spec()));
  ASSERT_EQ(plan->num_users(), 6u);
  std::vector<double> p(6 * 3);
  ASSERT_OK(plan->Fill(0, 6, absl::MakeSpan(p)));
  for (int u = 0; u < 6; ++u) {
    EXPECT_NEAR(p[u * 3 + 0], ReferenceProbability(data_, u, 0), 1e-6);
    EXPECT_EQ(p[u * 3 + 1], kNotEligible);  // c2 expired
    EXPECT_NEAR(p[u * 3 + 2], ReferenceProbability(data_, u, 3), 1e-6);
  }
  // Face values and stock come from the model.
  EXPECT_EQ(plan->coupons()[0].face_value, data_.coupon_attributes[0].face_value);
  EXPECT_EQ(plan->coupons()[2].stock, 7);
  EXPECT_FALSE(plan->coupons()[0].stock.has_value());  // unlimited
}

TEST_F(CampaignPlanTest, ExplicitPopulationWithUnknownUsersUsesThePrior) {
  ASSERT_OK_AND_ASSIGN(auto plan, Plan(Spec(), Population::Users({"u4", "newcomer"})));
  EXPECT_EQ(plan->unknown_users(), 1u);
  EXPECT_TRUE(plan->known_user(0));
  EXPECT_FALSE(plan->known_user(1));
  EXPECT_EQ(plan->user_id(1), "newcomer");
  std::vector<double> p(2 * 3);
  ASSERT_OK(plan->Fill(0, 2, absl::MakeSpan(p)));
  EXPECT_NEAR(p[0], ReferenceProbability(data_, 4, 0), 1e-6);
  EXPECT_NEAR(p[3], ReferenceProbability(data_, -1, 0), 1e-6);
}

TEST_F(CampaignPlanTest, EligibleUserListsRestrictACoupon) {
  CampaignSpec spec = Spec();
  spec.coupons[0].eligible_user_ids = {"u1", "u5", "someone-else"};
  ASSERT_OK_AND_ASSIGN(auto plan, Plan(spec));
  std::vector<double> p(6 * 3);
  ASSERT_OK(plan->Fill(0, 6, absl::MakeSpan(p)));
  for (int u = 0; u < 6; ++u) {
    if (u == 1 || u == 5) {
      EXPECT_NE(p[u * 3], kNotEligible) << u;
    } else {
      EXPECT_EQ(p[u * 3], kNotEligible) << u;
    }
  }
}

// SigmoidFloat (core/vector_math.h), the sigmoid behind Fill: against the double reference
// for lengths around the vector width, misaligned pointers and in place; extremes and NaN;
// an element's bits do not depend on its position (full vector or tail).
TEST(SigmoidFloatTest, SweepMatchesReference) {
  std::vector<float> z;
  for (int i = 0; i < 300; ++i) z.push_back(-45.0f + 0.3f * static_cast<float>(i) + 0.001f * static_cast<float>(i % 7));
  for (size_t offset : {size_t{0}, size_t{1}, size_t{3}}) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{16}, size_t{17}, size_t{33}, size_t{130}, size_t{297}}) {
      std::vector<float> in(z.begin(), z.begin() + static_cast<std::ptrdiff_t>(n + offset));
      std::vector<float> out(n + offset, -7.0f);
      SigmoidFloat(in.data() + offset, n, out.data() + offset);
      for (size_t i = 0; i < n; ++i) {
        const double ref = ReferenceSigmoid(in[offset + i]);
        EXPECT_NEAR(out[offset + i], ref, 4e-7 * ref + 1e-30) << "n=" << n << " i=" << i;
        // The same value alone (a tail of one) gives the same bits.
        float alone = 0;
        SigmoidFloat(&in[offset + i], 1, &alone);
        EXPECT_EQ(alone, out[offset + i]);
      }
      for (size_t i = 0; i < offset; ++i) EXPECT_EQ(out[i], -7.0f);  // nothing written before
      std::vector<float> inplace = in;
      SigmoidFloat(inplace.data() + offset, n, inplace.data() + offset);
      for (size_t i = 0; i < n; ++i) EXPECT_EQ(inplace[offset + i], out[offset + i]);
    }
  }
  const float special[] = {std::numeric_limits<float>::infinity(),
                           -std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::quiet_NaN(), 0.0f, -0.0f, 100.0f, -100.0f};
  float got[7];
  SigmoidFloat(special, 7, got);
  EXPECT_EQ(got[0], 1.0f);
  EXPECT_EQ(got[1], 0.0f);
  EXPECT_TRUE(std::isnan(got[2]));
  EXPECT_EQ(got[3], 0.5f);
  EXPECT_EQ(got[4], 0.5f);
  EXPECT_EQ(got[5], 1.0f);
  EXPECT_GE(got[6], 0.0f);
  EXPECT_LT(got[6], 1e-40f);
}

// Fill scores blocks of users with the block kernel and a vectorised float sigmoid: against
// the double reference on a model with several coupon panels (70 coupons > 64 rows), an odd
// dimension and a campaign listing a subset of the coupons out of model order; and a user's
// values are the same bits whichever block they are filled in.
TEST(CampaignPlanFillTest, BlockFillMatchesReferenceAndIsBlockInvariant) {
  constexpr uint32_t kUsers = 150, kCoupons = 70, kDim = 19;
  const ModelData data = TinyModel(kUsers, kCoupons, kDim);
  ModelVersionInfo info;
  info.version = 1;
  info.dimension = kDim;
  info.num_users = kUsers;
  info.num_coupons = kCoupons;
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const ModelSnapshot> model, ModelSnapshot::Create(data, info));
  CampaignSpec spec;
  spec.budget = 10;
  std::vector<uint32_t> rows;
  for (uint32_t c = 0; c < kCoupons; c += 3) rows.push_back((c * 37) % kCoupons);
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  std::reverse(rows.begin(), rows.end());
  for (uint32_t r : rows) spec.coupons.push_back({absl::StrCat("c", r), 1.0, std::nullopt, {}});
  const size_t m = rows.size();
  // Restricted coupon: every seventh user, plus ids outside the population.
  for (uint32_t u = 0; u < kUsers; u += 7) spec.coupons[1].eligible_user_ids.push_back(absl::StrCat("u", u));
  spec.coupons[1].eligible_user_ids.push_back("nobody");

  for (const bool all : {true, false}) {
    SCOPED_TRACE(all ? "all users" : "explicit population");
    Population population = all ? Population::All() : Population::Users({});
    std::vector<int> row_of;  // population index -> model row, -1 unknown
    if (all) {
      for (uint32_t u = 0; u < kUsers; ++u) row_of.push_back(static_cast<int>(u));
    } else {
      // Reversed, with unknown users interleaved: the gather path and the prior.
      for (int u = kUsers - 1; u >= 0; u -= 2) {
        population.user_ids.push_back(absl::StrCat("u", u));
        row_of.push_back(u);
        if (u % 5 == 0) {
          population.user_ids.push_back(absl::StrCat("new", u));
          row_of.push_back(-1);
        }
      }
    }
    ASSERT_OK_AND_ASSIGN(auto plan, CampaignPlan::Create(model, spec, population));
    const size_t n = plan->num_users();
    ASSERT_EQ(n, row_of.size());
    std::vector<double> whole(n * m);
    ASSERT_OK(plan->Fill(0, n, absl::MakeSpan(whole)));
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < m; ++j) {
        const double got = whole[i * m + j];
        const bool restricted_out =
            j == 1 && !(row_of[i] >= 0 && row_of[i] % 7 == 0);
        if (restricted_out) {
          EXPECT_EQ(got, kNotEligible) << i << " " << j;
          continue;
        }
        EXPECT_NEAR(got, ReferenceProbability(data, row_of[i], rows[j]), 1e-6) << i << " " << j;
      }
    }
    // Other block boundaries (odd sizes, one user at a time): the same bits.
    for (size_t block : {size_t{1}, size_t{5}, size_t{47}, size_t{64}}) {
      std::vector<double> parts(n * m);
      for (size_t first = 0; first < n; first += block) {
        const size_t count = std::min(block, n - first);
        ASSERT_OK(plan->Fill(first, count, absl::MakeSpan(parts.data() + first * m, count * m)));
      }
      ASSERT_EQ(parts, whole) << "block " << block;
    }
    std::vector<double> too_long(m);
    EXPECT_THAT(plan->Fill(n, 1, absl::MakeSpan(too_long)), StatusIs(absl::StatusCode::kInternal));
  }
}

TEST_F(CampaignPlanTest, CancelStopsLaterFills) {
  ASSERT_OK_AND_ASSIGN(auto plan, Plan(Spec()));
  plan->Cancel();
  std::vector<double> p(3);
  EXPECT_THAT(plan->Fill(0, 1, absl::MakeSpan(p)), StatusIs(absl::StatusCode::kCancelled));
}

TEST_F(CampaignPlanTest, BadCampaignsNameTheField) {
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  CampaignSpec spec = Spec();
  spec.coupons.push_back({"nope", 1.0, std::nullopt, {}});
  EXPECT_THAT(Plan(spec), StatusIs(kInvalid, StartsWith("campaign.coupons[3].coupon_id: 'nope' is not in model version 3")));
  spec = Spec();
  spec.coupons.push_back({"c0", 1.0, std::nullopt, {}});
  EXPECT_THAT(Plan(spec), StatusIs(kInvalid, StartsWith("campaign.coupons[3].coupon_id: duplicate of campaign.coupons[0]")));
  spec = Spec();
  spec.coupons[1].weight = -2;
  EXPECT_THAT(Plan(spec), StatusIs(kInvalid, StartsWith("campaign.coupons[1].value_weight")));
  spec = Spec();
  spec.coupons[1].weight = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THAT(Plan(spec), StatusIs(kInvalid, StartsWith("campaign.coupons[1].value_weight")));
  spec = Spec();
  spec.coupons[2].stock = -1;
  EXPECT_THAT(Plan(spec), StatusIs(kInvalid, StartsWith("campaign.coupons[2].stock")));
  spec = Spec();
  spec.budget = std::numeric_limits<double>::infinity();
  EXPECT_THAT(Plan(spec), StatusIs(kInvalid, StartsWith("campaign.budget")));
  spec = Spec();
  spec.max_coupons_per_user = 0;
  EXPECT_THAT(Plan(spec), StatusIs(kInvalid, StartsWith("campaign.max_coupons_per_user")));
  spec = Spec();
  spec.coupons.clear();
  EXPECT_THAT(Plan(spec), StatusIs(kInvalid, StartsWith("campaign.coupons: at least one")));
  EXPECT_THAT(Plan(Spec(), Population::Users({"u1", "u2", "u1"})),
              StatusIs(kInvalid, StartsWith("users.user_ids[2]: duplicate of users.user_ids[0]")));
  EXPECT_THAT(Plan(Spec(), Population::Users({""})), StatusIs(kInvalid, StartsWith("users.user_ids[0]: empty")));
}

// Decide's probabilities (ScoreUser) are Score's (ScoreCoupons), bit for bit, for known
// users, unknown users (the population prior) and any candidate set Score is given: both call
// ScoreUserRows, and a coupon's logit does not depend on the other candidates. (Issue 15:
// Decide used Fill's float sigmoid and differed from Score in the 8th digit.)
TEST_F(CampaignPlanTest, ScoreUserGivesScoresProbabilitiesToTheBit) {
  CampaignSpec spec = Spec();
  spec.coupons = {{"c4", 1.0, std::nullopt, {}}, {"c0", 1.0, std::nullopt, {}},
                  {"c3", 1.0, std::nullopt, {}}, {"c1", 1.0, std::nullopt, {}}};
  spec.coupons[3].eligible_user_ids = {"u2", "newcomer"};
  const std::vector<std::string> users = {"u0", "u2", "u5", "newcomer"};
  ASSERT_OK_AND_ASSIGN(auto plan, Plan(spec, Population::Users(users)));
  for (size_t i = 0; i < users.size(); ++i) {
    std::vector<double> decide(spec.coupons.size());
    ASSERT_OK(plan->ScoreUser(i, absl::MakeSpan(decide)));
    // Score over every coupon, and over the campaign's list: the same bits.
    for (bool listed : {false, true}) {
      std::vector<absl::string_view> ids;
      if (listed) {
        for (const CampaignCouponSpec& c : spec.coupons) ids.push_back(c.coupon_id);
      }
      ScoreQuery q;
      q.user_id = users[i];
      q.coupon_ids = ids;
      q.as_of_unix_seconds = 1000;
      const ScoreResult score = ScoreCoupons(*model_, q);
      for (size_t j = 0; j < spec.coupons.size(); ++j) {
        const bool eligible = j != 3 || users[i] == "u2" || users[i] == "newcomer";
        if (!eligible) {
          EXPECT_EQ(decide[j], kNotEligible) << users[i] << " " << spec.coupons[j].coupon_id;
          continue;
        }
        const auto it = std::find_if(score.scores.begin(), score.scores.end(), [&](const ScoredCoupon& s) {
          return model_->coupon_id(s.coupon_row) == spec.coupons[j].coupon_id;
        });
        ASSERT_NE(it, score.scores.end()) << spec.coupons[j].coupon_id;
        EXPECT_EQ(decide[j], it->probability)  // bit-equal, not near
            << users[i] << " " << spec.coupons[j].coupon_id << (listed ? " listed" : " all");
      }
    }
  }
  std::vector<double> wrong_size(2);
  EXPECT_THAT(plan->ScoreUser(0, absl::MakeSpan(wrong_size)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<double> out(spec.coupons.size());
  EXPECT_THAT(plan->ScoreUser(users.size(), absl::MakeSpan(out)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// The largest values every campaign bound allows give a finite plan: the bounds are what
// keeps every output finite.
TEST_F(CampaignPlanTest, TheLargestAllowedValuesGiveAFiniteSolve) {
  CampaignSpec spec = Spec();
  spec.budget = kMaxBudget;
  spec.max_coupons_per_user = 3;
  for (CampaignCouponSpec& c : spec.coupons) {
    c.weight = kMaxValueWeight;
    c.stock = kMaxStock;
  }
  ASSERT_OK_AND_ASSIGN(auto plan, Plan(spec));
  AssignmentOptions options;
  options.max_coupons_per_user = 3;
  ASSERT_OK_AND_ASSIGN(AssignmentResult r,
                       SolveAssignment(plan->coupons(), spec.budget, *plan, options));
  EXPECT_GT(r.primal_value, 0.0);
  for (double v : {r.primal_value, r.expected_spend, r.dual_bound, r.relative_gap,
                   r.prices.budget_price}) {
    EXPECT_TRUE(std::isfinite(v)) << v;
  }
  // Decide's reduced score at the largest prices is finite too.
  std::vector<double> p(spec.coupons.size());
  ASSERT_OK(plan->ScoreUser(0, absl::MakeSpan(p)));
  for (size_t j = 0; j < p.size(); ++j) {
    if (p[j] == kNotEligible) continue;
    EXPECT_TRUE(std::isfinite(ReducedScore(plan->coupons()[j], kMaxPrice, kMaxPrice, p[j])));
  }
}

TEST_F(CampaignPlanTest, SolvesEndToEndWithinBudgetAndStock) {
  CampaignSpec spec = Spec();
  spec.budget = 3.0;
  ASSERT_OK_AND_ASSIGN(auto plan, Plan(spec));
  ASSERT_OK_AND_ASSIGN(AssignmentResult r,
                       SolveAssignment(plan->coupons(), spec.budget, *plan, AssignmentOptions()));
  EXPECT_LE(r.expected_spend, spec.budget + 1e-9);
  EXPECT_LE(r.issued[2], 7);
  EXPECT_EQ(r.issued[1], 0);  // expired coupon never assigned
  EXPECT_GE(r.dual_bound, r.primal_value - 1e-9);
}

}  // namespace
}  // namespace coupond::core

namespace coupond::core {
namespace {

// A population filtered by the model's segments: only their members are planned, eligibility
// lists still work by user id, and an unknown segment name is an error naming the field.
TEST(CampaignPlanSegmentTest, AllUsersFilteredBySegment) {
  ModelData data = coupond::testing::TinyModel(6, 3, 2);
  SegmentFeature age;
  age.name = "age";
  data.segment_features = {age};
  for (const char* name : {"young", "old"}) {
    SegmentData seg;
    seg.name = name;
    seg.centroid = {name[0] == 'y' ? -1.0f : 1.0f};
    seg.prior_factors = {0.0f, 0.0f};
    seg.members = 3;
    data.segments.push_back(seg);
  }
  data.user_segment = {0, 1, 0, 1, -1, 0};
  ModelVersionInfo info;
  info.version = 4;
  info.dimension = 2;
  info.num_users = 6;
  info.num_coupons = 3;
  info.num_segments = 2;
  info.num_segment_features = 1;
  ASSERT_OK_AND_ASSIGN(auto model, ModelSnapshot::Create(data, info));
  CampaignSpec spec;
  spec.budget = 10;
  for (const char* id : {"c0", "c1"}) spec.coupons.push_back({id, 1.0, std::nullopt, {}});
  spec.coupons[1].eligible_user_ids = {"u2", "u1"};

  Population young;
  young.all_users = true;
  young.segments = {"young"};
  ASSERT_OK_AND_ASSIGN(auto plan, CampaignPlan::Create(model, spec, young));
  ASSERT_EQ(plan->num_users(), 3u);
  EXPECT_EQ(plan->user_id(0), "u0");
  EXPECT_EQ(plan->user_id(1), "u2");
  EXPECT_EQ(plan->user_id(2), "u5");
  std::vector<double> p(3 * 2);
  ASSERT_OK(plan->Fill(0, 3, absl::MakeSpan(p)));
  EXPECT_NEAR(p[2], coupond::testing::ReferenceProbability(data, 2, 0), 1e-6);  // u2, c0
  EXPECT_EQ(p[1], kNotEligible);  // c1 is for u1 and u2 only: u0 may not
  EXPECT_NE(p[3], kNotEligible);  // u2 may
  EXPECT_EQ(p[5], kNotEligible);  // u5 may not

  Population unknown;
  unknown.all_users = true;
  unknown.segments = {"old", "retired"};
  EXPECT_THAT(CampaignPlan::Create(model, spec, unknown),
              coupond::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                         ::testing::StartsWith("all_users.segments[1]: 'retired' is not a segment of model version 4")));
}

}  // namespace
}  // namespace coupond::core
