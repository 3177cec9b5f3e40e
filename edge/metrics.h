#ifndef COUPOND_EDGE_METRICS_H_
#define COUPOND_EDGE_METRICS_H_

// A small Prometheus metrics registry: labelled counters and histograms recorded on the
// request path, and counters and gauges read by callback when scraped, rendered in the
// Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Why not one mutex: a Score call records a counter and a histogram observation; under a
// global mutex every gRPC thread would queue on it. Here recording takes no lock:
//  * Finding a labelled child (Family::Get) walks a hash bucket's chain of immutable nodes
//    with acquire loads. Only the first call for a new label combination takes the
//    family's mutex, to insert it. Children are never removed, so a reference stays valid
//    for the registry's lifetime; hot callers may keep it.
//  * A child is sharded: kMetricShards cache-line-aligned cells, each thread adding to
//    its own with a relaxed atomic add, so threads do not bounce one cache line. A scrape
//    sums the shards.
// Cost (bench/metrics_bench.cc, bench/RESULTS-metrics.md; 2-vCPU VM under load): an
// increment costs what one atomic add does (~15-20 ns there), an observation ~2.5 of them,
// a three-label Get ~45 ns (hashing and comparing the three strings).
//
// Consistency: a scrape reads each cell once, without stopping writers, so a histogram's
// buckets, _sum and _count may disagree by the observations made during the scrape (the
// _count is the sum of the buckets, so those two always agree).

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace coupond::edge {

// The Content-Type of Render()'s output.
inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

namespace metrics_internal {

inline constexpr size_t kMetricShards = 16;
inline constexpr size_t kCacheLine = 64;

// The next shard to hand to a thread (round robin).
size_t NextShard();

// Out of line (GCC 12 sees a false null dereference when it inlines the conversion).
std::vector<std::string> ToStrings(absl::Span<const std::string_view> values);

// This thread's shard, fixed at its first use.
inline size_t ThisThreadShard() {
  thread_local const size_t shard = NextShard();
  return shard;
}

// One cache line of counters.
struct alignas(kCacheLine) Line {
  std::atomic<uint64_t> word[kCacheLine / sizeof(uint64_t)] = {};
};

}  // namespace metrics_internal

// A monotonically increasing integer. Thread-safe, lock-free.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Increment(uint64_t n = 1) {
    cells_[metrics_internal::ThisThreadShard()].word[0].fetch_add(n, std::memory_order_relaxed);
  }
  // The sum over the shards (exact once writers have stopped).
  uint64_t Value() const;

 private:
  std::array<metrics_internal::Line, metrics_internal::kMetricShards> cells_;
};

// Observations counted in buckets with fixed upper bounds (Prometheus `le`: an observation
// v falls in the first bucket whose bound b has v <= b; above the last bound, in +Inf).
// Thread-safe, lock-free.
//  * NaN observations are ignored (they would poison _sum for the process's lifetime);
//  * +Inf counts in the +Inf bucket and makes _sum +Inf, as in Prometheus's own clients;
//  * values below the first bound (negative ones included) count in the first bucket.
class Histogram {
 public:
  struct Data {
    std::vector<uint64_t> counts;  // per bucket (not cumulative); the last one is +Inf
    double sum = 0;
    uint64_t count = 0;  // the sum of `counts`
  };

  // REQUIRES: ValidateBucketBounds(bounds).ok().
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double value);
  Data Collect() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::atomic<uint64_t>& Word(size_t shard, size_t index) const {
    return lines_[shard * lines_per_shard_ + index / 8].word[index % 8];
  }

  const std::vector<double> bounds_;
  const size_t lines_per_shard_;
  // Per shard: bounds_.size() + 1 bucket counts, then the sum (a double's bits).
  const std::unique_ptr<metrics_internal::Line[]> lines_;
};

// OK when `bounds` is non-empty, finite and strictly increasing.
absl::Status ValidateBucketBounds(absl::Span<const double> bounds);

