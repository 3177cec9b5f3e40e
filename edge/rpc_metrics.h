#ifndef COUPOND_EDGE_RPC_METRICS_H_
#define COUPOND_EDGE_RPC_METRICS_H_

// Per-call metrics and access log of a gRPC server, recorded by a server interceptor, so
// that handlers stay untouched:
//   coupond_grpc_requests_total{method,code,model_version}
//   coupond_grpc_request_duration_seconds{method,model_version}  (histogram, 50 µs..10 s)
// and one structured access-log line per call at debug level. Used by coupond and
// collectord (which has no model: model_version is always "none" there).
//
// Latency runs from the interceptor's creation (gRPC creates it when the call is matched
// to a method) to PRE_SEND_STATUS (the handler has finished and its status is about to be
// sent). A call that ends without sending a status counts as CANCELLED.
//
// model_version is the version being served when the call ends (coupond reads
// ModelManager::current_version(), one relaxed atomic load), not necessarily the one the
// handler used: a call that took its snapshot of version N just before a swap to N+1 and
// ends after it is counted under N+1 (and a call ending in the instant between the pointer
// swap and the version store is counted under N). Only calls in flight during the swap
// are affected, so the error is a few calls per reload. "none" before the first model.
//
// Access log (spdlog, debug level; nothing is formatted or read at info level), one line
// per call:
//   rpc method=/coupond.v1.CouponScoring/Score code=INVALID_ARGUMENT latency_us=87
//       model_version=3 request_id=r-17 peer=ipv4:127.0.0.1:50312
// (one line). Values are logfmt: bare when they hold only [A-Za-z0-9._:/@+-], otherwise
// double-quoted with \" \\ \n \t and \xHH escapes (request ids come from clients).
// request_id is the response's request_id (the caller's, or the one the server generated),
// or the request's when no response message was sent (errors); "" when neither has one.
// It is read through protobuf reflection from field 1 named `request_id`, only for
// coupond.v1 methods, whose messages are all generated protobuf classes.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "edge/metrics.h"
#include "grpcpp/support/server_interceptor.h"
#include "grpcpp/support/status.h"

namespace coupond::edge {

// The gRPC status code as Prometheus labels and logs spell it: "OK", "INVALID_ARGUMENT", ...
// ("UNKNOWN_CODE_<n>" outside the standard 0..16).
std::string StatusCodeName(grpc::StatusCode code);

// A logfmt value (see the file comment): `abc` stays bare, `a b` becomes `"a b"`.
std::string LogfmtValue(std::string_view value);

// Thread-safe. Must outlive every server its interceptor factories were given to.
class RpcMetrics {
 public:
  // At most this many distinct method names get their own label; calls to further names
  // (clients can send any path; gRPC answers UNIMPLEMENTED) count under method="other".
  static constexpr size_t kMaxMethods = 64;

  // Registers the two families in `registry` (which must outlive this object).
  // `model_version` returns the version being served, 0 for none; empty: always none. It is
  // called once per call, on gRPC's threads: it must be cheap and thread-safe.
  static absl::StatusOr<std::unique_ptr<RpcMetrics>> Create(MetricsRegistry* registry,
                                                            std::function<uint64_t()> model_version);

  // For ServerBuilder::experimental().SetInterceptorCreators.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewInterceptorFactory();

  // The label calls of `method` count under: the name itself for the first kMaxMethods
  // names seen, "other" after. The view stays valid as long as this object.
  std::string_view MethodLabel(std::string_view method);
  // Records one finished call under a label MethodLabel returned (what the interceptor
  // does at the call's end).
  void RecordLabelled(std::string_view method_label, grpc::StatusCode code, uint64_t model_version,
                      double latency_seconds);
  // MethodLabel, then RecordLabelled.
  void Record(std::string_view method, grpc::StatusCode code, uint64_t model_version,
              double latency_seconds) {
    RecordLabelled(MethodLabel(method), code, model_version, latency_seconds);
  }
  uint64_t CurrentModelVersion() const { return model_version_ ? model_version_() : 0; }

 private:
  RpcMetrics(CounterFamily<3> requests, HistogramFamily<2> latency,
             std::function<uint64_t()> model_version);

  const CounterFamily<3> requests_;
  const HistogramFamily<2> latency_;
  const std::function<uint64_t()> model_version_;
  metrics_internal::Children<std::string> methods_;  // each child holds its name
  std::atomic<size_t> num_methods_{0};
};

}  // namespace coupond::edge

#endif  // COUPOND_EDGE_RPC_METRICS_H_
