#ifndef COUPOND_LEARN_LMF_SYNTHETIC_H_
#define COUPOND_LEARN_LMF_SYNTHETIC_H_

// Synthetic TrainingData with known truth, for the trainer's tests, benchmark and demos.
//
// Truth: a synthetic platform (learn/synthetic.h) supplies independent latent vectors. Each
// user belongs to one of `user_segments` segments (feature "segment=k"); each coupon has a
// category and a brand (features "category=k", "brand=k"). A user's true factor and bias are
//   sqrt(a) * segment's + sqrt(1 - a) * its own,
// and a coupon's are sqrt(a) * (category's + brand's) / sqrt(2) + sqrt(1 - a) * its own,
// with a = attribute_share, so the attributes carry that share of the variance: a coupon
// seen only through its attributes is still predictable. Exposures are uniform random
// (user, coupon) pairs; labels ~ Bernoulli(true p).
//
// Header-only (it is test and benchmark support, not serving code). Deterministic by seed
// (libstdc++'s distributions).

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/model.h"
#include "learn/synthetic.h"
#include "learn/training_data.h"

namespace coupond::learn {

struct SyntheticTrainingOptions {
  uint32_t num_users = 2000;
  uint32_t num_coupons = 100;
  uint32_t dimension = 8;  // of the truth
  size_t num_examples = 100000;
  uint32_t user_segments = 8;
  uint32_t coupon_categories = 10;
  uint32_t coupon_brands = 20;
  double attribute_share = 0.7;    // in [0, 1]
  double global_bias = -2.0;       // logit of the base rate
  double interaction_stddev = 1.5;
  double bias_stddev = 0.5;
  uint64_t seed = 7;
};

struct SyntheticTrainingSet {
  TrainingData data;
  core::ModelData truth;            // true factors, indexed like data's users and coupons
  std::vector<float> true_p;  // per example, the probability its label was drawn from
};

inline absl::StatusOr<SyntheticTrainingSet> GenerateSyntheticTrainingSet(
    const SyntheticTrainingOptions& o) {
  if (o.user_segments < 1 || o.coupon_categories < 1 || o.coupon_brands < 1) {
    return absl::InvalidArgumentError("segments, categories, brands: each must be >= 1");
  }
  if (!(o.attribute_share >= 0 && o.attribute_share <= 1)) {
    return absl::InvalidArgumentError("attribute_share: must be in [0, 1]");
  }
  // One platform supplies every latent vector: users, then segments as extra "users";
  // coupons, then categories and brands as extra "coupons".
  SyntheticPlatformOptions po;
  po.num_users = o.num_users + o.user_segments;
  po.num_coupons = o.num_coupons + o.coupon_categories + o.coupon_brands;
  po.dimension = o.dimension;
  po.seed = o.seed;
  po.global_bias = o.global_bias;
  po.user_bias_stddev = o.bias_stddev;
  po.coupon_bias_stddev = o.bias_stddev;
  po.interaction_stddev = o.interaction_stddev;
  po.out_of_stock_fraction = 0;
  COUPOND_ASSIGN_OR_RETURN(core::ModelData p, GenerateSyntheticPlatform(po));

  const size_t d = o.dimension;
  const float sa = static_cast<float>(std::sqrt(o.attribute_share));
  const float so = static_cast<float>(std::sqrt(1 - o.attribute_share));
  std::mt19937_64 rng(o.seed ^ 0xabcdef12345ULL);
  SyntheticTrainingSet s;
  TrainingData& t = s.data;
  core::ModelData& truth = s.truth;
  truth.dimension = o.dimension;
  truth.global_bias = o.global_bias;
  truth.description = "synthetic training truth";
  for (uint32_t k = 0; k < o.user_segments; ++k) {
    t.user_features.names.push_back(absl::StrCat("segment=", k));
  }
  for (uint32_t k = 0; k < o.coupon_categories; ++k) {
    t.coupon_features.names.push_back(absl::StrCat("category=", k));
  }
  for (uint32_t k = 0; k < o.coupon_brands; ++k) {
    t.coupon_features.names.push_back(absl::StrCat("brand=", k));
  }
  for (uint32_t u = 0; u < o.num_users; ++u) {
    const uint32_t seg = static_cast<uint32_t>(rng() % o.user_segments);
    t.user_ids.push_back(p.user_ids[u]);
    t.user_features.AddRow({seg});
    const size_t su = o.num_users + seg;
    truth.user_ids.push_back(p.user_ids[u]);
    truth.user_bias.push_back(sa * p.user_bias[su] + so * p.user_bias[u]);
    for (size_t k = 0; k < d; ++k) {
      truth.user_factors.push_back(sa * p.user_factors[su * d + k] +
                                   so * p.user_factors[u * d + k]);
    }
  }
  const float half = static_cast<float>(std::sqrt(0.5));
  for (uint32_t c = 0; c < o.num_coupons; ++c) {
    const uint32_t cat = static_cast<uint32_t>(rng() % o.coupon_categories);
    const uint32_t brand = static_cast<uint32_t>(rng() % o.coupon_brands);
    t.coupon_ids.push_back(p.coupon_ids[c]);
    t.coupon_features.AddRow({cat, o.coupon_categories + brand});
    t.coupon_attributes.push_back(p.coupon_attributes[c]);
    const size_t sc = o.num_coupons + cat;
    const size_t sb = o.num_coupons + o.coupon_categories + brand;
    truth.coupon_ids.push_back(p.coupon_ids[c]);
    truth.coupon_attributes.push_back(p.coupon_attributes[c]);
    truth.coupon_bias.push_back(sa * half * (p.coupon_bias[sc] + p.coupon_bias[sb]) +
                                so * p.coupon_bias[c]);
    for (size_t k = 0; k < d; ++k) {
      truth.coupon_factors.push_back(
          sa * half * (p.coupon_factors[sc * d + k] + p.coupon_factors[sb * d + k]) +
          so * p.coupon_factors[c * d + k]);
    }
  }
  t.campaign_ids = {"synthetic"};
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  t.examples.reserve(o.num_examples);
  s.true_p.reserve(o.num_examples);
  for (size_t i = 0; i < o.num_examples; ++i) {
    Example e;
    e.user = static_cast<uint32_t>(rng() % o.num_users);
    e.coupon = static_cast<uint32_t>(rng() % o.num_coupons);
    e.day = static_cast<int32_t>(rng() % 100);
    double z = truth.global_bias + truth.user_bias[e.user] + truth.coupon_bias[e.coupon];
    for (size_t k = 0; k < d; ++k) {
      z += static_cast<double>(truth.user_factors[e.user * d + k]) *
           truth.coupon_factors[e.coupon * d + k];
    }
    const double prob = 1.0 / (1.0 + std::exp(-z));
    e.label = u01(rng) < prob ? 1.0f : 0.0f;
    e.label_day = e.day;
    s.true_p.push_back(static_cast<float>(prob));
    t.examples.push_back(e);
  }
  return s;
}

}  // namespace coupond::learn

#endif  // COUPOND_LEARN_LMF_SYNTHETIC_H_
