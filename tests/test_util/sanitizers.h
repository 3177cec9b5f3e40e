#ifndef COUPOND_TESTS_TEST_UTIL_SANITIZERS_H_
#define COUPOND_TESTS_TEST_UTIL_SANITIZERS_H_

namespace coupond::testing {

// True when this translation unit is built with AddressSanitizer (gcc says so with
// __SANITIZE_ADDRESS__, clang with __has_feature). Tests use it to shrink instances that the
// sanitizers' slowdown would make take minutes; the checks themselves stay the same.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitizedBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kSanitizedBuild = true;
#else
inline constexpr bool kSanitizedBuild = false;
#endif
#else
inline constexpr bool kSanitizedBuild = false;
#endif

}  // namespace coupond::testing

#endif  // COUPOND_TESTS_TEST_UTIL_SANITIZERS_H_
