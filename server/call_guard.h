#ifndef COUPOND_SERVER_CALL_GUARD_H_
#define COUPOND_SERVER_CALL_GUARD_H_

// Drops work nobody waits for. A call whose deadline has passed, or whose caller has
// cancelled it, gets DEADLINE_EXCEEDED / CANCELLED at once instead of being scored: under
// overload the queue then drains at the cost of a check instead of a full request, and a
// client that has given up does not push out the answers of those that have not.
//
// gRPC itself cancels a call at its deadline, but a handler that starts after that point
// still runs unless it looks; the check below is that look, made at the top of the unary
// handlers (Score, Decide) and before an Assign solve is started (a running solve is
// stopped by AssignReactor::OnCancel).

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpc/support/time.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"

namespace coupond::server {

// Counts dropped calls and logs them: each at debug level, and a summary at warning level
// the first time and then at most once every 10 s (an overloaded server must not drown in
// its own log lines). Thread-safe.
class DroppedCalls {
 public:
  void Record(absl::string_view method, const absl::Status& why);
  uint64_t deadline_exceeded() const { return deadline_exceeded_.load(std::memory_order_relaxed); }
  uint64_t cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> deadline_exceeded_{0};
  std::atomic<uint64_t> cancelled_{0};
  std::atomic<int64_t> last_warning_unix_micros_{0};
};

// OK when the call should still be served: not cancelled, and at least `min_remaining`
// left before `deadline` at `now` (min_remaining 0: the deadline has not passed).
// Cancelled / DeadlineExceeded otherwise, with how late it is in the message.
// absl::InfiniteFuture() is "no deadline".
absl::Status CheckCallWanted(absl::Time deadline, absl::Time now, bool cancelled,
                             absl::Duration min_remaining);

// A call's deadline as gRPC holds it (ServerContext::raw_deadline(), any clock), as an
// absl::Time; absl::InfiniteFuture() for "no deadline". Not context.deadline(): that
// converts to std::chrono::system_clock's int64 nanoseconds, which overflows (to a time
// centuries in the past) for deadlines past the year 2262, such as Go's largest timeout,
// grpc-timeout: 2562047H, which Go clients send for "no deadline".
absl::Time DeadlineFromTimespec(gpr_timespec raw);

// The same for a live call: reads its deadline and cancellation, records a drop.
absl::Status CheckCallWanted(grpc::CallbackServerContext& context, absl::string_view method,
                             absl::Duration min_remaining, DroppedCalls* dropped);

// For the top of a unary callback handler:
//   if (auto* done = FinishIfUnwanted(context, "Score", min_remaining, &dropped_)) return done;
// Finishes the call (and returns its reactor) when it is not wanted any more; null when
// the handler should go on.
grpc::ServerUnaryReactor* FinishIfUnwanted(grpc::CallbackServerContext* context,
                                           absl::string_view method, absl::Duration min_remaining,
                                           DroppedCalls* dropped);

}  // namespace coupond::server

#endif  // COUPOND_SERVER_CALL_GUARD_H_
