#include "core/experiment.h"

#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/numeric_bounds.h"
#include "xxhash.h"

namespace coupond::core {

absl::Status ValidateExperiment(const Experiment& experiment) {
  if (experiment.salt.empty()) return absl::InvalidArgumentError("salt: empty");
  if (experiment.arms.empty()) return absl::InvalidArgumentError("arms: none");
  absl::flat_hash_map<absl::string_view, size_t> names;
  double sum = 0.0;
  for (size_t i = 0; i < experiment.arms.size(); ++i) {
    const ExperimentArm& arm = experiment.arms[i];
    if (arm.name.empty())
      return absl::InvalidArgumentError(absl::StrCat("arms[", i, "].name: empty"));
    const auto [it, inserted] = names.emplace(arm.name, i);
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat("arms[", i, "].name: '", arm.name, "' repeats arms[", it->second, "]"));
    }
    // A fraction of users: [0, 1] (the sum is checked below).
    if (absl::Status s = common::CheckDoubleRange(absl::StrCat("arms[", i, "].share"), arm.share,
                                                  0.0, 1.0);
        !s.ok()) {
      return s;
    }
    switch (arm.policy) {
      case ExperimentArm::Policy::kControl:
      case ExperimentArm::Policy::kRandom:
      case ExperimentArm::Policy::kModel:
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            "arms[", i, "].policy: ", static_cast<int>(arm.policy), " is not a known policy"));
    }
    sum += arm.share;
  }
  if (!(std::fabs(sum - 1.0) <= 1e-9)) {
    return absl::InvalidArgumentError(absl::StrCat("arms: shares sum to ", sum, ", not 1"));
  }
  return absl::OkStatus();
}

double ExperimentPosition(absl::string_view salt, absl::string_view user_id) {
  const XXH64_hash_t seed = XXH3_64bits(salt.data(), salt.size());
  const XXH64_hash_t h = XXH3_64bits_withSeed(user_id.data(), user_id.size(), seed);
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

size_t ArmIndex(const Experiment& experiment, absl::string_view user_id) {
  const double u = ExperimentPosition(experiment.salt, user_id);
  double cumulative = 0.0;
  size_t last_positive = 0;
  for (size_t i = 0; i < experiment.arms.size(); ++i) {
    const double share = experiment.arms[i].share;
    if (!(share > 0.0)) continue;
    last_positive = i;
    cumulative += share;
    if (u < cumulative) return i;
  }
  return last_positive;
}

absl::string_view ArmPolicyName(ExperimentArm::Policy policy) {
  switch (policy) {
    case ExperimentArm::Policy::kControl:
      return "control";
    case ExperimentArm::Policy::kRandom:
      return "random";
    case ExperimentArm::Policy::kModel:
      return "model";
  }
  return "unknown";
}

absl::StatusOr<ExperimentArm::Policy> ParseArmPolicy(absl::string_view text) {
  if (text == "control") return ExperimentArm::Policy::kControl;
  if (text == "random") return ExperimentArm::Policy::kRandom;
  if (text == "model") return ExperimentArm::Policy::kModel;
  return absl::InvalidArgumentError(
      absl::StrCat("arm policy '", text, "' is not control, random or model"));
}

}  // namespace coupond::core
