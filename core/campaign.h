#ifndef COUPOND_CORE_CAMPAIGN_H_
#define COUPOND_CORE_CAMPAIGN_H_

// A campaign resolved against a model snapshot: the bridge between what a campaign planner
// writes (coupon ids, weights, stock, eligibility, budget, a population) and what the
// assignment solver consumes (core/assignment.h). The plan is also the solver's
// ProbabilityOracle: it scores users on demand with the SIMD kernel, so memory stays linear
// in the population, never population x coupons.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/assignment.h"
#include "core/kernel.h"
#include "core/snapshot.h"

namespace coupond::core {

// Bounds on a campaign's numbers, checked by ValidateCampaignSpec (and so for Assign, Decide
// and every stored campaign). Amounts are in the platform's currency units. Each bound is far
// above what a real campaign needs, and low enough that every sum the solver forms stays
// finite: at most 10^7 users x 1,000 coupons each x weight 10^6 is 10^16, and prices x budget
// at most 10^12 x 10^12 = 10^24, all far below the double range (~1.8e308).
// w_j: the value of one redemption, e.g. an expected order value. The largest orders of a
// retail platform are a few 10^4; 10^6 leaves headroom for luxury goods and weights that
// are not money (e.g. margins scaled up).
inline constexpr double kMaxValueWeight = 1e6;
// B: the largest marketing budgets are ~10^10 a year; 10^12 leaves two orders of headroom.
inline constexpr double kMaxBudget = 1e12;
// s_j: how many coupons may be issued; 10^12 is 10^5 times the largest population (10^7).
inline constexpr int64_t kMaxStock = 1'000'000'000'000;
// k: coupons per user.
inline constexpr int64_t kMaxCouponsPerUser = 1000;
// lambda (value per unit of spend) and mu_j (value per coupon) of CampaignPrices. At an
// optimum lambda <= max_j w_j / c_j and mu_j <= max_u p_uj w_j <= 10^6; 10^12 covers
// weights of 10^6 with face values down to 10^-6 currency units.
inline constexpr double kMaxPrice = 1e12;

struct CampaignCouponSpec {
  // A coupon of the model; unique within the campaign.
  std::string coupon_id;
  // w_j. Default 1. In [0, kMaxValueWeight], not subnormal.
  double weight = 1.0;
  // s_j, in [0, kMaxStock]. Unset: the model's stock attribute (unlimited when -1).
  std::optional<int64_t> stock;
  // When non-empty, only these users may receive the coupon.
  std::vector<std::string> eligible_user_ids;
};

struct CampaignSpec {
  // Optional, at most 128 bytes.
  std::string campaign_id;
  std::vector<CampaignCouponSpec> coupons;
  // B, in [0, kMaxBudget], not subnormal.
  double budget = 0.0;
  // k, in [1, kMaxCouponsPerUser]. Default 1.
  int64_t max_coupons_per_user = 1;
  // Coupons inactive at this time are not eligible for anyone. In
  // [0, common::kMaxRequestUnixSeconds].
  int64_t as_of_unix_seconds = 0;
};

// Who may receive coupons: every user of the model, or an explicit list of ids (ids the
// model does not know are planned with the population prior, or with their segment's prior when
// their attributes are given).
struct Population {
  bool all_users = false;
  std::vector<std::string> user_ids;  // when !all_users; unique, non-empty
  // When !all_users: empty, or one entry per user_ids entry holding that user's attributes
  // (name, value). They are read only for users the model does not know, which are then
  // planned with their segment's prior instead of the population prior (cold start, see
  // core/user_resolution.h; unmatched attributes are ignored).
  std::vector<std::vector<std::pair<std::string, std::string>>> user_attributes;
  // When all_users: keep only users in these segments of the model (names as in
  // ModelSnapshot::segment(i).name). Empty: every user.
  std::vector<std::string> segments;

