#ifndef COUPOND_COLLECTOR_COLLECTOR_SERVICE_H_
#define COUPOND_COLLECTOR_COLLECTOR_SERVICE_H_

// The gRPC edge of coupond.v1.Collector over a CollectorStore. Handlers validate, call the
// store and convert its status once. They write to RocksDB on gRPC's callback threads: a
// synced write is a WAL append plus one fsync (see collector_store.h), which blocks that
// callback thread for the fsync's duration; a dedicated thread pool would keep it free.

#include "collector/collector_store.h"
#include "coupond/v1/collector.grpc.pb.h"

namespace coupond::collector {

// Thread-safe. `store` must outlive the service.
class CollectorService final : public v1::Collector::CallbackService {
 public:
  explicit CollectorService(CollectorStore* store) : store_(store) {}

  grpc::ServerUnaryReactor* LogDecisions(grpc::CallbackServerContext* context,
                                         const v1::LogDecisionsRequest* request,
                                         v1::LogDecisionsResponse* response) override;
  grpc::ServerUnaryReactor* ReportOutcome(grpc::CallbackServerContext* context,
                                          const v1::ReportOutcomeRequest* request,
                                          v1::ReportOutcomeResponse* response) override;
  grpc::ServerUnaryReactor* GetCollectorStats(grpc::CallbackServerContext* context,
                                              const v1::GetCollectorStatsRequest* request,
                                              v1::GetCollectorStatsResponse* response) override;

 private:
  CollectorStore* const store_;
};

}  // namespace coupond::collector

#endif  // COUPOND_COLLECTOR_COLLECTOR_SERVICE_H_
