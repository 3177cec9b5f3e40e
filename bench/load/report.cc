#include "bench/load/report.h"

#include <cmath>
#include <cstdio>
#include <optional>
#include <utility>

#include "absl/strings/str_format.h"
#include "bench/load/common.h"

namespace coupond::load_bench {

std::string Cell(double v, int decimals) {
  return std::isnan(v) ? std::string("-") : absl::StrFormat("%.*f", decimals, v);
}

void PrintRow(const std::string& name, double qps, double p50, double p99, double p999,
              double errors, double server_cpu_us, double client_cpu_us, const std::string& note) {
  std::printf("  %-9s %9s %8s %8s %8s %6s %8s %8s  %s\n", name.c_str(), Cell(qps, 0).c_str(),
              Cell(p50, 0).c_str(), Cell(p99, 0).c_str(), Cell(p999, 0).c_str(),
              Cell(errors, 0).c_str(), Cell(server_cpu_us, 1).c_str(),
              Cell(client_cpu_us, 1).c_str(), note.c_str());
}

void PrintHeader() {
  std::printf("  %-9s %9s %8s %8s %8s %6s %8s %8s\n", "phase", "QPS", "p50", "p99", "p999",
              "errors", "srv_cpu", "cli_cpu");
}

void PrintHandlerCost(const HandlerCost& cost) {
  const double total = cost.parse_us + cost.handle_us + cost.serialize_us + cost.destroy_us;
  std::printf(
      "handler in process, one thread, no gRPC (%zu calls): parse %.1f us + DoScore "
      "%.1f us (of which a separate ValidateScoreRequest takes %.1f us) + serialize "
      "%.1f us (%zu bytes) + free %.1f us = %.1f us/call, i.e. at most %.0f calls/s "
      "per core before any gRPC cost\n",
      cost.calls, cost.parse_us, cost.handle_us, cost.validate_us, cost.serialize_us,
      cost.response_bytes, cost.destroy_us, total, 1e6 / total);
  std::printf(
      "  (the same parse into an Arena-allocated request: %.1f us, arena release %.1f "
      "us)\n",
      cost.arena_parse_us, cost.arena_free_us);
  std::printf(
      "  floor, the same calls' DotRows + bias + top-k alone (users and rows found "
      "beforehand; %zu calls): %.1f us; DoScore / floor = %.2f\n",
      cost.floor_calls, cost.floor_us, cost.handle_us / cost.floor_us);
  if (!std::isnan(cost.kernel_us)) {  // NaN: listed candidates, which have no such layout
    std::printf(
        "  the fused kernel alone over the same calls' candidates, laid out as a stored "
        "campaign's (ScoreTopK): %.1f us; DoScore / kernel = %.2f\n",
        cost.kernel_us, cost.handle_us / cost.kernel_us);
  }
}

void PrintMedians(std::vector<RepResult>& results, int reps) {
  struct Column {
    std::vector<double> qps, p50, p99, p999, errors, server_cpu, client_cpu;
  };
  auto column = [&](std::optional<PhaseResult> RepResult::*member) {
    Column c;
    for (RepResult& r : results) {
      if (!(r.*member)) continue;
      PhaseResult& p = *(r.*member);
      c.qps.push_back(p.qps());
      c.p50.push_back(p.QuantileUs(0.5));
      c.p99.push_back(p.QuantileUs(0.99));
      c.p999.push_back(p.QuantileUs(0.999));
      c.errors.push_back(static_cast<double>(p.errors));
      c.server_cpu.push_back(p.server_cpu_us);
      c.client_cpu.push_back(p.client_cpu_us);
    }
    return c;
  };
  std::printf("\n medians over %d repetitions\n", reps);
  PrintHeader();
  const std::pair<const char*, std::optional<PhaseResult> RepResult::*> rows[] = {
      {"noop", &RepResult::noop},     {"score", &RepResult::score},
      {"open", &RepResult::open},     {"noop_open", &RepResult::noop_open},
      {"reload", &RepResult::reload}, {"noop_half", &RepResult::noop_half}};
  for (const auto& [name, member] : rows) {
    Column c = column(member);
    if (c.qps.empty()) continue;
    double errors = 0;
    for (double e : c.errors) errors += e;
    PrintRow(name, Median(c.qps), Median(c.p50), Median(c.p99), Median(c.p999), errors,
             Median(c.server_cpu), Median(c.client_cpu), "(errors: total over repetitions)");
  }
}

void PrintTargets(std::vector<RepResult>& results, double open_fraction, uint64_t total_errors) {
  std::vector<double> throughput_ratio, open_p99_ms, noop_open_p99_ms, reload_ratio,
      noop_half_p99_ms;
  std::vector<double> published, observed, load_cpu_ms, publish_ms;
  for (RepResult& r : results) {
    if (r.noop && r.score && r.noop->qps() > 0)
      throughput_ratio.push_back(r.score->qps() / r.noop->qps());
    if (r.open) open_p99_ms.push_back(r.open->QuantileUs(0.99) / 1000.0);
    if (r.noop_open) noop_open_p99_ms.push_back(r.noop_open->QuantileUs(0.99) / 1000.0);
    if (r.noop_half) noop_half_p99_ms.push_back(r.noop_half->QuantileUs(0.99) / 1000.0);
    if (r.open && r.reload) {
      reload_ratio.push_back(r.reload->QuantileUs(0.99) / r.open->QuantileUs(0.99));
      published.push_back(r.reloads_published);
      observed.push_back(r.reloads_observed);
      publish_ms.push_back(r.publish_ms);
      // The server's extra CPU in the reload phase over the steady open loop at the same rate,
      // per version it switched to: roughly what loading one version costs it.
      if (r.reloads_observed > 0 && !std::isnan(r.reload->server_cpu_us)) {
        load_cpu_ms.push_back((r.reload->server_cpu_us - r.open->server_cpu_us) *
                              static_cast<double>(r.reload->total_calls) / r.reloads_observed /
                              1000.0);
      }
    }
  }
  auto verdict = [](bool pass) { return pass ? "PASS" : "FAIL"; };
  std::printf("\n targets (median over repetitions of each repetition's ratio)\n");
  if (!throughput_ratio.empty()) {
    const double v = Median(throughput_ratio);
    std::printf("  Score QPS / no-op QPS          %6.3f   target >= 0.40   %s\n", v,
                verdict(v >= 0.40));
  }
  if (!open_p99_ms.empty()) {
    const double v = Median(open_p99_ms);
    std::printf("  p99 at %.0f%% of max Score rate  %6.3f ms  target <= 2 ms  %s",
                100 * open_fraction, v, verdict(v <= 2.0));
    if (!noop_open_p99_ms.empty()) {
      std::printf("  (no-op at the same rate: p99 %.3f ms)", Median(noop_open_p99_ms));
    }
    std::printf("\n");
  }
  if (!noop_half_p99_ms.empty()) {
    const double v = Median(noop_half_p99_ms);
    std::printf(
        "  the floor: no-op p99 at %.0f%% of max no-op rate %6.3f ms  (the same target "
        "applied to the cheapest RPC: %s)\n",
        100 * open_fraction, v, verdict(v <= 2.0));
  }
  if (!reload_ratio.empty()) {
    const double v = Median(reload_ratio);
    std::printf(
        "  p99 reloading / p99 steady     %6.3f   target <= 2      %s  (median %.0f "
        "versions published, %.0f served per repetition)\n",
        v, verdict(v <= 2.0), Median(published), Median(observed));
    std::printf(
        "  reload work: %.0f ms wall per publish in this process; server ≈ %s ms CPU "
        "per version loaded (extra server CPU over the steady open loop)\n",
        Median(publish_ms), Cell(Median(load_cpu_ms), 0).c_str());
  }
  std::printf("  failed calls                   %llu       target 0         %s\n",
              static_cast<unsigned long long>(total_errors), verdict(total_errors == 0));
}

}  // namespace coupond::load_bench
