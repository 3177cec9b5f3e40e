#ifndef COUPOND_COMMON_GRPC_STATUS_H_
#define COUPOND_COMMON_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace coupond::common {

// The one place where an absl::Status becomes a grpc::Status: same code, same message.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace coupond::common

#endif  // COUPOND_COMMON_GRPC_STATUS_H_
