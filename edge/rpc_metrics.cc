#include "edge/rpc_metrics.h"

#include <array>
#include <chrono>
#include <iterator>
#include <utility>

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "edge/raw_call.h"
#include "google/protobuf/descriptor.h"
#include "grpc/support/time.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
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

// The fully qualified name of a method's output type: "/coupond.v1.CouponScoring/Score"
// -> its descriptor in protobuf's generated pool; null when the pool has no such method.
const google::protobuf::Descriptor* ResponseType(std::string_view method) {
  if (method.size() < 2 || method[0] != '/') return nullptr;
  std::string dotted(method.substr(1));
  const size_t slash = dotted.rfind('/');
  if (slash == std::string::npos) return nullptr;
  dotted[slash] = '.';
  const google::protobuf::MethodDescriptor* m =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(dotted);
  return m == nullptr ? nullptr : m->output_type();
}

// Field 1 of a serialized message when it is a string named `request_id` in `type` (as in
// most coupond.v1 responses); "" otherwise. Reads only the
// first field: protobuf writes fields in number order, so field 1, when set, comes first.
std::string ReadRequestId(const google::protobuf::Descriptor* type, grpc::ByteBuffer* message) {
  if (type == nullptr || message == nullptr || !message->Valid()) return "";
  const google::protobuf::FieldDescriptor* field = type->FindFieldByNumber(1);
  if (field == nullptr || field->name() != "request_id" || field->is_repeated() ||
      field->type() != google::protobuf::FieldDescriptor::TYPE_STRING) {
    return "";
  }
  std::vector<grpc::Slice> slices;
  if (!message->Dump(&slices).ok()) return "";
  std::string head;  // a tag, a length and up to 256 bytes of id are enough
  for (const grpc::Slice& s : slices) {
    head.append(reinterpret_cast<const char*>(s.begin()), std::min<size_t>(s.size(), 300 - head.size()));
    if (head.size() >= 300) break;
  }
  if (head.size() < 2 || head[0] != '\x0A') return "";  // field 1, length-delimited
  size_t length = 0;
  size_t pos = 1;
  for (int shift = 0; pos < head.size() && shift < 14; shift += 7) {
    const auto b = static_cast<unsigned char>(head[pos++]);
    length |= static_cast<size_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) {
      return length <= head.size() - pos ? head.substr(pos, length) : std::string();
    }
  }
  return "";
}

// The trailer a failed coupond.v1 call carries its request id in (edge/raw_call.h).
std::string TrailerRequestId(const std::multimap<std::string, std::string>* trailers) {
  if (trailers == nullptr) return "";
  auto it = trailers->find(kRequestIdTrailer);
  return it == trailers->end() ? std::string() : it->second;
}

std::string VersionLabel(uint64_t version) {
  return version == 0 ? std::string(kNoModel) : absl::StrCat(version);
}

// gRPC's timers fire on a millisecond clock, so a call cancelled by its deadline may see
// the close a little before the deadline as gpr_now reads it.
constexpr gpr_timespec kDeadlineSlack = {0, 2'000'000, GPR_TIMESPAN};

// The code of a call that ended without the server sending a status: its deadline passed
// (within the slack), or its client went away.
grpc::StatusCode UnansweredCode(gpr_timespec deadline) {
  const gpr_timespec now = gpr_time_add(gpr_now(deadline.clock_type), kDeadlineSlack);
  return gpr_time_cmp(now, deadline) >= 0 ? grpc::StatusCode::DEADLINE_EXCEEDED
                                          : grpc::StatusCode::CANCELLED;
}

