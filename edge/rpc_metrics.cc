#include "edge/rpc_metrics.h"

#include <array>
#include <charconv>
#include <chrono>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "grpcpp/server_context.h"
#include "spdlog/spdlog.h"

namespace coupond::edge {
namespace {

constexpr char kOtherMethod[] = "other";
constexpr char kNoModel[] = "none";
constexpr std::string_view kCoupondMethodPrefix = "/coupond.v1.";

// "" outside the standard codes 0..16.
std::string_view StandardCodeName(grpc::StatusCode code) {
  static constexpr std::string_view kNames[] = {
      "OK",          "CANCELLED",        "UNKNOWN",      "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND",  "ALREADY_EXISTS", "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",       "UNAVAILABLE",  "DATA_LOSS",
      "UNAUTHENTICATED"};
  const int index = static_cast<int>(code);
  return index >= 0 && index < static_cast<int>(std::size(kNames)) ? kNames[index]
                                                                    : std::string_view();
}

bool IsBareLogfmtChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '/' || c == '@' || c == '+' || c == '-';
}


// Field 1 `request_id` of a coupond.v1 message; "" when it has none.
// REQUIRES: `message` points to a generated protobuf message (every coupond.v1 request and
// response); google::protobuf::Message is its first and only base, so the cast is exact.
std::string ReadRequestId(const void* message) {
  if (message == nullptr) return "";
  const auto* m = static_cast<const google::protobuf::Message*>(message);
  const google::protobuf::FieldDescriptor* field = m->GetDescriptor()->FindFieldByNumber(1);
  if (field == nullptr || field->name() != "request_id" || field->is_repeated() ||
      field->type() != google::protobuf::FieldDescriptor::TYPE_STRING) {
    return "";
  }
  return m->GetReflection()->GetString(*m, field);
}

std::string VersionLabel(uint64_t version) {
  return version == 0 ? std::string(kNoModel) : absl::StrCat(version);
}

// One per call: created when the call starts, records at PRE_SEND_STATUS (or, if the call
// ends without sending one, at destruction, as CANCELLED).
class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(RpcMetrics* metrics, grpc::experimental::ServerRpcInfo* info)
      : metrics_(metrics),
        info_(info),
        // Resolved now: for an unknown method, gRPC's copy of the name dies with the call's
        // context, which may be before this interceptor.
        method_(metrics->MethodLabel(info->method() != nullptr ? info->method() : "")),
        start_(std::chrono::steady_clock::now()),
        log_(spdlog::should_log(spdlog::level::debug)),
        read_ids_(log_ && method_.substr(0, kCoupondMethodPrefix.size()) == kCoupondMethodPrefix) {}

  // gRPC destroys interceptors while it destroys the call's context: no peer() here.
  ~MetricsInterceptor() override {
    Finish(grpc::StatusCode::CANCELLED, /*read_peer=*/false);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (read_ids_ && methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        request_id_.empty()) {
      request_id_ = ReadRequestId(methods->GetRecvMessage());
    }
    if (read_ids_ && methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE) &&
        response_id_.empty()) {
      // Null when the message was already serialized; the request's id is used then.
      response_id_ = ReadRequestId(methods->GetSendMessage());
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      Finish(methods->GetSendStatus().error_code(), /*read_peer=*/true);
    }
    methods->Proceed();
  }

 private:
  void Finish(grpc::StatusCode code, bool read_peer) {
    if (recorded_.exchange(true, std::memory_order_relaxed)) return;  // once per call
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const uint64_t version = metrics_->CurrentModelVersion();
    metrics_->RecordLabelled(method_, code, version, seconds);
    if (!log_) return;
    std::string peer;
    if (grpc::ServerContextBase* context = info_->server_context(); read_peer && context != nullptr) {
      peer = context->peer();
    }
    spdlog::debug("rpc method={} code={} latency_us={:.0f} model_version={} request_id={} peer={}",
                  LogfmtValue(method_), StatusCodeName(code), seconds * 1e6, VersionLabel(version),
                  LogfmtValue(response_id_.empty() ? request_id_ : response_id_), LogfmtValue(peer));
  }

  RpcMetrics* const metrics_;
  grpc::experimental::ServerRpcInfo* const info_;
  const std::string_view method_;  // a label owned by metrics_
  const std::chrono::steady_clock::time_point start_;
  const bool log_;
  const bool read_ids_;
  std::atomic<bool> recorded_{false};
  std::string request_id_;
  std::string response_id_;
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(RpcMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(metrics_, info);
  }

 private:
  RpcMetrics* const metrics_;
};

}  // namespace

