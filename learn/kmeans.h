#ifndef COUPOND_LEARN_KMEANS_H_
#define COUPOND_LEARN_KMEANS_H_

// k-means clustering of dense points (user segments for cold start).
//
// Initialisation: k-means++ (Arthur & Vassilvitskii 2007): the first centre uniformly at
// random, each next one with probability proportional to the squared distance to the
// nearest centre chosen so far. Then Lloyd iterations until no point changes cluster, the
// within-cluster sum of squares (WCSS) improves by less than `tolerance` relative, or
// `max_iterations`. A cluster left empty takes the point farthest from its centre.
//
// Deterministic: the same points, options and seed give the same result on every
// platform (our own splitmix64 generator; no std distributions, whose output is
// implementation-defined; sums in double, in a fixed order). Single-threaded.
//
// Choosing k (options.k == 0): every k in [min_k, max_k] is fitted, and the k with the
// largest mean silhouette coefficient on a seeded sample of at most `silhouette_sample`
// points is kept (ties: the smaller k). The silhouette is used rather than the WCSS
// elbow because it has a maximum to find, not a knee to judge.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace coupond::learn {

struct KMeansOptions {
  // Number of clusters; 0 = choose in [min_k, max_k] by silhouette. Default 0.
  int k = 0;
  int min_k = 2;  // Default 2.
  int max_k = 8;  // Default 8.
  int max_iterations = 100;  // Lloyd iterations per fit. Default 100.
  // Stop when the WCSS improves by less than this fraction. Default 1e-6.
  double tolerance = 1e-6;
  uint64_t seed = 1;  // Default 1.
  // Points used to score a k by silhouette (O(sample^2 * dim)). Default 2000.
  size_t silhouette_sample = 2000;
};

struct KMeansResult {
  int k = 0;
  size_t dim = 0;
  std::vector<float> centroids;    // k x dim, row-major
  std::vector<uint32_t> assignment;  // one cluster per point
  std::vector<uint32_t> sizes;     // points per cluster
  double wcss = 0.0;               // within-cluster sum of squared distances
  int iterations = 0;
  bool converged = false;
  // When k was chosen: the candidates and their scores (same order).
  std::vector<int> candidate_k;
  std::vector<double> candidate_silhouette;
  std::vector<double> candidate_wcss;

  // The nearest centroid to `point` (dim values). REQUIRES: point.size() == dim.
  uint32_t Nearest(absl::Span<const float> point) const;
};

// Clusters `points` (n x dim, row-major). InvalidArgument when dim == 0, the size is not a
// multiple of dim, a value is not finite, k (or min_k) > n, k < 0, or min_k > max_k or
// min_k < 2 when choosing.
absl::StatusOr<KMeansResult> KMeans(absl::Span<const float> points, size_t dim,
                                    const KMeansOptions& options = {});

// Mean silhouette coefficient of `assignment` over the points `sample` (indices; all
// points when empty), distances to every point. Points in singleton clusters score 0.
double MeanSilhouette(absl::Span<const float> points, size_t dim,
                      absl::Span<const uint32_t> assignment, int k,
                      absl::Span<const uint32_t> sample = {});

}  // namespace coupond::learn

#endif  // COUPOND_LEARN_KMEANS_H_
