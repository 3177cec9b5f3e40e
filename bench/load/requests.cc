#include "bench/load/requests.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/random.h"
#include "coupond/v1/coupon_scoring.pb.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/support/slice.h"

namespace coupond::load_bench {
namespace {

// The no-op call's request: an empty HealthCheckRequest (service "").
grpc::ByteBuffer NoopRequest() {
  const std::string noop = grpc::health::v1::HealthCheckRequest().SerializeAsString();
  grpc::Slice slice(noop.data(), noop.size());
  return grpc::ByteBuffer(&slice, 1);
}

// Efraimidis-Spirakis weighted sampling without replacement: the `n` coupons with the largest
// u^(1/w), u uniform in (0, 1); computed as log(u) / w.
std::vector<uint32_t> WeightedSample(const std::vector<uint64_t>& weights, size_t n,
                                     core::SplitMix64* rng) {
  std::vector<std::pair<double, uint32_t>> keys(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    const double u = (static_cast<double>(rng->Next() >> 11) + 0.5) * 0x1.0p-53;
    keys[i] = {std::log(u) / static_cast<double>(weights[i]), static_cast<uint32_t>(i)};
  }
  std::partial_sort(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(n), keys.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<uint32_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = keys[i].second;
  return out;
}

}  // namespace

std::string LoadCampaignId(size_t b) { return absl::StrFormat("load-%03d", b); }

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

absl::StatusOr<RequestSet> BuildCampaignRequests(const TianchiStream& s, size_t candidates,
                                                 uint32_t top_k, size_t num_campaigns,
                                                 uint64_t seed) {
  if (candidates == 0 || candidates > s.coupons.size() || num_campaigns == 0) {
    return absl::InvalidArgumentError(absl::StrCat("campaign mode needs candidates in [1, ",
                                                   s.coupons.size(), "] and campaigns >= 1"));
  }
  core::SplitMix64 rng(seed ^ 0x63616d70ULL);
  RequestSet out;
  std::vector<std::vector<uint32_t>> holding(s.coupons.size());  // coupon -> campaigns
  for (size_t b = 0; b < num_campaigns; ++b) {
    out.campaigns.push_back(WeightedSample(s.coupon_rows, candidates, &rng));
    for (uint32_t c : out.campaigns.back()) holding[c].push_back(static_cast<uint32_t>(b));
  }
  out.score.reserve(s.row_user.size());
  size_t total_bytes = 0;
  for (size_t row = 0; row < s.row_user.size(); ++row) {
    const std::vector<uint32_t>& with = holding[s.row_coupon[row]];
    size_t b;
    if (with.empty()) {
      b = rng.Below(num_campaigns);
    } else {
      b = with[rng.Below(with.size())];
      ++out.rows_with_own_coupon;
    }
    v1::ScoreRequest request;
    request.set_user_id(s.users[s.row_user[row]]);
    request.set_top_k(top_k);
    request.set_campaign_id(LoadCampaignId(b));
    const std::string bytes = request.SerializeAsString();
    grpc::Slice slice(bytes.data(), bytes.size());
    out.score.emplace_back(&slice, 1);
    total_bytes += slice.size();
  }
  out.mean_score_bytes = total_bytes / out.score.size();
  out.noop = NoopRequest();
  for (size_t row = 0; row < s.row_user.size(); row += 997) {
    v1::ScoreRequest parsed;
    if (!parsed.ParseFromString(Flatten(out.score[row])) ||
        parsed.user_id() != s.users[s.row_user[row]] || parsed.coupon_ids_size() != 0 ||
        !absl::StartsWith(parsed.campaign_id(), "load-") || parsed.top_k() != top_k) {
      return absl::InternalError(absl::StrCat("request of row ", row, " is malformed"));
    }
  }
  return out;
}

absl::StatusOr<RequestSet> BuildRequests(const TianchiStream& s, size_t candidates, uint32_t top_k,
                                         uint64_t seed) {
  if (candidates > s.coupons.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("candidates: ", candidates, " outside [0, ", s.coupons.size(), "]"));
  }
  if (candidates == 0 && top_k == 0) {
    // The server refuses to score its whole catalogue without a bound on the answer.
    return absl::InvalidArgumentError(
        "candidates 0 (every active coupon) needs a top_k of 1..10000: the server refuses "
        "an unbounded catalogue score");
  }
  constexpr size_t kBlocks = 256;
  core::SplitMix64 rng(seed ^ 0x6c6f6164ULL);
  struct Block {
    grpc::Slice full;      // `candidates` coupons
    grpc::Slice but_last;  // the first candidates - 1
    // Bytes, not std::vector<bool>: gcc 12's -Wnull-dereference misfires inside vector<bool>
    // at -O3 once this file is compiled together with its neighbours (unity build).
    std::vector<uint8_t> has;
  };
  std::vector<Block> blocks;
  blocks.reserve(kBlocks);
  for (size_t b = 0; b < kBlocks && candidates > 0; ++b) {
    const std::vector<uint32_t> drawn = WeightedSample(s.coupon_rows, candidates, &rng);
    v1::ScoreRequest head, last;
    Block block;
    block.has.assign(s.coupons.size(), 0);
    for (size_t i = 0; i < drawn.size(); ++i) {
      block.has[drawn[i]] = 1;
      (i + 1 < drawn.size() ? head : last).add_coupon_ids(s.coupons[drawn[i]]);
    }
    const std::string head_bytes = head.SerializeAsString();
    const std::string bytes = head_bytes + last.SerializeAsString();
    block.full = grpc::Slice(bytes.data(), bytes.size());
    block.but_last = block.full.sub(0, head_bytes.size());
    blocks.push_back(std::move(block));
  }

