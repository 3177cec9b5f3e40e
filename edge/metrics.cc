#include "edge/metrics.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace coupond::edge {
namespace metrics_internal {

size_t NextShard() {
  static std::atomic<size_t> next{0};
  return next.fetch_add(1, std::memory_order_relaxed) % kMetricShards;
}

std::vector<std::string> ToStrings(absl::Span<const std::string_view> values) {
  std::vector<std::string> out;
  out.reserve(values.size());
  for (std::string_view v : values) out.emplace_back(v);
  return out;
}

}  // namespace metrics_internal

namespace {

using metrics_internal::kMetricShards;
using metrics_internal::Line;

bool IsMetricNameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

bool IsLabelNameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (!first && c >= '0' && c <= '9');
}

absl::Status ValidateNames(const std::string& name, const std::vector<std::string>& label_names,
                           bool histogram) {
  if (name.empty()) return absl::InvalidArgumentError("metric name: empty");
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsMetricNameChar(name[i], i == 0)) {
      return absl::InvalidArgumentError(absl::StrCat("metric name '", name,
                                                     "': not [a-zA-Z_:][a-zA-Z0-9_:]*"));
    }
  }
  std::set<std::string> seen;
  for (const std::string& label : label_names) {
    bool ok = !label.empty() && label.rfind("__", 0) != 0;
    for (size_t i = 0; ok && i < label.size(); ++i) ok = IsLabelNameChar(label[i], i == 0);
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": label name '", label,
                       "': not [a-zA-Z_][a-zA-Z0-9_]*, or starts with the reserved '__'"));
    }
    if (histogram && label == "le") {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": label name 'le' is reserved for histogram buckets"));
    }
    if (!seen.insert(label).second) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": label name '", label, "' repeated"));
    }
  }
  return absl::OkStatus();
}

// `{a="x",b="y"}`, with `extra` (already formatted, e.g. `le="0.5"`) last; "" when empty.
void AppendLabels(std::string* out, const std::vector<std::string>& names,
                  const std::vector<std::string>& values, std::string_view extra = {}) {
  if (names.empty() && extra.empty()) return;
  out->push_back('{');
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out->push_back(',');
    absl::StrAppend(out, names[i], "=\"", EscapeLabelValue(values[i]), "\"");
  }
  if (!extra.empty()) {
    if (!names.empty()) out->push_back(',');
    out->append(extra);
  }
  out->push_back('}');
}

}  // namespace

uint64_t Counter::Value() const {
  uint64_t total = 0;
  for (const Line& cell : cells_) total += cell.word[0].load(std::memory_order_relaxed);
  return total;
}

absl::Status ValidateBucketBounds(absl::Span<const double> bounds) {
  if (bounds.empty()) return absl::InvalidArgumentError("histogram bounds: empty");
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("histogram bounds[", i, "]: not finite (+Inf is implicit)"));
    }
    if (i > 0 && !(bounds[i] > bounds[i - 1])) {
      return absl::InvalidArgumentError(
          absl::StrCat("histogram bounds[", i, "]: ", bounds[i], " not above ", bounds[i - 1]));
    }
  }
  return absl::OkStatus();
}

std::vector<double> LatencyBucketsSeconds() {
  return {50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3,
          50e-3, 100e-3, 250e-3, 500e-3, 1.0,  2.5,    5.0,  10.0};
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      // bounds + 1 buckets + the sum, rounded up to whole cache lines.
      lines_per_shard_((bounds_.size() + 2 + 7) / 8),
      lines_(new Line[kMetricShards * lines_per_shard_]) {}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  const size_t bucket =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  const size_t shard = metrics_internal::ThisThreadShard();
  Word(shard, bucket).fetch_add(1, std::memory_order_relaxed);
  std::atomic<uint64_t>& sum = Word(shard, bounds_.size() + 1);
  uint64_t old_bits = sum.load(std::memory_order_relaxed);
  // Uncontended in practice: only threads sharing this shard race here.
  while (!sum.compare_exchange_weak(
      old_bits, std::bit_cast<uint64_t>(std::bit_cast<double>(old_bits) + value),
      std::memory_order_relaxed)) {
  }
}

