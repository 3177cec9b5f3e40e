#ifndef COUPOND_SERVER_HEAP_MEMORY_H_
#define COUPOND_SERVER_HEAP_MEMORY_H_

// Giving the memory of large calls back to the kernel (issue 12, defect 7).
//
// An Assign over 300,000 users allocates ~100 MiB for a few seconds on threads of its own.
// glibc malloc kept most of it after the call: RSS stayed near the largest calls' peak
// while idle (bench/RESULTS-memory.md: 38 MiB before, 284-352 MiB idle after 20 such
// calls). Two glibc behaviours keep it:
//  * the dynamic mmap threshold: once a block of up to 32 MiB from its own mapping has
//    been freed, blocks up to that size come from the arenas instead, and
//  * the top of a thread arena's heap is given back only above a trim threshold that
//    rises with the mmap threshold (up to 64 MiB per arena), and malloc_trim does not
//    trim it.
// ConfigureHeap fixes the mmap threshold (which also turns the dynamic adjustment off and
// keeps glibc's 128 KiB trim threshold), and ReleaseFreeHeapMemory, called after each
// Assign, returns the arenas' free pages. Measured together: idle RSS back to within 2 MiB
// of RSS before the first call; each alone leaves 1.4-1.8x. Without glibc, or under a
// sanitizer, both do nothing.

#include <cstddef>

#include "absl/status/status.h"

namespace coupond::server {

// glibc's largest M_MMAP_THRESHOLD (HEAP_MAX_SIZE / 2 on 64-bit).
inline constexpr size_t kMaxMmapThresholdBytes = size_t{32} << 20;

// Blocks of at least `mmap_threshold_bytes` get a mapping of their own, unmapped when
// freed; 0 leaves glibc's dynamic default. Call early in main. InvalidArgument naming the
// flag (malloc_mmap_threshold) above kMaxMmapThresholdBytes, or when glibc refuses it.
// Does nothing (OK) without glibc or under a sanitizer, whose allocator replaces malloc.
absl::Status ConfigureHeap(size_t mmap_threshold_bytes);

// Returns the free pages of every malloc arena to the kernel (glibc malloc_trim(0)).
// Takes each arena's lock in turn; 10-30 ms after a 300,000-user Assign: not for a
// request thread, nor per request.
void ReleaseFreeHeapMemory();

}  // namespace coupond::server

#endif  // COUPOND_SERVER_HEAP_MEMORY_H_
