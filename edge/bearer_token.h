#ifndef COUPOND_EDGE_BEARER_TOKEN_H_
#define COUPOND_EDGE_BEARER_TOKEN_H_

// The bearer-token check of a gRPC call ("authorization: Bearer <token>"), shared by every
// service that requires one. Thread-safe (pure functions).

#include <map>

#include "absl/strings/string_view.h"
#include "grpcpp/support/string_ref.h"

namespace coupond::edge {

// Equality whose running time depends only on expected.size(), not on where the inputs
// first differ (nor on presented's length), so response times leak nothing of the token
// (OpenSSL's CRYPTO_memcmp).
bool ConstantTimeEquals(absl::string_view presented, absl::string_view expected);

// True when `metadata` holds exactly one "authorization" entry, "Bearer <token>" (the
// scheme's case does not matter) with the expected token. The caller answers
// UNAUTHENTICATED otherwise, with a message that never echoes what was sent.
bool HasBearerToken(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                    absl::string_view token);

}  // namespace coupond::edge

#endif  // COUPOND_EDGE_BEARER_TOKEN_H_