Histogram::Data Histogram::Collect() const {
  Data data;
  data.counts.assign(bounds_.size() + 1, 0);
  for (size_t shard = 0; shard < kMetricShards; ++shard) {
    for (size_t b = 0; b <= bounds_.size(); ++b) {
      data.counts[b] += Word(shard, b).load(std::memory_order_relaxed);
    }
    data.sum += std::bit_cast<double>(Word(shard, bounds_.size() + 1).load(std::memory_order_relaxed));
  }
  for (uint64_t c : data.counts) data.count += c;
  return data;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  // Integers below 2^53 exactly and without an exponent (counters read through a double).
  if (value == std::trunc(value) && std::fabs(value) < 9007199254740992.0) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  // The shortest digits that round-trip; written out in full for exponents -4..20 (as Go's
  // strconv 'g' does for small numbers, so `le` labels read 0.0001, not 1e-04), otherwise
  // in scientific notation (5e-05, 1e+300).
  std::to_chars_result r =
      std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::scientific);
  if (r.ec != std::errc()) return "NaN";
  const std::string scientific(buffer, r.ptr);
  const size_t e = scientific.find('e');
  int exponent = 0;
  if (e == std::string::npos ||
      std::from_chars(scientific.data() + e + (scientific[e + 1] == '+' ? 2 : 1),
                      scientific.data() + scientific.size(), exponent).ec != std::errc()) {
    return scientific;
  }
  if (exponent < -4 || exponent > 20) return scientific;
  r = std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::fixed);
  return r.ec == std::errc() ? std::string(buffer, r.ptr) : scientific;
}

// ---- families ----

class MetricsRegistry::FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, std::string type,
             std::vector<std::string> label_names)
      : name_(std::move(name)),
        help_(std::move(help)),
        type_(std::move(type)),
        label_names_(std::move(label_names)) {}
  virtual ~FamilyBase() = default;

  const std::string& name() const { return name_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  void Render(std::string* out) const {
    absl::StrAppend(out, "# HELP ", name_, " ", EscapeHelp(help_), "\n# TYPE ", name_, " ", type_,
                    "\n");
    RenderSamples(out);
  }

 protected:
  virtual void RenderSamples(std::string* out) const = 0;

 private:
  const std::string name_;
  const std::string help_;
  const std::string type_;
  const std::vector<std::string> label_names_;
};

class MetricsRegistry::CounterFamilyImpl final : public FamilyBase {
 public:
  CounterFamilyImpl(std::string name, std::string help, std::vector<std::string> label_names,
                    std::unique_ptr<metrics_internal::Children<Counter>> children)
      : FamilyBase(std::move(name), std::move(help), "counter", std::move(label_names)),
        children_(std::move(children)) {}

 private:
  void RenderSamples(std::string* out) const override {
    children_->ForEach([&](const std::vector<std::string>& values, const Counter& counter) {
      out->append(name());
      AppendLabels(out, label_names(), values);
      absl::StrAppend(out, " ", counter.Value(), "\n");
    });
  }

  const std::unique_ptr<metrics_internal::Children<Counter>> children_;
};

class MetricsRegistry::HistogramFamilyImpl final : public FamilyBase {
 public:
  HistogramFamilyImpl(std::string name, std::string help, std::vector<std::string> label_names,
                      std::unique_ptr<metrics_internal::Children<Histogram>> children)
      : FamilyBase(std::move(name), std::move(help), "histogram", std::move(label_names)),
        children_(std::move(children)) {}

 private:
  void RenderSamples(std::string* out) const override {
    children_->ForEach([&](const std::vector<std::string>& values, const Histogram& histogram) {
      const Histogram::Data data = histogram.Collect();
      uint64_t cumulative = 0;
      for (size_t b = 0; b < data.counts.size(); ++b) {
        cumulative += data.counts[b];
        const std::string le = b < histogram.bounds().size()
                                   ? FormatMetricValue(histogram.bounds()[b])
                                   : std::string("+Inf");
        absl::StrAppend(out, name(), "_bucket");
        AppendLabels(out, label_names(), values, absl::StrCat("le=\"", le, "\""));
        absl::StrAppend(out, " ", cumulative, "\n");
      }
      absl::StrAppend(out, name(), "_sum");
      AppendLabels(out, label_names(), values);
      absl::StrAppend(out, " ", FormatMetricValue(data.sum), "\n", name(), "_count");
      AppendLabels(out, label_names(), values);
      absl::StrAppend(out, " ", data.count, "\n");
    });
  }

