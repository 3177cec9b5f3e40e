#include "core/scorer.h"

#include <algorithm>

namespace coupond::core {
namespace {

// Orders by descending probability (equivalently logit), ties by ascending coupon id, so
// responses are deterministic.
struct ByScoreThenId {
  const ModelSnapshot* model;
  bool operator()(const ScoredCoupon& a, const ScoredCoupon& b) const {
    if (a.logit != b.logit) return a.logit > b.logit;
    return model->coupon_id(a.coupon_row) < model->coupon_id(b.coupon_row);
  }
};

}  // namespace

ScoreResult ScoreCoupons(const ModelSnapshot& model, const ScoreQuery& query) {
  ScoreResult result;

  // Candidate rows: either the requested ones that are known and active, or every active row.
  std::vector<uint32_t> rows;
  if (query.coupon_ids.empty()) {
    rows.reserve(model.num_coupons());
    for (uint32_t r = 0; r < model.num_coupons(); ++r) {
      if (model.coupon_attributes(r).IsActiveAt(query.as_of_unix_seconds)) rows.push_back(r);
    }
  } else {
    rows.reserve(query.coupon_ids.size());
    for (uint32_t i = 0; i < query.coupon_ids.size(); ++i) {
      const std::optional<uint32_t> row = model.FindCoupon(query.coupon_ids[i]);
      if (!row.has_value()) {
        result.unknown_coupons.push_back(i);
      } else if (!model.coupon_attributes(*row).IsActiveAt(query.as_of_unix_seconds)) {
        result.inactive_coupons.push_back(i);
      } else {
        rows.push_back(*row);
      }
    }
  }
  result.candidates_scored = rows.size();

  const std::optional<uint32_t> user = model.FindUser(query.user_id);
  result.known_user = user.has_value();
  const double offset = model.global_bias() + (user ? model.user_bias(*user) : 0.0);

  std::vector<float> dots(rows.size(), 0.0f);
  if (user.has_value() && !rows.empty()) {
    // When every coupon is active and none was named, rows is exactly 0..n-1.
    const bool all_rows = query.coupon_ids.empty() && rows.size() == model.num_coupons();
    if (all_rows) {
      // Every row, in order: the kernel streams the matrix without the index indirection.
      DotAll(model.user_factors(*user), model.coupon_factors(), dots.data());
    } else {
      DotRows(model.user_factors(*user), model.coupon_factors(), rows, dots.data());
    }
  }

  result.scores.resize(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const double logit = offset + model.coupon_bias(rows[i]) + dots[i];
    result.scores[i] = ScoredCoupon{rows[i], logit, Sigmoid(logit)};
  }

  const ByScoreThenId order{&model};
  const size_t k = query.top_k == 0 ? result.scores.size()
                                    : std::min<size_t>(query.top_k, result.scores.size());
  std::partial_sort(result.scores.begin(), result.scores.begin() + k, result.scores.end(),
                    order);
  result.scores.resize(k);
  return result;
}

}  // namespace coupond::core
