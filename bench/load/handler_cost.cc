#include "bench/load/handler_cost.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "bench/load/common.h"
#include "bench/load/requests.h"
#include "common/status_macros.h"
#include "core/kernel.h"
#include "core/scorer.h"
#include "core/snapshot.h"
#include "coupond/v1/coupon_scoring.pb.h"
#include "google/protobuf/arena.h"
#include "server/model_manager.h"
#include "server/scoring_service.h"

namespace coupond::load_bench {

namespace {

// One call of the floor: what DoScore would score, found beforehand.
struct FloorCall {
  const float* user = nullptr;  // the known user's factors
  float offset = 0.0f;          // global bias + user bias, as the scorer forms it
  uint32_t top_k = 0;
  // A stored campaign's candidates as the server's campaign book lays them out (contiguous
  // rows and their biases), shared by the campaign's calls; null for a request that lists
  // its coupons, whose rows are then `listed_rows`.
  std::shared_ptr<const core::ResolvedCoupons> resolved;
  std::vector<uint32_t> listed_rows;
  // The candidates' coupon rows.
  absl::Span<const uint32_t> rows() const {
    return resolved != nullptr ? absl::MakeConstSpan(resolved->rows)
                               : absl::MakeConstSpan(listed_rows);
  }
};

// HandlerCost::floor_us and kernel_us over `calls` calls cycling through the requests in
// `bytes` whose user the model knows and that have a known candidate (the others are left
// out).
absl::Status MeasureFloors(const server::ModelManager& models,
                          const std::vector<std::string>& bytes, size_t calls, HandlerCost* cost) {
  const std::shared_ptr<const core::ModelSnapshot> model = models.Current();
  const std::shared_ptr<const server::CampaignBook> book = models.Campaigns();
  std::vector<FloorCall> prepared;
  absl::flat_hash_map<std::string, std::shared_ptr<const core::ResolvedCoupons>> by_campaign;
  prepared.reserve(bytes.size());
  size_t max_rows = 0;
  for (const std::string& b : bytes) {
    v1::ScoreRequest request;
    if (!request.ParseFromString(b)) return absl::InternalError("request does not parse");
    const std::optional<uint32_t> user = model->FindUser(request.user_id());
    if (!user.has_value()) continue;
    std::vector<absl::string_view> ids(request.coupon_ids().begin(), request.coupon_ids().end());
    if (!request.campaign_id().empty()) {
      auto it = book->find(request.campaign_id());
      if (it == book->end()) return absl::NotFoundError("breakdown: campaign not loaded");
      ids = server::CampaignCouponIds(it->second->stored.campaign());
    }
    FloorCall call;
    call.user = model->user_factors(*user);
    call.offset = static_cast<float>(model->global_bias() + double{model->user_bias(*user)});
    if (request.campaign_id().empty()) {
      call.listed_rows = core::ResolveCoupons(*model, ids).rows;
    } else {
      std::shared_ptr<const core::ResolvedCoupons>& shared = by_campaign[request.campaign_id()];
      if (shared == nullptr) {
        shared = std::make_shared<const core::ResolvedCoupons>(
            core::ResolveCoupons(*model, ids, core::ResolvedLayout::kContiguousCopy));
      }
      call.resolved = shared;
    }
    call.top_k = request.top_k();
    if (call.rows().empty()) continue;
    max_rows = std::max(max_rows, call.rows().size());
    prepared.push_back(std::move(call));
  }
  cost->floor_us = cost->kernel_us = std::nan("");
  cost->floor_calls = 0;
  if (prepared.empty()) return absl::OkStatus();
  const core::FactorMatrix& factors = model->coupon_factors();
  std::vector<float> dots(max_rows);
  std::vector<std::pair<float, uint32_t>> scored(max_rows);
  std::vector<core::ScoredRow> top;
  double floor_total = 0, kernel_total = 0;
  float best = 0.0f;  // read after the loops, so that the selections are not optimised away
  // Two loops, so that neither measure runs on caches the other has just filled or evicted.
  for (size_t i = 0; i < calls; ++i) {
    const FloorCall& call = prepared[i % prepared.size()];
    const size_t n = call.rows().size();
    const size_t k = call.top_k == 0 ? n : std::min<size_t>(call.top_k, n);
    const Clock::time_point t0 = Clock::now();
    const absl::Span<const uint32_t> rows = call.rows();
    core::DotRows(call.user, factors, rows, dots.data());
    for (size_t r = 0; r < n; ++r) {
      scored[r] = {-(call.offset + model->coupon_bias(rows[r]) + dots[r]), rows[r]};
    }
    std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(k),
                      scored.begin() + static_cast<std::ptrdiff_t>(n));
    const Clock::time_point t1 = Clock::now();
    best += scored[0].first;
    floor_total += std::chrono::duration<double, std::micro>(t1 - t0).count();
  }
  size_t kernel_calls = 0;
  for (size_t i = 0; i < calls; ++i) {
    const FloorCall& call = prepared[i % prepared.size()];
    if (call.resolved == nullptr || !call.resolved->factors.has_value()) continue;
    const size_t n = call.rows().size();
    const size_t k = call.top_k == 0 ? n : std::min<size_t>(call.top_k, n);
    const Clock::time_point t0 = Clock::now();
    core::ScoreTopK(call.user, call.offset, *call.resolved->factors, call.resolved->bias.data(),
                    core::CandidateRows::All(), k, &top);
    const Clock::time_point t1 = Clock::now();
    best += top.empty() ? 0.0f : top[0].logit;
    kernel_total += std::chrono::duration<double, std::micro>(t1 - t0).count();
    ++kernel_calls;
  }
  if (std::isnan(best)) std::fputs("breakdown: a NaN logit topped a call\n", stderr);
  const double c = static_cast<double>(std::max<size_t>(calls, 1));
  cost->floor_calls = calls;
  cost->floor_us = floor_total / c;
  cost->kernel_us = kernel_calls == 0 ? std::nan("") : kernel_total / static_cast<double>(kernel_calls);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<HandlerCost> MeasureHandler(const std::string& store_path,
                                           const std::vector<grpc::ByteBuffer>& requests,
                                           absl::Duration duration) {
  COUPOND_ASSIGN_OR_RETURN(std::unique_ptr<server::ModelManager> models,
                           server::ModelManager::Create(server::NewStoreModelSource(store_path),
                                                        server::ModelManagerOptions()));
  COUPOND_RETURN_IF_ERROR(models->PollOnce());
  if (models->Current() == nullptr) return absl::NotFoundError("no model version in the store");
  const server::ScoringService service(models.get(), server::ScoringServiceOptions());
  // The request bytes, flattened once (the server receives contiguous slices too).
  std::vector<std::string> bytes;
  const size_t n = std::min<size_t>(requests.size(), 20000);
  bytes.reserve(n);
  for (size_t i = 0; i < n; ++i) bytes.push_back(Flatten(requests[i]));

  HandlerCost cost;
  double parse = 0, validate = 0, handle = 0, serialize = 0, destroy = 0;
  size_t response_bytes = 0;
  const server::RequestLimits limits;
  std::string out;
  const Clock::time_point end = Clock::now() + absl::ToChronoNanoseconds(duration);
  for (size_t i = 0; Clock::now() < end; ++i) {
    auto request = std::make_unique<v1::ScoreRequest>();
    auto response = std::make_unique<v1::ScoreResponse>();
    const Clock::time_point t0 = Clock::now();
    if (!request->ParseFromString(bytes[i % n]))
      return absl::InternalError("request does not parse");
    const Clock::time_point t1 = Clock::now();
    COUPOND_RETURN_IF_ERROR(server::ValidateScoreRequest(*request, limits));
    const Clock::time_point t2 = Clock::now();
    COUPOND_RETURN_IF_ERROR(service.DoScore(*request, response.get()));
    const Clock::time_point t3 = Clock::now();
    out.clear();
    response->SerializeToString(&out);
    const Clock::time_point t4 = Clock::now();
    request.reset();
    response.reset();
    const Clock::time_point t5 = Clock::now();
    parse += std::chrono::duration<double, std::micro>(t1 - t0).count();
    validate += std::chrono::duration<double, std::micro>(t2 - t1).count();
    handle += std::chrono::duration<double, std::micro>(t3 - t2).count();
    serialize += std::chrono::duration<double, std::micro>(t4 - t3).count();
    destroy += std::chrono::duration<double, std::micro>(t5 - t4).count();
    response_bytes += out.size();
    ++cost.calls;
  }
  COUPOND_RETURN_IF_ERROR(MeasureFloors(*models, bytes, cost.calls, &cost));
  double arena_parse = 0, arena_free = 0;
  for (size_t i = 0; i < cost.calls; ++i) {
    const Clock::time_point t0 = Clock::now();
    auto arena = std::make_unique<google::protobuf::Arena>();
    auto* request = google::protobuf::Arena::CreateMessage<v1::ScoreRequest>(arena.get());
    if (!request->ParseFromString(bytes[i % n]))
      return absl::InternalError("request does not parse");
    const Clock::time_point t1 = Clock::now();
    arena.reset();
    const Clock::time_point t2 = Clock::now();
    arena_parse += std::chrono::duration<double, std::micro>(t1 - t0).count();
    arena_free += std::chrono::duration<double, std::micro>(t2 - t1).count();
  }
  const double c = static_cast<double>(std::max<size_t>(cost.calls, 1));
  cost.arena_parse_us = arena_parse / c;
  cost.arena_free_us = arena_free / c;
  cost.parse_us = parse / c;
  cost.validate_us = validate / c;
  cost.handle_us = handle / c;
  cost.serialize_us = serialize / c;
  cost.destroy_us = destroy / c;
  cost.response_bytes = response_bytes / std::max<size_t>(cost.calls, 1);
  return cost;
}

}  // namespace coupond::load_bench
