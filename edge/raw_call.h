#ifndef COUPOND_EDGE_RAW_CALL_H_
#define COUPOND_EDGE_RAW_CALL_H_

// Raw-buffer gRPC methods: coupond's services take each request as bytes and parse it
// themselves (the generated WithRawCallbackMethod_<Method> classes), because gRPC 1.51's
// callback API answers a body it cannot parse (random bytes, invalid UTF-8 in a string,
// a truncated field, no message at all) with UNIMPLEMENTED and an empty message, which a
// client reads as "no such method". Here such a body is INVALID_ARGUMENT with a message that
// names the request type and, where the wire data shows it, the field:
//   request body is not a valid coupond.v1.ScoreRequest: user_id: not valid UTF-8 (...)
// and a body over the server's limit is RESOURCE_EXHAUSTED from the handler, so that the
// RPC interceptor (edge/rpc_metrics.h) counts it; gRPC's own refusal of an oversize message
// happens before any interceptor exists and is counted nowhere. gRPC's limit is therefore
// set above the server's (GrpcReceiveLimit): it still bounds what one call may buffer.
//
// Costs nothing over gRPC's own parsing: the request is parsed from the received slices
// (no copy) into an arena-allocated message, exactly as gRPC's generated code would, and the
// response is serialized once, into the buffer gRPC sends. Only a body that fails to parse
// is walked a second time, to name what is wrong.
//
// Every coupond.v1 method is served this way (CouponScoring, Admin, Collector).

#include <cstddef>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/grpc_status.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"

namespace coupond::edge {

// The largest request body a server accepts unless told otherwise: gRPC's own default.
inline constexpr size_t kDefaultMaxRequestBytes = size_t{4} << 20;

// The trailing-metadata key under which a failed call carries its request id (a successful
// one carries it in the response): so that callers, and the access log, can match an error
// to the request that caused it.
inline constexpr char kRequestIdTrailer[] = "coupond-request-id";

// The receive limit to give gRPC (ServerBuilder::SetMaxReceiveMessageSize) for services
// that parse with `max_request_bytes`: twice that, at least 1 MiB more, at most INT_MAX.
// Bodies between the two limits are refused by the handler (counted); beyond gRPC's limit
// gRPC refuses them itself (not counted: no interceptor sees such a call).
int GrpcReceiveLimit(size_t max_request_bytes);

// Parses a request body into `message` (of any type; the error names its full name).
//  * InvalidArgument when there is no body (the client half-closed without a message);
//  * ResourceExhausted when the body is larger than `max_bytes`;
//  * InvalidArgument when the bytes are not a valid `message`: the field, and what is wrong
//    with it, where the wire data shows it (truncated, invalid UTF-8 in a string, a bad tag).
// `message` is cleared first.
absl::Status ParseRequestBody(const grpc::ByteBuffer& body, size_t max_bytes,
                              google::protobuf::Message* message);

// What is wrong with `bytes` as a serialized `type`: the first problem found, as
// "<field path>: <problem>" (e.g. "campaign.coupons[2].coupon_id: not valid UTF-8 (byte 3)"),
// or "" when the walk finds none. Exposed for the tests.
std::string DescribeWireProblem(const google::protobuf::Descriptor& type, absl::string_view bytes);

// Serializes `message` into `body`, replacing what it held (what gRPC's generated code
// does for a typed method).
absl::Status SerializeResponseBody(const google::protobuf::Message& message,
                                   grpc::ByteBuffer* body);

// Field 1 named `request_id` (a string) of a coupond.v1 message; "" when it has none.
std::string RequestIdOf(const google::protobuf::Message& message);

// When `request` has a request id: adds it to the call's trailing metadata
// (kRequestIdTrailer). For failed calls (a successful response carries its own). Must be
// called before the call's Finish.
void AttachRequestId(grpc::CallbackServerContext* context, const google::protobuf::Message& request);

// Sends protobuf's own log lines to spdlog: those about a message that failed to parse
// (protobuf logs each invalid UTF-8 string it meets at ERROR) at debug level, since a client
// can send any number of them and each is already answered INVALID_ARGUMENT and counted;
// the rest at warning level (critical for FATAL). Process-wide: call once from main.
void RouteProtobufLogsToSpdlog();

// Turns off absl::Mutex's deadlock detection for the process. Debian's Abseil is built with
// it on, and gRPC takes its locks through absl::Mutex, so every nested lock of every call
// updated a process-wide lock graph (absl GraphCycles and its mutex: 3.4% of coupond's CPU
// under Score load; bench/RESULTS-load.md). For the servers; the tests keep it on.
// Process-wide: call once, first thing in main.
void DisableMutexDeadlockDetection();

// Options of the arena one call's request and response live in: 16 KB first block,
// growing to 256 KB blocks (a 1,000-candidate Score needs ~100 KB). One arena per call
// frees the whole request and response, every string and sub-message, at once, instead of
// thousands of malloc/free pairs (bench/load_bench: parse + free of such a Score request fell
// from 49 µs to 21 µs with an arena).
google::protobuf::ArenaOptions CallArenaOptions();

// A unary raw method, whole: parses the request into an arena-allocated Request, runs
// `handler(const Request&, Response*) -> absl::Status`, serializes the response, finishes
// the call. Everything of the call's messages is freed before Finish. Errors of the
// handler are finished with the request's id attached (AttachRequestId). For handlers that
// finish inline; one that must finish later parses and serializes itself.
template <typename Request, typename Response, typename Handler>
grpc::ServerUnaryReactor* ServeUnary(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer& request_body,
                                     grpc::ByteBuffer* response_body, size_t max_request_bytes,
                                     Handler&& handler) {
  absl::Status status;
  {
    google::protobuf::Arena arena(CallArenaOptions());
    Request* request = google::protobuf::Arena::CreateMessage<Request>(&arena);
    status = ParseRequestBody(request_body, max_request_bytes, request);
    if (status.ok()) {
      Response* response = google::protobuf::Arena::CreateMessage<Response>(&arena);
      status = std::forward<Handler>(handler)(static_cast<const Request&>(*request), response);
      if (status.ok()) {
        status = SerializeResponseBody(*response, response_body);
      } else {
        AttachRequestId(context, *request);
      }
    }
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(common::ToGrpcStatus(status));
  return reactor;
}

}  // namespace coupond::edge

#endif  // COUPOND_EDGE_RAW_CALL_H_
