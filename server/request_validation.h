#ifndef COUPOND_SERVER_REQUEST_VALIDATION_H_
#define COUPOND_SERVER_REQUEST_VALIDATION_H_

// Validation of incoming requests, before any model is touched. Every failure is
// InvalidArgument with a message that starts with the offending field's name (as in the
// .proto), e.g. "coupon_ids[3]: duplicate of coupon_ids[0] ('c1')".

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "coupond/v1/coupon_scoring.pb.h"

namespace coupond::server {

struct RequestLimits {
  // Most candidate coupon ids one Score request may name. Default 10,000.
  size_t max_candidates = 10000;
  // Most coupons one campaign may hold. Default 10,000.
  size_t max_campaign_coupons = 10000;
  // Most users an Assign population may hold. Default 10,000,000. An explicit list over
  // it is INVALID_ARGUMENT; all_users (or its segments) over it is RESOURCE_EXHAUSTED once
  // the population is resolved against the model (see AssignReactor).
  size_t max_population = 10'000'000;
  // Longest request_id, in bytes. Default 128.
  size_t max_request_id_bytes = 128;
  // Most passes an Assign request may ask the solver for (solver.max_iterations).
  // Default 1,000 (the server's own default is 200).
  uint32_t max_solver_iterations = 1000;
  // Score, Decide and Assign calls with less than this left before their deadline are
  // answered DEADLINE_EXCEEDED without being worked on (server/call_guard.h). Default 0:
  // only calls whose deadline has already passed.
  absl::Duration min_deadline_remaining = absl::ZeroDuration();
  // Most assignments per streamed Assign message (AssignRequest.chunk_size). Default
  // 100,000: a chunk of that many assignments is a few MB, under gRPC's default 4 MiB
  // receive limit only for short ids, so clients rarely want more; without a bound, 2^32-1
  // would put a whole population into one message.
  uint32_t max_assign_chunk_size = 100'000;
  // Most user_attributes entries (Score, Decide). Default 64. Names and values are limited
  // to core::kMaxIdBytes (256) bytes each.
  size_t max_user_attributes = 64;
};

absl::Status ValidateScoreRequest(const v1::ScoreRequest& request, const RequestLimits& limits);
// Request-level checks of Assign and Decide (ids, sizes); the campaign itself is validated
// against the model by core::CampaignPlan::Create.
absl::Status ValidateAssignRequest(const v1::AssignRequest& request, const RequestLimits& limits);
absl::Status ValidateDecideRequest(const v1::DecideRequest& request, const RequestLimits& limits);
absl::Status ValidateListCampaignsRequest(const v1::ListCampaignsRequest& request,
                                          const RequestLimits& limits);
absl::Status ValidateGetModelInfoRequest(const v1::GetModelInfoRequest& request,
                                         const RequestLimits& limits);

}  // namespace coupond::server

#endif  // COUPOND_SERVER_REQUEST_VALIDATION_H_
