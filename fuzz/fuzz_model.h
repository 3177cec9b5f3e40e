#ifndef COUPOND_FUZZ_FUZZ_MODEL_H_
#define COUPOND_FUZZ_FUZZ_MODEL_H_

// The small, fixed model both fuzz targets start from: a synthetic platform (core's own
// generator, fixed seed and clock) plus a few hand-made user segments, so that segment
// rows, segment features and per-user segment indices are present too. Small on purpose:
// the work per fuzz input must stay in the microseconds to milliseconds.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/model.h"
#include "learn/synthetic.h"

namespace coupond::fuzz {

// Fixed "now" of the synthetic platform: validity windows and stock are set relative to it.
inline constexpr int64_t kFuzzModelNow = 1'700'000'000;

struct FuzzModelShape {
  uint32_t users = 48;
  uint32_t coupons = 12;
  uint32_t dimension = 8;
  uint32_t segments = 3;  // 0: a model without segments
};

// Aborts (a fuzz target has no caller to report to) if the generator refuses the shape.
inline core::ModelData FuzzModel(const FuzzModelShape& shape) {
  learn::SyntheticPlatformOptions options;
  options.num_users = shape.users;
  options.num_coupons = shape.coupons;
  options.dimension = shape.dimension;
  options.seed = 20240607;
  options.now_unix_seconds = kFuzzModelNow;
  absl::StatusOr<core::ModelData> generated = learn::GenerateSyntheticPlatform(options);
  if (!generated.ok()) {
    std::fprintf(stderr, "FuzzModel: %s\n", generated.status().ToString().c_str());
    std::abort();
  }
  core::ModelData m = *std::move(generated);
  if (shape.segments == 0) return m;

  // Two segment features, one profile column and one attribute (see core/model.h).
  m.segment_features = {{"log_exposures", 1.5f, 0.75f}, {"age=25-34", 0.0f, 1.0f}};
  for (uint32_t s = 0; s < shape.segments; ++s) {
    core::SegmentData seg;
    seg.name = absl::StrCat("segment-", s);
    seg.centroid = {0.5f * static_cast<float>(s) - 0.5f, static_cast<float>(s % 2)};
    seg.prior_bias = 0.1f * static_cast<float>(s) - 0.1f;
    seg.prior_factors.assign(m.dimension, 0.05f * static_cast<float>(s + 1));
    seg.redemption_rate = 0.02 * (s + 1);
    seg.members = 10 + s;
    m.segments.push_back(std::move(seg));
  }
  // Every fourth user has no segment (-1); the others cycle through the segments.
  m.user_segment.resize(m.num_users());
  for (size_t u = 0; u < m.num_users(); ++u) {
    m.user_segment[u] = u % 4 == 3 ? -1 : static_cast<int32_t>(u % shape.segments);
  }
  m.description = "fuzz model";
  m.metadata = {{"train.dimension", absl::StrCat(m.dimension)}, {"eval.auc", "0.75"}};
  if (absl::Status s = core::ValidateModelData(m); !s.ok()) {
    std::fprintf(stderr, "FuzzModel: %s\n", s.ToString().c_str());
    std::abort();
  }
  return m;
}

}  // namespace coupond::fuzz

#endif  // COUPOND_FUZZ_FUZZ_MODEL_H_
