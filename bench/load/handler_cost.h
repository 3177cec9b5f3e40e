// Where a Score call's server CPU goes, without gRPC: the handler's steps timed in this
// process, on one thread, over the same request bytes and the same model version.

#ifndef COUPOND_BENCH_LOAD_HANDLER_COST_H_
#define COUPOND_BENCH_LOAD_HANDLER_COST_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/support/byte_buffer.h"

namespace coupond::load_bench {

struct HandlerCost {
  size_t calls = 0;
  double parse_us = 0;      // ScoreRequest::ParseFromString (heap message, as the server's)
  double validate_us = 0;   // ValidateScoreRequest alone (also inside DoScore)
  double handle_us = 0;     // ScoringService::DoScore: validate, snapshot, score, build
  double serialize_us = 0;  // ScoreResponse::SerializeToString
  double destroy_us = 0;    // freeing the request and the response
  // The same parse into a message on a protobuf Arena, and the arena's release: what an
  // arena-backed request (a gRPC MessageAllocator) would cost instead of parse_us + its free.
  double arena_parse_us = 0;
  double arena_free_us = 0;
  size_t response_bytes = 0;
  // The floor DoScore is compared with (issue 17), over the same calls: each call's user
  // factors and candidate rows found beforehand (nothing looked up, checked or built), then
  // only core::DotRows over those rows into a buffer, the biases added, and the top_k best
  // selected and ordered (std::partial_sort of (logit, row) pairs; all of them when top_k is
  // 0). NaN when no call had a known user and candidates to score.
  double floor_us = 0;
  // Over the same calls: the fused kernel alone (core::ScoreTopK: dot products, bias and
  // top-k in one pass) over the candidates laid out as core::ResolveCoupons lays out a
  // stored campaign's, with nothing looked up, checked or built around it. NaN when no call
  // names a stored campaign.
  double kernel_us = 0;
  size_t floor_calls = 0;
};

// Loads the newest version of the store at `store_path` into a ModelManager and runs the
// Score handler (server::ScoringService::DoScore) over `requests` (the first 20,000, cycling)
// for `duration`, timing each step; then as many parses into Arena-allocated requests.
absl::StatusOr<HandlerCost> MeasureHandler(const std::string& store_path,
                                           const std::vector<grpc::ByteBuffer>& requests,
                                           absl::Duration duration);

}  // namespace coupond::load_bench

#endif  // COUPOND_BENCH_LOAD_HANDLER_COST_H_
