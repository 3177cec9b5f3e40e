#include "learn/training_data.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace coupond::learn {
namespace {

absl::Status CheckFeatures(const SparseFeatures& f, size_t entities, const char* name) {
  if (f.offsets.empty() || f.offsets.front() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, ".offsets: must start with 0"));
  }
  if (f.rows() != entities) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": ", f.rows(), " rows for ", entities, " entities"));
  }
  if (f.offsets.back() != f.features.size()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ".offsets: last offset ",
                                                   f.offsets.back(), " != ", f.features.size()));
  }
  for (size_t i = 1; i < f.offsets.size(); ++i) {
    if (f.offsets[i] < f.offsets[i - 1]) {
      return absl::InvalidArgumentError(absl::StrCat(name, ".offsets[", i, "]: decreasing"));
    }
  }
  for (size_t i = 0; i < f.features.size(); ++i) {
    if (f.features[i] >= f.names.size()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ".features[", i, "]: index ",
                                                     f.features[i], " >= ", f.names.size()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status TrainingData::Validate() const {
  if (coupon_attributes.size() != coupon_ids.size()) {
    return absl::InvalidArgumentError(absl::StrCat("coupon_attributes: ", coupon_attributes.size(),
                                                   " for ", coupon_ids.size(), " coupons"));
  }
  if (absl::Status s = CheckFeatures(user_features, user_ids.size(), "user_features"); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckFeatures(coupon_features, coupon_ids.size(), "coupon_features");
      !s.ok()) {
    return s;
  }
  for (size_t i = 0; i < examples.size(); ++i) {
    const Example& e = examples[i];
    if (e.user >= user_ids.size() || e.coupon >= coupon_ids.size() ||
        (e.campaign >= campaign_ids.size() && !campaign_ids.empty())) {
      return absl::InvalidArgumentError(absl::StrCat("examples[", i, "]: index out of range"));
    }
    if (e.label != 0.0f && e.label != 1.0f) {
      return absl::InvalidArgumentError(
          absl::StrCat("examples[", i, "].label: ", e.label, " is not 0 or 1"));
    }
    if (!std::isfinite(e.order_value) || e.order_value < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("examples[", i, "].order_value: ", e.order_value));
    }
  }
  return absl::OkStatus();
}

absl::Status PseudonymiseUsers(const core::UserKeyer& keyer, TrainingData* data) {
  absl::flat_hash_map<std::string, uint32_t> index;
  std::vector<std::string> ids;
  std::vector<uint32_t> remap(data->user_ids.size());
  std::vector<std::vector<uint32_t>> features;
  for (size_t u = 0; u < data->user_ids.size(); ++u) {
    COUPOND_ASSIGN_OR_RETURN(std::string key, keyer.Key(data->user_ids[u]));
    auto [it, inserted] = index.emplace(key, static_cast<uint32_t>(ids.size()));
    if (inserted) {
      ids.push_back(std::move(key));
      features.emplace_back();
    }
    remap[u] = it->second;
    if (u < data->user_features.rows()) {
      absl::Span<const uint32_t> row = data->user_features.row(u);
      std::vector<uint32_t>& merged = features[it->second];
      merged.insert(merged.end(), row.begin(), row.end());
    }
  }
  for (Example& e : data->examples) e.user = remap[e.user];
  if (data->user_features.rows() == data->user_ids.size()) {
    SparseFeatures merged;
    merged.names = std::move(data->user_features.names);
    for (std::vector<uint32_t>& row : features) {
      std::sort(row.begin(), row.end());
      row.erase(std::unique(row.begin(), row.end()), row.end());
      merged.AddRow(row);
    }
    data->user_features = std::move(merged);
  }
  data->user_ids = std::move(ids);
  return data->Validate();
}

}  // namespace coupond::learn
