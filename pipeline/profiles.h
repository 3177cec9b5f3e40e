#ifndef COUPOND_PIPELINE_PROFILES_H_
#define COUPOND_PIPELINE_PROFILES_H_

// User profiles (behavioural counts and recency from the examples, plus the user's
// categorical attributes) and user segments (k-means on standardised profiles).
// Segments are what cold start uses: a new user is encoded with Segmentation::Encode and
// placed in the nearest segment, whose prior statistics stand in for its missing history.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "learn/kmeans.h"
#include "learn/training_data.h"

namespace coupond::pipeline {

struct UserProfile {
  int64_t exposures = 0;    // examples of the user seen
  int64_t redemptions = 0;  // of those, positives redeemed before as_of_day
  // (redemptions + s * global_rate) / (exposures + s), s = ProfileOptions::rate_prior_strength:
  // shrunk towards the global rate, so that a user with 1 exposure is not "100%".
  double redemption_rate = 0.0;
  // Days from the last redemption (exposure) to as_of_day; horizon_days when none.
  int32_t days_since_redemption = 0;
  int32_t days_since_exposure = 0;
};

struct ProfileOptions {
  // Only examples with day < as_of_day count, and only redemptions with label_day <
  // as_of_day (keeps the test period out of profiles: neither its exposures nor the labels
  // of earlier exposures that arrive in it). Default nullopt: every example, as_of_day = the
  // largest day + 1.
  std::optional<int32_t> as_of_day;
  // Pseudo-exposures at the global rate in redemption_rate. Default 10.
  double rate_prior_strength = 10.0;
};

struct Profiles {
  std::vector<UserProfile> users;  // one per TrainingData user
  int32_t as_of_day = 0;
  int32_t horizon_days = 0;        // as_of_day - earliest counted day (recency when none)
  double global_rate = 0.0;        // positives / examples counted
};

// Profiles from the examples `examples` (indices; all when empty) of `data`.
// InvalidArgument on an index out of range or a negative prior strength.
absl::StatusOr<Profiles> BuildProfiles(const learn::TrainingData& data,
                                       absl::Span<const uint32_t> examples = {},
                                       const ProfileOptions& options = {});

struct SegmentOptions {
  ProfileOptions profile;
  learn::KMeansOptions kmeans;  // k = 0: chosen by silhouette in [min_k, max_k]
  // A user feature becomes a one-hot column when at least this many users have it.
  // Default 5 (rarer attributes would make singleton directions).
  int min_attribute_users = 5;
  // Weight of one-hot columns relative to the standardised numeric ones. Default 0.5.
  float attribute_weight = 0.5f;
};

struct SegmentStats {
  int64_t users = 0;
  int64_t exposures = 0;
  int64_t redemptions = 0;
  double redemption_rate = 0.0;  // redemptions / exposures, shrunk like the profiles' rate
};

struct Segmentation {
  // Matrix columns: the numeric ones first ("log_exposures", "log_redemptions",
  // "redemption_rate", "days_since_redemption", "days_since_exposure"), standardised with
  // mean/scale, then one-hot user features (user feature index in `attribute_feature`).
  std::vector<std::string> column_names;
  std::vector<float> mean, scale;          // per numeric column
  std::vector<uint32_t> attribute_feature;  // per one-hot column: index into user_features
  float attribute_weight = 0.5f;
  learn::KMeansResult clusters;             // centroids in the matrix's space
  std::vector<uint32_t> user_segment;      // per user
  std::vector<SegmentStats> segments;      // per segment
  Profiles profiles;

  size_t num_numeric() const { return mean.size(); }
  // The matrix row of a user with `profile` and user feature indices `features`.
  std::vector<float> Encode(const UserProfile& profile,
                            absl::Span<const uint32_t> features) const;
  // The segment of a (new) user.
  uint32_t Assign(const UserProfile& profile, absl::Span<const uint32_t> features) const {
    return clusters.Nearest(Encode(profile, features));
  }
};

// Profiles every user of `data` (from `examples`, all when empty) and clusters them. Only
// users with a counted example (day < as_of_day) are standardised and clustered, and only
// they decide which attributes become columns; the others (users with no history before
// as_of_day) are then placed in their nearest segment by Assign, as a new user is.
// Errors: those of BuildProfiles and learn::KMeans (e.g. k > number of such users);
// InvalidArgument when no user has a counted example.
absl::StatusOr<Segmentation> SegmentUsers(const learn::TrainingData& data,
                                          absl::Span<const uint32_t> examples = {},
                                          const SegmentOptions& options = {});

}  // namespace coupond::pipeline

#endif  // COUPOND_PIPELINE_PROFILES_H_
