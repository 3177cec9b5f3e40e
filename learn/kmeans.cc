#include "learn/kmeans.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "core/random.h"

namespace coupond::learn {
namespace {

using Rng = core::SplitMix64;

double SquaredDistance(const float* a, const float* b, size_t dim) {
  double s = 0;
  for (size_t j = 0; j < dim; ++j) {
    const double d = static_cast<double>(a[j]) - b[j];
    s += d * d;
  }
  return s;
}

struct Fit {
  std::vector<float> centroids;
  std::vector<uint32_t> assignment;
  double wcss = 0;
  int iterations = 0;
  bool converged = false;
};

Fit FitK(absl::Span<const float> points, size_t dim, size_t n, int k,
         const KMeansOptions& options) {
  Rng rng(options.seed ^ (0xA24BAED4963EE407ull * static_cast<uint64_t>(k)));
  Fit fit;
  fit.centroids.resize(static_cast<size_t>(k) * dim);
  const float* p = points.data();
  // k-means++ seeding.
  std::vector<double> nearest(n, std::numeric_limits<double>::infinity());
  size_t chosen = rng.Below(n);
  for (int c = 0; c < k; ++c) {
    std::copy(p + chosen * dim, p + (chosen + 1) * dim, fit.centroids.begin() + c * dim);
    double total = 0;
    for (size_t i = 0; i < n; ++i) {
      nearest[i] = std::min(nearest[i], SquaredDistance(p + i * dim, p + chosen * dim, dim));
      total += nearest[i];
    }
    if (c + 1 == k) break;
    if (total <= 0) {  // every point sits on a centre: any point will do
      chosen = rng.Below(n);
      continue;
    }
    double r = rng.Uniform() * total;
    chosen = n - 1;
    for (size_t i = 0; i < n; ++i) {
      r -= nearest[i];
      if (r < 0) {
        chosen = i;
        break;
      }
    }
  }
  // Lloyd iterations.
  fit.assignment.assign(n, 0);
  std::vector<double> distance(n);
  std::vector<double> sums(static_cast<size_t>(k) * dim);
  std::vector<uint32_t> counts(k);
  double previous = std::numeric_limits<double>::infinity();
  for (fit.iterations = 1; fit.iterations <= options.max_iterations; ++fit.iterations) {
    bool changed = false;
    double wcss = 0;
    for (size_t i = 0; i < n; ++i) {
      uint32_t best = 0;
      double best_d = std::numeric_limits<double>::infinity();
      for (int c = 0; c < k; ++c) {
        const double d = SquaredDistance(p + i * dim, fit.centroids.data() + c * dim, dim);
        if (d < best_d) {
          best_d = d;
          best = static_cast<uint32_t>(c);
        }
      }
      changed = changed || best != fit.assignment[i] || fit.iterations == 1;
      fit.assignment[i] = best;
      distance[i] = best_d;
      wcss += best_d;
    }
    fit.wcss = wcss;
    if (!changed ||
        (std::isfinite(previous) && previous - wcss <= options.tolerance * previous)) {
      fit.converged = true;
      break;
    }
    previous = wcss;
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0);
    for (size_t i = 0; i < n; ++i) {
      const uint32_t c = fit.assignment[i];
      ++counts[c];
      for (size_t j = 0; j < dim; ++j) sums[c * dim + j] += p[i * dim + j];
    }
    for (int c = 0; c < k; ++c) {
      if (counts[c] == 0) {
        // Empty cluster: move it to the point farthest from its centre.
        const size_t far = static_cast<size_t>(
            std::max_element(distance.begin(), distance.end()) - distance.begin());
        std::copy(p + far * dim, p + (far + 1) * dim, fit.centroids.begin() + c * dim);
        distance[far] = 0;
        continue;
      }
      for (size_t j = 0; j < dim; ++j) {
        fit.centroids[c * dim + j] = static_cast<float>(sums[c * dim + j] / counts[c]);
      }
    }
  }
  fit.iterations = std::min(fit.iterations, options.max_iterations);
  return fit;
}

}  // namespace

uint32_t KMeansResult::Nearest(absl::Span<const float> point) const {
  uint32_t best = 0;
  double best_d = std::numeric_limits<double>::infinity();
  for (int c = 0; c < k; ++c) {
    const double d = SquaredDistance(point.data(), centroids.data() + c * dim, dim);
    if (d < best_d) {
      best_d = d;
      best = static_cast<uint32_t>(c);
    }
  }
  return best;
}

