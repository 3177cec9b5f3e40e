// ScoreCoupons against a plain double-precision reference, and its contract for unknown
// users, unknown and inactive coupons, ordering and top_k.

#include "core/scorer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/models.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::core {
namespace {

using ::coupond::testing::ReferenceLogit;
using ::coupond::testing::ReferenceProbability;
using ::coupond::testing::TinyModel;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::shared_ptr<const ModelSnapshot> Snapshot(const ModelData& m) {
  ModelVersionInfo info;
  info.version = 7;
  info.dimension = m.dimension;
  info.num_users = m.num_users();
  info.num_coupons = m.num_coupons();
  auto s = ModelSnapshot::Create(m, info);
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

std::vector<std::string> Ids(const ModelSnapshot& s, const ScoreResult& r) {
  std::vector<std::string> ids;
  for (const ScoredCoupon& c : r.scores) ids.push_back(s.coupon_id(c.coupon_row));
  return ids;
}

// The same user and time scored twice: by `ids` listed in the query, and by `resolved`
// (ResolveCoupons of the same ids). Returns {listed, resolved}.
std::pair<ScoreResult, ScoreResult> ScoreListedAndResolved(
    const ModelSnapshot& snap, absl::Span<const absl::string_view> ids,
    const ResolvedCoupons& resolved, absl::string_view user, int64_t t, uint32_t top_k) {
  ScoreQuery listed;
  listed.user_id = user;
  listed.coupon_ids = ids;
  listed.as_of_unix_seconds = t;
  listed.top_k = top_k;
  ScoreQuery by_rows = listed;
  by_rows.coupon_ids = {};
  by_rows.resolved = &resolved;
  return {ScoreCoupons(snap, listed), ScoreCoupons(snap, by_rows)};
}

// Every known user, every coupon, over dimensions that exercise vector tails.
TEST(ScoreCouponsTest, MatchesDoubleReference) {
  for (uint32_t dim : {1u, 3u, 16u, 17u, 64u, 100u}) {
    const ModelData m = TinyModel(5, 37, dim);
    const auto snap = Snapshot(m);
    for (int u = 0; u < 5; ++u) {
      ScoreQuery q;
      const std::string user = m.user_ids[u];
      q.user_id = user;
      const ScoreResult r = ScoreCoupons(*snap, q);
      ASSERT_TRUE(r.known_user);
      ASSERT_EQ(r.scores.size(), 37u);
      EXPECT_EQ(r.candidates_scored, 37u);
      double magnitude = 0;
      for (uint32_t k = 0; k < dim; ++k) magnitude += std::abs(m.user_factors[u * dim + k]);
      for (const ScoredCoupon& s : r.scores) {
        const double tol = 1e-5 * (1 + magnitude);
        EXPECT_NEAR(s.logit, ReferenceLogit(m, u, s.coupon_row), tol) << "dim " << dim;
        EXPECT_NEAR(s.probability, ReferenceProbability(m, u, s.coupon_row), tol);
      }
    }
  }
}

TEST(ScoreCouponsTest, SortsByDescendingProbability) {
  const ModelData m = TinyModel(2, 50, 8);
  const auto snap = Snapshot(m);
  ScoreQuery q;
  q.user_id = "u1";
  const ScoreResult r = ScoreCoupons(*snap, q);
  ASSERT_EQ(r.scores.size(), 50u);
  for (size_t i = 1; i < r.scores.size(); ++i) {
    EXPECT_GE(r.scores[i - 1].probability, r.scores[i].probability);
  }
}

TEST(ScoreCouponsTest, TiesBreakByAscendingCouponId) {
  ModelData m = TinyModel(1, 4, 2);
  // Identical coupons: the same logit for everyone.
  for (int c = 0; c < 4; ++c) {
    m.coupon_bias[c] = 0.5f;
    m.coupon_factors[c * 2] = 0.25f;
    m.coupon_factors[c * 2 + 1] = -0.5f;
  }
  m.coupon_ids = {"d", "b", "c", "a"};
  const auto snap = Snapshot(m);
  ScoreQuery q;
  q.user_id = "u0";
  EXPECT_THAT(Ids(*snap, ScoreCoupons(*snap, q)), ElementsAre("a", "b", "c", "d"));
  q.top_k = 2;  // the boundary tie is resolved by id too
  EXPECT_THAT(Ids(*snap, ScoreCoupons(*snap, q)), ElementsAre("a", "b"));
}

TEST(ScoreCouponsTest, UnknownUserGetsPopulationPrior) {
  const ModelData m = TinyModel(3, 6, 4);
  const auto snap = Snapshot(m);
  ScoreQuery q;
  q.user_id = "nobody";
  const ScoreResult r = ScoreCoupons(*snap, q);
  EXPECT_FALSE(r.known_user);
  ASSERT_EQ(r.scores.size(), 6u);
  for (const ScoredCoupon& s : r.scores) {
    // Biases only: global + coupon.
    EXPECT_NEAR(s.logit, m.global_bias + m.coupon_bias[s.coupon_row], 1e-6);
    EXPECT_NEAR(s.probability, ReferenceProbability(m, -1, s.coupon_row), 1e-6);
  }
}

TEST(ScoreCouponsTest, ReportsUnknownAndInactiveCandidatesInRequestOrder) {
  ModelData m = TinyModel(1, 4, 3);
  m.coupon_attributes[1].stock = 0;                      // out of stock
  m.coupon_attributes[2].valid_until_unix_seconds = 50;  // expired at t=100
  const auto snap = Snapshot(m);
  const std::vector<absl::string_view> ids = {"zz", "c1", "c3", "c2", "c0", "yy"};
  ScoreQuery q;
  q.user_id = "u0";
  q.coupon_ids = ids;
  q.as_of_unix_seconds = 100;
  const ScoreResult r = ScoreCoupons(*snap, q);
  EXPECT_THAT(r.unknown_coupons, ElementsAre(0u, 5u));
  EXPECT_THAT(r.inactive_coupons, ElementsAre(1u, 3u));
  EXPECT_EQ(r.candidates_scored, 2u);
  std::vector<std::string> scored = Ids(*snap, r);
  std::sort(scored.begin(), scored.end());
  EXPECT_THAT(scored, ElementsAre("c0", "c3"));
}

TEST(ScoreCouponsTest, EmptyCandidateListMeansEveryActiveCoupon) {
  ModelData m = TinyModel(1, 5, 3);
  m.coupon_attributes[0].valid_from_unix_seconds = 1000;  // not yet valid at t=100
  m.coupon_attributes[4].stock = 0;
  const auto snap = Snapshot(m);
  ScoreQuery q;
  q.user_id = "u0";
  q.as_of_unix_seconds = 100;
  const ScoreResult r = ScoreCoupons(*snap, q);
  std::vector<std::string> scored = Ids(*snap, r);
  std::sort(scored.begin(), scored.end());
  EXPECT_THAT(scored, ElementsAre("c1", "c2", "c3"));
  EXPECT_THAT(r.unknown_coupons, IsEmpty());
  EXPECT_THAT(r.inactive_coupons, IsEmpty());  // only named candidates are reported
}

TEST(ScoreCouponsTest, TopKKeepsTheBestAndToleratesHugeK) {
  const ModelData m = TinyModel(2, 30, 5);
  const auto snap = Snapshot(m);
  ScoreQuery q;
  q.user_id = "u0";
  const ScoreResult all = ScoreCoupons(*snap, q);
  q.top_k = 3;
  const ScoreResult top = ScoreCoupons(*snap, q);
  ASSERT_EQ(top.scores.size(), 3u);
  EXPECT_EQ(top.candidates_scored, 30u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(top.scores[i].coupon_row, all.scores[i].coupon_row);
  q.top_k = 4'000'000'000u;
  EXPECT_EQ(ScoreCoupons(*snap, q).scores.size(), 30u);
}

TEST(ScoreCouponsTest, NamedCandidatesInAnyOrderScoreLikeTheFullScan) {
  const ModelData m = TinyModel(1, 20, 9);
  const auto snap = Snapshot(m);
  std::vector<std::string> names;
  for (int c = 19; c >= 0; --c) names.push_back(absl::StrCat("c", c));
  const std::vector<absl::string_view> ids(names.begin(), names.end());
  ScoreQuery named;
  named.user_id = "u0";
  named.coupon_ids = ids;
  ScoreQuery scan;
  scan.user_id = "u0";
  const ScoreResult a = ScoreCoupons(*snap, named);
  const ScoreResult b = ScoreCoupons(*snap, scan);
  ASSERT_EQ(a.scores.size(), b.scores.size());
  for (size_t i = 0; i < a.scores.size(); ++i) {
    EXPECT_EQ(a.scores[i].coupon_row, b.scores[i].coupon_row);
    EXPECT_DOUBLE_EQ(a.scores[i].logit, b.scores[i].logit);
  }
}

// Candidates looked up once (a stored campaign's coupons) score exactly like the same ids
// listed per request, with unknown and inactive ones reported at the same positions.
TEST(ScoreCouponsTest, ResolvedCandidatesScoreLikeTheListedIds) {
  ModelData m = TinyModel(2, 12, 17);
  m.coupon_attributes[3].stock = 0;
  m.coupon_attributes[8].valid_until_unix_seconds = 50;
  const auto snap = Snapshot(m);
  const std::vector<absl::string_view> ids = {"c8", "nope", "c1", "c3", "c11", "c0", "x", "c5"};
  const ResolvedCoupons resolved = ResolveCoupons(*snap, ids);
  EXPECT_EQ(resolved.model_version, 7u);
  EXPECT_THAT(resolved.unknown, ElementsAre(1u, 6u));
  EXPECT_THAT(resolved.positions, ElementsAre(0u, 2u, 3u, 4u, 5u, 7u));
  for (uint32_t top_k : {0u, 2u}) {
    const auto [a, b] = ScoreListedAndResolved(*snap, ids, resolved, "u1", 100, top_k);
    EXPECT_THAT(b.unknown_coupons, ElementsAre(1u, 6u));
    EXPECT_THAT(b.inactive_coupons, ElementsAre(0u, 3u));
    EXPECT_EQ(a.unknown_coupons, b.unknown_coupons);
    EXPECT_EQ(a.inactive_coupons, b.inactive_coupons);
    EXPECT_EQ(b.candidates_scored, 4u);
    ASSERT_EQ(a.scores.size(), b.scores.size());
    ASSERT_EQ(b.scores.size(), top_k == 0 ? 4u : top_k);
    for (size_t i = 0; i < a.scores.size(); ++i) {
      EXPECT_EQ(a.scores[i].coupon_row, b.scores[i].coupon_row);
      EXPECT_EQ(a.scores[i].logit, b.scores[i].logit);
    }
  }
}

// A resolved list carries its own contiguous copy of the known coupons' rows (issue 17), and
// scoring through it gives the listed ids' rows, logits (same bits), order and ties: over
// several panels (200 of 300 coupons, shuffled), an odd dimension, coupons with identical
// rows and biases (a tie broken by coupon id, at the top-k boundary too). (A snapshot holds
// no NaN factors: ModelSnapshot::Create rejects them; the kernel's tests cover NaN rows.)
TEST(ScoreCouponsTest, ResolvedCandidatesScoreFromTheirOwnContiguousRows) {
  constexpr uint32_t kDim = 13;
  ModelData m = TinyModel(3, 300, kDim);
  for (uint32_t j = 0; j < kDim; ++j) {
    m.coupon_factors[77 * kDim + j] = m.coupon_factors[5 * kDim + j];
    m.coupon_factors[150 * kDim + j] = m.coupon_factors[5 * kDim + j];
  }
  m.coupon_bias[77] = m.coupon_bias[150] = m.coupon_bias[5] = 100.0f;  // the best, tied
  const auto snap = Snapshot(m);
  std::vector<std::string> owned;
  for (uint32_t c = 0; c < 300; c += 3) owned.push_back(absl::StrCat("c", c));
  for (uint32_t c = 1; c < 300; c += 3) owned.push_back(absl::StrCat("c", c));
  owned.push_back("c77");
  owned.push_back("c5");
  owned.push_back("unknown");
  std::shuffle(owned.begin(), owned.end(), std::mt19937(3));
  const std::vector<absl::string_view> ids(owned.begin(), owned.end());
  const ResolvedCoupons resolved =
      ResolveCoupons(*snap, ids, ResolvedLayout::kContiguousCopy);
  ASSERT_EQ(resolved.rows.size(), 202u);
  ASSERT_TRUE(resolved.factors.has_value());
  EXPECT_FALSE(ResolveCoupons(*snap, ids).factors.has_value());  // the default: gathered
  ASSERT_EQ(resolved.factors->rows(), resolved.rows.size());
  ASSERT_EQ(resolved.factors->dim(), kDim);
  for (size_t i = 0; i < resolved.rows.size(); ++i) {
    for (uint32_t j = 0; j < kDim; ++j) {
      const float want = snap->coupon_factors().at(resolved.rows[i], j);
      const float got = resolved.factors->at(i, j);
      ASSERT_EQ(got, want) << i << " " << j;
    }
  }
  for (const std::string user : {"u0", "u2", "new-user"}) {
    for (const uint32_t top_k : {0u, 1u, 2u, 3u, 10u}) {
      const auto [a, b] = ScoreListedAndResolved(*snap, ids, resolved, user, 100, top_k);
      ASSERT_EQ(a.scores.size(), b.scores.size()) << user << " " << top_k;
      for (size_t i = 0; i < a.scores.size(); ++i) {
        EXPECT_EQ(a.scores[i].coupon_row, b.scores[i].coupon_row) << user << " " << i;
        EXPECT_EQ(std::bit_cast<uint64_t>(a.scores[i].logit),
                  std::bit_cast<uint64_t>(b.scores[i].logit)) << user << " " << i;
      }
      if (top_k == 3) {
        // The three tied best rank by id as strings: c150 < c5 < c77 (with top_k 2 the
        // boundary falls between two of them).
        ASSERT_EQ(b.scores.size(), 3u);
        EXPECT_EQ(snap->coupon_id(b.scores[0].coupon_row), "c150");
        EXPECT_EQ(snap->coupon_id(b.scores[1].coupon_row), "c5");
        EXPECT_EQ(snap->coupon_id(b.scores[2].coupon_row), "c77");
      }
    }
  }
}

// ResolveCoupons records the interval in which every known candidate is active (the
// intersection of their windows; none when one is out of stock). Inside it ScoreCoupons
// scores the resolved rows in place; at its edges and outside it each coupon is checked.
// Either way the result is that of the listed ids.
TEST(ScoreCouponsTest, ResolvedCandidatesAllActiveIntervalScoresLikeTheListedIds) {
  ModelData m = TinyModel(2, 12, 17);
  m.coupon_attributes[1].valid_from_unix_seconds = 100;
  m.coupon_attributes[1].valid_until_unix_seconds = 200;
  m.coupon_attributes[5].valid_from_unix_seconds = 150;
  m.coupon_attributes[9].valid_until_unix_seconds = 300;
  m.coupon_attributes[10].stock = 0;  // a candidate only in the last check below
  const auto snap = Snapshot(m);
  const std::vector<absl::string_view> ids = {"c1", "c5", "nope", "c9", "c0"};
  const ResolvedCoupons resolved = ResolveCoupons(*snap, ids);
  EXPECT_EQ(resolved.all_active_from, 150);
  EXPECT_EQ(resolved.all_active_until, 200);
  ASSERT_EQ(resolved.bias.size(), resolved.rows.size());
  for (size_t i = 0; i < resolved.rows.size(); ++i) {
    EXPECT_EQ(resolved.bias[i], m.coupon_bias[resolved.rows[i]]);
  }
  for (const int64_t t : {149, 150, 199, 200, 250}) {
    const auto [a, b] = ScoreListedAndResolved(*snap, ids, resolved, "u0", t, 0);
    EXPECT_EQ(b.unknown_coupons, std::vector<uint32_t>{2u}) << t;
    EXPECT_EQ(a.inactive_coupons, b.inactive_coupons) << t;
    EXPECT_EQ(b.inactive_coupons.empty(), t >= 150 && t < 200) << t;
    EXPECT_EQ(a.candidates_scored, b.candidates_scored) << t;
    ASSERT_EQ(a.scores.size(), b.scores.size()) << t;
    for (size_t i = 0; i < a.scores.size(); ++i) {
      EXPECT_EQ(a.scores[i].coupon_row, b.scores[i].coupon_row) << t;
      EXPECT_EQ(a.scores[i].logit, b.scores[i].logit) << t;
    }
  }
  // One candidate out of stock: no interval; each coupon is checked on every call.
  const std::vector<absl::string_view> with_empty = {"c0", "c10"};
  const ResolvedCoupons never = ResolveCoupons(*snap, with_empty);
  EXPECT_GE(never.all_active_from, never.all_active_until);
  ScoreQuery q;
  q.user_id = "u0";
  q.resolved = &never;
  q.as_of_unix_seconds = 160;
  const ScoreResult r = ScoreCoupons(*snap, q);
  EXPECT_THAT(r.inactive_coupons, ElementsAre(1u));
  EXPECT_EQ(r.candidates_scored, 1u);
  // A ResolvedCoupons not made by ResolveCoupons has no interval and no biases: checked.
  ResolvedCoupons by_hand;
  by_hand.model_version = 7;
  by_hand.rows = {0, 10};
  by_hand.positions = {0, 1};
  q.resolved = &by_hand;
  EXPECT_EQ(ScoreCoupons(*snap, q).candidates_scored, 1u);
}

// Rows looked up in another version would name other coupons: nothing is scored and every
// candidate is reported unknown, in list order.
TEST(ScoreCouponsTest, ResolvedCandidatesOfAnotherVersionAreNotScored) {
  const ModelData m = TinyModel(1, 5, 3);
  const auto snap = Snapshot(m);
  const std::vector<absl::string_view> ids = {"c4", "gone", "c0"};
  ResolvedCoupons resolved = ResolveCoupons(*snap, ids);
  resolved.model_version = 6;
  ScoreQuery q;
  q.user_id = "u0";
  q.resolved = &resolved;
  const ScoreResult r = ScoreCoupons(*snap, q);
  EXPECT_THAT(r.scores, IsEmpty());
  EXPECT_EQ(r.candidates_scored, 0u);
  EXPECT_THAT(r.unknown_coupons, ElementsAre(0u, 1u, 2u));
  EXPECT_TRUE(r.known_user);
}

TEST(ScoreCouponsTest, ModelWithNoActiveCouponsScoresNothing) {
  ModelData m = TinyModel(1, 3, 2);
  for (auto& a : m.coupon_attributes) a.stock = 0;
  const auto snap = Snapshot(m);
  ScoreQuery q;
  q.user_id = "u0";
  const ScoreResult r = ScoreCoupons(*snap, q);
  EXPECT_THAT(r.scores, IsEmpty());
  EXPECT_EQ(r.candidates_scored, 0u);
}

// Why Score needs no output check on its hot path (issue 15: no Infinity or NaN may leave the
// server): a loaded model holds biases and factors of at most kMaxModelMagnitude (1e6) in
// magnitude, so |logit| <= 3e6 + kMaxDimension x 1e12 < 5e15, finite in float whatever the
// summation order, and the probability is in [0, 1]. The largest model the bound allows, at
// the largest dimension, scores finite; one value past the bound is refused at load.
TEST(ScoreCouponsTest, TheLargestModelValuesGiveFiniteScores) {
  for (const float sign : {1.0f, -1.0f}) {
    ModelData m = coupond::testing::TinyModel(2, 3, kMaxDimension);
    const float big = static_cast<float>(kMaxModelMagnitude);
    m.global_bias = sign * kMaxModelMagnitude;
    std::fill(m.user_bias.begin(), m.user_bias.end(), sign * big);
    std::fill(m.coupon_bias.begin(), m.coupon_bias.end(), sign * big);
    std::fill(m.user_factors.begin(), m.user_factors.end(), big);
    std::fill(m.coupon_factors.begin(), m.coupon_factors.end(), sign * big);
    const auto snap = Snapshot(m);
    for (const char* user : {"u0", "u1", "a-new-user"}) {
      ScoreQuery q;
      q.user_id = user;
      const ScoreResult r = ScoreCoupons(*snap, q);
      ASSERT_EQ(r.scores.size(), 3u);
      for (const ScoredCoupon& c : r.scores) {
        EXPECT_TRUE(std::isfinite(c.logit)) << user << " " << c.logit;
        EXPECT_GE(c.probability, 0.0);
        EXPECT_LE(c.probability, 1.0);
      }
    }
    m.coupon_factors[5] = std::nextafter(big, 2 * big);
    ModelVersionInfo info;
    info.version = 7;
    info.dimension = m.dimension;
    info.num_users = m.num_users();
    info.num_coupons = m.num_coupons();
    EXPECT_THAT(ModelSnapshot::Create(m, info),
                coupond::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                           ::testing::HasSubstr("coupon_factors: out-of-range value")));
  }
}

TEST(SigmoidTest, StableAtExtremes) {
  EXPECT_DOUBLE_EQ(Sigmoid(0), 0.5);
  EXPECT_EQ(Sigmoid(1000), 1.0);
  EXPECT_EQ(Sigmoid(-1000), 0.0);
  EXPECT_GT(Sigmoid(-700), 0.0);  // no underflow to 0 through exp overflow
}

TEST(ModelSnapshotTest, RejectsManifestThatDisagreesWithData) {
  const ModelData m = TinyModel(2, 3, 4);
  ModelVersionInfo info;
  info.version = 1;
  info.dimension = 5;
  info.num_users = 2;
  info.num_coupons = 3;
  EXPECT_THAT(ModelSnapshot::Create(m, info),
              ::coupond::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                           ::testing::HasSubstr("dimension")));
}

TEST(ModelSnapshotTest, LooksUpIds) {
  const auto snap = Snapshot(TinyModel(3, 3, 2));
  EXPECT_EQ(snap->FindUser("u2"), 2u);
  EXPECT_EQ(snap->FindUser("u3"), std::nullopt);
  EXPECT_EQ(snap->FindCoupon("c0"), 0u);
  EXPECT_EQ(snap->FindCoupon(""), std::nullopt);
  EXPECT_GT(snap->memory_bytes(), 0u);
}

}  // namespace
}  // namespace coupond::core
