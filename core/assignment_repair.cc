#include "core/assignment_repair.h"

// Repair (see assignment.h for the problem, assignment.cc for the solver as a whole).
//
// One more pass collects, per user, its k + 2 best coupons by reduced score at the
// final prices (memory users x (k + 2) records of 24 bytes). A deterministic greedy then
// admits candidates in descending reduced score (ties by user, coupon) while the user has a
// free slot, the coupon stock and the remaining budget allow: at optimal prices this is the
// Lagrangian choice with the few users on the margin of a binding constraint rounded down or
// moved to their next candidate, and candidates with non-positive scores only fill slack the
// prices left. Every constraint holds exactly; the spend is confirmed on the final, canonically
// ordered sum. Each chunk's candidates are sorted by its worker, then merged. On small
// populations (<= kSmallRepairUsers) the same greedy is also run in order of value per expected
// spend and of value (no oracle call) and the best of the three is kept, which matters only
// when few users share the budget.

#include <algorithm>
#include <cstddef>
#include <utility>

#include "common/status_macros.h"
#include "core/assignment.h"
#include "core/parallel.h"

namespace coupond::core::assignment_internal {
namespace {

// Populations up to this size also try the two alternative repair orders.
constexpr size_t kSmallRepairUsers = size_t{1} << 16;

bool ByUserCoupon(const Record& a, const Record& b) {
  return a.user < b.user || (a.user == b.user && a.coupon < b.coupon);
}

// The main repair order: descending reduced score, ties by (user, coupon). A strict total
// order on distinct candidates, so sorting and merging give one result.
bool ByScore(const Record& a, const Record& b) {
  if (a.r != b.r) return a.r > b.r;
  return ByUserCoupon(a, b);
}

// Merges runs that are each sorted by ByScore, pairwise in rounds (pairs in parallel).
std::vector<Record> MergeRuns(std::vector<std::vector<Record>> runs, int threads) {
  if (runs.empty()) return {};
  while (runs.size() > 1) {
    std::vector<std::vector<Record>> next((runs.size() + 1) / 2);
    internal::ParallelFor(threads, next.size(), [&](size_t i, int) {
      if (2 * i + 1 == runs.size()) {
        next[i] = std::move(runs[2 * i]);
        return;
      }
      std::vector<Record>& a = runs[2 * i];
      std::vector<Record>& b = runs[2 * i + 1];
      next[i].resize(a.size() + b.size());
      std::merge(a.begin(), a.end(), b.begin(), b.end(), next[i].begin(), ByScore);
      std::vector<Record>().swap(a);
      std::vector<Record>().swap(b);
    });
    runs = std::move(next);
  }
  return std::move(runs[0]);
}

// Candidates kept per user beyond its k slots.
constexpr size_t kExtraCandidates = 2;
// Up to this many candidates per user are kept by insertion into a small sorted array;
// more (k near the number of coupons) by a partial sort of the user's entries.
constexpr size_t kInsertionCandidates = 32;

}  // namespace

absl::Status Repair(const Campaign& cp, const std::vector<double>& theta, std::vector<Record>* out,
                    int* passes, double* exact_dual) {
  const size_t keep = std::min(cp.m, cp.k + kExtraCandidates);
  const PassPrices pr(cp, theta);
  std::vector<std::vector<Record>> chunk_recs(cp.num_chunks);
  std::vector<double> chunk_exact(cp.num_chunks, 0.0);
  COUPOND_RETURN_IF_ERROR(RunPass(
      cp,
      [&](size_t chunk, size_t user, const double* p, Scratch& s) {
        const uint32_t u = static_cast<uint32_t>(user);
        // Best `keep` by (r desc, coupon asc) among the pairs with positive value.
        size_t count = 0;
        if (keep <= kInsertionCandidates) {
          Record buf[kInsertionCandidates];
          for (size_t j = 0; j < cp.m; ++j) {
            const double pj = p[j];
            if (!cp.available[j] || pj == kNotEligible || !(pj * cp.w[j] > 0)) continue;
            const double r = pj * pr.a[j] - pr.b[j];
            // Coupons come in ascending order, so an equal score never displaces a kept one.
            size_t i;
            if (count < keep) {
              i = count++;
            } else if (r > buf[keep - 1].r) {
              i = keep - 1;
            } else {
              continue;
            }
            while (i > 0 && r > buf[i - 1].r) {
              buf[i] = buf[i - 1];
              --i;
            }
            buf[i] = Record{r, pj, u, static_cast<uint32_t>(j)};
          }
          std::vector<Record>& recs = chunk_recs[chunk];
          double exact = 0;
          for (size_t t = 0; t < count; ++t) {
            if (t < cp.k && buf[t].r > 0) exact += buf[t].r;
            recs.push_back(buf[t]);
          }
          chunk_exact[chunk] += exact;
          return;
        }
        ScoreUser(cp, p, pr, -kInf, s);
        s.top.clear();
        for (size_t i = 0; i < s.e.size(); ++i) {
          if (s.e[i].value > 0) s.top.push_back(static_cast<uint32_t>(i));
        }
        auto cmp = [&s](uint32_t a, uint32_t b) { return Better(s.e[a], s.e[b]); };
        count = std::min(keep, s.top.size());
        std::partial_sort(s.top.begin(), s.top.begin() + static_cast<std::ptrdiff_t>(count),
                          s.top.end(), cmp);
        double exact = 0;
        for (size_t t = 0; t < count; ++t) {
          const Entry& x = s.e[s.top[t]];
          if (t < cp.k && x.r > 0) exact += x.r;
          chunk_recs[chunk].push_back(Record{x.r, x.p, u, x.j});
        }
        chunk_exact[chunk] += exact;
      },
      [&](size_t chunk) {
        std::sort(chunk_recs[chunk].begin(), chunk_recs[chunk].end(), ByScore);
      }));
  ++*passes;
  double fixed = theta[0] * cp.budget;
  for (size_t v = 1; v < cp.d; ++v) fixed += theta[v] * cp.stock[v];
  for (double e : chunk_exact) fixed += e;
  *exact_dual = fixed;
  std::vector<Record> cand = MergeRuns(std::move(chunk_recs), cp.threads);
  out->clear();
  // Greedy admission in a given order: a candidate enters while its user has a free slot and
  // its coupon stock and the remaining budget allow.
  std::vector<uint32_t> held(cp.n);
  std::vector<size_t> start(cp.n + 1);
  auto value_of = [&](const Record& x) { return x.p * cp.w[x.coupon]; };
  auto cost_of = [&](const Record& x) { return x.p * cp.c[x.coupon]; };
  auto greedy = [&](const std::vector<Record>& order, std::vector<Record>* chosen) {
    chosen->clear();
    std::fill(held.begin(), held.end(), 0);
    std::vector<int64_t> left = cp.limit;  // -1: unlimited
    double spend = 0;
    for (const Record& x : order) {
      const double cost = cost_of(x);
      if (held[x.user] >= cp.k || left[x.coupon] == 0 || spend + cost > cp.budget) continue;
      ++held[x.user];
      if (left[x.coupon] > 0) --left[x.coupon];
      spend += cost;
      chosen->push_back(x);
    }
    // Canonical (user, coupon) order by a counting sort on the user (at most k per user),
    // then by coupon within the user.
    start[0] = 0;
    for (size_t i = 0; i < cp.n; ++i) start[i + 1] = start[i] + held[i];
    std::vector<size_t> perm(chosen->size());
    std::fill(held.begin(), held.end(), 0);
    for (size_t t = 0; t < chosen->size(); ++t) {
      const uint32_t u = (*chosen)[t].user;
      perm[start[u] + held[u]++] = t;
    }
    for (size_t i = 0; i < cp.n; ++i) {
      if (held[i] < 2) continue;
      std::sort(perm.begin() + static_cast<std::ptrdiff_t>(start[i]),
                perm.begin() + static_cast<std::ptrdiff_t>(start[i + 1]),
                [&](size_t a, size_t b) { return (*chosen)[a].coupon < (*chosen)[b].coupon; });
    }
    // The running spend and the canonical sum differ only by rounding; if the latter exceeds
    // the budget, give back the last admitted paid items until it fits.
    std::vector<char> alive(chosen->size(), 1);
    size_t drop = chosen->size();
    double value = 0;
    for (;;) {
      double canonical = 0;
      value = 0;
      for (size_t t : perm) {
        if (!alive[t]) continue;
        canonical += cost_of((*chosen)[t]);
        value += value_of((*chosen)[t]);
      }
      if (canonical <= cp.budget) break;
      while (drop > 0 && !(alive[drop - 1] && cost_of((*chosen)[drop - 1]) > 0)) --drop;
      if (drop == 0) break;  // unreachable: an empty paid set spends 0
      alive[--drop] = 0;
    }
    std::vector<Record> sorted;
    sorted.reserve(chosen->size());
    for (size_t t : perm) {
      if (alive[t]) sorted.push_back((*chosen)[t]);
    }
    chosen->swap(sorted);
    return value;
  };
  // Order 1, the main one: descending reduced score (cand is merged in that order). At
  // optimal prices this is the Lagrangian choice with the few users on the margin of a binding
  // constraint rounded down or moved to their next candidate; non-positive scores only fill
  // slack the prices left.
  double best = greedy(cand, out);
  if (cp.n > kSmallRepairUsers) return absl::OkStatus();
  // Orders 2 and 3 matter when few users share the budget (the rounding loss is then a large
  // share of the value): value per unit of expected spend, and value. Cheap, no oracle call.
  std::vector<Record> other;
  std::sort(cand.begin(), cand.end(), [&](const Record& a, const Record& b) {
    // a.value / a.cost > b.value / b.cost, cross-multiplied (free items first).
    const double lhs = value_of(a) * cost_of(b), rhs = value_of(b) * cost_of(a);
    if (lhs != rhs) return lhs > rhs;
    if (value_of(a) != value_of(b)) return value_of(a) > value_of(b);
    return ByUserCoupon(a, b);
  });
  if (const double v = greedy(cand, &other); v > best) {
    best = v;
    out->swap(other);
  }
  std::sort(cand.begin(), cand.end(), [&](const Record& a, const Record& b) {
    if (value_of(a) != value_of(b)) return value_of(a) > value_of(b);
    return ByUserCoupon(a, b);
  });
  if (const double v = greedy(cand, &other); v > best) out->swap(other);
  return absl::OkStatus();
}

}  // namespace coupond::core::assignment_internal