// Bucket bounds in seconds for request latencies: 50 µs to 10 s in 1-2.5-5 steps
// (17 bounds, then +Inf).
std::vector<double> LatencyBucketsSeconds();

namespace metrics_internal {

// The children of one family, by label values. Get is lock-free once a combination
// exists (see the file comment). Thread-safe.
template <typename Child>
class Children {
 public:
  // Makes the child for a new label combination (given its values).
  using Factory = std::function<std::unique_ptr<Child>(const std::vector<std::string>& values)>;

  Children(size_t num_labels, Factory factory)
      : num_labels_(num_labels), factory_(std::move(factory)) {}
  Children(const Children&) = delete;
  Children& operator=(const Children&) = delete;

  // REQUIRES: values.size() == num_labels.
  Child& Get(absl::Span<const std::string_view> values) {
    const uint64_t hash = Hash(values);
    std::atomic<Node*>& head = heads_[hash % kBuckets];
    if (Child* child = Find(head.load(std::memory_order_acquire), hash, values)) return *child;
    absl::MutexLock lock(&mu_);
    if (Child* child = Find(head.load(std::memory_order_relaxed), hash, values)) return *child;
    auto node = std::make_unique<Node>();
    node->hash = hash;
    node->values.assign(values.begin(), values.end());
    node->child = factory_(node->values);
    node->next = head.load(std::memory_order_relaxed);
    Node* published = node.get();
    nodes_.emplace(node->values, std::move(node));
    head.store(published, std::memory_order_release);  // readers see a complete node
    return *published->child;
  }

  // The child for `values`, or null when none was created yet. Lock-free.
  Child* Find(absl::Span<const std::string_view> values) const {
    const uint64_t hash = Hash(values);
    return Find(heads_[hash % kBuckets].load(std::memory_order_acquire), hash, values);
  }

  // Calls visit(label values, child) for every child, in label-value order.
  template <typename Visit>
  void ForEach(Visit visit) const {
    absl::MutexLock lock(&mu_);
    for (const auto& [values, node] : nodes_) visit(values, *node->child);
  }

  size_t num_labels() const { return num_labels_; }

 private:
  static constexpr size_t kBuckets = 64;
  struct Node {
    uint64_t hash = 0;
    std::vector<std::string> values;
    std::unique_ptr<Child> child;
    Node* next = nullptr;  // immutable once published
  };

