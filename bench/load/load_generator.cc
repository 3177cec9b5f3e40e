#include "bench/load/load_generator.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "grpcpp/support/status.h"

namespace coupond::load_bench {

double PhaseResult::NearestRankUs(std::vector<int64_t>* v, double q) {
  if (v->empty()) return std::nan("");
  if (!std::is_sorted(v->begin(), v->end())) std::sort(v->begin(), v->end());
  const size_t n = v->size();
  const size_t rank =
      std::clamp<size_t>(static_cast<size_t>(std::ceil(q * static_cast<double>(n))), 1, n);
  return static_cast<double>((*v)[rank - 1]) / 1000.0;
}

struct LoadGenerator::Phase {
  Phase(const char* m, const std::vector<grpc::ByteBuffer>* r, absl::Duration warmup,
        absl::Duration duration)
      : method(m),
        requests(r),
        start(Clock::now()),
        measure_from(start + absl::ToChronoNanoseconds(warmup)),
        end(measure_from + absl::ToChronoNanoseconds(duration)) {}
  PhaseResult Finish() {
    result.seconds = std::chrono::duration<double>(end - measure_from).count();
    result.late_sends = late_sends;
    return std::move(result);
  }
  const std::string method;
  const std::vector<grpc::ByteBuffer>* requests;
  const Clock::time_point start, measure_from, end;
  std::atomic<uint64_t> next_request{0};
  uint64_t late_sends = 0;  // sender thread only
  std::mutex mu;            // guards result
  PhaseResult result;
};

struct LoadGenerator::Call {
  grpc::ClientContext context;
  grpc::ByteBuffer response;
  grpc::Status status;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  Clock::time_point start;  // the scheduled (open loop) or actual (closed loop) send time
  Clock::time_point sent;   // the actual send time
  bool open_loop = false;
  size_t connection = 0;
};

LoadGenerator::LoadGenerator(const std::string& target, int connections, int threads,
                             absl::Duration timeout)
    : timeout_(absl::ToChronoNanoseconds(timeout)) {
  for (int i = 0; i < connections; ++i) {
    // Distinct channel arguments and a local subchannel pool: one TCP connection each.
    grpc::ChannelArguments args;
    args.SetInt("coupond.load_bench.connection", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channels_.push_back(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
    stubs_.push_back(std::make_unique<grpc::GenericStub>(channels_.back()));
  }
  for (int t = 0; t < threads; ++t) queues_.push_back(std::make_unique<grpc::CompletionQueue>());
}

LoadGenerator::~LoadGenerator() {
  for (auto& q : queues_) {
    q->Shutdown();
    void* tag;
    bool ok;
    while (q->Next(&tag, &ok)) delete static_cast<Call*>(tag);
  }
}

absl::Status LoadGenerator::WaitConnected(absl::Duration timeout) {
  const auto deadline = std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout);
  for (size_t i = 0; i < channels_.size(); ++i) {
    if (!channels_[i]->WaitForConnected(deadline)) {
      return absl::DeadlineExceededError(absl::StrCat("connection ", i, " did not connect"));
    }
  }
  return absl::OkStatus();
}

template <typename Next>
void LoadGenerator::Drain(Phase* phase, size_t t, Next next, int in_flight) {
  void* tag;
  bool ok;
  while (in_flight > 0 && queues_[t]->Next(&tag, &ok)) {
    auto* call = static_cast<Call*>(tag);
    const Clock::time_point now = Clock::now();
    Complete(phase, call, now);
    in_flight += next(call, now);
    delete call;
  }
}

PhaseResult LoadGenerator::RunClosed(const char* method,
                                     const std::vector<grpc::ByteBuffer>& requests, int streams,
                                     absl::Duration warmup, absl::Duration duration) {
  Phase phase(method, &requests, warmup, duration);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < queues_.size(); ++t) {
    threads.emplace_back([&, t] {
      int in_flight = 0;
      for (size_t c = t; c < channels_.size(); c += queues_.size()) {
        for (int s = 0; s < streams; ++s, ++in_flight) Start(&phase, c, t, Clock::now());
      }
      Drain(
          &phase, t,
          [&](Call* call, Clock::time_point now) {
            if (now < phase.end) {
              Start(&phase, call->connection, t, now);
              return 0;
            }
            return -1;
          },
          in_flight);
    });
  }
  for (std::thread& t : threads) t.join();
  return phase.Finish();
}

PhaseResult LoadGenerator::RunOpen(const char* method,
                                   const std::vector<grpc::ByteBuffer>& requests, double rate,
                                   int max_in_flight, absl::Duration warmup,
                                   absl::Duration duration) {
  Phase phase(method, &requests, warmup, duration);
  std::atomic<int> in_flight{0};
  std::atomic<bool> sending_done{false};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < queues_.size(); ++t) {
    threads.emplace_back([&, t] {
      // Runs until the sender is done and nothing is in flight; each completion is one
      // fewer in flight.
      void* tag;
      bool ok;
      while (true) {
        const auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(20);
        const grpc::CompletionQueue::NextStatus st = queues_[t]->AsyncNext(&tag, &ok, deadline);
        if (st == grpc::CompletionQueue::GOT_EVENT) {
          auto* call = static_cast<Call*>(tag);
          Complete(&phase, call, Clock::now());
          delete call;
          in_flight.fetch_sub(1, std::memory_order_relaxed);
        } else if (st == grpc::CompletionQueue::SHUTDOWN) {
          break;
        } else if (sending_done.load() && in_flight.load() == 0) {
          break;
        }
      }
    });
  }
  const auto interval = std::chrono::nanoseconds(static_cast<int64_t>(1e9 / rate));
  Clock::time_point next = phase.start;
  size_t connection = 0;
  while (next < phase.end) {
    const Clock::time_point now = Clock::now();
    if (now < next) {
      std::this_thread::sleep_until(next);
      continue;
    }
    while (in_flight.load(std::memory_order_relaxed) >= max_in_flight) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    if (Clock::now() - next > std::chrono::milliseconds(1)) ++phase.late_sends;
    in_flight.fetch_add(1, std::memory_order_relaxed);
    Start(&phase, connection, connection % queues_.size(), next, /*open_loop=*/true);
    connection = (connection + 1) % channels_.size();
    next += interval;
  }
  sending_done.store(true);
  for (std::thread& t : threads) t.join();
  return phase.Finish();
}

