#ifndef COUPOND_CORE_PARALLEL_H_
#define COUPOND_CORE_PARALLEL_H_

// The fork-join helper of the assignment solver's passes over users. Internal to core (used
// by core/assignment*.cc); not part of core's API.

#include <cstddef>
#include <functional>

namespace coupond::core::internal {

// Runs fn(task, worker) for every task in [0, tasks) on min(threads, tasks) threads (on the
// calling thread alone when that is <= 1), and returns when every task has run. Threads take
// tasks in any order; `worker` is the running thread's index in [0, min(threads, tasks)), so
// fn may keep scratch space per worker. fn must write only to per-task or per-worker state.
// Results do not depend on `threads` when the caller reduces per-task state in task order:
// that is how the solver stays bit-identical for every thread count.
// REQUIRES: threads >= 1; fn is safe to call concurrently for different tasks.
void ParallelFor(int threads, size_t tasks, const std::function<void(size_t, int)>& fn);

}  // namespace coupond::core::internal

#endif  // COUPOND_CORE_PARALLEL_H_
