#include "server/call_guard.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "spdlog/spdlog.h"

namespace coupond::server {

void DroppedCalls::Record(absl::string_view method, const absl::Status& why) {
  const uint64_t deadline = absl::IsDeadlineExceeded(why)
                                ? deadline_exceeded_.fetch_add(1, std::memory_order_relaxed) + 1
                                : deadline_exceeded();
  const uint64_t cancelled = absl::IsCancelled(why)
                                 ? cancelled_.fetch_add(1, std::memory_order_relaxed) + 1
                                 : this->cancelled();
  spdlog::debug("dropped {} call: {}", std::string(method), std::string(why.message()));
  const int64_t now = absl::ToUnixMicros(absl::Now());
  int64_t last = last_warning_unix_micros_.load(std::memory_order_relaxed);
  if (now - last < 10'000'000) return;
  // One thread wins the right to warn for this period.
  if (!last_warning_unix_micros_.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    return;
  }
  spdlog::warn(
      "dropped a {} call without doing its work ({}); dropped so far: {} past their "
      "deadline, {} cancelled by the caller",
      std::string(method), std::string(why.message()), deadline, cancelled);
}

absl::Status CheckCallWanted(absl::Time deadline, absl::Time now, bool cancelled,
                             absl::Duration min_remaining) {
  if (cancelled) return absl::CancelledError("the caller cancelled the call before it was served");
  if (deadline == absl::InfiniteFuture()) return absl::OkStatus();
  const absl::Duration left = deadline - now;
  if (left <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError(absl::StrCat("dropped: the call's deadline passed ",
                                                    absl::FormatDuration(-left),
                                                    " before the server got to it"));
  }
  if (left < min_remaining) {
    return absl::DeadlineExceededError(absl::StrCat("dropped: ", absl::FormatDuration(left),
                                                    " left before the call's deadline, less than "
                                                    "the server's --min_deadline_remaining of ",
                                                    absl::FormatDuration(min_remaining)));
  }
  return absl::OkStatus();
}

absl::Time DeadlineFromTimespec(gpr_timespec raw) {
  // gpr_convert_clock_type saturates to the infinite future instead of overflowing.
  const gpr_timespec t = gpr_convert_clock_type(raw, GPR_CLOCK_REALTIME);
  if (gpr_time_cmp(t, gpr_inf_future(GPR_CLOCK_REALTIME)) >= 0) return absl::InfiniteFuture();
  if (gpr_time_cmp(t, gpr_inf_past(GPR_CLOCK_REALTIME)) <= 0) return absl::InfinitePast();
  // absl::Time holds +-2^63 seconds: any gpr_timespec fits.
  return absl::FromUnixSeconds(t.tv_sec) + absl::Nanoseconds(t.tv_nsec);
}

absl::Status CheckCallWanted(grpc::CallbackServerContext& context, absl::string_view method,
                             absl::Duration min_remaining, DroppedCalls* dropped) {
  const absl::Time when = DeadlineFromTimespec(context.raw_deadline());
  absl::Status status = CheckCallWanted(when, absl::Now(), context.IsCancelled(), min_remaining);
  if (!status.ok() && dropped != nullptr) dropped->Record(method, status);
  return status;
}

grpc::ServerUnaryReactor* FinishIfUnwanted(grpc::CallbackServerContext* context,
                                           absl::string_view method, absl::Duration min_remaining,
                                           DroppedCalls* dropped) {
  const absl::Status status = CheckCallWanted(*context, method, min_remaining, dropped);
  if (status.ok()) return nullptr;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(common::ToGrpcStatus(status));
  return reactor;
}

}  // namespace coupond::server
