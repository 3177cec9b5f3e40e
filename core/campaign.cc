#include "core/campaign.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/numeric_bounds.h"
#include "common/status_macros.h"
#include "core/kernel.h"
#include "core/scorer.h"
#include "core/user_resolution.h"
#include "core/vector_math.h"

namespace coupond::core {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

std::string Quoted(absl::string_view id) {
  return absl::StrCat("'", id.substr(0, 64), id.size() > 64 ? "...'" : "'");
}

// Users scored per DotBlock call in Fill: enough to amortise each coupon panel line over many
// users (the kernel's register tile is 6 users), small enough that the float buffer of
// kFillGroup x coupons logits stays in L1/L2.
constexpr size_t kFillGroup = 48;

}  // namespace

absl::Status ValidateCampaignSpec(const CampaignSpec& spec) {
  if (spec.campaign_id.size() > 128) {
    return Invalid("campaign.campaign_id", absl::StrCat(spec.campaign_id.size(), " bytes, limit 128"));
  }
  if (spec.coupons.empty()) return Invalid("campaign.coupons", "at least one coupon is required");
  COUPOND_RETURN_IF_ERROR(common::CheckDoubleRange("campaign.budget", spec.budget, 0, kMaxBudget));
  COUPOND_RETURN_IF_ERROR(common::CheckIntRange("campaign.max_coupons_per_user",
                                                spec.max_coupons_per_user, 1, kMaxCouponsPerUser));
  COUPOND_RETURN_IF_ERROR(common::CheckIntRange("campaign.as_of_unix_seconds",
                                                spec.as_of_unix_seconds, 0,
                                                common::kMaxRequestUnixSeconds));
  absl::flat_hash_map<absl::string_view, size_t> seen;
  for (size_t j = 0; j < spec.coupons.size(); ++j) {
    const CampaignCouponSpec& c = spec.coupons[j];
    const std::string field = absl::StrCat("campaign.coupons[", j, "]");
    if (c.coupon_id.empty()) return Invalid(field + ".coupon_id", "empty id");
    if (!seen.emplace(c.coupon_id, j).second) {
      return Invalid(field + ".coupon_id", absl::StrCat("duplicate of campaign.coupons[",
                                                        seen[c.coupon_id], "] (", Quoted(c.coupon_id), ")"));
    }
    COUPOND_RETURN_IF_ERROR(
        common::CheckDoubleRange(field + ".value_weight", c.weight, 0, kMaxValueWeight));
    if (c.stock.has_value()) {
      COUPOND_RETURN_IF_ERROR(common::CheckIntRange(field + ".stock", *c.stock, 0, kMaxStock));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CampaignPlan>> CampaignPlan::Create(
    std::shared_ptr<const ModelSnapshot> model, const CampaignSpec& spec,
    Population population) {
  if (model == nullptr) return absl::FailedPreconditionError("no model");
  COUPOND_RETURN_IF_ERROR(ValidateCampaignSpec(spec));

  std::unique_ptr<CampaignPlan> plan(new CampaignPlan());
  plan->model_ = model;
  plan->spec_ = spec;

  // The population first: eligibility lists refer to its indices.
  absl::flat_hash_map<absl::string_view, uint32_t> population_index;
  absl::flat_hash_map<uint32_t, uint32_t> segment_index;  // model row -> population index
  const bool by_segment = population.all_users && !population.segments.empty();
  if (by_segment) {
    // Every user of the named segments (each user carries its segment index).
    std::vector<bool> wanted(model->num_segments(), false);
    for (size_t i = 0; i < population.segments.size(); ++i) {
      const std::string& name = population.segments[i];
      size_t s = 0;
      while (s < model->num_segments() && model->segment(s).name != name) ++s;
      if (s == model->num_segments()) {
        return Invalid(absl::StrCat("all_users.segments[", i, "]"),
                       absl::StrCat(Quoted(name), " is not a segment of model version ",
                                    model->info().version, " (it has ", model->num_segments(),
                                    ")"));
      }
      wanted[s] = true;
    }
    for (size_t i = 0; i < model->num_users(); ++i) {
      const int32_t s = model->user_segment(static_cast<uint32_t>(i));
      if (s >= 0 && wanted[static_cast<size_t>(s)]) plan->users_.push_back(static_cast<int64_t>(i));
    }
    // Population index -> position in users_, for eligibility lists below.
    for (size_t i = 0; i < plan->users_.size(); ++i) {
      segment_index.emplace(static_cast<uint32_t>(plan->users_[i]), static_cast<uint32_t>(i));
    }
  } else if (population.all_users) {
    plan->users_.resize(model->num_users());
    for (size_t i = 0; i < model->num_users(); ++i) plan->users_[i] = static_cast<int64_t>(i);
  } else {
    if (!population.user_attributes.empty() &&
        population.user_attributes.size() != population.user_ids.size()) {
      return Invalid("users.user_attributes",
                     absl::StrCat(population.user_attributes.size(), " entries for ",
                                  population.user_ids.size(), " users (give none, or one each)"));
    }
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
      if (!row && !population.user_attributes.empty()) {
        std::vector<UserAttribute> attributes;
        attributes.reserve(population.user_attributes[i].size());
        for (const auto& [name, value] : population.user_attributes[i]) {
          attributes.push_back(UserAttribute{name, value});
        }
        const int32_t segment = NearestSegment(*model, attributes);
        if (segment >= 0) {
          if (plan->prior_segment_.empty()) plan->prior_segment_.assign(plan->explicit_ids_.size(), -1);
          plan->prior_segment_[i] = segment;
        }
      }
    }
  }
  // Population index of a user id, for eligibility lists.
  auto index_of = [&](absl::string_view id) -> std::optional<uint32_t> {
    if (by_segment) {
      const std::optional<uint32_t> row = model->FindUser(id);
      if (!row) return std::nullopt;
      auto it = segment_index.find(*row);
      if (it == segment_index.end()) return std::nullopt;
      return it->second;
    }
    if (population.all_users) return model->FindUser(id);
    auto it = population_index.find(id);
    if (it == population_index.end()) return std::nullopt;
    return it->second;
  };

  for (size_t j = 0; j < spec.coupons.size(); ++j) {
    const CampaignCouponSpec& c = spec.coupons[j];
    const std::string field = absl::StrCat("campaign.coupons[", j, "]");
    const std::optional<uint32_t> row = model->FindCoupon(c.coupon_id);
    if (!row) {
      return Invalid(field + ".coupon_id", absl::StrCat(Quoted(c.coupon_id), " is not in model version ",
                                                        model->info().version));
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
    plan->coupon_index_.emplace(*row, static_cast<uint32_t>(j));
    plan->coupon_rows_.push_back(*row);
    plan->coupon_active_.push_back(attributes.IsActiveAt(spec.as_of_unix_seconds) ? 1 : 0);

    std::optional<std::vector<uint32_t>> allowed;
    if (!c.eligible_user_ids.empty()) {
      allowed.emplace();
      allowed->reserve(c.eligible_user_ids.size());
      for (size_t i = 0; i < c.eligible_user_ids.size(); ++i) {
        if (c.eligible_user_ids[i].empty()) {
          return Invalid(absl::StrCat(field, ".eligible_user_ids[", i, "]"), "empty id");
        }
        // Users outside the population can never receive it: nothing to record.
        if (const std::optional<uint32_t> u = index_of(c.eligible_user_ids[i])) allowed->push_back(*u);
      }
      std::sort(allowed->begin(), allowed->end());
      allowed->erase(std::unique(allowed->begin(), allowed->end()), allowed->end());
    }
    plan->eligible_.push_back(std::move(allowed));
  }

  // The campaign's own factor matrix: Fill scores a block of users against exactly these rows.
  const size_t dim = model->dimension();
  std::vector<float> rows(plan->coupon_rows_.size() * dim);
  for (size_t j = 0; j < plan->coupon_rows_.size(); ++j) {
    const uint32_t r = plan->coupon_rows_[j];
    for (size_t l = 0; l < dim; ++l) rows[j * dim + l] = model->coupon_factors().at(r, l);
    plan->campaign_bias_.push_back(model->coupon_bias(r));
  }
  absl::StatusOr<FactorMatrix> factors =
      FactorMatrix::Create(rows, plan->coupon_rows_.size(), dim);
  if (!factors.ok()) return factors.status();
  plan->campaign_factors_ = *std::move(factors);
  plan->identity_rows_ = population.all_users && !by_segment;
  return plan;
}

absl::string_view CampaignPlan::user_id(size_t i) const {
  if (!explicit_ids_.empty()) return explicit_ids_[i];
  return model_->user_id(static_cast<uint32_t>(users_[i]));
}

absl::Status CampaignPlan::ScoreUser(size_t i, absl::Span<double> out) const {
  const size_t m = coupons_.size();
  if (i >= users_.size() || out.size() != m) {
    return absl::InvalidArgumentError("CampaignPlan::ScoreUser: user or output out of range");
  }
  // The user as ResolveUser would give it (its row, its segment's prior, or the prior).
  ResolvedUser user;
  if (users_[i] >= 0) {
    const uint32_t r = static_cast<uint32_t>(users_[i]);
    user.bias = model_->user_bias(r);
    user.factors = model_->user_factors(r);
  } else if (const int32_t s = prior_segment(i); s >= 0) {
    const SegmentData& segment = model_->segment(static_cast<size_t>(s));
    user.bias = segment.prior_bias;
    user.factors = segment.prior_factors.data();
  }
  std::vector<ScoredCoupon> scored;
  ScoreUserRows(*model_, user, CandidateRows::List(coupon_rows_, campaign_bias_), nullptr,
                /*top_k=*/0, &scored);
  for (const ScoredCoupon& c : scored) {
    out[coupon_index_.find(c.coupon_row)->second] = c.probability;
  }
  for (size_t j = 0; j < m; ++j) {
    const bool allowed = !eligible_[j].has_value() ||
                         std::binary_search(eligible_[j]->begin(), eligible_[j]->end(),
                                            static_cast<uint32_t>(i));
    if (!coupon_active_[j] || !allowed) out[j] = kNotEligible;
  }
  return absl::OkStatus();
}

absl::Status CampaignPlan::Fill(size_t first_user, size_t count, absl::Span<double> out) const {
  if (cancelled_.load(std::memory_order_relaxed)) {
    return absl::CancelledError("assignment cancelled");
  }
  const size_t m = coupons_.size();
  if (first_user > users_.size() || count > users_.size() - first_user || out.size() != count * m) {
    return absl::InternalError("CampaignPlan::Fill: block out of range");
  }
  if (count == 0) return absl::OkStatus();
  const size_t dim = model_->dimension();
  const size_t group = std::min(count, kFillGroup);
  std::vector<float> buf(group * m);  // dot products, then logits, then probabilities
  std::vector<float> gathered(identity_rows_ ? 0 : group * dim);
  std::vector<float> offset(group);
  for (size_t g0 = 0; g0 < count; g0 += group) {
    const size_t gn = std::min(group, count - g0);
    const size_t u0 = first_user + g0;
    const float* x;
    if (identity_rows_) {
      x = model_->user_factors(static_cast<uint32_t>(u0));
      for (size_t b = 0; b < gn; ++b) {
        offset[b] = static_cast<float>(model_->global_bias() +
                                       model_->user_bias(static_cast<uint32_t>(u0 + b)));
      }
    } else {
      for (size_t b = 0; b < gn; ++b) {
        const int64_t row = users_[u0 + b];
        float* dst = gathered.data() + b * dim;
        if (row >= 0) {
          const uint32_t r = static_cast<uint32_t>(row);
          std::copy_n(model_->user_factors(r), dim, dst);
          offset[b] = static_cast<float>(model_->global_bias() + model_->user_bias(r));
        } else if (const int32_t s = prior_segment(u0 + b); s >= 0) {
          const SegmentData& segment = model_->segment(static_cast<size_t>(s));
          std::copy_n(segment.prior_factors.data(), dim, dst);  // cold start: segment prior
          offset[b] = static_cast<float>(model_->global_bias() + double{segment.prior_bias});
        } else {
          std::fill_n(dst, dim, 0.0f);  // population prior: every dot product is 0
          offset[b] = static_cast<float>(model_->global_bias());
        }
      }
      x = gathered.data();
    }
    DotBlock(x, gn, dim, campaign_factors_, buf.data(), m);
    for (size_t b = 0; b < gn; ++b) {
      float* z = buf.data() + b * m;
      for (size_t j = 0; j < m; ++j) z[j] = (offset[b] + campaign_bias_[j]) + z[j];
    }
    SigmoidFloat(buf.data(), gn * m, buf.data());
    for (size_t b = 0; b < gn; ++b) {
      const float* p = buf.data() + b * m;
      double* dst = out.data() + (g0 + b) * m;
      for (size_t j = 0; j < m; ++j) {
        dst[j] = coupon_active_[j] ? static_cast<double>(p[j]) : kNotEligible;
      }
    }
  }
  // Coupons restricted to listed users: walk the sorted list alongside the block.
  for (size_t j = 0; j < m; ++j) {
    if (!eligible_[j].has_value()) continue;
    const std::vector<uint32_t>& allowed = *eligible_[j];
    auto it = std::lower_bound(allowed.begin(), allowed.end(), first_user);
    for (size_t b = 0; b < count; ++b) {
      if (it != allowed.end() && *it == first_user + b) {
        ++it;
      } else {
        out[b * m + j] = kNotEligible;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace coupond::core
