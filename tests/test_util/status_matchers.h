#ifndef COUPOND_TESTS_TEST_UTIL_STATUS_MATCHERS_H_
#define COUPOND_TESTS_TEST_UTIL_STATUS_MATCHERS_H_

// Status assertions for tests. Debian's Abseil (20220623) has no status_matchers.h.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coupond::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

// EXPECT_THAT(status_or_statusor, StatusIs(absl::StatusCode::kNotFound, HasSubstr("x")))
MATCHER_P2(StatusIs, code, message_matcher,
           "has code " + absl::StatusCodeToString(code) + " and a message that " +
               ::testing::DescribeMatcher<std::string>(message_matcher)) {
  const absl::Status& s = ::coupond::testing::GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code &&
         ::testing::Matches(message_matcher)(std::string(s.message()));
}

// EXPECT_THAT(status_or_statusor, StatusIs(absl::StatusCode::kNotFound))
MATCHER_P(StatusIs, code, "has code " + absl::StatusCodeToString(code)) {
  const absl::Status& s = ::coupond::testing::GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code;
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = ::coupond::testing::GetStatus(arg);
  *result_listener << "status is " << s;
  return s.ok();
}

}  // namespace coupond::testing

#define COUPOND_TEST_CONCAT_INNER_(a, b) a##b
#define COUPOND_TEST_CONCAT_(a, b) COUPOND_TEST_CONCAT_INNER_(a, b)

#define ASSERT_OK(expr) ASSERT_THAT((expr), ::coupond::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::coupond::testing::IsOk())

// ASSERT_OK_AND_ASSIGN(auto x, FunctionReturningStatusOr());
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(COUPOND_TEST_CONCAT_(coupond_statusor_, __LINE__), lhs, rexpr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                               \
  ASSERT_TRUE(statusor.ok()) << statusor.status();       \
  lhs = *std::move(statusor)

#endif  // COUPOND_TESTS_TEST_UTIL_STATUS_MATCHERS_H_
