// store_poll_bench: what one poll of the model store costs as its history grows, the
// server's store source with retention beside the baseline of a source that reopens the
// store for every call and a store nothing prunes (what coupond did before retention).
//
// For each mode: a fresh store; N versions (tiny models) published one at a time, each
// followed by one ModelManager::PollOnce (so each poll reopens, or catches up, and loads the
// new version) and, every --idle_every versions, one idle poll (nothing new). Prints the
// medians of the first and last 50 polls of each kind, their ratio, the open descriptors
// of the process and the store's bytes on disk at the end. Custom main.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/model_manager.h"
#include "spdlog/spdlog.h"
#include "storage/model_store.h"

ABSL_FLAG(int, versions, 500, "Versions to publish per mode.");
ABSL_FLAG(int, keep, 5, "Retention of the pruned mode (versions kept).");
ABSL_FLAG(int, idle_every, 5, "An idle poll (nothing new) after every this many versions.");
ABSL_FLAG(std::string, dir, "/tmp/store_poll_bench", "Scratch directory (emptied first).");

namespace {

using coupond::core::ModelData;
using coupond::core::ModelSnapshot;
using coupond::core::ModelVersionInfo;
using coupond::server::ModelManager;
using coupond::server::ModelManagerOptions;
using coupond::server::ModelSource;
using coupond::storage::ModelStore;

// The baseline: the source coupond had before, opening the store read-only for every call.
class ReopenEveryCallSource final : public ModelSource {
 public:
  explicit ReopenEveryCallSource(std::string path) : path_(std::move(path)) {}
  absl::StatusOr<ModelVersionInfo> Latest() override {
    auto store = ModelStore::OpenForRead(path_);
    if (!store.ok()) return store.status();
    return (*store)->LatestVersion();
  }
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> Load(uint64_t version) override {
    auto store = ModelStore::OpenForRead(path_);
    if (!store.ok()) return store.status();
    return (*store)->LoadSnapshot(version);
  }
  absl::StatusOr<std::vector<coupond::storage::CampaignRecord>> LatestCampaigns() override {
    auto store = ModelStore::OpenForRead(path_);
    if (!store.ok()) return store.status();
    return (*store)->LatestCampaigns();
  }
  std::string Describe() const override { return path_; }

 private:
  std::string path_;
};

ModelData Tiny(int v) {
  ModelData m;
  m.dimension = 8;
  m.global_bias = 0.001 * v;
  for (int u = 0; u < 50; ++u) {
    m.user_ids.push_back(absl::StrCat("u", u));
    m.user_bias.push_back(0.01f * static_cast<float>(u));
    for (int k = 0; k < 8; ++k) m.user_factors.push_back(0.1f * static_cast<float>((u + k) % 5));
  }
  for (int c = 0; c < 10; ++c) {
    m.coupon_ids.push_back(absl::StrCat("c", c));
    m.coupon_bias.push_back(0.0f);
    for (int k = 0; k < 8; ++k) m.coupon_factors.push_back(0.1f * static_cast<float>((c * k) % 3));
    m.coupon_attributes.emplace_back();
  }
  return m;
}

int OpenFds() {
  int n = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++n;
  }
  return n - 1;
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t bytes = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) bytes += e.file_size();
  }
  return bytes;
}

double MedianMs(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return 1e3 * v[v.size() / 2];
}

struct Mode {
  const char* name;
  bool retention;
  bool baseline_source;
};

int Run(const Mode& mode) {
  const std::string path = absl::StrCat(absl::GetFlag(FLAGS_dir), "/", mode.name);
  std::filesystem::remove_all(path);
  auto writer = ModelStore::OpenForWrite(path);
  if (!writer.ok()) {
    std::fprintf(stderr, "%s\n", writer.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<ModelSource> source =
      mode.baseline_source ? std::unique_ptr<ModelSource>(new ReopenEveryCallSource(path))
                           : coupond::server::NewStoreModelSource(path);
  ModelManagerOptions options;
  options.poll_thread_nice = 0;  // time the work itself, on this thread
  auto manager = ModelManager::Create(std::move(source), options);
  if (!manager.ok()) return 1;
  coupond::storage::PruneOptions prune;
  prune.keep_versions = static_cast<uint32_t>(absl::GetFlag(FLAGS_keep));
  prune.min_superseded_age_seconds = 0;
  std::vector<double> load_polls, idle_polls;
  const int fds_start = OpenFds();
  for (int v = 1; v <= absl::GetFlag(FLAGS_versions); ++v) {
    if (!(*writer)->Publish(Tiny(v)).ok()) return 1;
    if (mode.retention && !(*writer)->Prune(prune).ok()) return 1;
    absl::Time t0 = absl::Now();
    if (!(*manager)->PollOnce().ok()) return 1;
    load_polls.push_back(absl::ToDoubleSeconds(absl::Now() - t0));
    if (v % absl::GetFlag(FLAGS_idle_every) == 0) {
      t0 = absl::Now();
      if (!(*manager)->PollOnce().ok()) return 1;
      idle_polls.push_back(absl::ToDoubleSeconds(absl::Now() - t0));
    }
  }
  const auto first = [](const std::vector<double>& v) {
    return std::vector<double>(v.begin(), v.begin() + std::min<size_t>(50, v.size()));
  };
  const auto last = [](const std::vector<double>& v) {
    return std::vector<double>(v.end() - std::min<size_t>(50, v.size()), v.end());
  };
  const double lf = MedianMs(first(load_polls)), ll = MedianMs(last(load_polls));
  const double idf = MedianMs(first(idle_polls)), idl = MedianMs(last(idle_polls));
  std::printf("%-22s %9.3f %9.3f %6.2fx   %9.3f %9.3f %6.2fx   %5d %5d %10llu\n", mode.name, lf,
              ll, ll / lf, idf, idl, idl / idf, fds_start, OpenFds(),
              static_cast<unsigned long long>(DirBytes(path)));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("store_poll_bench [--versions N] [--keep K] [--dir D]");
  absl::ParseCommandLine(argc, argv);
  spdlog::set_level(spdlog::level::warn);  // not a line per load
  std::printf("%d versions per mode; poll medians in ms (first 50 / last 50 polls)\n",
              absl::GetFlag(FLAGS_versions));
  std::printf("%-22s %9s %9s %7s   %9s %9s %7s   %5s %5s %10s\n", "mode", "load 1st", "load last",
              "ratio", "idle 1st", "idle last", "ratio", "fds0", "fds", "disk bytes");
  const Mode modes[] = {
      {"reopen-each-call", false, true},  // the baseline: coupond before this change
      {"one-handle", false, false},
      {"one-handle+retention", true, false},
  };
  for (const Mode& m : modes) {
    if (Run(m) != 0) return 1;
  }
  std::filesystem::remove_all(absl::GetFlag(FLAGS_dir));
  return 0;
}
