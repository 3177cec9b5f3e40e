// The requests, serialized before any timing. Each stream row becomes one Score request for
// the row's user against `candidates` coupons drawn (seeded, without replacement) from the
// stream's coupon popularity, named one of two ways: by a stored campaign
// (ScoreRequest.campaign_id; BuildCampaignRequests) or listed id by id in coupon_ids
// (BuildRequests). The no-op request is an empty grpc.health.v1.HealthCheckRequest.

#ifndef COUPOND_BENCH_LOAD_REQUESTS_H_
#define COUPOND_BENCH_LOAD_REQUESTS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/load/stream.h"
#include "grpcpp/support/byte_buffer.h"

namespace coupond::load_bench {

// Pre-serialized requests. A protobuf message's serialization concatenated with another's
// parses as their merge (repeated fields append), so in list mode each Score request is two
// slices: a per-row prefix (user_id, top_k and, when needed, the row's coupon) and a shared
// block of candidates. Blocks are `candidates` distinct coupons drawn by popularity; a row
// whose coupon is in its block uses the whole block, otherwise the block without its last
// coupon (a slice of the same bytes) after the row's coupon. Nothing is serialized or copied
// per call.
struct RequestSet {
  std::vector<grpc::ByteBuffer> score;  // one per stream row, file order
  grpc::ByteBuffer noop;                // an empty HealthCheckRequest (service "")
  size_t mean_score_bytes = 0;
  // Campaign mode: the campaigns to store, their coupons as stream coupon indices, and how
  // many rows' own coupon is in the campaign their request names.
  std::vector<std::vector<uint32_t>> campaigns;
  size_t rows_with_own_coupon = 0;
};

// The stored campaign id of block `b` in campaign mode ("load-NNN").
std::string LoadCampaignId(size_t b);

// The bytes of `buffer` in one string.
std::string Flatten(const grpc::ByteBuffer& buffer);

// Campaign mode: `num_campaigns` stored campaigns of `candidates` coupons drawn by popularity;
// each row's request names one that holds the row's coupon (drawn among those that do), or
// any one when none does. The request is then only user_id, top_k and campaign_id.
absl::StatusOr<RequestSet> BuildCampaignRequests(const TianchiStream& s, size_t candidates,
                                                 uint32_t top_k, size_t num_campaigns,
                                                 uint64_t seed);

// List mode: the row's coupon and `candidates` - 1 others in coupon_ids (candidates 0: no
// list, the server scores every active coupon). A sample of the result is parsed and checked.
absl::StatusOr<RequestSet> BuildRequests(const TianchiStream& s, size_t candidates, uint32_t top_k,
                                         uint64_t seed);

}  // namespace coupond::load_bench

#endif  // COUPOND_BENCH_LOAD_REQUESTS_H_
