#ifndef COUPOND_API_GRPC_STATUS_H_
#define COUPOND_API_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace coupond::api {

// The one place where an absl::Status becomes a grpc::Status: same code, same message.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace coupond::api

#endif  // COUPOND_API_GRPC_STATUS_H_