  const std::unique_ptr<metrics_internal::Children<Histogram>> children_;
};

class MetricsRegistry::CallbackFamilyImpl final : public FamilyBase {
 public:
  CallbackFamilyImpl(CallbackType type, std::string name, std::string help,
                     std::vector<std::string> label_names,
                     std::function<std::vector<CallbackSample>()> collect)
      : FamilyBase(std::move(name), std::move(help),
                   type == CallbackType::kCounter ? "counter" : "gauge", std::move(label_names)),
        collect_(std::move(collect)) {}

 private:
  void RenderSamples(std::string* out) const override {
    for (const CallbackSample& sample : collect_()) {
      if (sample.label_values.size() != label_names().size()) continue;
      out->append(name());
      AppendLabels(out, label_names(), sample.label_values);
      absl::StrAppend(out, " ", FormatMetricValue(sample.value), "\n");
    }
  }

  const std::function<std::vector<CallbackSample>()> collect_;
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

absl::Status MetricsRegistry::Add(std::unique_ptr<FamilyBase> family) {
  absl::MutexLock lock(&mu_);
  for (const auto& f : families_) {
    if (f->name() == family->name()) {
      return absl::AlreadyExistsError(absl::StrCat("metric '", family->name(), "' already registered"));
    }
  }
  families_.push_back(std::move(family));
  return absl::OkStatus();
}

absl::Status MetricsRegistry::AddCounterFamily(
    std::string name, std::string help, std::vector<std::string> label_names,
    std::unique_ptr<metrics_internal::Children<Counter>> children) {
  if (absl::Status s = ValidateNames(name, label_names, false); !s.ok()) return s;
  return Add(std::make_unique<CounterFamilyImpl>(std::move(name), std::move(help),
                                                 std::move(label_names), std::move(children)));
}

absl::Status MetricsRegistry::AddHistogramFamily(
    std::string name, std::string help, std::vector<std::string> label_names,
    std::unique_ptr<metrics_internal::Children<Histogram>> children) {
  if (absl::Status s = ValidateNames(name, label_names, true); !s.ok()) return s;
  return Add(std::make_unique<HistogramFamilyImpl>(std::move(name), std::move(help),
                                                   std::move(label_names), std::move(children)));
}

absl::Status MetricsRegistry::AddCallback(CallbackType type, std::string name, std::string help,
                                          std::vector<std::string> label_names,
                                          std::function<std::vector<CallbackSample>()> collect) {
  if (absl::Status s = ValidateNames(name, label_names, false); !s.ok()) return s;
  if (!collect) return absl::InvalidArgumentError(absl::StrCat(name, ": no callback"));
  return Add(std::make_unique<CallbackFamilyImpl>(type, std::move(name), std::move(help),
                                                  std::move(label_names), std::move(collect)));
}

absl::Status MetricsRegistry::AddGauge(std::string name, std::string help,
                                       std::function<double()> value) {
  if (!value) return absl::InvalidArgumentError(absl::StrCat(name, ": no callback"));
  return AddCallback(CallbackType::kGauge, std::move(name), std::move(help), {},
                     [value = std::move(value)] {
                       return std::vector<CallbackSample>{CallbackSample{{}, value()}};
                     });
}

absl::Status MetricsRegistry::AddCallbackCounter(std::string name, std::string help,
                                                 std::function<double()> value) {
  if (!value) return absl::InvalidArgumentError(absl::StrCat(name, ": no callback"));
  return AddCallback(CallbackType::kCounter, std::move(name), std::move(help), {},
                     [value = std::move(value)] {
                       return std::vector<CallbackSample>{CallbackSample{{}, value()}};
                     });
}

std::string MetricsRegistry::Render() const {
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& family : families_) family->Render(&out);
  return out;
}

}  // namespace coupond::edge