  RequestSet out;
  out.score.reserve(s.row_user.size());
  size_t total_bytes = 0;
  for (size_t row = 0; row < s.row_user.size(); ++row) {
    v1::ScoreRequest prefix;
    prefix.set_user_id(s.users[s.row_user[row]]);
    prefix.set_top_k(top_k);
    if (candidates == 0) {
      const std::string bytes = prefix.SerializeAsString();
      grpc::Slice slice(bytes.data(), bytes.size());
      out.score.emplace_back(&slice, 1);
      total_bytes += slice.size();
      continue;
    }
    const Block& block = blocks[rng.Below(kBlocks)];
    const uint32_t coupon = s.row_coupon[row];
    const bool in_block = block.has[coupon] != 0;
    if (!in_block) prefix.add_coupon_ids(s.coupons[coupon]);
    const std::string prefix_bytes = prefix.SerializeAsString();
    grpc::Slice slices[2] = {grpc::Slice(prefix_bytes.data(), prefix_bytes.size()),
                             in_block ? block.full : block.but_last};
    out.score.emplace_back(slices, 2);
    total_bytes += slices[0].size() + slices[1].size();
  }
  out.mean_score_bytes = total_bytes / out.score.size();
  out.noop = NoopRequest();

  // Check a sample of what will be sent: it parses, names the row's user and coupon, and
  // holds `candidates` distinct ids.
  for (size_t row = 0; row < s.row_user.size(); row += 997) {
    v1::ScoreRequest parsed;
    if (!parsed.ParseFromString(Flatten(out.score[row]))) {
      return absl::InternalError(absl::StrCat("request of row ", row, " does not parse"));
    }
    absl::flat_hash_set<std::string> ids(parsed.coupon_ids().begin(), parsed.coupon_ids().end());
    if (parsed.user_id() != s.users[s.row_user[row]] ||
        static_cast<size_t>(parsed.coupon_ids_size()) != candidates || ids.size() != candidates ||
        (candidates > 0 && !ids.contains(s.coupons[s.row_coupon[row]])) ||
        parsed.top_k() != top_k) {
      return absl::InternalError(absl::StrCat(
          "request of row ", row, " is malformed: ", parsed.ShortDebugString().substr(0, 200)));
    }
  }
  return out;
}

}  // namespace coupond::load_bench
