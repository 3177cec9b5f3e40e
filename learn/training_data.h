#ifndef COUPOND_LEARN_TRAINING_DATA_H_
#define COUPOND_LEARN_TRAINING_DATA_H_

// The in-memory form of cleaned behaviour logs, as the offline pipeline hands them to the
// trainer: who was offered which coupon when, whether they redeemed it, and sparse
// categorical attributes of users and coupons (LightFM-style side features).
//
// Produced by pipeline/ (ingest and clean of canonical CSV logs, dataset adapters);
// consumed by the trainer and the metrics in core/. No I/O here.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/model.h"
#include "core/user_key.h"

namespace coupond::learn {

// One candidate: user `user` was offered coupon `coupon` in campaign `campaign` on day
// `day`; `label` is 1 if the user redeemed it, else 0.
struct Example {
  uint32_t user = 0;      // index into TrainingData::user_ids
  uint32_t coupon = 0;    // index into TrainingData::coupon_ids
  uint32_t campaign = 0;  // index into TrainingData::campaign_ids
  int32_t day = 0;        // the dataset's day number of the exposure (for time splits)
  float label = 0.0f;     // 1 redeemed, 0 not
  float order_value = 0.0f;  // value of the redeeming order, 0 when unknown or not redeemed
  // The day the label was observed: for a positive, the day of its first redemption (which
  // may be long after `day`: campaigns run for weeks). Time splits censor on it: as of day
  // D, a positive whose label_day >= D has not been seen yet (pipeline/ingest.h,
  // CensorLabelsAt). 0 (the default) where the producer does not know it: such a label
  // counts as observed on every day. Not read for negatives.
  int32_t label_day = 0;
};

// Sparse categorical features in CSR form: row i holds the feature indices
// features[offsets[i] .. offsets[i + 1]), each an index into `names`
// (e.g. "age=45-54", "product=1234", "campaign_type=TypeA").
struct SparseFeatures {
  std::vector<uint32_t> offsets = {0};
  std::vector<uint32_t> features;
  std::vector<std::string> names;

  size_t rows() const { return offsets.size() - 1; }
  size_t num_features() const { return names.size(); }
  absl::Span<const uint32_t> row(size_t i) const {
    return absl::MakeConstSpan(features.data() + offsets[i], offsets[i + 1] - offsets[i]);
  }
  // Appends a row. REQUIRES: every index < num_features().
  void AddRow(absl::Span<const uint32_t> row_features) {
    features.insert(features.end(), row_features.begin(), row_features.end());
    offsets.push_back(static_cast<uint32_t>(features.size()));
  }
};

struct TrainingData {
  std::vector<std::string> user_ids;      // raw ids as in the logs (pseudonymised later)
  std::vector<std::string> coupon_ids;
  std::vector<std::string> campaign_ids;
  SparseFeatures user_features;           // one row per user (rows may be empty)
  SparseFeatures coupon_features;         // one row per coupon (rows may be empty)
  std::vector<core::CouponAttributes> coupon_attributes;  // one per coupon
  std::vector<Example> examples;

  // OK when every index is in range, feature tables have one row per entity, labels are
  // 0 or 1 and numbers finite. Otherwise InvalidArgument naming the first problem.
  absl::Status Validate() const;
};

// Replaces every user id of `data` with its key. Ids that become equal (a user present both
// raw and keyed, e.g. history plus an export) are merged into one user: examples re-indexed,
// feature rows united. Validates `data` after the rewrite.
absl::Status PseudonymiseUsers(const core::UserKeyer& keyer, TrainingData* data);

}  // namespace coupond::learn

#endif  // COUPOND_LEARN_TRAINING_DATA_H_
