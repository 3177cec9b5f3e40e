#include "learn/kmeans.h"

#include <cmath>
#include <cstdint>
#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::learn {
namespace {

using ::coupond::testing::StatusIs;
using ::testing::HasSubstr;

// `per` points around each of `centres` (dim 3), spread +-0.5 by a fixed pattern.
std::vector<float> Blobs(const std::vector<std::vector<float>>& centres, int per) {
  std::vector<float> points;
  uint64_t state = 12345;
  for (int i = 0; i < per; ++i) {
    for (const auto& c : centres) {
      for (float x : c) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        const float noise = static_cast<float>((state >> 40) % 1000) / 1000.0f - 0.5f;
        points.push_back(x + noise);
      }
    }
  }
  return points;
}

const std::vector<std::vector<float>> kCentres = {
    {0, 0, 0}, {20, 0, 0}, {0, 20, 0}, {0, 0, 20}};

TEST(KMeansTest, RecoversWellSeparatedClusters) {
  const std::vector<float> points = Blobs(kCentres, 50);  // point i is in blob i % 4
  KMeansOptions options;
  options.k = 4;
  ASSERT_OK_AND_ASSIGN(KMeansResult r, KMeans(points, 3, options));
  EXPECT_EQ(r.k, 4);
  EXPECT_TRUE(r.converged);
  // Every blob is one cluster, and the four clusters are distinct.
  std::set<uint32_t> labels;
  for (size_t b = 0; b < 4; ++b) {
    const uint32_t label = r.assignment[b];
    labels.insert(label);
    for (size_t i = b; i < r.assignment.size(); i += 4) ASSERT_EQ(r.assignment[i], label) << i;
    // Its centroid is near the blob's centre.
    for (size_t j = 0; j < 3; ++j) {
      EXPECT_NEAR(r.centroids[label * 3 + j], kCentres[b][j], 0.2) << b << "," << j;
    }
  }
  EXPECT_EQ(labels.size(), 4u);
  EXPECT_THAT(r.sizes, ::testing::Each(50u));
  EXPECT_LT(r.wcss, 200 * 3 * 0.25);  // within-blob spread only
  EXPECT_EQ(r.Nearest(std::vector<float>{19, 1, 0}), r.assignment[1]);
}

TEST(KMeansTest, ChoosesKBySilhouette) {
  const std::vector<float> points = Blobs(kCentres, 30);
  KMeansOptions options;  // k = 0: choose in [2, 8]
  ASSERT_OK_AND_ASSIGN(KMeansResult r, KMeans(points, 3, options));
  EXPECT_EQ(r.k, 4);
  ASSERT_EQ(r.candidate_k.size(), 7u);
  EXPECT_EQ(r.candidate_k.front(), 2);
  const double best = r.candidate_silhouette[2];  // k = 4
  for (double s : r.candidate_silhouette) EXPECT_LE(s, best);
  EXPECT_GT(best, 0.9);
}

TEST(KMeansTest, DeterministicForASeed) {
  const std::vector<float> points = Blobs({{0, 0, 0}, {1, 1, 1}, {2, 0, 1}}, 40);
  KMeansOptions options;
  options.k = 5;
  options.seed = 7;
  ASSERT_OK_AND_ASSIGN(KMeansResult a, KMeans(points, 3, options));
  ASSERT_OK_AND_ASSIGN(KMeansResult b, KMeans(points, 3, options));
  EXPECT_EQ(a.assignment, b.assignment);
  EXPECT_EQ(a.centroids, b.centroids);
  EXPECT_EQ(a.wcss, b.wcss);
}

TEST(KMeansTest, IdenticalPointsAndKEqualsN) {
  const std::vector<float> same(10 * 2, 1.0f);
  KMeansOptions options;
  options.k = 3;
  ASSERT_OK_AND_ASSIGN(KMeansResult r, KMeans(same, 2, options));
  EXPECT_EQ(r.wcss, 0.0);
  const std::vector<float> three = {0, 0, 5, 5, 10, 10};
  ASSERT_OK_AND_ASSIGN(KMeansResult t, KMeans(three, 2, options));
  EXPECT_EQ(t.wcss, 0.0);
  EXPECT_EQ(std::set<uint32_t>(t.assignment.begin(), t.assignment.end()).size(), 3u);
}

TEST(KMeansTest, RejectsBadInput) {
  const std::vector<float> points = {0, 0, 1, 1};
  KMeansOptions options;
  options.k = 3;
  EXPECT_THAT(KMeans(points, 2, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("more than the 2 points")));
  options.k = 1;
  EXPECT_THAT(KMeans(points, 3, options), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(KMeans(points, 0, options), StatusIs(absl::StatusCode::kInvalidArgument));
  const std::vector<float> bad = {0, NAN};
  EXPECT_THAT(KMeans(bad, 2, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not finite")));
  options.k = 0;
  options.min_k = 3;
  options.max_k = 2;
  EXPECT_THAT(KMeans(points, 2, options), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace coupond::learn
