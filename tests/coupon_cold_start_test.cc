// Coupon cold start (pipeline/coupon_cold_start.h): the ridge regression against a dense
// reference solve, the "inherit half of your neighbour" case the options document, which
// coupons get marked, and bad input.

#include "pipeline/coupon_cold_start.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::pipeline {
namespace {

using ::coupond::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Data with `rows` coupons (features by name) and one example per coupon listed in `warm`;
// a model over it with deterministic vectors for every coupon.
struct Fixture {
  learn::TrainingData data;
  core::ModelData model;
  std::vector<uint32_t> train;
};

Fixture Make(const std::vector<std::vector<std::string>>& rows, const std::vector<int>& warm,
             uint32_t d) {
  Fixture f;
  f.data.user_ids = {"u"};
  f.data.user_features.AddRow({});
  f.data.campaign_ids = {"k"};
  std::vector<std::string> names;
  for (size_t c = 0; c < rows.size(); ++c) {
    f.data.coupon_ids.push_back(absl::StrCat("c", c));
    std::vector<uint32_t> row;
    for (const std::string& n : rows[c]) {
      auto it = std::find(names.begin(), names.end(), n);
      if (it == names.end()) {
        names.push_back(n);
        it = names.end() - 1;
      }
      row.push_back(static_cast<uint32_t>(it - names.begin()));
    }
    f.data.coupon_features.AddRow(row);
  }
  f.data.coupon_features.names = names;
  f.data.coupon_attributes.assign(rows.size(), core::CouponAttributes{});
  for (int c : warm) {
    learn::Example e;
    e.coupon = static_cast<uint32_t>(c);
    f.train.push_back(static_cast<uint32_t>(f.data.examples.size()));
    f.data.examples.push_back(e);
  }
  f.model.dimension = d;
  f.model.coupon_ids = f.data.coupon_ids;
  for (size_t c = 0; c < rows.size(); ++c) {
    f.model.coupon_bias.push_back(0.3f * std::sin(static_cast<float>(c) + 1.0f));
    for (uint32_t k = 0; k < d; ++k) {
      f.model.coupon_factors.push_back(std::cos(0.7f * static_cast<float>(c * d + k)));
    }
  }
  f.model.coupon_attributes = f.data.coupon_attributes;
  return f;
}

// Dense reference: Gaussian elimination on (X^T X + l2 I) W = X^T (Y - mean), in double.
std::vector<double> ReferencePrediction(const Fixture& f, double l2, uint32_t cold) {
  const size_t d = f.model.dimension, t = d + 1;
  std::vector<int> warm_rows;
  for (uint32_t i : f.train) {
    const int c = static_cast<int>(f.data.examples[i].coupon);
    if (std::find(warm_rows.begin(), warm_rows.end(), c) == warm_rows.end()) warm_rows.push_back(c);
  }
  const size_t p = f.data.coupon_features.num_features();
  auto has = [&](int c, size_t j) {
    for (uint32_t g : f.data.coupon_features.row(c)) {
      if (g == j) return true;
    }
    return false;
  };
  auto target = [&](int c, size_t k) {
    return k == 0 ? double{f.model.coupon_bias[c]} : double{f.model.coupon_factors[c * d + k - 1]};
  };
  std::vector<double> mean(t, 0.0);
  for (int c : warm_rows) {
    for (size_t k = 0; k < t; ++k) mean[k] += target(c, k) / static_cast<double>(warm_rows.size());
  }
  // Augmented [A | B], p x (p + t), row-major. Features no warm coupon carries get weight 0
  // (their rows are l2 * w = 0).
  const size_t width = p + t;
  std::vector<double> m(p * width, 0.0);
  auto at = [&](size_t i, size_t j) -> double& { return m[i * width + j]; };
  for (size_t i = 0; i < p; ++i) {
    at(i, i) = l2;
    for (int c : warm_rows) {
      if (!has(c, i)) continue;
      for (size_t j = 0; j < p; ++j) at(i, j) += has(c, j) ? 1.0 : 0.0;
      for (size_t k = 0; k < t; ++k) at(i, p + k) += target(c, k) - mean[k];
    }
  }
  for (size_t i = 0; i < p; ++i) {
    const double pivot = at(i, i);
    for (size_t j = i; j < width; ++j) at(i, j) /= pivot;
    for (size_t r = 0; r < p; ++r) {
      if (r == i || at(r, i) == 0.0) continue;
      const double factor = at(r, i);
      for (size_t j = i; j < width; ++j) at(r, j) -= factor * at(i, j);
    }
  }
  std::vector<double> out = mean;
  for (size_t j = 0; j < p; ++j) {
    if (!has(static_cast<int>(cold), j)) continue;
    for (size_t k = 0; k < t; ++k) out[k] += at(j, p + k);
  }
  return out;
}

TEST(PredictColdCouponsTest, MatchesADenseReferenceSolve) {
  Fixture f = Make({{"type=A", "like=c0"},
                    {"type=B", "like=c1", "brand=x"},
                    {"type=A", "like=c2", "brand=x"},
                    {"type=B", "like=c3"},
                    {"type=A", "like=c0", "brand=x"},   // cold
                    {"type=B", "like=c3"},              // cold
                    {"brand=x"},                        // cold
                    {"brand=never-trained"},            // cold, no column
                    {}},                                // cold, no attribute
                   {0, 1, 2, 3, 3}, 3);
  const core::ModelData trained = f.model;
  for (double l2 : {0.1, 1.0, 10.0}) {
    f.model = trained;
    CouponColdStartOptions o;
    o.l2 = l2;
    ASSERT_OK_AND_ASSIGN(CouponColdStartReport r, PredictColdCoupons(f.data, f.train, o, &f.model));
    EXPECT_EQ(r.warm_coupons, 4);
    EXPECT_EQ(r.columns, 7);  // type=A, like=c0, type=B, like=c1, brand=x, like=c2, like=c3
    EXPECT_EQ(r.predicted_coupons, 3);
    EXPECT_EQ(r.cold_without_columns, 2);
    EXPECT_LT(r.fit_rmse, r.target_rms);
    EXPECT_THAT(f.model.coupon_predicted_from_attributes, ElementsAre(0, 0, 0, 0, 1, 1, 1, 0, 0));
    for (uint32_t c : {4u, 5u, 6u}) {
      const std::vector<double> expected = ReferencePrediction(f, l2, c);
      EXPECT_NEAR(f.model.coupon_bias[c], expected[0], 1e-5) << "l2 " << l2 << " c" << c;
      for (uint32_t k = 0; k < 3; ++k) {
        EXPECT_NEAR(f.model.coupon_factors[c * 3 + k], expected[k + 1], 1e-5);
      }
    }
    // Trained coupons and cold coupons without columns keep their vectors.
    for (uint32_t c : {0u, 1u, 2u, 3u, 7u, 8u}) {
      EXPECT_EQ(f.model.coupon_bias[c], trained.coupon_bias[c]);
      for (uint32_t k = 0; k < 3; ++k) {
        EXPECT_EQ(f.model.coupon_factors[c * 3 + k], trained.coupon_factors[c * 3 + k]);
      }
    }
  }
}

// The documented case: a new coupon whose only attribute is "like=X", X the only trained
// coupon carrying it, inherits X's deviation from the mean shrunk by 1 / (1 + l2).
TEST(PredictColdCouponsTest, ANewCouponInheritsItsNeighboursShrunkVector) {
  Fixture f = Make({{"like=c0"}, {"like=c1"}, {"like=c2"}, {"like=c1"}}, {0, 1, 2}, 2);
  const core::ModelData trained = f.model;
  ASSERT_OK_AND_ASSIGN(CouponColdStartReport r,
                       PredictColdCoupons(f.data, f.train, CouponColdStartOptions{}, &f.model));
  EXPECT_EQ(r.predicted_coupons, 1);
  for (uint32_t k = 0; k < 3; ++k) {
    auto value = [&](const core::ModelData& m, uint32_t c) {
      return k == 0 ? double{m.coupon_bias[c]} : double{m.coupon_factors[c * 2 + k - 1]};
    };
    const double mean = (value(trained, 0) + value(trained, 1) + value(trained, 2)) / 3;
    EXPECT_NEAR(value(f.model, 3), mean + (value(trained, 1) - mean) / 2, 1e-6) << k;
  }
}

TEST(PredictColdCouponsTest, AFeatureListedTwiceOnOneRowCountsOnce) {
  Fixture once = Make({{"a"}, {"b"}, {"a"}}, {0, 1}, 1);
  Fixture twice = Make({{"a", "a"}, {"b"}, {"a", "a"}}, {0, 1}, 1);
  ASSERT_OK(PredictColdCoupons(once.data, once.train, {}, &once.model).status());
  ASSERT_OK(PredictColdCoupons(twice.data, twice.train, {}, &twice.model).status());
  EXPECT_FLOAT_EQ(once.model.coupon_bias[2], twice.model.coupon_bias[2]);
  EXPECT_FLOAT_EQ(once.model.coupon_factors[2], twice.model.coupon_factors[2]);
}

TEST(PredictColdCouponsTest, NothingToLearnOrNothingToPredictChangesNothing) {
  Fixture all_warm = Make({{"a"}, {"b"}}, {0, 1}, 2);
  const core::ModelData before = all_warm.model;
  ASSERT_OK_AND_ASSIGN(CouponColdStartReport r,
                       PredictColdCoupons(all_warm.data, all_warm.train, {}, &all_warm.model));
  EXPECT_EQ(r.predicted_coupons, 0);
  EXPECT_EQ(all_warm.model.coupon_factors, before.coupon_factors);
  EXPECT_THAT(all_warm.model.coupon_predicted_from_attributes, ElementsAre(0, 0));

  Fixture none_warm = Make({{"a"}, {"b"}}, {}, 2);
  ASSERT_OK_AND_ASSIGN(r, PredictColdCoupons(none_warm.data, {}, {}, &none_warm.model));
  EXPECT_EQ(r.predicted_coupons, 0);
  EXPECT_EQ(r.cold_without_columns, 2);
}

TEST(PredictColdCouponsTest, BadInputIsInvalidArgumentNamingIt) {
  Fixture f = Make({{"a"}, {"a"}}, {0}, 2);
  for (double l2 : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(),
                    std::numeric_limits<double>::infinity()}) {
    CouponColdStartOptions o;
    o.l2 = l2;
    EXPECT_THAT(PredictColdCoupons(f.data, f.train, o, &f.model),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cold_coupons.l2")));
  }
  const std::vector<uint32_t> out_of_range = {7};
  EXPECT_THAT(PredictColdCoupons(f.data, out_of_range, {}, &f.model),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("train: index 7")));
  core::ModelData other = f.model;
  std::swap(other.coupon_ids[0], other.coupon_ids[1]);
  EXPECT_THAT(PredictColdCoupons(f.data, f.train, {}, &other),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("data's order")));
  other = f.model;
  other.coupon_bias.pop_back();
  EXPECT_THAT(PredictColdCoupons(f.data, f.train, {}, &other),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("materialised")));
  EXPECT_THAT(PredictColdCoupons(f.data, f.train, {}, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace coupond::pipeline
