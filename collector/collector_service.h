#ifndef COUPOND_COLLECTOR_COLLECTOR_SERVICE_H_
#define COUPOND_COLLECTOR_COLLECTOR_SERVICE_H_

// The gRPC edge of coupond.v1.Collector over a CollectorStore. Handlers parse the request
// (every method is served raw, edge/raw_call.h: a body that is not a valid request is
// INVALID_ARGUMENT naming the type and field, one over max_request_bytes RESOURCE_EXHAUSTED),
// validate, call the store and convert its status once. The writes (LogDecisions,
// ReportOutcome) never wait on gRPC's callback threads, which in coupond also serve Score:
// each handler hands its write to the store's group-commit writer (CollectorStore's *Async
// forms) and returns; the writer thread finishes the call once the write is committed
// (a WAL append plus one fsync per group, see collector_store.h).
//
// Writes (LogDecisions, ReportOutcome) become training data (`couponctl export` appends
// them to the logs), so with a write token they are taken only from callers that present it
// ("authorization: Bearer <token>", edge/bearer_token.h); transport security (TLS, mutual
// TLS) is the server's (edge/tls.h), with the same flags in collectord and coupond.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "collector/collector_store.h"
#include "coupond/v1/collector.grpc.pb.h"
#include "edge/raw_call.h"

namespace coupond::collector {

struct CollectorServiceOptions {
  // Request bodies over this many bytes are RESOURCE_EXHAUSTED. Default
  // edge::kDefaultMaxRequestBytes (4 MiB, gRPC's own default).
  size_t max_request_bytes = edge::kDefaultMaxRequestBytes;
  // The bearer token LogDecisions and ReportOutcome must carry; a write without it (or with
  // another) is UNAUTHENTICATED before its body is parsed, and stores nothing.
  // GetCollectorStats (counters, the same as /metrics) needs none. Empty (default): writes
  // are taken from anyone who reaches the port. REQUIRES: empty or passed
  // edge::ReadTokenFile's checks (see ReadCollectorWriteToken).
  std::string write_token;
};

// Where and how a collector's port takes writes, for ReadCollectorWriteToken.
struct CollectorWriteAuthOptions {
  // --collector_token_file: the file holding the write token; empty: none.
  std::string token_file;
  // Whether the port serves TLS; without it a token travels in the clear (a warning).
  bool tls = false;
  // The address the port listens on (host:port, [v6]:port or unix:path).
  std::string listen_address;
  // --collector_allow_unauthenticated_writes: take writes without a token on an address
  // beyond loopback. Default false.
  bool allow_unauthenticated = false;
};

// The write token for CollectorServiceOptions::write_token (edge::ReadTokenFile's rules,
// errors name the file). Without a token file, writes are open to whoever reaches the port,
// and they become training data, so that is allowed only where no one else can reach it: a
// loopback address (127.0.0.0/8, ::1, localhost) or a unix socket, or when the operator says
// so with allow_unauthenticated (a warning). Otherwise INVALID_ARGUMENT naming the flags.
// Returns "" when no token is required.
absl::StatusOr<std::string> ReadCollectorWriteToken(const CollectorWriteAuthOptions& options);

// Whether `listen_address` (host:port, [v6]:port, unix:path) can be reached only from this
// machine: loopback hosts and unix sockets. 0.0.0.0, [::] and every other host are not.
bool IsLocalOnlyListenAddress(absl::string_view listen_address);

// Collector with every method raw (the generated code has no alias for that).
using RawCollectorService = v1::Collector::WithRawCallbackMethod_LogDecisions<
    v1::Collector::WithRawCallbackMethod_ReportOutcome<
        v1::Collector::WithRawCallbackMethod_GetCollectorStats<v1::Collector::Service>>>;

// Thread-safe. `store` must outlive the service.
class CollectorService final : public RawCollectorService {
 public:
  CollectorService(CollectorStore* store, CollectorServiceOptions options)
      : store_(store), options_(std::move(options)) {}
  explicit CollectorService(CollectorStore* store) : CollectorService(store, {}) {}

  grpc::ServerUnaryReactor* LogDecisions(grpc::CallbackServerContext* context,
                                         const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ReportOutcome(grpc::CallbackServerContext* context,
                                          const grpc::ByteBuffer* request,
                                          grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetCollectorStats(grpc::CallbackServerContext* context,
                                              const grpc::ByteBuffer* request,
                                              grpc::ByteBuffer* response) override;

  // Writes refused for a missing or wrong token since start.
  uint64_t refused_writes() const;

 private:
  // OK when no write token is set or the call carries it; otherwise Unauthenticated (a
  // message that never echoes what was sent), counted, and logged at most every 10 s.
  absl::Status AuthenticateWrite(const grpc::CallbackServerContext& context,
                                 absl::string_view method);

  CollectorStore* const store_;
  const CollectorServiceOptions options_;
  mutable absl::Mutex mu_;
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_refusal_log_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace coupond::collector

#endif  // COUPOND_COLLECTOR_COLLECTOR_SERVICE_H_