std::string LogfmtValue(std::string_view value) {
  bool bare = !value.empty();
  for (char c : value) bare = bare && IsBareLogfmtChar(c);
  if (bare) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(&out, "\\x%02x", static_cast<unsigned char>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string StatusCodeName(grpc::StatusCode code) {
  const std::string_view name = StandardCodeName(code);
  return name.empty() ? absl::StrCat("UNKNOWN_CODE_", static_cast<int>(code)) : std::string(name);
}

RpcMetrics::RpcMetrics(CounterFamily<3> requests, HistogramFamily<2> latency,
                       std::function<uint64_t()> model_version)
    : requests_(requests),
      latency_(latency),
      model_version_(std::move(model_version)),
      methods_(1, [](const std::vector<std::string>& values) {
        return std::make_unique<std::string>(values[0]);
      }) {}

absl::StatusOr<std::unique_ptr<RpcMetrics>> RpcMetrics::Create(
    MetricsRegistry* registry, std::function<uint64_t()> model_version) {
  if (registry == nullptr) return absl::InvalidArgumentError("RpcMetrics: registry is null");
  absl::StatusOr<CounterFamily<3>> requests = registry->AddCounter<3>(
      "coupond_grpc_requests_total",
      "gRPC calls finished, by full method name, status code and the model version served at "
      "the call's end (\"none\" before the first model).",
      {"method", "code", "model_version"});
  if (!requests.ok()) return requests.status();
  absl::StatusOr<HistogramFamily<2>> latency = registry->AddHistogram<2>(
      "coupond_grpc_request_duration_seconds",
      "gRPC call latency in seconds, from the call's arrival to its status being sent, by full "
      "method name and model version.",
      {"method", "model_version"}, LatencyBucketsSeconds());
  if (!latency.ok()) return latency.status();
  return std::unique_ptr<RpcMetrics>(new RpcMetrics(*requests, *latency, std::move(model_version)));
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
RpcMetrics::NewInterceptorFactory() {
  return std::make_unique<MetricsInterceptorFactory>(this);
}

std::string_view RpcMetrics::MethodLabel(std::string_view method) {
  const std::array<std::string_view, 1> key = {method};
  if (const std::string* known = methods_.Find(key)) return *known;
  // Approximate cap: racing first calls of new names may pass it by the number of threads.
  if (num_methods_.load(std::memory_order_relaxed) >= kMaxMethods) return kOtherMethod;
  num_methods_.fetch_add(1, std::memory_order_relaxed);
  return methods_.Get(key);
}

void RpcMetrics::RecordLabelled(std::string_view method_label, grpc::StatusCode code,
                                uint64_t model_version, double latency_seconds) {
  char version_buffer[24];
  std::string_view version = kNoModel;
  if (model_version != 0) {
    const auto [end, ec] =
        std::to_chars(version_buffer, version_buffer + sizeof(version_buffer), model_version);
    version = std::string_view(version_buffer, static_cast<size_t>(end - version_buffer));
  }
  std::string unknown_code;
  std::string_view code_label = StandardCodeName(code);
  if (code_label.empty()) {
    unknown_code = StatusCodeName(code);
    code_label = unknown_code;
  }
  requests_.Get({method_label, code_label, version}).Increment();
  latency_.Get({method_label, version}).Observe(latency_seconds);
}

}  // namespace coupond::edge
