#include "core/parallel.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace coupond::core::internal {

void ParallelFor(int threads, size_t tasks, const std::function<void(size_t, int)>& fn) {
  const int workers = static_cast<int>(std::min<size_t>(static_cast<size_t>(threads), tasks));
  if (workers <= 1) {
    for (size_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(workers));
  for (int w = 0; w < workers; ++w) {
    pool.emplace_back([&next, &fn, tasks, w] {
      for (size_t t = next.fetch_add(1); t < tasks; t = next.fetch_add(1)) fn(t, w);
    });
  }
  for (std::thread& t : pool) t.join();
}

}  // namespace coupond::core::internal
