#ifndef COUPOND_CLIENT_COUPOND_CLIENT_H_
#define COUPOND_CLIENT_COUPOND_CLIENT_H_

// A small C++ client for a coupond server: typed calls with deadlines, results as
// absl::StatusOr (the server's gRPC status code and message carried over unchanged).

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coupond/v1/coupon_scoring.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/channel.h"

namespace coupond::client {

struct ClientOptions {
  // gRPC target, e.g. "localhost:8980" or "dns:///coupond.internal:8980".
  // Default "localhost:8980".
  std::string target = "localhost:8980";
  // Deadline of each call. Default 5 s.
  absl::Duration timeout = absl::Seconds(5);
};

// The channel a client of `options` talks over (shared by CoupondClient and
// CollectorClient). InvalidArgument for an empty target or a non-positive timeout.
absl::StatusOr<std::shared_ptr<grpc::Channel>> NewChannel(const ClientOptions& options);

// Thread-safe: one client may be shared by many threads (gRPC channels are).
class CoupondClient {
 public:
  // Creates the channel (connects lazily). InvalidArgument on an empty target.
  static absl::StatusOr<std::unique_ptr<CoupondClient>> Create(const ClientOptions& options);

  absl::StatusOr<v1::ScoreResponse> Score(const v1::ScoreRequest& request) const;
  absl::StatusOr<v1::GetModelInfoResponse> GetModelInfo(
      const v1::GetModelInfoRequest& request = {}) const;

  // Runs Assign, handing each streamed message to `on_message` as it arrives (chunks of
  // assignments, the last one with the summary). Returns the final summary. The call's
  // deadline is `timeout` (solves of large populations take longer than one Score: pass a
  // generous one). An error from `on_message` cancels the call and is returned.
  absl::StatusOr<v1::AssignSummary> Assign(
      const v1::AssignRequest& request, absl::Duration timeout,
      const std::function<absl::Status(const v1::AssignResponse&)>& on_message) const;

  absl::StatusOr<v1::DecideResponse> Decide(const v1::DecideRequest& request) const;
  absl::StatusOr<v1::ListCampaignsResponse> ListCampaigns(
      const v1::ListCampaignsRequest& request = {}) const;

  // The grpc.health.v1 status of `service` ("" is the server as a whole).
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> CheckHealth(
      const std::string& service = "") const;
  // Polls CheckHealth until SERVING; DeadlineExceeded after `timeout`, with the last answer.
  absl::Status WaitUntilServing(absl::Duration timeout, const std::string& service = "") const;

 private:
  CoupondClient(const ClientOptions& options, std::shared_ptr<grpc::Channel> channel);

  const ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::CouponScoring::Stub> scoring_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

// The client-side edge conversion: grpc::Status to absl::Status, code and message kept.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace coupond::client

#endif  // COUPOND_CLIENT_COUPOND_CLIENT_H_
