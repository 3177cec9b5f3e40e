#ifndef COUPOND_CORE_SCORER_H_
#define COUPOND_CORE_SCORER_H_

// Scoring one user against a set of coupons with a model snapshot:
//   p(u, c) = sigmoid(b + b_u + b_c + <x_u, y_c>).
// Pure computation: no I/O, no allocation beyond the result.

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/kernel.h"
#include "core/snapshot.h"
#include "core/user_resolution.h"

namespace coupond::core {

// Candidate coupons looked up once in one snapshot, for a candidate set that many requests
// share (a stored campaign's coupons): scoring them skips the per-request id lookups.
// Immutable after ResolveCoupons; safe to share between threads.
struct ResolvedCoupons {
  // The version of the snapshot whose rows these are. Scoring against another version is
  // a caller error (ScoreCoupons checks it).
  uint64_t model_version = 0;
  // The known coupons' rows and each one's position in the resolved id list, in list order.
  std::vector<uint32_t> rows;
  std::vector<uint32_t> positions;
  // Positions of the ids the snapshot does not know, in list order.
  std::vector<uint32_t> unknown;
  // Each known coupon's bias (bias[i] for rows[i]), and the half-open interval of times
  // [all_active_from, all_active_until) in which every known coupon is active
  // (CouponAttributes::IsActiveAt): within it ScoreCoupons scores `rows` and `bias` as they
  // are, without checking and copying each candidate per call (a stored campaign's 1,000
  // candidates are resolved once per version and scored on every call). Empty (from >= until,
  // the default) when some coupon is never active, or when the struct was not made by
  // ResolveCoupons: each coupon is then checked per call.
  std::vector<float> bias;
  int64_t all_active_from = std::numeric_limits<int64_t>::max();
  int64_t all_active_until = std::numeric_limits<int64_t>::min();
  // The known coupons' factor rows copied into one matrix of their own, in `rows` order (its
  // row i is the snapshot's row rows[i]), so that scoring the whole list in that interval
  // streams whole panels, as a scan of the model does, instead of gathering each candidate
  // from the model's matrix (d cache lines a row). Same values, same summation order: the
  // same logit bits as either path over the model's matrix. Costs ceil(n / 64) * 64 * d
  // floats (256 KiB for 1,000 coupons at d = 64) per resolved list. Made only for
  // ResolvedLayout::kContiguousCopy; nullopt otherwise, when the copy could not be allocated,
  // or when no coupon is known: the rows are then gathered.
  std::optional<FactorMatrix> factors;
};

// Whether ResolveCoupons also copies the coupons' factor rows (ResolvedCoupons::factors).
enum class ResolvedLayout {
  // Rows only, scored by gathering from the model's matrix: for a list used once or a few
  // times (e.g. resolved during one request), where a copy would cost more than it saves.
  kGathered,
  // Also the contiguous copy: for a list resolved once per model version and scored on
  // every request (a stored campaign's).
  kContiguousCopy,
};

// Looks `coupon_ids` up in `model`. REQUIRES: no duplicates (the caller validates).
ResolvedCoupons ResolveCoupons(const ModelSnapshot& model,
                               absl::Span<const absl::string_view> coupon_ids,
                               ResolvedLayout layout = ResolvedLayout::kGathered);

struct ScoreQuery {
  absl::string_view user_id;
  // Attributes of the user, read only when the model does not know `user_id` (cold start:
  // core/user_resolution.h). May be empty. The views must outlive the call.
  absl::Span<const UserAttribute> user_attributes;
  // Candidate coupon ids; empty means every coupon active at `as_of_unix_seconds`.
  // REQUIRES: no duplicates (the caller validates).
  absl::Span<const absl::string_view> coupon_ids;
  // Or candidates already looked up in this snapshot: used when non-null, and then
  // coupon_ids must be empty. REQUIRES: resolved->model_version == the snapshot's version.
  // Indices in ScoreResult::unknown_coupons and inactive_coupons are then positions in the
  // list that was resolved.
  const ResolvedCoupons* resolved = nullptr;
  // Time at which coupon activity (validity window, stock) is judged.
  int64_t as_of_unix_seconds = 0;
  // Keep only the `top_k` most likely coupons; 0 keeps all.
  uint32_t top_k = 0;
};

struct ScoredCoupon {
  uint32_t coupon_row = 0;  // row in the snapshot
  double logit = 0.0;
  double probability = 0.0;
};

struct ScoreResult {
  // How the user was resolved (ResolveUser): its own row, a segment's prior (`segment`:
  // the index in the snapshot), or the population prior (user bias and factors zero).
  // known_user == (user_source == UserSource::kKnownUser).
  bool known_user = false;
  UserSource user_source = UserSource::kPopulationPrior;
  int32_t segment = -1;
  // Attributes ignored while resolving an unknown user (see core/user_resolution.h).
  uint32_t ignored_attributes = 0;
  // By descending probability, ties by ascending coupon id; at most top_k entries.
  std::vector<ScoredCoupon> scores;
  // Indices into ScoreQuery::coupon_ids (or the resolved list) of ids the model does not
  // know, in query order.
  std::vector<uint32_t> unknown_coupons;
  // Indices into ScoreQuery::coupon_ids (or the resolved list) of known coupons that are
  // not active.
  std::vector<uint32_t> inactive_coupons;
  // Active candidates scored before top_k was applied.
  size_t candidates_scored = 0;
};

// Numerically stable logistic function.
inline double Sigmoid(double z) {
  if (z >= 0) {
    const double e = std::exp(-z);
    return 1.0 / (1.0 + e);
  }
  const double e = std::exp(z);
  return e / (1.0 + e);
}

// The one definition of p(u, c) that Score (ScoreCoupons) and Decide
// (CampaignPlan::ScoreUser) share, so that both answer the same bits for the same user and
// coupon: logit = float(b + b_u) + b_c + <x_u, y_c> by the fused kernel (ScoreTopK: a row's
// logit does not depend on the other candidates), probability = Sigmoid(double(logit)), the
// sigmoid taken in double for the <= top_k survivors only. `user` as ResolveUser gives it
// (factors == nullptr: the zero vector). Keeps the `top_k` best (0: all) in `out`, by
// descending logit, ties by ascending coupon id. `coupon_bias` is the bias of every row when
// `candidates` carry none (see CandidateRows). Thread-safe.
void ScoreUserRows(const ModelSnapshot& model, const ResolvedUser& user,
                   const CandidateRows& candidates, const float* coupon_bias, uint32_t top_k,
                   std::vector<ScoredCoupon>* out);

// Thread-safe (reads only the immutable snapshot). A `resolved` list of another model
// version is not scored: every one of its coupons is then reported unknown (callers check
// the version first; see ResolvedCoupons).
ScoreResult ScoreCoupons(const ModelSnapshot& model, const ScoreQuery& query);

}  // namespace coupond::core

#endif  // COUPOND_CORE_SCORER_H_
