#ifndef COUPOND_SERVER_ASSIGN_REACTOR_H_
#define COUPOND_SERVER_ASSIGN_REACTOR_H_

// The server-streaming Assign call. The solve can take seconds for large populations, so
// it runs on a worker thread of its own, never on gRPC's callback threads; the results are
// then streamed in chunks, each built when the previous write has completed (so a slow
// client applies back-pressure instead of making the server buffer everything as protos).
// The stream keeps the proto's contract (AssignResponse): messages of `assignments` only,
// then one final message with only `summary` (every message carries `request_id`).
// Messages are serialized here: the method is served raw (edge/raw_call.h).

#include <atomic>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "core/assignment.h"
#include "core/campaign.h"
#include "core/user_key.h"
#include "coupond/v1/coupon_scoring.grpc.pb.h"
#include "grpcpp/support/byte_buffer.h"

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

// Runs one Assign call: on a new thread it resolves the campaign against the model (which
// for a population of millions is real work, so never on a gRPC thread), solves, and then
// streams the result. Deletes itself when the call is done.
// REQUIRES: `jobs` outlives the call, and jobs->TryStart() succeeded (the reactor calls
// jobs->Done() once its solve has ended, before anything reaches the client).
class AssignReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  struct Options {
    int solver_threads = 0;       // 0: one per hardware thread
    uint32_t chunk_size = 10000;  // assignments per message
    int64_t now_unix_seconds = 0; // replaces an unset campaign.as_of_unix_seconds
    // Keys user ids (explicit population, eligibility lists) on the solve thread; the
    // stream answers an explicit population with the ids the caller sent. Null: raw ids.
    std::shared_ptr<const core::UserKeyer> user_keyer;
    // Most users the resolved population may hold (all_users: the model's users, or its
    // segments' members); more is RESOURCE_EXHAUSTED before the solve.
    size_t max_population = SIZE_MAX;
    // After the call, give the heap's free pages back to the kernel
    // (ReleaseFreeHeapMemory, server/heap_memory.h): a large Assign allocates ~100 MiB
    // on threads of its own, and glibc keeps what they freed in its arenas. Default true.
    bool release_memory_after = true;
  };
  AssignReactor(std::string request_id, v1::AssignRequest request,
                std::shared_ptr<const core::ModelSnapshot> model, const Options& options,
                AssignJobs* jobs);
  // For a call refused before any work: finishes with `error`.
  explicit AssignReactor(const grpc::Status& error);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  void Run();              // worker thread: plan, solve, then the first write
  absl::Status PlanAndSolve();
  void WriteNext();        // builds and writes the next chunk, or the summary, or finishes

  const std::string request_id_;
  const v1::AssignRequest request_;
  const std::shared_ptr<const core::ModelSnapshot> model_;
  const Options options_;
  AssignJobs* const jobs_ = nullptr;

  absl::Mutex mu_;  // guards plan_ against OnCancel while the worker creates it
  std::unique_ptr<core::CampaignPlan> plan_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  const core::CampaignPlan* plan_for_writes_ = nullptr;  // set before the first write

  core::AssignmentResult result_;
  double solve_seconds_ = 0.0;
  size_t next_ = 0;            // next assignment to stream
  bool summary_sent_ = false;
  v1::AssignResponse message_;  // reused for each message, to keep its buffers
  grpc::ByteBuffer wire_;       // message_ serialized: being written until OnWriteDone
};

}  // namespace coupond::server

#endif  // COUPOND_SERVER_ASSIGN_REACTOR_H_
