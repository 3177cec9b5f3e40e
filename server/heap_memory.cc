#include "server/heap_memory.h"

#include "absl/strings/str_cat.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

// The sanitizers replace malloc: their mallopt refuses everything (returns 0) and their
// allocator does its own bookkeeping, so there is nothing to configure.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COUPOND_HEAP_MEMORY_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define COUPOND_HEAP_MEMORY_SANITIZED 1
#endif
#endif

namespace coupond::server {

absl::Status ConfigureHeap(size_t mmap_threshold_bytes) {
  if (mmap_threshold_bytes == 0) return absl::OkStatus();
  // glibc's largest accepted value is HEAP_MAX_SIZE / 2 (32 MiB on 64-bit). Checked here,
  // not only by mallopt, so that the flag means the same in every build.
  if (mmap_threshold_bytes > kMaxMmapThresholdBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "malloc_mmap_threshold: ", mmap_threshold_bytes, " bytes is above glibc's limit of ",
        kMaxMmapThresholdBytes, " (0 keeps glibc's dynamic threshold)"));
  }
#if defined(__GLIBC__) && !defined(COUPOND_HEAP_MEMORY_SANITIZED)
  if (mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap_threshold_bytes)) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "malloc_mmap_threshold: ", mmap_threshold_bytes, " bytes refused by mallopt"));
  }
#endif
  return absl::OkStatus();
}

void ReleaseFreeHeapMemory() {
#if defined(__GLIBC__) && !defined(COUPOND_HEAP_MEMORY_SANITIZED)
  malloc_trim(0);
#endif
}

}  // namespace coupond::server
