#include "bench/load/handler_cost.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "absl/status/status.h"
#include "bench/load/common.h"
#include "bench/load/requests.h"
#include "common/status_macros.h"
#include "coupond/v1/coupon_scoring.pb.h"
#include "google/protobuf/arena.h"
#include "server/model_manager.h"
#include "server/scoring_service.h"

namespace coupond::load_bench {

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
