#ifndef COUPOND_SERVER_ASSIGN_REACTOR_H_
#define COUPOND_SERVER_ASSIGN_REACTOR_H_

// The server-streaming Assign call. The solve can take seconds for large populations, so
// it runs on a worker thread of its own, never on gRPC's callback threads; the results are
// then streamed in chunks, each built when the previous write has completed (so a slow
// client applies back-pressure instead of making the server buffer everything as protos).

#include <atomic>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "core/assignment.h"
#include "core/campaign.h"
#include "coupond/v1/coupon_scoring.grpc.pb.h"

namespace coupond::server {

// Counts running Assign calls, bounds them, and lets the service wait for the last one at
// shutdown. Thread-safe.
class AssignJobs {
 public:
  explicit AssignJobs(int max_concurrent) : max_(max_concurrent) {}
  // False when max_concurrent jobs are already running.
  bool TryStart();
  void Done();
  // Blocks until no job runs.
  void WaitForNone();

 private:
  const int max_;
  absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
};

// Starts the call: either finishes it at once with `early_error` (when not OK), or runs the
// solve on a new thread and streams the result. Deletes itself when the call is done.
// REQUIRES: `jobs` outlives the call, and jobs->TryStart() succeeded when early_error is OK
// (the reactor calls jobs->Done()).
class AssignReactor final : public grpc::ServerWriteReactor<v1::AssignResponse> {
 public:
  AssignReactor(std::string request_id, std::unique_ptr<core::CampaignPlan> plan,
                core::AssignmentOptions options, uint32_t chunk_size, AssignJobs* jobs);
  // For a call refused before any work: finishes with `error`.
  explicit AssignReactor(const grpc::Status& error);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  void Solve();       // worker thread
  void WriteNext();   // builds and writes the next chunk, or the summary, or finishes

  const std::string request_id_;
  std::unique_ptr<core::CampaignPlan> plan_;
  const core::AssignmentOptions options_;
  const uint32_t chunk_size_ = 0;
  AssignJobs* const jobs_ = nullptr;

  core::AssignmentResult result_;
  double solve_seconds_ = 0.0;
  size_t next_ = 0;            // next assignment to stream
  bool summary_sent_ = false;
  v1::AssignResponse message_;  // the message being written (must live until OnWriteDone)
};

}  // namespace coupond::server

#endif  // COUPOND_SERVER_ASSIGN_REACTOR_H_
