#ifndef COUPOND_EDGE_RPC_METRICS_H_
#define COUPOND_EDGE_RPC_METRICS_H_

// Per-call metrics and access log of a gRPC server, recorded by a server interceptor, so
// that handlers stay untouched:
//   coupond_grpc_requests_total{method,code}
//   coupond_grpc_request_duration_seconds{method}  (histogram, 50 µs..10 s)
// and one structured access-log line per call at debug level. Used by coupond and
// collectord.
//
// No model_version label: each reload to a new version would add a series per method and
// code (and 19 per histogram) for the life of the process. The served version is a separate
// info gauge (coupond_model_info{model_version}, server/server_metrics.h) to join on; see
// docs/metrics.md.
//
// A call is recorded once, when gRPC reports it closed (POST_RECV_CLOSE: the status has
// been sent, or the call was cancelled), with:
//  * the status the server sent, unless the call was cancelled;
//  * DEADLINE_EXCEEDED when it was cancelled at (within 2 ms of) its deadline: gRPC cancels
//    a call whose deadline passes, whatever the handler then sends;
//  * CANCELLED when it was cancelled otherwise (the client cancelled or went away, or the
//    server shut down): whatever the handler answered never reached the client.
// A call destroyed without either (gRPC did not report its close) counts as the status it
// sent, or CANCELLED. Latency runs from the interceptor's creation (when gRPC matches the
// call to a method) to PRE_SEND_STATUS (the handler's status is about to be sent), or to
// the close for a cancelled call.
//
// Access log (spdlog, debug level; nothing is formatted or read at info level), one line
// per call:
//   rpc method=/coupond.v1.CouponScoring/Score code=INVALID_ARGUMENT latency_us=87
//       model_version=3 request_id=r-17 peer=ipv4:127.0.0.1:50312
// (one line). Values are logfmt: bare when they hold only [A-Za-z0-9._:/@+-], otherwise
// double-quoted with \" \\ \n \t and \xHH escapes (request ids come from clients).
// model_version is the version served when the call ends ("none" before the first model,
// and always on collectord). request_id, for coupond.v1 methods only: the response's
// field 1 `request_id` (read from the serialized response, its type found by the method's
// name in protobuf's generated pool), or, for a call that failed, the
// `coupond-request-id` trailer the handler attached (edge/raw_call.h); "" when neither.

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
  // called for the access log only (once per call at debug level), on gRPC's threads: it
  // must be cheap and thread-safe.
  static absl::StatusOr<std::unique_ptr<RpcMetrics>> Create(MetricsRegistry* registry,
                                                            std::function<uint64_t()> model_version);

  // For ServerBuilder::experimental().SetInterceptorCreators.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewInterceptorFactory();

  // The label calls of `method` count under: the name itself for the first kMaxMethods
  // names seen, "other" after. The view stays valid as long as this object.
  std::string_view MethodLabel(std::string_view method);
  // Records one finished call under a label MethodLabel returned (what the interceptor
  // does at the call's end).
  void RecordLabelled(std::string_view method_label, grpc::StatusCode code,
                      double latency_seconds);
  // MethodLabel, then RecordLabelled.
  void Record(std::string_view method, grpc::StatusCode code, double latency_seconds) {
    RecordLabelled(MethodLabel(method), code, latency_seconds);
  }
  uint64_t CurrentModelVersion() const { return model_version_ ? model_version_() : 0; }

 private:
  RpcMetrics(CounterFamily<2> requests, HistogramFamily<1> latency,
             std::function<uint64_t()> model_version);

  const CounterFamily<2> requests_;
  const HistogramFamily<1> latency_;
  const std::function<uint64_t()> model_version_;
  metrics_internal::Children<std::string> methods_;  // each child holds its name
  std::atomic<size_t> num_methods_{0};
};

}  // namespace coupond::edge

#endif  // COUPOND_EDGE_RPC_METRICS_H_