// One per call: created when the call starts, records when gRPC reports the call closed
// (POST_RECV_CLOSE), or at destruction when it never does.
class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(RpcMetrics* metrics, grpc::experimental::ServerRpcInfo* info)
      : metrics_(metrics),
        info_(info),
        // Resolved now: for an unknown method, gRPC's copy of the name dies with the call's
        // context, which may be before this interceptor.
        method_(metrics->MethodLabel(info->method() != nullptr ? info->method() : "")),
        start_(std::chrono::steady_clock::now()),
        // Kept for the destructor, which may run after the context is gone.
        deadline_(info->server_context() != nullptr ? info->server_context()->raw_deadline()
                                                    : gpr_inf_future(GPR_CLOCK_MONOTONIC)),
        log_(spdlog::should_log(spdlog::level::debug)),
        read_ids_(log_ && method_.substr(0, kCoupondMethodPrefix.size()) == kCoupondMethodPrefix) {}

  // gRPC destroys interceptors while it destroys the call's context: no peer() here. A call
  // torn down without a close (e.g. one whose deadline passed before its handler ran) is
  // recorded here, against the deadline it had.
  ~MetricsInterceptor() override {
    const int sent = sent_code_.load(std::memory_order_acquire);
    Finish(sent >= 0 ? static_cast<grpc::StatusCode>(sent) : UnansweredCode(deadline_),
           /*context=*/nullptr);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (read_ids_ && methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      absl::MutexLock lock(&ids_mu_);
      if (response_id_.empty()) {
        response_id_ = ReadRequestId(ResponseType(method_), methods->GetSerializedSendMessage());
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      if (read_ids_) {
        absl::MutexLock lock(&ids_mu_);
        request_id_ = TrailerRequestId(methods->GetSendTrailingMetadata());
      }
      sent_at_ns_.store(NanosSinceStart(), std::memory_order_relaxed);
      sent_code_.store(static_cast<int>(methods->GetSendStatus().error_code()),
                       std::memory_order_release);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_CLOSE)) {
      grpc::ServerContextBase* context = info_->server_context();
      const int sent = sent_code_.load(std::memory_order_acquire);
      grpc::StatusCode code = sent >= 0 ? static_cast<grpc::StatusCode>(sent)
                                        : grpc::StatusCode::CANCELLED;
      // The close is final here, so IsCancelled is exact (it is not while a call runs).
      if (context != nullptr && context->IsCancelled()) {
        code = UnansweredCode(context->raw_deadline());
        sent_at_ns_.store(-1, std::memory_order_relaxed);  // latency: until the close
      }
      Finish(code, context);
    }
    methods->Proceed();
  }

 private:
  int64_t NanosSinceStart() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                                start_)
        .count();
  }

  // `context` null: the peer is not read (the context is being destroyed).
  void Finish(grpc::StatusCode code, grpc::ServerContextBase* context) {
    if (recorded_.exchange(true, std::memory_order_acq_rel)) return;  // once per call
    const int64_t sent_at = sent_at_ns_.load(std::memory_order_relaxed);
    const double seconds = static_cast<double>(sent_at >= 0 ? sent_at : NanosSinceStart()) * 1e-9;
    metrics_->RecordLabelled(method_, code, seconds);
    if (!log_) return;
    const std::string peer = context != nullptr ? context->peer() : std::string();
    std::string id;
    {
      absl::MutexLock lock(&ids_mu_);
      id = response_id_.empty() ? request_id_ : response_id_;
    }
    spdlog::debug("rpc method={} code={} latency_us={:.0f} model_version={} request_id={} peer={}",
                  LogfmtValue(method_), StatusCodeName(code), seconds * 1e6,
                  VersionLabel(metrics_->CurrentModelVersion()), LogfmtValue(id),
                  LogfmtValue(peer));
  }

  RpcMetrics* const metrics_;
  grpc::experimental::ServerRpcInfo* const info_;
  const std::string_view method_;  // a label owned by metrics_
  const std::chrono::steady_clock::time_point start_;
  const gpr_timespec deadline_;
  const bool log_;
  const bool read_ids_;
  std::atomic<bool> recorded_{false};
  // The status the server sent (-1: none yet) and when, in ns since start_ (-1: none).
  // Set on the thread that finishes the call, read on the one that reports its close.
  std::atomic<int> sent_code_{-1};
  std::atomic<int64_t> sent_at_ns_{-1};
  absl::Mutex ids_mu_;  // only taken at debug level
  std::string request_id_ ABSL_GUARDED_BY(ids_mu_);
  std::string response_id_ ABSL_GUARDED_BY(ids_mu_);
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

RpcMetrics::RpcMetrics(CounterFamily<2> requests, HistogramFamily<1> latency,
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
  absl::StatusOr<CounterFamily<2>> requests = registry->AddCounter<2>(
      "coupond_grpc_requests_total",
      "gRPC calls finished, by full method name and status code (CANCELLED or "
      "DEADLINE_EXCEEDED when the call was cancelled, whatever the handler answered).",
      {"method", "code"});
  if (!requests.ok()) return requests.status();
  absl::StatusOr<HistogramFamily<1>> latency = registry->AddHistogram<1>(
      "coupond_grpc_request_duration_seconds",
      "gRPC call latency in seconds, from the call's arrival to its status being sent (or its "
      "cancellation), by full method name.",
      {"method"}, LatencyBucketsSeconds());
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
                                double latency_seconds) {
  std::string unknown_code;
  std::string_view code_label = StandardCodeName(code);
  if (code_label.empty()) {
    unknown_code = StatusCodeName(code);
    code_label = unknown_code;
  }
  requests_.Get({method_label, code_label}).Increment();
  latency_.Get({method_label}).Observe(latency_seconds);
}

}  // namespace coupond::edge
