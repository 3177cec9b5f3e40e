#include "core/assignment_pass.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/parallel.h"

namespace coupond::core::assignment_internal {
namespace {

absl::Status CheckProbability(double v, size_t user, size_t coupon,
                              absl::Span<const AssignmentCoupon> coupons) {
  if (v == kNotEligible || (v >= 0.0 && v <= 1.0)) return absl::OkStatus();  // NaN fails both
  return absl::InvalidArgumentError(absl::StrCat(
      "probability of user ", user, " for coupons[", coupon, "] ('", coupons[coupon].id,
      "'): ", FormatDouble(v), " is neither in [0, 1] nor kNotEligible"));
}

}  // namespace

std::string FormatDouble(double v) { return absl::StrCat(v); }

void ScoreUser(const Campaign& cp, const double* p, const PassPrices& pr, double floor,
               Scratch& s) {
  s.e.clear();
  s.top.clear();
  for (size_t j = 0; j < cp.m; ++j) {
    const double pj = p[j];
    if (!cp.available[j] || pj == kNotEligible) continue;
    const double r = pj * pr.a[j] - pr.b[j];
    if (!(r > floor)) continue;
    s.e.push_back(
        Entry{static_cast<uint32_t>(j), cp.var[j], r, pj * cp.c[j], pj * cp.w[j], pj, 0.0, 0.0});
  }
  for (size_t i = 0; i < s.e.size(); ++i) {
    if (s.e[i].r > 0) s.top.push_back(static_cast<uint32_t>(i));
  }
  auto cmp = [&s](uint32_t a, uint32_t b) { return Better(s.e[a], s.e[b]); };
  if (s.top.size() > cp.k) {
    std::partial_sort(s.top.begin(), s.top.begin() + static_cast<std::ptrdiff_t>(cp.k), s.top.end(),
                      cmp);
    s.top.resize(cp.k);
  } else {
    std::sort(s.top.begin(), s.top.end(), cmp);
  }
}

// The scan has no early exit so that it vectorises; only a bad block is scanned again for the
// message.
absl::Status CheckBlock(const double* p, size_t size, size_t first_user, const Campaign& cp) {
  unsigned ok = 1;
  for (size_t i = 0; i < size; ++i) {
    const double v = p[i];
    ok &= static_cast<unsigned>(v == kNotEligible) |
          (static_cast<unsigned>(v >= 0.0) & static_cast<unsigned>(v <= 1.0));
  }
  if (ok) return absl::OkStatus();
  for (size_t i = 0; i < size; ++i) {
    const double v = p[i];
    if (!(v == kNotEligible || (v >= 0.0 && v <= 1.0))) {  // NaN fails both
      return CheckProbability(v, first_user + i / cp.m, i % cp.m, cp.coupons);
    }
  }
  return absl::OkStatus();
}

absl::Status RunPass(const Campaign& cp,
                     const std::function<void(size_t, size_t, const double*, Scratch&)>& per_user,
                     const std::function<void(size_t)>& chunk_done) {
  std::vector<absl::Status> status(cp.num_chunks);
  std::vector<Scratch> scratch(static_cast<size_t>(std::max(cp.threads, 1)));
  internal::ParallelFor(cp.threads, cp.num_chunks, [&](size_t chunk, int worker) {
    Scratch& s = scratch[static_cast<size_t>(worker)];
    if (cp.cache == nullptr) s.p.resize(cp.max_block * cp.m);
    for (size_t b = cp.ChunkBegin(chunk); b < cp.ChunkBegin(chunk + 1); ++b) {
      const Block& blk = cp.blocks[b];
      const double* p;
      if (cp.cache != nullptr) {
        p = cp.cache + blk.local * cp.m;
      } else {
        absl::Status st =
            cp.oracle->Fill(blk.first, blk.count, absl::MakeSpan(s.p.data(), blk.count * cp.m));
        if (st.ok()) st = CheckBlock(s.p.data(), blk.count * cp.m, blk.first, cp);
        if (!st.ok()) {
          status[chunk] = std::move(st);
          return;
        }
        p = s.p.data();
      }
      for (size_t u = 0; u < blk.count; ++u) per_user(chunk, blk.local + u, p + u * cp.m, s);
    }
    if (chunk_done) chunk_done(chunk);
  });
  for (absl::Status& st : status) COUPOND_RETURN_IF_ERROR(st);
  return absl::OkStatus();
}

}  // namespace coupond::core::assignment_internal
