#ifndef COUPOND_CLIENT_COLLECTOR_CLIENT_H_
#define COUPOND_CLIENT_COLLECTOR_CLIENT_H_

// A client for coupond.v1.Collector (a collectord, or a coupond run with --collector_db):
// outcome reports and counters, results as absl::StatusOr.

#include <memory>

#include "absl/status/statusor.h"
#include "client/coupond_client.h"
#include "coupond/v1/collector.grpc.pb.h"
#include "grpcpp/client_context.h"

namespace coupond::client {

// Thread-safe.
class CollectorClient {
 public:
  static absl::StatusOr<std::unique_ptr<CollectorClient>> Create(const ClientOptions& options);

  // OK means stored durably (see collector.proto); the disposition says how.
  absl::StatusOr<v1::ReportOutcomeResponse> ReportOutcome(const v1::ReportOutcomeRequest& request) const;
  absl::StatusOr<v1::LogDecisionsResponse> LogDecisions(const v1::LogDecisionsRequest& request) const;
  absl::StatusOr<v1::GetCollectorStatsResponse> GetStats() const;

 private:
  CollectorClient(const ClientOptions& options, std::shared_ptr<grpc::Channel> channel)
      : options_(options), stub_(v1::Collector::NewStub(std::move(channel))) {}

  // Sets the call's deadline and, with options_.collector_token, its authorization.
  void Prepare(grpc::ClientContext* context) const;

  const ClientOptions options_;
  std::unique_ptr<v1::Collector::Stub> stub_;
};

}  // namespace coupond::client

#endif  // COUPOND_CLIENT_COLLECTOR_CLIENT_H_