  static Population All() {
    Population p;
    p.all_users = true;
    return p;
  }
  static Population Users(std::vector<std::string> ids) {
    Population p;
    p.user_ids = std::move(ids);
    return p;
  }
};

// The checks of a campaign that need no model: id length, at least one coupon, budget,
// max_coupons_per_user, as_of time, and per coupon a non-empty unique id, weight and
// stock, each number within the bounds above. InvalidArgument naming the field. CampaignPlan::Create runs it first; a publisher
// runs it before storing a campaign, when no model is at hand.
absl::Status ValidateCampaignSpec(const CampaignSpec& spec);

// Thread-safe after Create (Fill is const and may run concurrently; Cancel may be called
// from any thread).
class CampaignPlan final : public ProbabilityOracle {
 public:
  // Validates `spec` and `population` against `model`. InvalidArgument naming the field
  // (campaign.coupons[i].coupon_id, campaign.budget, users.user_ids[i], ...) on bad input,
  // including coupon ids the model does not know.
  static absl::StatusOr<std::unique_ptr<CampaignPlan>> Create(
      std::shared_ptr<const ModelSnapshot> model, const CampaignSpec& spec,
      Population population);

  // ProbabilityOracle: p_uj from the model, or kNotEligible where the coupon is inactive at
  // the campaign's time or restricted to other users. Cancelled once Cancel() was called.
  // p_uj = sigmoid(global + user bias + coupon bias + <user, coupon>), computed in float: the
  // block kernel (DotBlock) for the dot products and a vectorised sigmoid, within a few 1e-7
  // of the double-precision reference. A user's values do not depend on the block it is
  // filled in (same bits for any first_user/count covering it). Allocates only a small
  // per-call buffer (at most kFillGroup users x coupons floats).
  size_t num_users() const override { return users_.size(); }
  absl::Status Fill(size_t first_user, size_t count, absl::Span<double> out) const override;

  // Decide's probabilities for population user `i`: out[j] = p(i, coupon j) computed by
  // ScoreUserRows (core/scorer.h), the function Score uses, so that Decide and Score give
  // the same bits for the same user and coupon (Fill's float sigmoid may differ from it in
  // the last float digits); kNotEligible where the coupon is inactive at the campaign's time
  // or restricted to other users, as Fill. O(coupons x d) plus a sort of the coupons; for one
  // user at a time, not for a whole population (Assign uses Fill). InvalidArgument if `i` is
  // out of range or out.size() != coupons().size().
  absl::Status ScoreUser(size_t i, absl::Span<double> out) const;

  // The campaign's coupons as the solver wants them (face values from the model).
  absl::Span<const AssignmentCoupon> coupons() const { return coupons_; }
  const CampaignSpec& spec() const { return spec_; }
  const ModelSnapshot& model() const { return *model_; }
  // Id of the population's user `i`.
  absl::string_view user_id(size_t i) const;
  bool known_user(size_t i) const { return users_[i] >= 0; }
  // For an unknown user placed in a segment by its attributes: the segment's index in the
  // model (its prior vector scores the user); otherwise -1 (known user, or population prior).
  int32_t prior_segment(size_t i) const {
    return prior_segment_.empty() ? -1 : prior_segment_[i];
  }
  size_t unknown_users() const { return unknown_users_; }

  // Makes every later Fill fail with Cancelled, which aborts a solve in progress.
  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }

 private:
  CampaignPlan() = default;

  std::shared_ptr<const ModelSnapshot> model_;
  CampaignSpec spec_;
  std::vector<AssignmentCoupon> coupons_;
  std::vector<uint32_t> coupon_rows_;  // snapshot rows of the campaign's coupons
  std::vector<char> coupon_active_;
  // The campaign's coupon factor rows only (campaign order), so that a block of users is
  // scored against exactly the campaign's coupons with the B-user block kernel (DotBlock).
  // coupons x dimension floats: small next to the model.
  FactorMatrix campaign_factors_;
  std::vector<float> campaign_bias_;  // coupon bias per campaign coupon
  absl::flat_hash_map<uint32_t, uint32_t> coupon_index_;  // snapshot row -> campaign index
  // Per campaign coupon: population indices allowed, sorted ascending (nullopt: everyone).
  // Sorted vectors rather than hash sets: Fill walks consecutive users, so one lower_bound
  // per block and coupon and a merge-like walk decide eligibility.
  std::vector<std::optional<std::vector<uint32_t>>> eligible_;
  std::vector<int64_t> users_;             // snapshot row per population user, -1 unknown
  std::vector<std::string> explicit_ids_;  // the ids when the population is a list
  std::vector<int32_t> prior_segment_;     // empty, or per population user (see prior_segment)
  // True when population user i is snapshot row i (all_users): a block's factor rows are then
  // read in place, without a gather.
  bool identity_rows_ = false;
  size_t unknown_users_ = 0;
  std::atomic<bool> cancelled_{false};
};

}  // namespace coupond::core

#endif  // COUPOND_CORE_CAMPAIGN_H_
