// server/heap_memory.h: the flag's bounds (refused with an error naming the flag, in every
// build), and that memory a thread freed goes back to the kernel, measured on this
// process's VmRSS.

#include "server/heap_memory.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/sanitizers.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::server {
namespace {

using ::coupond::testing::StatusIs;
using ::testing::HasSubstr;

// VmRSS of this process in KiB, from /proc/self/status (0 when it cannot be read).
size_t HeapTestResidentKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  }
  return 0;
}

TEST(HeapMemoryTest, RefusesAThresholdGlibcDoesNotTakeNamingTheFlag) {
  EXPECT_THAT(ConfigureHeap(size_t{64} << 20),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("malloc_mmap_threshold: 67108864")));
  EXPECT_THAT(ConfigureHeap(SIZE_MAX),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("malloc_mmap_threshold")));
  EXPECT_OK(ConfigureHeap(0));  // glibc's dynamic default: nothing set
  EXPECT_OK(ConfigureHeap(kMaxMmapThresholdBytes));  // the largest glibc takes
}

// Like an Assign: a thread of its own allocates ~200 MiB in blocks on both sides of the
// threshold, each followed by a small block that outlives the call (so the freed large
// blocks sit between live ones, where free() alone never trims), then frees the large ones.
TEST(HeapMemoryTest, WhatAThreadFreedReturnsToTheKernel) {
  if (coupond::testing::kSanitizedBuild) {
    GTEST_SKIP() << "ASan's allocator keeps freed memory in quarantine on purpose";
  }
  ASSERT_OK(ConfigureHeap(size_t{1} << 20));
  const size_t before = HeapTestResidentKiB();
  ASSERT_GT(before, 0u) << "no VmRSS in /proc/self/status";
  std::vector<std::unique_ptr<char[]>> pins;
  size_t peak = 0;
  std::thread([&] {
    std::vector<std::unique_ptr<char[]>> blocks;
    for (int i = 0; i < 400; ++i) {
      const size_t bytes = (i % 2 == 0) ? (size_t{256} << 10) : (size_t{768} << 10);
      blocks.emplace_back(new char[bytes]);
      std::memset(blocks.back().get(), i, bytes);  // resident
      pins.emplace_back(new char[64]);
    }
    peak = HeapTestResidentKiB();
  }).join();
  ReleaseFreeHeapMemory();
  const size_t after = HeapTestResidentKiB();
  EXPECT_GT(peak, before + (150 << 10)) << "the blocks were not resident: the test measures nothing";
  EXPECT_LT(after, before + (16 << 10)) << "before " << before << " KiB, peak " << peak
                                        << " KiB, after " << after << " KiB";
}

}  // namespace
}  // namespace coupond::server
