// The main() of every test executable: GoogleTest's, plus one exit code that CTest reads.
//
// CTest runs one test *suite* per process (tests/discover_suites.cmake), and GoogleTest
// exits 0 both when a suite's tests passed and when every one of them skipped. So this main
// exits kSkippedExitCode when nothing failed and nothing passed but something skipped (CTest
// then reports the suite as skipped: SKIP_RETURN_CODE), and GoogleTest's own result
// otherwise. A skip among passing tests leaves the suite passed; scripts/test.sh lists every
// skipped test after each run.

#include "gtest/gtest.h"

namespace {
constexpr int kSkippedExitCode = 77;  // the SKIP_RETURN_CODE of tests/CMakeLists.txt
}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int result = RUN_ALL_TESTS();
  const ::testing::UnitTest& run = *::testing::UnitTest::GetInstance();
  if (result == 0 && run.failed_test_count() == 0 && run.successful_test_count() == 0 &&
      run.skipped_test_count() > 0) {
    return kSkippedExitCode;
  }
  return result;
}
