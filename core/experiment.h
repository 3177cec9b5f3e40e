#ifndef COUPOND_CORE_EXPERIMENT_H_
#define COUPOND_CORE_EXPERIMENT_H_

// Experiment arms (issue 6): which policy decides for a user.
//
// An experiment splits users between arms by a keyed hash of the user id, so that the split
// is stateless (every server replica and every offline job computes the same arm for a user
// without a lookup), sticky (a user stays in the arm for the life of the experiment) and
// independent between experiments (a different salt reshuffles everyone).
//
// Arm semantics (what the online decision does for a user of the arm):
//   kControl  no coupon, ever. The log records "nothing" with propensity 1: the baseline
//             the other arms are compared against.
//   kRandom   one of the user's eligible coupons, uniformly at random (propensity 1/n);
//             nothing only when no coupon is eligible. Ignores the model and the prices: a
//             yardstick for what the model adds, and a log with full support for offline
//             evaluation of any policy.
//   kModel    the model policy: scores p_j (w_j - lambda c_j) - mu_j with the campaign's
//             prices, an action drawn with the campaign's ExplorationPolicy
//             (core/exploration.h; greedy = ChooseCoupons with k = 1).
//
// Pure computation; thread-safe.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace coupond::core {

struct ExperimentArm {
  enum class Policy { kControl, kRandom, kModel };
  // Non-empty, unique within the experiment; it is what decision logs record in `arm`.
  std::string name;
  // Fraction of users. Finite, >= 0; the shares of an experiment sum to 1 (within 1e-9).
  // An arm of share 0 receives nobody (a way to close an arm without renaming the others).
  double share = 0.0;
  // What the arm does (see above). Default kModel.
  Policy policy = Policy::kModel;
};

struct Experiment {
  // For people and logs; not part of the assignment.
  std::string id;
  // Keys the hash: non-empty. Two experiments with different salts split users
  // independently; reusing a salt reuses the split (deliberately, to keep an audience).
  std::string salt;
  // At least one arm. Their order matters: arms take consecutive intervals of [0, 1).
  std::vector<ExperimentArm> arms;
};

// OK, or InvalidArgument naming the field: "salt: empty", "arms: none", "arms[i].name:
// empty" / "... repeats arms[k]", "arms[i].share: ... is not finite and >= 0", "arms: shares
// sum to ..., not 1".
absl::Status ValidateExperiment(const Experiment& experiment);

// The user's position in [0, 1): the top 53 bits of
//   XXH3_64bits_withSeed(user_id, seed = XXH3_64bits(salt))
// times 2^-53. Why seeded rather than hashing salt + user_id: no framing question (with plain
// concatenation "ab"+"c" and "a"+"bc" collide; a separator byte would have to be banned from
// salts), and the seed is a pure function of the salt. Why XXH3: a specified, stable,
// platform-independent function (std::hash and absl::Hash are not stable across builds or
// processes), so any other tool can reproduce the split, e.g. in Python
//   xxhash.xxh3_64_intdigest(user_id, seed=xxhash.xxh3_64_intdigest(salt)) >> 11
// and it passes SMHasher, so 53 of its bits are uniform for any id pattern.
// Any user id, the empty string included, has a position.
double ExperimentPosition(absl::string_view salt, absl::string_view user_id);

// The index of the user's arm: the arm whose interval [C_{i-1}, C_i) of cumulative shares
// (in arm order) contains ExperimentPosition(salt, user_id). Positions at or above the last
// cumulative share (possible when the shares sum to 1 - 1e-9) go to the last arm with a
// positive share; an arm of share 0 never gets a user.
//
// Changing shares: a user changes arm only if a boundary C_i crosses its position, so the
// fraction of users that move is sum_i |C_i' - C_i| over the boundaries. When the shares
// change between neighbouring arms (one boundary moves, e.g. ramping a treatment that sits
// next to control from 10% to 20%) that is the minimum possible, |delta share|, and everyone
// who moves goes into the grown arm. Moving mass between arms that are not neighbours also
// shifts the arms between them; put arms that will trade share next to each other.
// Renaming arms or changing their policy moves nobody; changing the salt moves everyone.
// REQUIRES: ValidateExperiment(experiment).ok().
size_t ArmIndex(const Experiment& experiment, absl::string_view user_id);

// "control", "random", "model"; Parse gives InvalidArgument naming the text otherwise.
absl::string_view ArmPolicyName(ExperimentArm::Policy policy);
absl::StatusOr<ExperimentArm::Policy> ParseArmPolicy(absl::string_view text);

}  // namespace coupond::core

#endif  // COUPOND_CORE_EXPERIMENT_H_