  static uint64_t Hash(absl::Span<const std::string_view> values) {
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (std::string_view v : values) {
      h ^= std::hash<std::string_view>()(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    }
    return h;
  }

  static Child* Find(Node* node, uint64_t hash, absl::Span<const std::string_view> values) {
    for (; node != nullptr; node = node->next) {
      if (node->hash == hash && std::equal(node->values.begin(), node->values.end(),
                                           values.begin(), values.end())) {
        return node->child.get();
      }
    }
    return nullptr;
  }

  const size_t num_labels_;
  const Factory factory_;
  std::array<std::atomic<Node*>, kBuckets> heads_{};
  mutable absl::Mutex mu_;  // serialises inserts and scrapes
  std::map<std::vector<std::string>, std::unique_ptr<Node>> nodes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace metrics_internal

// A handle on a registered family with the N label names it was registered with: Get
// returns the child for N label values, creating it on first use. Cheap to copy; valid
// while its registry lives. Thread-safe.
template <typename Child, size_t N>
class Family {
 public:
  Family() = default;
  Child& Get(const std::array<std::string_view, N>& label_values) const {
    return children_->Get(label_values);
  }

 private:
  friend class MetricsRegistry;
  explicit Family(metrics_internal::Children<Child>* children) : children_(children) {}
  metrics_internal::Children<Child>* children_ = nullptr;
};

template <size_t N>
using CounterFamily = Family<Counter, N>;
template <size_t N>
using HistogramFamily = Family<Histogram, N>;

// A value reported by a callback at scrape time.
struct CallbackSample {
  std::vector<std::string> label_values;  // as many as the family has label names
  double value = 0;
};

// Thread-safe. Families are rendered in registration order, children in label-value order.
class MetricsRegistry {
 public:
  enum class CallbackType { kCounter, kGauge };

  MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;
  ~MetricsRegistry();

  // Registers a counter family. InvalidArgument for a malformed metric or label name
  // (Prometheus: [a-zA-Z_:][a-zA-Z0-9_:]* and [a-zA-Z_][a-zA-Z0-9_]*, no "__" prefix, no
  // repeated label), AlreadyExists when the name is taken. By convention counter names end
  // in _total.
  template <size_t N>
  absl::StatusOr<CounterFamily<N>> AddCounter(std::string name, std::string help,
                                              const std::array<std::string_view, N>& label_names) {
    auto children = std::make_unique<metrics_internal::Children<Counter>>(
        N, [](const std::vector<std::string>&) { return std::make_unique<Counter>(); });
    metrics_internal::Children<Counter>* raw = children.get();
    absl::Status s = AddCounterFamily(std::move(name), std::move(help),
                                      metrics_internal::ToStrings(label_names), std::move(children));
    if (!s.ok()) return s;
    return CounterFamily<N>(raw);
  }

  // Registers a histogram family; as AddCounter, and InvalidArgument for bad bounds or a
  // label named "le".
  template <size_t N>
  absl::StatusOr<HistogramFamily<N>> AddHistogram(std::string name, std::string help,
                                                  const std::array<std::string_view, N>& label_names,
                                                  std::vector<double> bounds) {
    if (absl::Status s = ValidateBucketBounds(bounds); !s.ok()) return s;
    auto children = std::make_unique<metrics_internal::Children<Histogram>>(
        N, [bounds](const std::vector<std::string>&) { return std::make_unique<Histogram>(bounds); });
    metrics_internal::Children<Histogram>* raw = children.get();
    absl::Status s = AddHistogramFamily(std::move(name), std::move(help),
                                        metrics_internal::ToStrings(label_names), std::move(children));
    if (!s.ok()) return s;
    return HistogramFamily<N>(raw);
  }

  // Registers a family whose samples `collect` returns at each scrape (on the scraping
  // thread, with the registry's render lock held: it must not call back into the
  // registry). Samples with the wrong number of label values are left out. Whatever
  // `collect` reads must outlive the registry, or at least the last Render call.
  absl::Status AddCallback(CallbackType type, std::string name, std::string help,
                           std::vector<std::string> label_names,
                           std::function<std::vector<CallbackSample>()> collect);
  // One unlabelled value.
  absl::Status AddGauge(std::string name, std::string help, std::function<double()> value);
  absl::Status AddCallbackCounter(std::string name, std::string help,
                                  std::function<double()> value);

  // The text exposition format (see kPrometheusContentType).
  std::string Render() const;

 private:
  class FamilyBase;
  class CounterFamilyImpl;
  class HistogramFamilyImpl;
  class CallbackFamilyImpl;

  absl::Status AddCounterFamily(std::string name, std::string help,
                                std::vector<std::string> label_names,
                                std::unique_ptr<metrics_internal::Children<Counter>> children);
  absl::Status AddHistogramFamily(std::string name, std::string help,
                                  std::vector<std::string> label_names,
                                  std::unique_ptr<metrics_internal::Children<Histogram>> children);
  absl::Status Add(std::unique_ptr<FamilyBase> family);

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<FamilyBase>> families_ ABSL_GUARDED_BY(mu_);
};

// Exposition-format escaping, exposed for the tests: label values escape \ " and newline;
// HELP text escapes \ and newline.
std::string EscapeLabelValue(std::string_view value);
std::string EscapeHelp(std::string_view help);
// A sample value: integers exactly, others in the shortest form that round-trips;
// NaN, +Inf, -Inf as Prometheus spells them.
std::string FormatMetricValue(double value);

}  // namespace coupond::edge

#endif  // COUPOND_EDGE_METRICS_H_
