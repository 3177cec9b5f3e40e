#include "server/heap_memory.h"

#include "absl/strings/str_cat.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace coupond::server {

absl::Status ConfigureHeap(size_t mmap_threshold_bytes) {
  if (mmap_threshold_bytes == 0) return absl::OkStatus();
#if defined(__GLIBC__)
  // glibc's largest accepted value is HEAP_MAX_SIZE / 2 (32 MiB on 64-bit); mallopt says
  // only whether it took the value.
  if (mmap_threshold_bytes > (size_t{32} << 20) ||
      mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap_threshold_bytes)) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "malloc_mmap_threshold: ", mmap_threshold_bytes,
        " bytes refused by glibc (at most 33554432; 0 keeps glibc's dynamic threshold)"));
  }
#endif
  return absl::OkStatus();
}

void ReleaseFreeHeapMemory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace coupond::server