void LoadGenerator::Start(Phase* phase, size_t connection, size_t queue, Clock::time_point start,
                          bool open_loop) {
  const uint64_t i = phase->next_request.fetch_add(1, std::memory_order_relaxed);
  const grpc::ByteBuffer& request = (*phase->requests)[i % phase->requests->size()];
  auto* call = new Call;
  call->start = start;
  call->sent = Clock::now();
  call->open_loop = open_loop;
  call->connection = connection;
  call->context.set_deadline(std::chrono::system_clock::now() + timeout_);
  call->reader = stubs_[connection]->PrepareUnaryCall(&call->context, phase->method, request,
                                                      queues_[queue].get());
  call->reader->StartCall();
  call->reader->Finish(&call->response, &call->status, call);
}

void LoadGenerator::Complete(Phase* phase, Call* call, Clock::time_point now) {
  {
    std::lock_guard<std::mutex> lock(phase->mu);
    PhaseResult& r = phase->result;
    ++r.total_calls;
    if (!call->status.ok()) {
      if (r.errors++ == 0) {
        r.first_error = absl::StrCat(call->status.error_code(), ": ", call->status.error_message());
      }
    } else if (call->start >= phase->measure_from && call->start < phase->end) {
      ++r.completed;
      r.latency_ns.push_back(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - call->start).count());
      if (call->open_loop) {
        r.sent_latency_ns.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now - call->sent).count());
      }
    }
  }
}

}  // namespace coupond::load_bench
