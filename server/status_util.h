#ifndef COUPOND_SERVER_STATUS_UTIL_H_
#define COUPOND_SERVER_STATUS_UTIL_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace coupond::server {

// The one place where an absl::Status becomes a grpc::Status: same code, same message.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace coupond::server

#endif  // COUPOND_SERVER_STATUS_UTIL_H_
