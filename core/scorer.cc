#include "core/scorer.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/kernel.h"

namespace coupond::core {

ResolvedCoupons ResolveCoupons(const ModelSnapshot& model,
                               absl::Span<const absl::string_view> coupon_ids,
                               ResolvedLayout layout) {
  ResolvedCoupons resolved;
  resolved.model_version = model.info().version;
  resolved.rows.reserve(coupon_ids.size());
  resolved.positions.reserve(coupon_ids.size());
  resolved.bias.reserve(coupon_ids.size());
  // The intersection of the known coupons' validity windows (0: open on that side).
  int64_t from = std::numeric_limits<int64_t>::min();
  int64_t until = std::numeric_limits<int64_t>::max();
  for (uint32_t i = 0; i < coupon_ids.size(); ++i) {
    const std::optional<uint32_t> row = model.FindCoupon(coupon_ids[i]);
    if (row.has_value()) {
      resolved.rows.push_back(*row);
      resolved.positions.push_back(i);
      resolved.bias.push_back(model.coupon_bias(*row));
      const CouponAttributes& a = model.coupon_attributes(*row);
      if (a.stock == 0) {
        from = std::numeric_limits<int64_t>::max();  // never active: no such interval
        until = std::numeric_limits<int64_t>::min();
      } else {
        if (a.valid_from_unix_seconds != 0) from = std::max(from, a.valid_from_unix_seconds);
        if (a.valid_until_unix_seconds != 0) until = std::min(until, a.valid_until_unix_seconds);
      }
    } else {
      resolved.unknown.push_back(i);
    }
  }
  if (from < until) {
    resolved.all_active_from = from;
    resolved.all_active_until = until;
  }
  const FactorMatrix& all = model.coupon_factors();
  if (layout == ResolvedLayout::kContiguousCopy && !resolved.rows.empty()) {
    std::vector<float> copy(resolved.rows.size() * all.dim());
    for (size_t i = 0; i < resolved.rows.size(); ++i) {
      for (size_t j = 0; j < all.dim(); ++j) copy[i * all.dim() + j] = all.at(resolved.rows[i], j);
    }
    absl::StatusOr<FactorMatrix> own = FactorMatrix::Create(copy, resolved.rows.size(), all.dim());
    if (own.ok()) resolved.factors = *std::move(own);  // else gathered (see the header)
  }
  return resolved;
}

namespace {

// ScoreUserRows over the matrix `m`, whose row i is the snapshot's row row_of[i] (row_of
// empty: m is the snapshot's own matrix). Results name snapshot rows.
void ScoreRowsOf(const ModelSnapshot& model, const ResolvedUser& user, const FactorMatrix& m,
                 absl::Span<const uint32_t> row_of, const CandidateRows& candidates,
                 const float* coupon_bias, uint32_t top_k, std::vector<ScoredCoupon>* out) {
  // The fused kernel computes logit = offset + b_c + <x_u, y_c> in float and keeps the
  // top_k best, ordered by descending logit and, on exact ties (at the k-th place too), by
  // ascending coupon id. A new user takes its segment's prior vector, or the population
  // prior: b_u = 0 and x_u = 0 (x == nullptr). NaN logits (corrupt factors) rank last.
  const float offset = static_cast<float>(model.global_bias() + double{user.bias});
  const auto snapshot_row = [row_of](uint32_t r) { return row_of.empty() ? r : row_of[r]; };
  std::vector<ScoredRow> top;
  ScoreTopK(
      user.factors, offset, m, coupon_bias, candidates, top_k,
      [&model, &snapshot_row](uint32_t a, uint32_t b) {
        return model.coupon_id(snapshot_row(a)) < model.coupon_id(snapshot_row(b));
      },
      &top);
  // The probability is the header's double-precision Sigmoid of the reported logit, so
  // probability == Sigmoid(logit) exactly; it is computed for the <= top_k survivors only.
  out->clear();
  out->reserve(top.size());
  for (const ScoredRow& s : top) {
    const double logit = s.logit;
    out->push_back(ScoredCoupon{snapshot_row(s.row), logit, Sigmoid(logit)});
  }
}

}  // namespace

void ScoreUserRows(const ModelSnapshot& model, const ResolvedUser& user,
                   const CandidateRows& candidates, const float* coupon_bias, uint32_t top_k,
                   std::vector<ScoredCoupon>* out) {
  ScoreRowsOf(model, user, model.coupon_factors(), {}, candidates, coupon_bias, top_k, out);
}

ScoreResult ScoreCoupons(const ModelSnapshot& model, const ScoreQuery& query) {
  ScoreResult result;

  // Candidate rows: either the requested ones that are known and active, or every active row.
  // Their biases are collected on the way (bias[i] for rows[i]): the snapshot does not
  // expose its bias array, and this loop touches every candidate anyway.
  std::vector<uint32_t> rows;
  std::vector<float> bias;
  // What is scored: the resolved list's own rows and biases, without a copy, when all its
  // candidates are active; else `rows` and `bias` (set after the branches).
  absl::Span<const uint32_t> row_span;
  absl::Span<const float> bias_span;
  // Set when the resolved list is scored through its own contiguous matrix.
  const ResolvedCoupons* contiguous = nullptr;
  if (query.resolved != nullptr) {
    const ResolvedCoupons& resolved = *query.resolved;
    if (resolved.model_version != model.info().version) {
      // Rows of another version would index the wrong coupons: score nothing.
      result.unknown_coupons = resolved.unknown;
      result.unknown_coupons.insert(result.unknown_coupons.end(), resolved.positions.begin(),
                                    resolved.positions.end());
      std::sort(result.unknown_coupons.begin(), result.unknown_coupons.end());
    } else if (query.as_of_unix_seconds >= resolved.all_active_from &&
               query.as_of_unix_seconds < resolved.all_active_until &&
               resolved.bias.size() == resolved.rows.size()) {
      // Every known candidate is active now: score the resolved rows and biases in place.
      result.unknown_coupons = resolved.unknown;
      row_span = resolved.rows;
      bias_span = resolved.bias;
      if (resolved.factors.has_value()) contiguous = &resolved;
    } else {
      result.unknown_coupons = resolved.unknown;
      rows.reserve(resolved.rows.size());
      bias.reserve(resolved.rows.size());
      for (size_t i = 0; i < resolved.rows.size(); ++i) {
        const uint32_t row = resolved.rows[i];
        if (model.coupon_attributes(row).IsActiveAt(query.as_of_unix_seconds)) {
          rows.push_back(row);
          bias.push_back(model.coupon_bias(row));
        } else {
          result.inactive_coupons.push_back(resolved.positions[i]);
        }
      }
    }
  } else if (query.coupon_ids.empty()) {
    rows.reserve(model.num_coupons());
    bias.reserve(model.num_coupons());
    for (uint32_t r = 0; r < model.num_coupons(); ++r) {
      if (model.coupon_attributes(r).IsActiveAt(query.as_of_unix_seconds)) {
        rows.push_back(r);
        bias.push_back(model.coupon_bias(r));
      }
    }
  } else {
    rows.reserve(query.coupon_ids.size());
    bias.reserve(query.coupon_ids.size());
    for (uint32_t i = 0; i < query.coupon_ids.size(); ++i) {
      const std::optional<uint32_t> row = model.FindCoupon(query.coupon_ids[i]);
      if (!row.has_value()) {
        result.unknown_coupons.push_back(i);
      } else if (!model.coupon_attributes(*row).IsActiveAt(query.as_of_unix_seconds)) {
        result.inactive_coupons.push_back(i);
      } else {
        rows.push_back(*row);
        bias.push_back(model.coupon_bias(*row));
      }
    }
  }
  if (row_span.empty()) {
    row_span = rows;
    bias_span = bias;
  }
  result.candidates_scored = row_span.size();

  const ResolvedUser user = ResolveUser(model, query.user_id, query.user_attributes);
  result.user_source = user.source;
  result.known_user = user.source == UserSource::kKnownUser;
  result.segment = user.segment;
  result.ignored_attributes = user.ignored_attributes;
  if (row_span.empty()) return result;
  if (contiguous != nullptr) {
    ScoreRowsOf(model, user, *contiguous->factors, contiguous->rows, CandidateRows::All(),
                contiguous->bias.data(), query.top_k, &result.scores);
    return result;
  }

  // When every coupon is active and none was named, rows is exactly 0..n-1, and bias is
  // then indexed by row as well.
  const bool all_rows = query.resolved == nullptr && query.coupon_ids.empty() &&
                        rows.size() == model.num_coupons();
  const CandidateRows candidates =
      all_rows ? CandidateRows::All() : CandidateRows::List(row_span, bias_span);
  ScoreUserRows(model, user, candidates, all_rows ? bias.data() : nullptr, query.top_k,
                &result.scores);
  return result;
}

}  // namespace coupond::core
