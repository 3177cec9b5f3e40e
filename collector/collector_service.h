#ifndef COUPOND_COLLECTOR_COLLECTOR_SERVICE_H_
#define COUPOND_COLLECTOR_COLLECTOR_SERVICE_H_

// The gRPC edge of coupond.v1.Collector over a CollectorStore. Handlers parse the request
// (every method is served raw, edge/raw_call.h: a body that is not a valid request is
// INVALID_ARGUMENT naming the type and field, one over max_request_bytes RESOURCE_EXHAUSTED),
// validate, call the store and convert its status once. They write to RocksDB on gRPC's
// callback threads: a synced write is a WAL append plus one fsync (see collector_store.h),
// which blocks that callback thread for the fsync's duration; a dedicated thread pool would
// keep it free.

#include <cstddef>

#include "collector/collector_store.h"
#include "coupond/v1/collector.grpc.pb.h"
#include "edge/raw_call.h"

namespace coupond::collector {

// Collector with every method raw (the generated code has no alias for that).
using RawCollectorService = v1::Collector::WithRawCallbackMethod_LogDecisions<
    v1::Collector::WithRawCallbackMethod_ReportOutcome<
        v1::Collector::WithRawCallbackMethod_GetCollectorStats<v1::Collector::Service>>>;

// Thread-safe. `store` must outlive the service.
class CollectorService final : public RawCollectorService {
 public:
  explicit CollectorService(CollectorStore* store,
                            size_t max_request_bytes = edge::kDefaultMaxRequestBytes)
      : store_(store), max_request_bytes_(max_request_bytes) {}

  grpc::ServerUnaryReactor* LogDecisions(grpc::CallbackServerContext* context,
                                         const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ReportOutcome(grpc::CallbackServerContext* context,
                                          const grpc::ByteBuffer* request,
                                          grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetCollectorStats(grpc::CallbackServerContext* context,
                                              const grpc::ByteBuffer* request,
                                              grpc::ByteBuffer* response) override;

 private:
  CollectorStore* const store_;
  const size_t max_request_bytes_;
};

}  // namespace coupond::collector

#endif  // COUPOND_COLLECTOR_COLLECTOR_SERVICE_H_
