// The decision to drop a call nobody waits for: every case of deadline, cancellation and
// --min_deadline_remaining, and the drop counters. (The live path, a real server answering
// DEADLINE_EXCEEDED, is in serving_integration_test.)

#include "server/call_guard.h"

#include <cstdint>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::server {
namespace {

using ::coupond::testing::StatusIs;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

TEST(CheckCallWantedTest, ServesCallsWithTimeLeftOrNoDeadline) {
  EXPECT_OK(CheckCallWanted(kNow + absl::Seconds(1), kNow, false, absl::ZeroDuration()));
  EXPECT_OK(CheckCallWanted(kNow + absl::Nanoseconds(1), kNow, false, absl::ZeroDuration()));
  EXPECT_OK(CheckCallWanted(absl::InfiniteFuture(), kNow, false, absl::Hours(1)));
  EXPECT_OK(CheckCallWanted(kNow + absl::Seconds(2), kNow, false, absl::Seconds(2)));
}

TEST(CheckCallWantedTest, DropsCallsWhoseDeadlineHasPassed) {
  EXPECT_THAT(CheckCallWanted(kNow - absl::Milliseconds(3), kNow, false, absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kDeadlineExceeded,
                       HasSubstr("deadline passed 3ms before the server got to it")));
  // A deadline of exactly now leaves nothing to work with.
  EXPECT_THAT(CheckCallWanted(kNow, kNow, false, absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(CheckCallWanted(absl::InfinitePast(), kNow, false, absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

// Go clients say "no deadline" with grpc-timeout: 2562047H (about 292 years); gRPC's own
// chrono conversion overflows on it. The deadline must come out far in the future.
TEST(DeadlineFromTimespecTest, HugeDeadlinesStayInTheFuture) {
  const gpr_timespec now_mono = gpr_now(GPR_CLOCK_MONOTONIC);
  const gpr_timespec go_max = gpr_time_add(now_mono, gpr_time_from_hours(2562047, GPR_TIMESPAN));
  const absl::Time deadline = DeadlineFromTimespec(go_max);
  EXPECT_GT(deadline, absl::Now() + absl::Hours(24 * 365 * 290));
  EXPECT_OK(CheckCallWanted(deadline, absl::Now(), false, absl::Seconds(1)));
  // Larger still: saturates to "no deadline" rather than wrapping around.
  const gpr_timespec beyond = gpr_time_add(now_mono, gpr_time_from_seconds(INT64_MAX / 2, GPR_TIMESPAN));
  EXPECT_GT(DeadlineFromTimespec(beyond), absl::Now() + absl::Hours(24 * 365 * 290));
  EXPECT_EQ(DeadlineFromTimespec(gpr_inf_future(GPR_CLOCK_MONOTONIC)), absl::InfiniteFuture());
  EXPECT_EQ(DeadlineFromTimespec(gpr_inf_future(GPR_CLOCK_REALTIME)), absl::InfiniteFuture());
  EXPECT_EQ(DeadlineFromTimespec(gpr_inf_past(GPR_CLOCK_REALTIME)), absl::InfinitePast());
}

TEST(DeadlineFromTimespecTest, OrdinaryDeadlinesAreExact) {
  gpr_timespec t;
  t.tv_sec = 1'700'000'000;
  t.tv_nsec = 250'000'000;
  t.clock_type = GPR_CLOCK_REALTIME;
  EXPECT_EQ(DeadlineFromTimespec(t), absl::FromUnixSeconds(1'700'000'000) + absl::Milliseconds(250));
  // A monotonic deadline 2 s from now is about 2 s from now on the wall clock.
  const absl::Time soon =
      DeadlineFromTimespec(gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(2, GPR_TIMESPAN)));
  EXPECT_GT(soon, absl::Now() + absl::Seconds(1));
  EXPECT_LT(soon, absl::Now() + absl::Seconds(3));
}

TEST(CheckCallWantedTest, DropsCallsWithLessThanTheMinimumLeft) {
  EXPECT_THAT(CheckCallWanted(kNow + absl::Seconds(1), kNow, false, absl::Seconds(2)),
              StatusIs(absl::StatusCode::kDeadlineExceeded,
                       HasSubstr("1s left before the call's deadline, less than the server's "
                                 "--min_deadline_remaining of 2s")));
}

TEST(CheckCallWantedTest, ACancelledCallIsDroppedWhateverItsDeadline) {
  EXPECT_THAT(CheckCallWanted(absl::InfiniteFuture(), kNow, true, absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  EXPECT_THAT(CheckCallWanted(kNow - absl::Seconds(1), kNow, true, absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kCancelled));
}

TEST(DroppedCallsTest, CountsEachKindFromManyThreads) {
  DroppedCalls dropped;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&dropped] {
      for (int i = 0; i < 1000; ++i) {
        dropped.Record("Score", absl::DeadlineExceededError("late"));
        if (i % 2 == 0) dropped.Record("Decide", absl::CancelledError("gone"));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(dropped.deadline_exceeded(), 4000u);
  EXPECT_EQ(dropped.cancelled(), 2000u);
}

}  // namespace
}  // namespace coupond::server
