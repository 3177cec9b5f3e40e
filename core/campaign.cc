#include "core/campaign.h"

#include <cmath>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "core/kernel.h"
#include "core/scorer.h"

namespace coupond::core {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

std::string Quoted(absl::string_view id) {
  return absl::StrCat("'", id.substr(0, 64), id.size() > 64 ? "...'" : "'");
}

}  // namespace

absl::StatusOr<std::unique_ptr<CampaignPlan>> CampaignPlan::Create(
    std::shared_ptr<const ModelSnapshot> model, const CampaignSpec& spec,
    Population population) {
  if (model == nullptr) return absl::FailedPreconditionError("no model");
  if (spec.campaign_id.size() > 128) {
    return Invalid("campaign.campaign_id", absl::StrCat(spec.campaign_id.size(), " bytes, limit 128"));
  }
  if (spec.coupons.empty()) return Invalid("campaign.coupons", "at least one coupon is required");
  if (!std::isfinite(spec.budget) || spec.budget < 0) {
    return Invalid("campaign.budget", absl::StrCat(spec.budget, " is not a finite value >= 0"));
  }
  if (spec.max_coupons_per_user < 1 || spec.max_coupons_per_user > 1000) {
    return Invalid("campaign.max_coupons_per_user",
                   absl::StrCat(spec.max_coupons_per_user, " is outside [1, 1000]"));
  }
  if (spec.as_of_unix_seconds < 0) {
    return Invalid("campaign.as_of_unix_seconds", absl::StrCat(spec.as_of_unix_seconds, " is negative"));
  }

  std::unique_ptr<CampaignPlan> plan(new CampaignPlan());
  plan->model_ = model;
  plan->spec_ = spec;

  // The population first: eligibility lists refer to its indices.
  absl::flat_hash_map<absl::string_view, uint32_t> population_index;
  if (population.all_users) {
    plan->users_.resize(model->num_users());
    for (size_t i = 0; i < model->num_users(); ++i) plan->users_[i] = static_cast<int64_t>(i);
  } else {
    plan->explicit_ids_ = std::move(population.user_ids);
    plan->users_.reserve(plan->explicit_ids_.size());
    population_index.reserve(plan->explicit_ids_.size());
    for (size_t i = 0; i < plan->explicit_ids_.size(); ++i) {
      const std::string& id = plan->explicit_ids_[i];
      const std::string field = absl::StrCat("users.user_ids[", i, "]");
      if (id.empty()) return Invalid(field, "empty id");
      if (id.size() > kMaxIdBytes) return Invalid(field, absl::StrCat(id.size(), " bytes, limit ", kMaxIdBytes));
      if (!population_index.emplace(id, static_cast<uint32_t>(i)).second) {
        return Invalid(field, absl::StrCat("duplicate of users.user_ids[", population_index[id], "] (",
                                           Quoted(id), ")"));
      }
      const std::optional<uint32_t> row = model->FindUser(id);
      plan->users_.push_back(row ? static_cast<int64_t>(*row) : -1);
      if (!row) ++plan->unknown_users_;
    }
  }
  // Population index of a user id, for eligibility lists.
  auto index_of = [&](absl::string_view id) -> std::optional<uint32_t> {
    if (population.all_users) return model->FindUser(id);
    auto it = population_index.find(id);
    if (it == population_index.end()) return std::nullopt;
    return it->second;
  };

  absl::flat_hash_map<absl::string_view, size_t> seen;
  for (size_t j = 0; j < spec.coupons.size(); ++j) {
    const CampaignCouponSpec& c = spec.coupons[j];
    const std::string field = absl::StrCat("campaign.coupons[", j, "]");
    if (c.coupon_id.empty()) return Invalid(field + ".coupon_id", "empty id");
    if (!seen.emplace(c.coupon_id, j).second) {
      return Invalid(field + ".coupon_id", absl::StrCat("duplicate of campaign.coupons[",
                                                        seen[c.coupon_id], "] (", Quoted(c.coupon_id), ")"));
    }
    const std::optional<uint32_t> row = model->FindCoupon(c.coupon_id);
    if (!row) {
      return Invalid(field + ".coupon_id", absl::StrCat(Quoted(c.coupon_id), " is not in model version ",
                                                        model->info().version));
    }
    if (!std::isfinite(c.weight) || c.weight < 0) {
      return Invalid(field + ".value_weight", absl::StrCat(c.weight, " is not a finite value >= 0"));
    }
    if (c.stock.has_value() && *c.stock < 0) {
      return Invalid(field + ".stock", absl::StrCat(*c.stock, " is negative"));
    }
    const CouponAttributes& attributes = model->coupon_attributes(*row);
    AssignmentCoupon coupon;
    coupon.id = c.coupon_id;
    coupon.face_value = attributes.face_value;
    coupon.weight = c.weight;
    if (c.stock.has_value()) {
      coupon.stock = *c.stock;
    } else if (attributes.stock >= 0) {
      coupon.stock = attributes.stock;
    }
    plan->coupons_.push_back(std::move(coupon));
    plan->coupon_rows_.push_back(*row);
    plan->coupon_active_.push_back(attributes.IsActiveAt(spec.as_of_unix_seconds));

    std::optional<absl::flat_hash_set<uint32_t>> allowed;
    if (!c.eligible_user_ids.empty()) {
      allowed.emplace();
      allowed->reserve(c.eligible_user_ids.size());
      for (size_t i = 0; i < c.eligible_user_ids.size(); ++i) {
        if (c.eligible_user_ids[i].empty()) {
          return Invalid(absl::StrCat(field, ".eligible_user_ids[", i, "]"), "empty id");
        }
        // Users outside the population can never receive it: nothing to record.
        if (const std::optional<uint32_t> u = index_of(c.eligible_user_ids[i])) allowed->insert(*u);
      }
    }
    plan->eligible_.push_back(std::move(allowed));
  }
  return plan;
}

absl::string_view CampaignPlan::user_id(size_t i) const {
  if (!explicit_ids_.empty()) return explicit_ids_[i];
  return model_->user_id(static_cast<uint32_t>(users_[i]));
}

absl::Status CampaignPlan::Fill(size_t first_user, size_t count, absl::Span<double> out) const {
  if (cancelled_.load(std::memory_order_relaxed)) {
    return absl::CancelledError("assignment cancelled");
  }
  const size_t m = coupons_.size();
  if (first_user + count > users_.size() || out.size() != count * m) {
    return absl::InternalError("CampaignPlan::Fill: block out of range");
  }
  std::vector<float> dots(m);
  for (size_t b = 0; b < count; ++b) {
    const size_t u = first_user + b;
    const int64_t row = users_[u];
    double offset = model_->global_bias();
    if (row >= 0) {
      const uint32_t r = static_cast<uint32_t>(row);
      offset += model_->user_bias(r);
      DotRows(model_->user_factors(r), model_->coupon_factors(), coupon_rows_, dots.data());
    } else {
      std::fill(dots.begin(), dots.end(), 0.0f);  // population prior
    }
    double* dst = out.data() + b * m;
    for (size_t j = 0; j < m; ++j) {
      const bool eligible = coupon_active_[j] &&
                            (!eligible_[j].has_value() ||
                             eligible_[j]->contains(static_cast<uint32_t>(u)));
      dst[j] = eligible ? Sigmoid(offset + model_->coupon_bias(coupon_rows_[j]) + dots[j])
                        : kNotEligible;
    }
  }
  return absl::OkStatus();
}

}  // namespace coupond::core