double MeanSilhouette(absl::Span<const float> points, size_t dim,
                      absl::Span<const uint32_t> assignment, int k,
                      absl::Span<const uint32_t> sample) {
  const size_t n = assignment.size();
  std::vector<uint32_t> all;
  if (sample.empty()) {
    all.resize(n);
    std::iota(all.begin(), all.end(), 0u);
    sample = all;
  }
  std::vector<uint32_t> sizes(k, 0);
  for (uint32_t a : assignment) ++sizes[a];
  std::vector<double> mean_distance(k);
  double total = 0;
  for (uint32_t i : sample) {
    std::fill(mean_distance.begin(), mean_distance.end(), 0.0);
    for (size_t j = 0; j < n; ++j) {
      mean_distance[assignment[j]] +=
          std::sqrt(SquaredDistance(points.data() + i * dim, points.data() + j * dim, dim));
    }
    const uint32_t own = assignment[i];
    if (sizes[own] <= 1) continue;  // singleton: 0
    const double a = mean_distance[own] / (sizes[own] - 1);
    double b = std::numeric_limits<double>::infinity();
    for (int c = 0; c < k; ++c) {
      if (static_cast<uint32_t>(c) != own && sizes[c] > 0) {
        b = std::min(b, mean_distance[c] / sizes[c]);
      }
    }
    if (!std::isfinite(b)) continue;
    const double denom = std::max(a, b);
    total += denom > 0 ? (b - a) / denom : 0.0;
  }
  return sample.empty() ? 0.0 : total / static_cast<double>(sample.size());
}

absl::StatusOr<KMeansResult> KMeans(absl::Span<const float> points, size_t dim,
                                    const KMeansOptions& options) {
  if (dim == 0 || points.size() % dim != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("KMeans: ", points.size(), " values is not a multiple of dim ", dim));
  }
  const size_t n = points.size() / dim;
  for (size_t i = 0; i < points.size(); ++i) {
    if (!std::isfinite(points[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("KMeans: point ", i / dim, " column ", i % dim, " is not finite"));
    }
  }
  if (options.k < 0) return absl::InvalidArgumentError("KMeans: k < 0");
  if (options.max_iterations < 1) return absl::InvalidArgumentError("KMeans: max_iterations < 1");
  int lo = options.k, hi = options.k;
  if (options.k == 0) {
    if (options.min_k < 2 || options.min_k > options.max_k) {
      return absl::InvalidArgumentError(absl::StrCat("KMeans: need 2 <= min_k <= max_k, got [",
                                                     options.min_k, ", ", options.max_k, "]"));
    }
    lo = options.min_k;
    hi = static_cast<int>(std::min<size_t>(options.max_k, n));
  }
  if (static_cast<size_t>(lo) > n) {
    return absl::InvalidArgumentError(
        absl::StrCat("KMeans: k = ", lo, " is more than the ", n, " points"));
  }

  KMeansResult result;
  result.dim = dim;
  Fit best;
  if (lo == hi) {
    best = FitK(points, dim, n, lo, options);
    result.k = lo;
  } else {
    // A seeded sample for the silhouette, the same for every k.
    std::vector<uint32_t> sample(n);
    std::iota(sample.begin(), sample.end(), 0u);
    if (n > options.silhouette_sample) {
      Rng rng(options.seed ^ 0x5EED5A3B1Eull);
      for (size_t i = 0; i < options.silhouette_sample; ++i) {
        std::swap(sample[i], sample[i + rng.Below(n - i)]);
      }
      sample.resize(options.silhouette_sample);
      std::sort(sample.begin(), sample.end());
    }
    double best_score = -std::numeric_limits<double>::infinity();
    for (int k = lo; k <= hi; ++k) {
      Fit fit = FitK(points, dim, n, k, options);
      const double score = MeanSilhouette(points, dim, fit.assignment, k, sample);
      result.candidate_k.push_back(k);
      result.candidate_silhouette.push_back(score);
      result.candidate_wcss.push_back(fit.wcss);
      if (score > best_score) {
        best_score = score;
        best = std::move(fit);
        result.k = k;
      }
    }
  }
  result.centroids = std::move(best.centroids);
  result.assignment = std::move(best.assignment);
  result.wcss = best.wcss;
  result.iterations = best.iterations;
  result.converged = best.converged;
  result.sizes.assign(result.k, 0);
  for (uint32_t a : result.assignment) ++result.sizes[a];
  return result;
}

}  // namespace coupond::learn
