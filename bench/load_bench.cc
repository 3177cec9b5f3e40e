// Load test of a running coupond server with the Tianchi O2O request stream (issue 7).
//
// The requests are real: the Tianchi O2O offline test set (113,640 coupon receipts of
// 76,309 users for 2,050 coupons, July 2016) replayed in file order, cycling. Each row
// becomes one Score request for the row's user against 1,000 candidate coupons drawn
// (seeded, without replacement) from the stream's coupon popularity, so both id
// distributions are the real ones. The candidates are named one of two ways
// (--candidate_source): `campaign` (default), the request names one of 64 stored campaigns
// of 1,000 coupons (ScoreRequest.campaign_id; one that holds the row's coupon when any
// does), which is how a storefront scores a large candidate set; `list`, the request lists
// the row's coupon plus 999 others in coupon_ids. The model is synthetic but sized to the stream:
// its users are the stream's distinct user ids, its coupons the stream's distinct coupon ids
// (padded with "pad-NNNNN" coupons of weight 1 when the stream has fewer coupons than one
// request needs), d = 64, factors drawn as learn/synthetic.h draws them.
//
// Phases, all against the same server in one run (per repetition):
//   noop    the floor: grpc.health.v1.Health/Check (the server's default health service,
//           the cheapest RPC it serves) closed loop, C connections x S calls in flight;
//   score   Score at max throughput, same closed loop;
//   open    Score open loop at a fixed rate (--open_fraction of this repetition's score QPS),
//           latency measured from each call's *scheduled* send time, so a stalled server or
//           client cannot hide queueing (no coordinated omission);
//   noop_open  the latency floor of `open`: Health/Check open loop at the same rate (what the
//           machine, gRPC and the client alone add to p99; on a shared machine mostly
//           scheduling delay);
//   noop_half  (optional) the no-op open loop at half of the no-op's own max rate: the p99
//           target applied to the cheapest RPC, i.e. what the machine allows at all;
//   reload  as `open`, while this harness publishes a new model version every
//           --reload_interval (storage::ModelStore::Publish) and the server polls the store
//           every --poll_interval; a watcher counts the versions the server answers with.
// Every call has a deadline; failed calls are counted per phase (the run fails unless 0).
// Each phase also reports the CPU per call of the server process and of this process, and
// before the load the Score handler's steps are timed in this process (--breakdown), so a
// missed target comes with where the time went.
// Requests are serialized before timing and sent as raw bytes (grpc::GenericStub); the
// responses are not parsed during timing (a sample is parsed and checked beforehand).
//
// The client, the publisher and the server share the machine's cores: every figure is of
// the whole system on this machine, and ratios between phases of one run are what compare.
//
// usage: load_bench [--data=CSV] [--coupond=BIN | --server=HOST:PORT] [--store=DIR]
//                   [--connections=4] [--streams=16] [--reps=3] [--duration=5s] ...
//        (--help lists every flag). Skips (exit 0) with a message when the data are absent.
// Exit status: 0 when the run completed without failed calls (targets are reported, not
// enforced), 1 on any error or failed call.

#include <fcntl.h>
#include <spawn.h>
#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api/convert.h"
#include "client/coupond_client.h"
#include "common/status_macros.h"
#include "core/model.h"
#include "core/random.h"
#include "coupond/v1/coupon_scoring.pb.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "learn/synthetic.h"
#include "pipeline/csv.h"
#include "server/model_manager.h"
#include "server/scoring_service.h"
#include "spdlog/spdlog.h"
#include "storage/model_store.h"

extern char** environ;

ABSL_FLAG(std::string, data, "",
          "The Tianchi O2O test CSV. Default: $COUPOND_SHARED_DATA/tianchi_o2o_requests/"
          "ccf_offline_stage1_test_revised.csv, else ../shared/data/... from the working "
          "directory.");
ABSL_FLAG(std::string, coupond, COUPOND_SERVER_BINARY,
          "The coupond binary to start (ignored with --server).");
ABSL_FLAG(std::string, server_env, "",
          "Extra environment for the started server, comma-separated NAME=VALUE (experiments, "
          "e.g. LD_PRELOAD=libjemalloc.so.2).");
ABSL_FLAG(std::string, server_flags, "",
          "Extra flags for the started server, space-separated (experiments, e.g. "
          "\"--loader_nice=0\").");
ABSL_FLAG(std::string, server_cpus, "",
          "Pin the started server to these CPUs (comma-separated indices, e.g. \"1\"); empty: no "
          "pinning. With --client_cpus, separates the server from the load generator on a "
          "machine too small to run them apart.");
ABSL_FLAG(std::string, client_cpus, "",
          "Pin this process (the load generator and the reload publisher) to these CPUs.");
ABSL_FLAG(std::string, server, "",
          "host:port of a running coupond to load instead of starting one. Its model should "
          "know the Tianchi ids (publish one with this harness's --store first). The reload "
          "phase runs only when --store names the store that server polls.");
ABSL_FLAG(std::string, store, "",
          "A model store to use. Empty: a fresh one under --work_dir with a Tianchi-sized "
          "synthetic model. An existing store without versions gets that model published.");
ABSL_FLAG(std::string, work_dir, "",
          "Where the fresh store and the server's log go. Empty: a new directory under $TMPDIR "
          "(removed at the end unless --keep_work_dir).");
ABSL_FLAG(bool, keep_work_dir, false, "Keep --work_dir's store and logs.");
ABSL_FLAG(int, connections, 4, "gRPC connections (channels), C.");
ABSL_FLAG(int, streams, 16, "Calls in flight per connection in the closed-loop phases, S.");
ABSL_FLAG(int, client_threads, 2, "Client completion-queue threads.");
ABSL_FLAG(int, candidates, 1000,
          "Candidate coupons per Score request. 0: no candidate list (the server scores every "
          "active coupon, i.e. all the stream's coupons): an experiment that separates the "
          "cost of scoring from the cost of carrying 1,000 ids.");
ABSL_FLAG(std::string, candidate_source, "campaign",
          "How a Score request names its candidates. campaign: by ScoreRequest.campaign_id, one "
          "of --campaigns stored campaigns of --candidates coupons each (published to the store "
          "before the load; the server looks their coupons up once per model version). list: "
          "the ids themselves in coupon_ids, every request.");
ABSL_FLAG(int, campaigns, 64, "--candidate_source=campaign: stored campaigns to draw.");
ABSL_FLAG(int, top_k, 0, "Score requests' top_k (0: every candidate is returned).");
ABSL_FLAG(int, dimension, 64, "Latent dimension of the synthetic model.");
ABSL_FLAG(uint64_t, seed, 42, "Seed of the model and of the candidate draws.");
ABSL_FLAG(int, reps, 3, "Repetitions of the phase sequence; medians are reported.");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1), "Unmeasured start of each phase.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(5), "Measured part of each phase.");
ABSL_FLAG(double, open_fraction, 0.5,
          "Open-loop rate as a fraction of the same repetition's closed-loop Score QPS.");
ABSL_FLAG(int, max_in_flight, 4096,
          "Open loop: most calls in flight; beyond it sends wait (and their latency, measured "
          "from the scheduled time, grows).");
ABSL_FLAG(absl::Duration, reload_interval, absl::Seconds(1),
          "Reload phase: a new model version is published this often.");
ABSL_FLAG(bool, stage_versions, true,
          "Reload phase: stage the versions before the phase (ModelStore::Stage) and only "
          "commit them during it, so the measured window holds the server's reloads, not the "
          "pipeline's encoding and writing. false: a whole Publish per version in the phase.");
ABSL_FLAG(bool, publisher_idle, true,
          "Reload phase: run the publishing thread under SCHED_IDLE (the pipeline's publisher "
          "runs on another machine in production; here it shares the server's cores).");
ABSL_FLAG(absl::Duration, poll_interval, absl::Milliseconds(100),
          "--poll_interval given to the started server.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10), "Deadline of each call.");
ABSL_FLAG(std::string, phases, "noop,score,open,noop_open,reload",
          "Phases to run, in this order (open and reload need score). Also available: "
          "noop_half, the no-op open loop at --open_fraction of its own max rate (needs noop "
          "and score; runs before reload): the p99 target applied to the cheapest RPC.");
ABSL_FLAG(bool, breakdown, true,
          "Before the load, time the Score handler in this process on one thread, over the "
          "same request bytes and model (no gRPC): parse, validate + score + build, "
          "serialize. Needs the store.");
ABSL_FLAG(bool, h2load, false,
          "After the phases, cross-check with h2load (nghttp2-client) against the same server: "
          "Health/Check and one Score body, same C x S.");

namespace {

using Clock = std::chrono::steady_clock;
using namespace coupond;

constexpr char kNoopMethod[] = "/grpc.health.v1.Health/Check";
constexpr char kScoreMethod[] = "/coupond.v1.CouponScoring/Score";

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  if (!(in >> a >> b >> c)) return "unknown";
  return absl::StrCat(a, " ", b, " ", c);
}

// CPU seconds (user + system) used so far by process `pid` (0: this process), from
// /proc/<pid>/stat; NaN when unreadable. Resolution: one clock tick (10 ms).
double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/stat")
                            : absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(in, line)) return std::nan("");
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos) return std::nan("");
  // Fields after "pid (comm)": state is field 3, utime 14, stime 15.
  const std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(line).substr(paren + 2), ' ');
  double utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtod(fields[11], &utime) ||
      !absl::SimpleAtod(fields[12], &stime)) {
    return std::nan("");
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double Median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ---------------------------------------------------------------------------------------
// The request stream.

struct TianchiStream {
  std::vector<std::string> users;     // distinct, in order of first appearance
  std::vector<std::string> coupons;   // distinct, in order of first appearance
  std::vector<uint64_t> coupon_rows;  // rows naming each coupon (its popularity)
  std::vector<uint32_t> row_user;     // per usable row, index into users
  std::vector<uint32_t> row_coupon;   // per usable row, index into coupons
  size_t skipped_rows = 0;            // malformed, or no user or coupon id
};

absl::StatusOr<TianchiStream> ReadTianchi(const std::string& path) {
  COUPOND_ASSIGN_OR_RETURN(std::unique_ptr<pipeline::CsvReader> reader,
                           pipeline::CsvReader::Open(path));
  COUPOND_ASSIGN_OR_RETURN(const size_t user_col, reader->RequireColumn("User_id"));
  COUPOND_ASSIGN_OR_RETURN(const size_t coupon_col, reader->RequireColumn("Coupon_id"));
  TianchiStream s;
  absl::flat_hash_map<std::string, uint32_t> user_index, coupon_index;
  while (true) {
    COUPOND_ASSIGN_OR_RETURN(const bool more, reader->Next());
    if (!more) break;
    const pipeline::CsvRecord& r = reader->record();
    const std::optional<absl::string_view> user = r.Get(user_col);
    const std::optional<absl::string_view> coupon = r.Get(coupon_col);
    if (!r.ok() || !user || !coupon || user->size() > core::kMaxIdBytes ||
        coupon->size() > core::kMaxIdBytes) {
      ++s.skipped_rows;
      continue;
    }
    auto [u, new_user] = user_index.try_emplace(std::string(*user), s.users.size());
    if (new_user) s.users.emplace_back(*user);
    auto [c, new_coupon] = coupon_index.try_emplace(std::string(*coupon), s.coupons.size());
    if (new_coupon) {
      s.coupons.emplace_back(*coupon);
      s.coupon_rows.push_back(0);
    }
    ++s.coupon_rows[c->second];
    s.row_user.push_back(u->second);
    s.row_coupon.push_back(c->second);
  }
  if (s.row_user.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no usable rows"));
  return s;
}

// The stream's coupons padded with "pad-NNNNN" coupons of popularity 1 (the rarest possible)
// until there are at least `min_coupons`.
void PadCoupons(size_t min_coupons, TianchiStream* s) {
  for (size_t i = 0; s->coupons.size() < min_coupons; ++i) {
    s->coupons.push_back(absl::StrFormat("pad-%05d", i));
    s->coupon_rows.push_back(1);
  }
}

// A synthetic model sized to the stream: learn/synthetic.h's draws, with the stream's ids.
// Every coupon is active at any time (no validity windows, no coupon out of stock), so each
// request's candidates are all scored.
absl::StatusOr<core::ModelData> StreamSizedModel(const TianchiStream& s, uint32_t dimension,
                                                 uint64_t seed) {
  learn::SyntheticPlatformOptions o;
  o.num_users = static_cast<uint32_t>(s.users.size());
  o.num_coupons = static_cast<uint32_t>(s.coupons.size());
  o.dimension = dimension;
  o.seed = seed;
  o.now_unix_seconds = 0;
  o.out_of_stock_fraction = 0;
  COUPOND_ASSIGN_OR_RETURN(core::ModelData m, learn::GenerateSyntheticPlatform(o));
  m.user_ids = s.users;
  m.coupon_ids = s.coupons;
  m.description = absl::StrFormat(
      "load_bench: synthetic factors (seed=%d, d=%d) on the Tianchi O2O ids (%d users, %d "
      "coupons)",
      seed, dimension, s.users.size(), s.coupons.size());
  COUPOND_RETURN_IF_ERROR(core::ValidateModelData(m));
  return m;
}

// Pre-serialized requests. A protobuf message's serialization concatenated with another's
// parses as their merge (repeated fields append), so each Score request is two slices:
// a per-row prefix (user_id, top_k and, when needed, the row's coupon) and a shared block of
// candidates. Blocks are `candidates` distinct coupons drawn by popularity; a row whose
// coupon is in its block uses the whole block, otherwise the block without its last coupon
// (a slice of the same bytes) after the row's coupon. Nothing is serialized or copied per call.
struct RequestSet {
  std::vector<grpc::ByteBuffer> score;  // one per stream row, file order
  grpc::ByteBuffer noop;                // an empty HealthCheckRequest (service "")
  size_t mean_score_bytes = 0;
  // Campaign mode: the campaigns to store, their coupons as stream coupon indices, and how
  // many rows' own coupon is in the campaign their request names.
  std::vector<std::vector<uint32_t>> campaigns;
  size_t rows_with_own_coupon = 0;
};

// A CPU set from "0,2,3"; nullopt for "" (no pinning). InvalidArgument for anything else.
absl::StatusOr<std::optional<cpu_set_t>> ParseCpus(const std::string& list) {
  if (list.empty()) return std::optional<cpu_set_t>();
  cpu_set_t set;
  CPU_ZERO(&set);
  for (absl::string_view part : absl::StrSplit(list, ',')) {
    int cpu = -1;
    if (!absl::SimpleAtoi(part, &cpu) || cpu < 0 || cpu >= CPU_SETSIZE) {
      return absl::InvalidArgumentError(absl::StrCat("'", list, "' is not a list of CPU indices"));
    }
    CPU_SET(cpu, &set);
  }
  return std::optional<cpu_set_t>(set);
}

// The no-op call's request: an empty HealthCheckRequest (service "").
grpc::ByteBuffer NoopRequest() {
  const std::string noop = grpc::health::v1::HealthCheckRequest().SerializeAsString();
  grpc::Slice slice(noop.data(), noop.size());
  return grpc::ByteBuffer(&slice, 1);
}

// The stored campaign id of block `b` in campaign mode.
std::string LoadCampaignId(size_t b) { return absl::StrFormat("load-%03d", b); }

// Efraimidis-Spirakis weighted sampling without replacement: the `n` coupons with the largest
// u^(1/w), u uniform in (0, 1); computed as log(u) / w.
std::vector<uint32_t> WeightedSample(const std::vector<uint64_t>& weights, size_t n,
                                     core::SplitMix64* rng) {
  std::vector<std::pair<double, uint32_t>> keys(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    const double u = (static_cast<double>(rng->Next() >> 11) + 0.5) * 0x1.0p-53;
    keys[i] = {std::log(u) / static_cast<double>(weights[i]), static_cast<uint32_t>(i)};
  }
  std::partial_sort(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(n), keys.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<uint32_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = keys[i].second;
  return out;
}

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// Campaign mode: `num_campaigns` stored campaigns of `candidates` coupons drawn by popularity;
// each row's request names one that holds the row's coupon (drawn among those that do), or
// any one when none does. The request is then only user_id, top_k and campaign_id.
absl::StatusOr<RequestSet> BuildCampaignRequests(const TianchiStream& s, size_t candidates,
                                                 uint32_t top_k, size_t num_campaigns,
                                                 uint64_t seed) {
  if (candidates == 0 || candidates > s.coupons.size() || num_campaigns == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "campaign mode needs candidates in [1, ", s.coupons.size(), "] and campaigns >= 1"));
  }
  core::SplitMix64 rng(seed ^ 0x63616d70ULL);
  RequestSet out;
  std::vector<std::vector<uint32_t>> holding(s.coupons.size());  // coupon -> campaigns
  for (size_t b = 0; b < num_campaigns; ++b) {
    out.campaigns.push_back(WeightedSample(s.coupon_rows, candidates, &rng));
    for (uint32_t c : out.campaigns.back()) holding[c].push_back(static_cast<uint32_t>(b));
  }
  out.score.reserve(s.row_user.size());
  size_t total_bytes = 0;
  for (size_t row = 0; row < s.row_user.size(); ++row) {
    const std::vector<uint32_t>& with = holding[s.row_coupon[row]];
    size_t b;
    if (with.empty()) {
      b = rng.Below(num_campaigns);
    } else {
      b = with[rng.Below(with.size())];
      ++out.rows_with_own_coupon;
    }
    v1::ScoreRequest request;
    request.set_user_id(s.users[s.row_user[row]]);
    request.set_top_k(top_k);
    request.set_campaign_id(LoadCampaignId(b));
    const std::string bytes = request.SerializeAsString();
    grpc::Slice slice(bytes.data(), bytes.size());
    out.score.emplace_back(&slice, 1);
    total_bytes += slice.size();
  }
  out.mean_score_bytes = total_bytes / out.score.size();
  out.noop = NoopRequest();
  for (size_t row = 0; row < s.row_user.size(); row += 997) {
    v1::ScoreRequest parsed;
    if (!parsed.ParseFromString(Flatten(out.score[row])) ||
        parsed.user_id() != s.users[s.row_user[row]] || parsed.coupon_ids_size() != 0 ||
        !absl::StartsWith(parsed.campaign_id(), "load-") || parsed.top_k() != top_k) {
      return absl::InternalError(absl::StrCat("request of row ", row, " is malformed"));
    }
  }
  return out;
}

// Stores the campaigns of BuildCampaignRequests (one record each; a budget of 1 and no
// prices: Score reads only their coupons).
absl::Status PublishLoadCampaigns(const TianchiStream& s, const RequestSet& requests,
                                  storage::ModelStore* store) {
  for (size_t b = 0; b < requests.campaigns.size(); ++b) {
    v1::Campaign campaign;
    campaign.set_campaign_id(LoadCampaignId(b));
    campaign.set_budget(1);
    for (uint32_t c : requests.campaigns[b]) campaign.add_coupons()->set_coupon_id(s.coupons[c]);
    COUPOND_ASSIGN_OR_RETURN(std::string payload,
                             api::EncodeStoredCampaign(campaign, v1::CampaignPrices()));
    COUPOND_RETURN_IF_ERROR(store->PublishCampaign(campaign.campaign_id(), payload).status());
  }
  return absl::OkStatus();
}

absl::StatusOr<RequestSet> BuildRequests(const TianchiStream& s, size_t candidates, uint32_t top_k,
                                         uint64_t seed) {
  if (candidates > s.coupons.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("candidates: ", candidates, " outside [0, ", s.coupons.size(), "]"));
  }
  constexpr size_t kBlocks = 256;
  core::SplitMix64 rng(seed ^ 0x6c6f6164ULL);
  struct Block {
    grpc::Slice full;      // `candidates` coupons
    grpc::Slice but_last;  // the first candidates - 1
    std::vector<bool> has;
  };
  std::vector<Block> blocks;
  blocks.reserve(kBlocks);
  for (size_t b = 0; b < kBlocks && candidates > 0; ++b) {
    const std::vector<uint32_t> drawn = WeightedSample(s.coupon_rows, candidates, &rng);
    v1::ScoreRequest head, last;
    Block block;
    block.has.assign(s.coupons.size(), false);
    for (size_t i = 0; i < drawn.size(); ++i) {
      block.has[drawn[i]] = true;
      (i + 1 < drawn.size() ? head : last).add_coupon_ids(s.coupons[drawn[i]]);
    }
    const std::string head_bytes = head.SerializeAsString();
    const std::string bytes = head_bytes + last.SerializeAsString();
    block.full = grpc::Slice(bytes.data(), bytes.size());
    block.but_last = block.full.sub(0, head_bytes.size());
    blocks.push_back(std::move(block));
  }

  RequestSet out;
  out.score.reserve(s.row_user.size());
  size_t total_bytes = 0;
  for (size_t row = 0; row < s.row_user.size(); ++row) {
    v1::ScoreRequest prefix;
    prefix.set_user_id(s.users[s.row_user[row]]);
    prefix.set_top_k(top_k);
    if (candidates == 0) {
      const std::string bytes = prefix.SerializeAsString();
      grpc::Slice slice(bytes.data(), bytes.size());
      out.score.emplace_back(&slice, 1);
      total_bytes += slice.size();
      continue;
    }
    const Block& block = blocks[rng.Below(kBlocks)];
    const uint32_t coupon = s.row_coupon[row];
    const bool in_block = block.has[coupon];
    if (!in_block) prefix.add_coupon_ids(s.coupons[coupon]);
    const std::string prefix_bytes = prefix.SerializeAsString();
    grpc::Slice slices[2] = {grpc::Slice(prefix_bytes.data(), prefix_bytes.size()),
                             in_block ? block.full : block.but_last};
    out.score.emplace_back(slices, 2);
    total_bytes += slices[0].size() + slices[1].size();
  }
  out.mean_score_bytes = total_bytes / out.score.size();
  out.noop = NoopRequest();

  // Check a sample of what will be sent: it parses, names the row's user and coupon, and
  // holds `candidates` distinct ids.
  for (size_t row = 0; row < s.row_user.size(); row += 997) {
    v1::ScoreRequest parsed;
    if (!parsed.ParseFromString(Flatten(out.score[row]))) {
      return absl::InternalError(absl::StrCat("request of row ", row, " does not parse"));
    }
    absl::flat_hash_set<std::string> ids(parsed.coupon_ids().begin(), parsed.coupon_ids().end());
    if (parsed.user_id() != s.users[s.row_user[row]] ||
        static_cast<size_t>(parsed.coupon_ids_size()) != candidates || ids.size() != candidates ||
        (candidates > 0 && !ids.contains(s.coupons[s.row_coupon[row]])) ||
        parsed.top_k() != top_k) {
      return absl::InternalError(absl::StrCat(
          "request of row ", row, " is malformed: ", parsed.ShortDebugString().substr(0, 200)));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The load generator: raw unary calls on a set of channels, completions drained by
// --client_threads threads, each with its own completion queue.

struct PhaseResult {
  double seconds = 0;        // measured window
  uint64_t completed = 0;    // OK calls that completed inside the window
  uint64_t total_calls = 0;  // every call of the phase, warm-up and drain included
  // CPU per call over the whole phase: of the server process (NaN when not started here)
  // and of this process (the client, and the publisher during the reload phase).
  double server_cpu_us = std::nan("");
  double client_cpu_us = std::nan("");
  uint64_t errors = 0;      // failed calls over the whole phase (warm-up and drain included)
  uint64_t late_sends = 0;  // open loop: calls sent more than 1 ms after their scheduled time
  std::string first_error;
  std::vector<int64_t> latency_ns;  // of the calls counted in `completed`
  // Open loop: the same calls' latency from the moment they were actually sent (the
  // difference to latency_ns is the client's lateness in sending, e.g. CPU starvation).
  std::vector<int64_t> sent_latency_ns;

  double qps() const { return seconds > 0 ? static_cast<double>(completed) / seconds : 0; }
  // Latency quantile q in microseconds (nearest rank), from the scheduled send time.
  double QuantileUs(double q) { return NearestRankUs(&latency_ns, q); }
  // The same from the actual send time (open loop only).
  double SentQuantileUs(double q) { return NearestRankUs(&sent_latency_ns, q); }

 private:
  static double NearestRankUs(std::vector<int64_t>* v, double q) {
    if (v->empty()) return std::nan("");
    if (!std::is_sorted(v->begin(), v->end())) std::sort(v->begin(), v->end());
    const size_t n = v->size();
    const size_t rank =
        std::clamp<size_t>(static_cast<size_t>(std::ceil(q * static_cast<double>(n))), 1, n);
    return static_cast<double>((*v)[rank - 1]) / 1000.0;
  }
};

class LoadGenerator {
 public:
  LoadGenerator(const std::string& target, int connections, int threads, absl::Duration timeout)
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
  ~LoadGenerator() {
    for (auto& q : queues_) {
      q->Shutdown();
      void* tag;
      bool ok;
      while (q->Next(&tag, &ok)) delete static_cast<Call*>(tag);
    }
  }

  absl::Status WaitConnected(absl::Duration timeout) {
    const auto deadline = std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout);
    for (size_t i = 0; i < channels_.size(); ++i) {
      if (!channels_[i]->WaitForConnected(deadline)) {
        return absl::DeadlineExceededError(absl::StrCat("connection ", i, " did not connect"));
      }
    }
    return absl::OkStatus();
  }

  // Closed loop: `streams` calls in flight on every connection, each replaced as it completes.
  PhaseResult RunClosed(const char* method, const std::vector<grpc::ByteBuffer>& requests,
                        int streams, absl::Duration warmup, absl::Duration duration) {
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

  // Open loop at `rate` calls/s: one thread sends on schedule (round-robin over connections),
  // the queue threads take the completions. Latency runs from the scheduled send time.
  PhaseResult RunOpen(const char* method, const std::vector<grpc::ByteBuffer>& requests,
                      double rate, int max_in_flight, absl::Duration warmup,
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

 private:
  struct Phase {
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

  struct Call {
    grpc::ClientContext context;
    grpc::ByteBuffer response;
    grpc::Status status;
    std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
    Clock::time_point start;  // the scheduled (open loop) or actual (closed loop) send time
    Clock::time_point sent;   // the actual send time
    bool open_loop = false;
    size_t connection = 0;
  };

  void Start(Phase* phase, size_t connection, size_t queue, Clock::time_point start,
             bool open_loop = false) {
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

  // Records one completion. Thread-safe (locks per call: at most ~10^5 calls/s).
  void Complete(Phase* phase, Call* call, Clock::time_point now) {
    {
      std::lock_guard<std::mutex> lock(phase->mu);
      PhaseResult& r = phase->result;
      ++r.total_calls;
      if (!call->status.ok()) {
        if (r.errors++ == 0) {
          r.first_error =
              absl::StrCat(call->status.error_code(), ": ", call->status.error_message());
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

  // Takes completions on queue `t` until `in_flight` reaches 0; `next(call, now)` returns
  // the change in flight after the call (0: it started a replacement, -1: it did not).
  template <typename Next>
  void Drain(Phase* phase, size_t t, Next next, int in_flight) {
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

  const std::chrono::nanoseconds timeout_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs_;
  std::vector<std::unique_ptr<grpc::CompletionQueue>> queues_;
};

// ---------------------------------------------------------------------------------------
// The server process and the reload machinery.

class ServerProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const std::string& binary,
                                                              const std::string& store,
                                                              const std::string& dir,
                                                              absl::Duration poll_interval,
                                                              const std::string& extra_env) {
    const std::string port_file = dir + "/coupond.port";
    const std::string log_file = dir + "/coupond.log";
    std::error_code ignored;
    std::filesystem::remove(port_file, ignored);
    std::vector<std::string> args = {binary,
                                     "--store=" + store,
                                     "--listen=127.0.0.1:0",
                                     "--port_file=" + port_file,
                                     "--poll_interval=" + absl::FormatDuration(poll_interval),
                                     "--log_level=warn"};
    for (absl::string_view flag :
         absl::StrSplit(absl::GetFlag(FLAGS_server_flags), ' ', absl::SkipEmpty())) {
      args.emplace_back(flag);
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
    for (absl::string_view e : absl::StrSplit(extra_env, ',', absl::SkipEmpty())) {
      env_strings.emplace_back(e);
    }
    std::vector<char*> envp;
    for (std::string& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot start ", binary, ": ", std::strerror(rc), " (build it, or --coupond)"));
    }
    auto process = std::unique_ptr<ServerProcess>(new ServerProcess(pid, log_file));
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      std::ifstream in(port_file);
      int port = 0;
      if (in >> port && port > 0) {
        process->port_ = port;
        return process;
      }
      if (waitpid(pid, nullptr, WNOHANG) == pid) {
        process->pid_ = 0;
        return absl::InternalError(absl::StrCat("coupond exited at start; see ", log_file));
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return absl::DeadlineExceededError(
        absl::StrCat("coupond did not report a port; see ", log_file));
  }
  ~ServerProcess() {
    if (pid_ == 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 500; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      absl::SleepFor(absl::Milliseconds(20));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& log_file() const { return log_file_; }

 private:
  ServerProcess(pid_t pid, std::string log_file) : pid_(pid), log_file_(std::move(log_file)) {}
  pid_t pid_;
  int port_ = 0;
  std::string log_file_;
};

// Publishes `model` as a new version every `interval` until stopped; meanwhile polls the
// server's GetModelInfo every 20 ms and counts the version changes it answers with.
// With `staged` (--stage_versions), the versions are staged (ModelStore::Stage: encoded and
// written) in the constructor, before the measured phase, and each publish is the Commit
// alone, as a pipeline that prepares a version ahead of its release would do; otherwise
// each publish is a whole ModelStore::Publish inside the phase.
class Reloader {
 public:
  Reloader(storage::ModelStore* store, const core::ModelData* model,
           const client::CoupondClient* client, absl::Duration interval, bool staged,
           int versions_needed)
      : store_(store), model_(model), client_(client), interval_(interval) {
    if (staged) {
      absl::StatusOr<core::ModelVersionInfo> latest = store_->LatestVersion();
      uint64_t next = latest.ok() ? latest->version + 1 : 1;
      const absl::Time t0 = absl::Now();
      for (int i = 0; i < versions_needed && status_.ok(); ++i) {
        storage::PublishOptions options;
        options.version = next++;
        absl::StatusOr<storage::StagedVersion> version = store_->Stage(*model_, options);
        if (version.ok()) {
          staged_.push_back(std::move(*version));
        } else {
          status_ = version.status();
        }
      }
      stage_ms_ = absl::ToDoubleMilliseconds(absl::Now() - t0) /
                  std::max<double>(1, static_cast<double>(staged_.size()));
      staged_mode_ = true;
    }
    publisher_ = std::thread([this] { Publish(); });
    watcher_ = std::thread([this] { Watch(); });
  }
  void Stop() {
    if (!stop_.HasBeenNotified()) stop_.Notify();
    if (publisher_.joinable()) publisher_.join();
    if (watcher_.joinable()) watcher_.join();
    staged_.clear();  // versions not committed: their files are removed
  }
  ~Reloader() { Stop(); }

  int published() const { return published_; }
  int observed() const { return observed_; }
  double mean_publish_ms() const { return published_ > 0 ? publish_ms_ / published_ : 0; }
  // Staged mode: the mean time to stage one version, outside the measured phase (0 otherwise).
  double stage_ms() const { return stage_ms_; }
  bool staged() const { return staged_mode_; }
  const absl::Status& status() const { return status_; }

 private:
  void Publish() {
    // The publisher stands for the offline pipeline, which runs on another machine in
    // production; on this shared machine it takes idle CPU only (--publisher_idle).
    if (absl::GetFlag(FLAGS_publisher_idle)) {
      const sched_param param{};
      if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) != 0) {
        std::fprintf(stderr, "load_bench: cannot make the publisher SCHED_IDLE\n");
      }
    }
    size_t next_staged = 0;
    while (status_.ok() && !stop_.WaitForNotificationWithTimeout(interval_)) {
      const absl::Time t0 = absl::Now();
      absl::StatusOr<core::ModelVersionInfo> info;
      if (staged_mode_) {
        if (next_staged == staged_.size()) return;  // all committed; the phase runs on
        info = store_->Commit(std::move(staged_[next_staged++]));
      } else {
        info = store_->Publish(*model_);
      }
      if (!info.ok()) {
        status_ = info.status();
        return;
      }
      publish_ms_ += absl::ToDoubleMilliseconds(absl::Now() - t0);
      ++published_;
    }
  }
  void Watch() {
    uint64_t version = 0;
    while (!stop_.WaitForNotificationWithTimeout(absl::Milliseconds(20))) {
      absl::StatusOr<v1::GetModelInfoResponse> info = client_->GetModelInfo();
      if (!info.ok()) continue;
      if (version != 0 && info->model().version() != version) ++observed_;
      version = info->model().version();
    }
  }

  storage::ModelStore* const store_;
  const core::ModelData* const model_;
  const client::CoupondClient* const client_;
  const absl::Duration interval_;
  absl::Notification stop_;
  std::thread publisher_, watcher_;
  int published_ = 0, observed_ = 0;  // written by one thread each, read after Stop()
  double publish_ms_ = 0;
  double stage_ms_ = 0;
  bool staged_mode_ = false;
  std::vector<storage::StagedVersion> staged_;  // committed in order by the publisher
  absl::Status status_;  // set in the constructor, then only by the publisher
};

// ---------------------------------------------------------------------------------------
// h2load cross-check.

struct H2loadResult {
  double rps = 0;
  // h2load does not read grpc-status, but a failed gRPC call carries no response message:
  // DATA bytes per completed request equal to 5 + the OK response's size mean every call
  // succeeded.
  double data_bytes_per_request = 0;
  double requests_done = 0;
  std::string summary;
};

absl::StatusOr<H2loadResult> RunH2load(const std::string& dir, const std::string& name,
                                       const std::string& message, int port, int connections,
                                       int streams, absl::Duration duration) {
  // gRPC framing: uncompressed flag, 4-byte big-endian length, the message.
  std::string body(5, '\0');
  const uint32_t n = static_cast<uint32_t>(message.size());
  body[1] = static_cast<char>(n >> 24);
  body[2] = static_cast<char>(n >> 16);
  body[3] = static_cast<char>(n >> 8);
  body[4] = static_cast<char>(n);
  body += message;
  const std::string body_file = absl::StrCat(dir, "/", name, ".body");
  std::ofstream(body_file, std::ios::binary) << body;
  const std::string method = name == "noop" ? kNoopMethod : kScoreMethod;
  const std::string command = absl::StrFormat(
      "h2load -c %d -m %d -t 1 -D %ds -d '%s' -H 'content-type: application/grpc' -H 'te: "
      "trailers' 'http://127.0.0.1:%d%s' 2>&1",
      connections, streams, static_cast<int>(absl::ToDoubleSeconds(duration) + 0.5), body_file,
      port, method);
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError("popen h2load failed");
  std::string output;
  char buf[4096];
  while (size_t got = fread(buf, 1, sizeof(buf), pipe)) output.append(buf, got);
  const int rc = pclose(pipe);
  H2loadResult r;
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    // "finished in 5.00s, 81234.40 req/s, 3.10MB/s"
    if (absl::StartsWith(line, "finished in")) {
      const std::vector<absl::string_view> parts = absl::StrSplit(line, ", ");
      if (parts.size() >= 2) {
        (void)absl::SimpleAtod(absl::StripSuffix(parts[1], " req/s"), &r.rps);
      }
    }
    // "traffic: 5.14KB (5261) total, 375B (375) headers (space savings 95.37%), 700B (700) data"
    if (absl::StartsWith(line, "traffic:") && absl::EndsWith(line, ") data")) {
      const size_t open = line.rfind('(');
      double data_bytes = 0;
      if (open != absl::string_view::npos &&
          absl::SimpleAtod(line.substr(open + 1, line.size() - open - 7), &data_bytes)) {
        r.data_bytes_per_request = data_bytes;  // divided by the request count below
      }
    }
    // "requests: 100 total, 100 started, 100 done, 100 succeeded, ..."
    if (absl::StartsWith(line, "requests:")) {
      const std::vector<absl::string_view> parts = absl::StrSplit(line, ", ");
      double done = 0;
      if (parts.size() >= 3 && absl::SimpleAtod(absl::StripSuffix(parts[2], " done"), &done)) {
        r.requests_done = done;
      }
    }
    if (absl::StartsWith(line, "requests:") || absl::StartsWith(line, "status codes:")) {
      absl::StrAppend(&r.summary, r.summary.empty() ? "" : "; ", line);
    }
  }
  if (rc != 0 || r.rps <= 0) {
    return absl::InternalError(absl::StrCat("h2load failed (", rc, "): ", output.substr(0, 600)));
  }
  r.data_bytes_per_request = r.requests_done > 0 ? r.data_bytes_per_request / r.requests_done : 0;
  return r;
}

// ---------------------------------------------------------------------------------------
// Where a Score call's server CPU goes, without gRPC: the handler's steps in this process,
// on one thread, over the same request bytes and the same model version.

struct HandlerCost {
  size_t calls = 0;
  double parse_us = 0;      // ScoreRequest::ParseFromString (heap message, as the server's)
  double validate_us = 0;   // ValidateScoreRequest alone (also inside DoScore)
  double handle_us = 0;     // ScoringService::DoScore: validate, snapshot, score, build
  double serialize_us = 0;  // ScoreResponse::SerializeToString
  double destroy_us = 0;    // freeing the request and the response
  // The same parse into a message on a protobuf Arena, and the arena's release: what an
  // arena-backed request (a gRPC MessageAllocator) would cost instead of parse_us + its free.
  double arena_parse_us = 0;
  double arena_free_us = 0;
  size_t response_bytes = 0;
};

absl::StatusOr<HandlerCost> MeasureHandler(const std::string& store_path,
                                           const std::vector<grpc::ByteBuffer>& requests,
                                           absl::Duration duration) {
  COUPOND_ASSIGN_OR_RETURN(std::unique_ptr<server::ModelManager> models,
                           server::ModelManager::Create(server::NewStoreModelSource(store_path),
                                                        server::ModelManagerOptions()));
  COUPOND_RETURN_IF_ERROR(models->PollOnce());
  if (models->Current() == nullptr) return absl::NotFoundError("no model version in the store");
  const server::ScoringService service(models.get(), server::ScoringServiceOptions());
  // The request bytes, flattened once (the server receives contiguous slices too).
  std::vector<std::string> bytes;
  const size_t n = std::min<size_t>(requests.size(), 20000);
  bytes.reserve(n);
  for (size_t i = 0; i < n; ++i) bytes.push_back(Flatten(requests[i]));

  HandlerCost cost;
  double parse = 0, validate = 0, handle = 0, serialize = 0, destroy = 0;
  size_t response_bytes = 0;
  const server::RequestLimits limits;
  std::string out;
  const Clock::time_point end = Clock::now() + absl::ToChronoNanoseconds(duration);
  for (size_t i = 0; Clock::now() < end; ++i) {
    auto request = std::make_unique<v1::ScoreRequest>();
    auto response = std::make_unique<v1::ScoreResponse>();
    const Clock::time_point t0 = Clock::now();
    if (!request->ParseFromString(bytes[i % n]))
      return absl::InternalError("request does not parse");
    const Clock::time_point t1 = Clock::now();
    COUPOND_RETURN_IF_ERROR(server::ValidateScoreRequest(*request, limits));
    const Clock::time_point t2 = Clock::now();
    COUPOND_RETURN_IF_ERROR(service.DoScore(*request, response.get()));
    const Clock::time_point t3 = Clock::now();
    out.clear();
    response->SerializeToString(&out);
    const Clock::time_point t4 = Clock::now();
    request.reset();
    response.reset();
    const Clock::time_point t5 = Clock::now();
    parse += std::chrono::duration<double, std::micro>(t1 - t0).count();
    validate += std::chrono::duration<double, std::micro>(t2 - t1).count();
    handle += std::chrono::duration<double, std::micro>(t3 - t2).count();
    serialize += std::chrono::duration<double, std::micro>(t4 - t3).count();
    destroy += std::chrono::duration<double, std::micro>(t5 - t4).count();
    response_bytes += out.size();
    ++cost.calls;
  }
  double arena_parse = 0, arena_free = 0;
  for (size_t i = 0; i < cost.calls; ++i) {
    const Clock::time_point t0 = Clock::now();
    auto arena = std::make_unique<google::protobuf::Arena>();
    auto* request = google::protobuf::Arena::CreateMessage<v1::ScoreRequest>(arena.get());
    if (!request->ParseFromString(bytes[i % n]))
      return absl::InternalError("request does not parse");
    const Clock::time_point t1 = Clock::now();
    arena.reset();
    const Clock::time_point t2 = Clock::now();
    arena_parse += std::chrono::duration<double, std::micro>(t1 - t0).count();
    arena_free += std::chrono::duration<double, std::micro>(t2 - t1).count();
  }
  const double c = static_cast<double>(std::max<size_t>(cost.calls, 1));
  cost.arena_parse_us = arena_parse / c;
  cost.arena_free_us = arena_free / c;
  cost.parse_us = parse / c;
  cost.validate_us = validate / c;
  cost.handle_us = handle / c;
  cost.serialize_us = serialize / c;
  cost.destroy_us = destroy / c;
  cost.response_bytes = response_bytes / std::max<size_t>(cost.calls, 1);
  return cost;
}

// ---------------------------------------------------------------------------------------

std::string DefaultDataPath() {
  const char* env = std::getenv("COUPOND_SHARED_DATA");
  return std::string(env != nullptr ? env : "../shared/data") +
         "/tianchi_o2o_requests/ccf_offline_stage1_test_revised.csv";
}

struct RepResult {
  std::optional<PhaseResult> noop, score, open, noop_open, reload, noop_half;
  double open_rate = 0;
  int reloads_published = 0, reloads_observed = 0;
  double publish_ms = 0;
};

std::string Cell(double v, const char* fmt) {
  return std::isnan(v) ? std::string("-") : absl::StrFormat(fmt, v);
}

void PrintRow(const std::string& name, double qps, double p50, double p99, double p999,
              double errors, double server_cpu_us, double client_cpu_us, const std::string& note) {
  std::printf("  %-9s %9s %8s %8s %8s %6s %8s %8s  %s\n", name.c_str(), Cell(qps, "%.0f").c_str(),
              Cell(p50, "%.0f").c_str(), Cell(p99, "%.0f").c_str(), Cell(p999, "%.0f").c_str(),
              Cell(errors, "%.0f").c_str(), Cell(server_cpu_us, "%.1f").c_str(),
              Cell(client_cpu_us, "%.1f").c_str(), note.c_str());
}

void PrintHeader() {
  std::printf("  %-9s %9s %8s %8s %8s %6s %8s %8s\n", "phase", "QPS", "p50", "p99", "p999",
              "errors", "srv_cpu", "cli_cpu");
}

int Run() {
  const std::string data =
      absl::GetFlag(FLAGS_data).empty() ? DefaultDataPath() : absl::GetFlag(FLAGS_data);
  std::error_code ec;
  if (!std::filesystem::exists(data, ec)) {
    std::printf(
        "SKIP: the Tianchi O2O request stream is absent (%s); set --data or "
        "COUPOND_SHARED_DATA.\n",
        data.c_str());
    return 0;
  }
  const int connections = std::max(1, absl::GetFlag(FLAGS_connections));
  const int streams = std::max(1, absl::GetFlag(FLAGS_streams));
  const int client_threads = std::clamp(absl::GetFlag(FLAGS_client_threads), 1, connections);
  const int candidates = absl::GetFlag(FLAGS_candidates);
  const int reps = std::max(1, absl::GetFlag(FLAGS_reps));
  const absl::Duration warmup = absl::GetFlag(FLAGS_warmup);
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  const std::vector<std::string> phases = absl::StrSplit(absl::GetFlag(FLAGS_phases), ',');
  auto wants = [&](const char* p) {
    return std::find(phases.begin(), phases.end(), p) != phases.end();
  };

  std::printf("load_bench: coupond under the Tianchi O2O request stream\n");
  std::printf("machine: %u hardware threads, load average %s (before)\n",
              std::thread::hardware_concurrency(), LoadAverage().c_str());
  std::printf(
      "NOTE: the client (%d threads), the reload publisher and the server share these "
      "cores; figures are of the whole system, compare ratios within one run.\n",
      client_threads);

  // 1. The stream and the requests.
  const absl::Time t_read = absl::Now();
  absl::StatusOr<TianchiStream> stream = ReadTianchi(data);
  if (!stream.ok()) {
    std::fprintf(stderr, "load_bench: %s\n", stream.status().ToString().c_str());
    return 1;
  }
  const size_t real_coupons = stream->coupons.size();
  PadCoupons(static_cast<size_t>(std::max(candidates, 1)), &*stream);
  std::printf("stream: %s, %zu rows (%zu skipped), %zu users, %zu coupons", data.c_str(),
              stream->row_user.size(), stream->skipped_rows, stream->users.size(), real_coupons);
  if (stream->coupons.size() > real_coupons) {
    std::printf(" + %zu padding coupons of weight 1", stream->coupons.size() - real_coupons);
  }
  std::printf(" (read in %.2f s)\n", absl::ToDoubleSeconds(absl::Now() - t_read));
  const absl::Time t_build = absl::Now();
  const std::string candidate_source = absl::GetFlag(FLAGS_candidate_source);
  const bool campaign_mode = candidate_source == "campaign" && candidates > 0;
  if (candidate_source != "campaign" && candidate_source != "list") {
    std::fprintf(stderr, "load_bench: --candidate_source must be campaign or list\n");
    return 1;
  }
  const uint32_t top_k = static_cast<uint32_t>(std::max(0, absl::GetFlag(FLAGS_top_k)));
  absl::StatusOr<RequestSet> requests =
      campaign_mode
          ? BuildCampaignRequests(*stream, static_cast<size_t>(candidates), top_k,
                                  static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_campaigns))),
                                  seed)
          : BuildRequests(*stream, static_cast<size_t>(candidates), top_k, seed);
  if (!requests.ok()) {
    std::fprintf(stderr, "load_bench: %s\n", requests.status().ToString().c_str());
    return 1;
  }
  std::string candidate_text;
  if (candidates == 0) {
    candidate_text =
        absl::StrCat("no candidate list (every active coupon: ", stream->coupons.size(), ")");
  } else if (campaign_mode) {
    candidate_text = absl::StrFormat(
        "%d candidates = the coupons of one of %zu stored campaigns (ScoreRequest.campaign_id), "
        "each %d coupons drawn by the stream's coupon popularity; the named campaign holds the "
        "row's coupon in %.1f%% of rows",
        candidates, requests->campaigns.size(), candidates,
        100.0 * static_cast<double>(requests->rows_with_own_coupon) /
            static_cast<double>(requests->score.size()));
  } else {
    candidate_text = absl::StrCat(candidates, " candidates listed in coupon_ids = the row's coupon + ",
                                  candidates - 1, " drawn by the stream's coupon popularity");
  }
  // What the server should report as scored for each request.
  const size_t expected_scored = candidates == 0 ? stream->coupons.size() : candidates;
  std::printf(
      "requests: one Score per row, file order, cycling; user = the row's user; %s; "
      "top_k=%d; %zu bytes each on average (built in %.2f s)\n",
      candidate_text.c_str(), absl::GetFlag(FLAGS_top_k), requests->mean_score_bytes,
      absl::ToDoubleSeconds(absl::Now() - t_build));
  std::printf(
      "no-op RPC: grpc.health.v1.Health/Check with service \"\" (the server's default "
      "health service)\n");

  // 2. The store, the model, the server.
  std::string work_dir = absl::GetFlag(FLAGS_work_dir);
  bool remove_work_dir = false;
  if (work_dir.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "coupond-load-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::fprintf(stderr, "load_bench: cannot create a work directory\n");
      return 1;
    }
    work_dir = tmpl;
    remove_work_dir = !absl::GetFlag(FLAGS_keep_work_dir);
  } else {
    std::filesystem::create_directories(work_dir, ec);
    if (ec) {
      std::fprintf(stderr, "load_bench: --work_dir %s: %s\n", work_dir.c_str(),
                   ec.message().c_str());
      return 1;
    }
  }
  struct Cleanup {
    std::string dir;
    bool remove;
    ~Cleanup() {
      std::error_code ignored;
      if (remove) std::filesystem::remove_all(dir, ignored);
    }
  } cleanup{work_dir, remove_work_dir};

  const std::string external = absl::GetFlag(FLAGS_server);
  std::string store_path = absl::GetFlag(FLAGS_store);
  if (store_path.empty() && external.empty()) store_path = work_dir + "/store";
  std::unique_ptr<storage::ModelStore> store;
  core::ModelData model;  // what the reload phase publishes
  if (!store_path.empty()) {
    absl::StatusOr<std::unique_ptr<storage::ModelStore>> opened =
        storage::ModelStore::OpenForWrite(store_path);
    if (!opened.ok()) {
      std::fprintf(stderr, "load_bench: --store: %s\n", opened.status().ToString().c_str());
      return 1;
    }
    store = std::move(*opened);
    absl::StatusOr<core::ModelVersionInfo> latest = store->LatestVersion();
    if (latest.ok()) {
      absl::StatusOr<core::ModelData> read = store->ReadVersion(latest->version);
      if (!read.ok()) {
        std::fprintf(stderr, "load_bench: %s\n", read.status().ToString().c_str());
        return 1;
      }
      model = std::move(*read);
      std::printf("model: version %llu of %s (%zu users, %zu coupons, d=%u)\n",
                  static_cast<unsigned long long>(latest->version), store_path.c_str(),
                  model.num_users(), model.num_coupons(), model.dimension);
    } else if (absl::IsNotFound(latest.status())) {
      const absl::Time t0 = absl::Now();
      absl::StatusOr<core::ModelData> made =
          StreamSizedModel(*stream, static_cast<uint32_t>(absl::GetFlag(FLAGS_dimension)), seed);
      absl::StatusOr<core::ModelVersionInfo> info =
          made.ok() ? store->Publish(*made) : absl::StatusOr<core::ModelVersionInfo>(made.status());
      if (!info.ok()) {
        std::fprintf(stderr, "load_bench: model: %s\n", info.status().ToString().c_str());
        return 1;
      }
      model = std::move(*made);
      std::printf("model: %s; published as version %llu to %s in %.2f s\n",
                  model.description.c_str(), static_cast<unsigned long long>(info->version),
                  store_path.c_str(), absl::ToDoubleSeconds(absl::Now() - t0));
    } else {
      std::fprintf(stderr, "load_bench: --store: %s\n", latest.status().ToString().c_str());
      return 1;
    }
  }

  if (campaign_mode) {
    if (store == nullptr) {
      std::fprintf(stderr, "load_bench: --candidate_source=campaign needs --store (the store the "
                           "server polls) to publish its campaigns\n");
      return 1;
    }
    const absl::Time t0 = absl::Now();
    if (absl::Status s = PublishLoadCampaigns(*stream, *requests, store.get()); !s.ok()) {
      std::fprintf(stderr, "load_bench: campaigns: %s\n", s.ToString().c_str());
      return 1;
    }
    std::printf("campaigns: %zu stored in %.2f s\n", requests->campaigns.size(),
                absl::ToDoubleSeconds(absl::Now() - t0));
  }

  std::unique_ptr<ServerProcess> server;
  std::string target = external;
  absl::StatusOr<std::optional<cpu_set_t>> server_cpus = ParseCpus(absl::GetFlag(FLAGS_server_cpus));
  absl::StatusOr<std::optional<cpu_set_t>> client_cpus = ParseCpus(absl::GetFlag(FLAGS_client_cpus));
  if (!server_cpus.ok() || !client_cpus.ok()) {
    std::fprintf(stderr, "load_bench: --server_cpus/--client_cpus: %s\n",
                 (server_cpus.ok() ? client_cpus.status() : server_cpus.status()).ToString().c_str());
    return 1;
  }
  cpu_set_t original;
  if ((server_cpus->has_value() || client_cpus->has_value()) &&
      sched_getaffinity(0, sizeof(original), &original) != 0) {
    std::fprintf(stderr, "load_bench: sched_getaffinity: %s\n", std::strerror(errno));
    return 1;
  }
  if (target.empty()) {
    // The child inherits this thread's affinity at spawn: set it to the server's, then to
    // the client's (threads created later inherit that).
    if (server_cpus->has_value() && sched_setaffinity(0, sizeof(cpu_set_t), &**server_cpus) != 0) {
      std::fprintf(stderr, "load_bench: --server_cpus: %s\n", std::strerror(errno));
      return 1;
    }
    absl::StatusOr<std::unique_ptr<ServerProcess>> started =
        ServerProcess::Start(absl::GetFlag(FLAGS_coupond), store_path, work_dir,
                             absl::GetFlag(FLAGS_poll_interval), absl::GetFlag(FLAGS_server_env));
    if (server_cpus->has_value()) sched_setaffinity(0, sizeof(cpu_set_t), &original);
    if (!started.ok()) {
      std::fprintf(stderr, "load_bench: %s\n", started.status().ToString().c_str());
      return 1;
    }
    server = std::move(*started);
    target = absl::StrCat("127.0.0.1:", server->port());
    std::printf("server: %s on %s, --poll_interval=%s, log %s%s\n",
                absl::GetFlag(FLAGS_coupond).c_str(), target.c_str(),
                absl::FormatDuration(absl::GetFlag(FLAGS_poll_interval)).c_str(),
                server->log_file().c_str(),
                absl::GetFlag(FLAGS_server_env).empty()
                    ? ""
                    : absl::StrCat(", environment ", absl::GetFlag(FLAGS_server_env)).c_str());
  } else {
    std::printf("server: %s (running; started elsewhere)\n", target.c_str());
  }
  if (client_cpus->has_value() && sched_setaffinity(0, sizeof(cpu_set_t), &**client_cpus) != 0) {
    std::fprintf(stderr, "load_bench: --client_cpus: %s\n", std::strerror(errno));
    return 1;
  }
  if (server_cpus->has_value() || client_cpus->has_value()) {
    std::printf("pinning: server on CPUs {%s}, this client (load generator, publisher) on {%s}\n",
                absl::GetFlag(FLAGS_server_cpus).c_str(), absl::GetFlag(FLAGS_client_cpus).c_str());
  }
  client::ClientOptions client_options;
  client_options.target = target;
  absl::StatusOr<std::unique_ptr<client::CoupondClient>> control =
      client::CoupondClient::Create(client_options);
  if (!control.ok()) {
    std::fprintf(stderr, "load_bench: %s\n", control.status().ToString().c_str());
    return 1;
  }
  if (absl::Status s = (*control)->WaitUntilServing(absl::Seconds(60)); !s.ok()) {
    std::fprintf(stderr, "load_bench: server not SERVING: %s\n", s.ToString().c_str());
    return 1;
  }
  if (campaign_mode) {  // the server loads the campaigns at its next poll
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    size_t loaded = 0;
    while (absl::Now() < deadline) {
      absl::StatusOr<v1::ListCampaignsResponse> list = (*control)->ListCampaigns();
      loaded = 0;
      if (list.ok()) {
        for (const v1::CampaignInfo& c : list->campaigns()) {
          loaded += absl::StartsWith(c.campaign_id(), "load-");
        }
      }
      if (loaded >= requests->campaigns.size()) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    if (loaded < requests->campaigns.size()) {
      std::fprintf(stderr, "load_bench: the server loaded %zu of %zu campaigns in 60 s\n",
                   loaded, requests->campaigns.size());
      return 1;
    }
  }
  // One request checked end to end: the model knows the row's user and every candidate.
  size_t check_response_bytes = 0;
  {
    v1::ScoreRequest request;
    request.ParseFromString(Flatten(requests->score[0]));
    absl::StatusOr<v1::ScoreResponse> response = (*control)->Score(request);
    if (!response.ok()) {
      std::fprintf(stderr, "load_bench: Score: %s\n", response.status().ToString().c_str());
      return 1;
    }
    if (response->user_resolution() != v1::USER_RESOLUTION_KNOWN_USER ||
        response->candidates_scored() != expected_scored) {
      std::printf(
          "WARNING: the served model does not cover the stream: first request scored "
          "%u of %zu candidates, user %s\n",
          response->candidates_scored(), expected_scored,
          v1::UserResolution_Name(response->user_resolution()).c_str());
    }
    check_response_bytes = response->ByteSizeLong();
    std::printf(
        "check: Score of row 1 (user %s) scored %u candidates, returned %d scores, "
        "%zu response bytes\n",
        request.user_id().c_str(), response->candidates_scored(), response->scores_size(),
        check_response_bytes);
  }

  const bool reload_possible = store != nullptr;
  if (absl::GetFlag(FLAGS_breakdown) && !store_path.empty()) {
    absl::StatusOr<HandlerCost> cost =
        MeasureHandler(store_path, requests->score, absl::Seconds(2));
    if (!cost.ok()) {
      std::fprintf(stderr, "load_bench: breakdown: %s\n", cost.status().ToString().c_str());
      return 1;
    }
    const double total = cost->parse_us + cost->handle_us + cost->serialize_us + cost->destroy_us;
    std::printf(
        "handler in process, one thread, no gRPC (%zu calls): parse %.1f us + DoScore "
        "%.1f us (of which a separate ValidateScoreRequest takes %.1f us) + serialize "
        "%.1f us (%zu bytes) + free %.1f us = %.1f us/call, i.e. at most %.0f calls/s "
        "per core before any gRPC cost\n",
        cost->calls, cost->parse_us, cost->handle_us, cost->validate_us, cost->serialize_us,
        cost->response_bytes, cost->destroy_us, total, 1e6 / total);
    std::printf(
        "  (the same parse into an Arena-allocated request: %.1f us, arena release %.1f "
        "us)\n",
        cost->arena_parse_us, cost->arena_free_us);
  }
  std::printf(
      "load: %d connections x %d in flight (closed loop), %d client threads, warm-up "
      "%s + %s measured per phase, %d repetitions\n\n",
      connections, streams, client_threads, absl::FormatDuration(warmup).c_str(),
      absl::FormatDuration(duration).c_str(), reps);

  LoadGenerator generator(target, connections, client_threads, absl::GetFlag(FLAGS_timeout));
  if (absl::Status s = generator.WaitConnected(absl::Seconds(10)); !s.ok()) {
    std::fprintf(stderr, "load_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  const std::vector<grpc::ByteBuffer> noop_requests = {requests->noop};

  std::vector<RepResult> results;
  uint64_t total_errors = 0;
  std::printf(
      "latency in microseconds; srv_cpu, cli_cpu: CPU microseconds per call of the server "
      "process and of this client process over the phase\n");
  PrintHeader();
  for (int rep = 0; rep < reps; ++rep) {
    std::printf(" repetition %d (load average %s)\n", rep + 1, LoadAverage().c_str());
    RepResult r;
    auto report = [&](const char* name, PhaseResult& p, const std::string& note) {
      total_errors += p.errors;
      PrintRow(name, p.qps(), p.QuantileUs(0.5), p.QuantileUs(0.99), p.QuantileUs(0.999),
               static_cast<double>(p.errors), p.server_cpu_us, p.client_cpu_us,
               p.first_error.empty() ? note : absl::StrCat(note, " first error: ", p.first_error));
      std::fflush(stdout);
    };
    // Runs `run` and sets its result's CPU per call.
    auto with_cpu = [&](auto run) {
      const double server0 = server ? ProcessCpuSeconds(server->pid()) : std::nan("");
      const double client0 = ProcessCpuSeconds(0);
      PhaseResult p = run();
      const double calls = static_cast<double>(std::max<uint64_t>(p.total_calls, 1));
      if (server) p.server_cpu_us = (ProcessCpuSeconds(server->pid()) - server0) / calls * 1e6;
      p.client_cpu_us = (ProcessCpuSeconds(0) - client0) / calls * 1e6;
      return p;
    };
    if (wants("noop")) {
      r.noop = with_cpu([&] {
        return generator.RunClosed(kNoopMethod, noop_requests, streams, warmup, duration);
      });
      report("noop", *r.noop, "");
    }
    if (wants("score")) {
      r.score = with_cpu([&] {
        return generator.RunClosed(kScoreMethod, requests->score, streams, warmup, duration);
      });
      report("score", *r.score, "");
    }
    if (r.score && r.score->qps() > 0) {
      r.open_rate = r.score->qps() * absl::GetFlag(FLAGS_open_fraction);
      if (wants("open")) {
        r.open = with_cpu([&] {
          return generator.RunOpen(kScoreMethod, requests->score, r.open_rate,
                                   absl::GetFlag(FLAGS_max_in_flight), warmup, duration);
        });
        report("open", *r.open,
               absl::StrFormat("target %.0f/s, %d late sends; from actual send p50 %.0f p99 %.0f",
                               r.open_rate, r.open->late_sends, r.open->SentQuantileUs(0.5),
                               r.open->SentQuantileUs(0.99)));
      }
      if (wants("noop_open")) {
        r.noop_open = with_cpu([&] {
          return generator.RunOpen(kNoopMethod, noop_requests, r.open_rate,
                                   absl::GetFlag(FLAGS_max_in_flight), warmup, duration);
        });
        report(
            "noop_open", *r.noop_open,
            absl::StrFormat("target %.0f/s, %d late sends", r.open_rate, r.noop_open->late_sends));
      }
      if (wants("noop_half") && r.noop && r.noop->qps() > 0) {
        const double rate = r.noop->qps() * absl::GetFlag(FLAGS_open_fraction);
        r.noop_half = with_cpu([&] {
          return generator.RunOpen(kNoopMethod, noop_requests, rate,
                                   absl::GetFlag(FLAGS_max_in_flight), warmup, duration);
        });
        report("noop_half", *r.noop_half,
               absl::StrFormat("target %.0f/s (the no-op at %.0f%% of its own max), %d late "
                               "sends",
                               rate, 100 * absl::GetFlag(FLAGS_open_fraction),
                               r.noop_half->late_sends));
      }
      if (wants("reload") && reload_possible) {
        const absl::Duration interval = absl::GetFlag(FLAGS_reload_interval);
        Reloader reloader(store.get(), &model, control->get(), interval,
                          absl::GetFlag(FLAGS_stage_versions),
                          static_cast<int>(std::ceil((warmup + duration) / interval)) + 1);
        if (!reloader.status().ok()) {
          std::fprintf(stderr, "load_bench: stage: %s\n", reloader.status().ToString().c_str());
          return 1;
        }
        r.reload = with_cpu([&] {
          PhaseResult p = generator.RunOpen(kScoreMethod, requests->score, r.open_rate,
                                            absl::GetFlag(FLAGS_max_in_flight), warmup, duration);
          reloader.Stop();
          return p;
        });
        if (!reloader.status().ok()) {
          std::fprintf(stderr, "load_bench: publish: %s\n", reloader.status().ToString().c_str());
          return 1;
        }
        r.reloads_published = reloader.published();
        r.reloads_observed = reloader.observed();
        r.publish_ms = reloader.mean_publish_ms();
        report("reload", *r.reload,
               absl::StrFormat("target %.0f/s, %d late sends; from actual send p50 %.0f p99 "
                               "%.0f; %d versions published (%s %.0f ms each%s), %d version "
                               "changes served",
                               r.open_rate, r.reload->late_sends, r.reload->SentQuantileUs(0.5),
                               r.reload->SentQuantileUs(0.99), r.reloads_published,
                               reloader.staged() ? "commit" : "publish", r.publish_ms,
                               reloader.staged()
                                   ? absl::StrFormat("; staged before the phase in %.0f ms each",
                                                     reloader.stage_ms())
                                   : std::string(),
                               r.reloads_observed));
      }
    }
    results.push_back(std::move(r));
  }
  if (wants("reload") && !reload_possible) {
    std::printf(" reload phase skipped: --server without --store (no store to publish to)\n");
  }

  // 3. Medians over repetitions, and the targets.
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
      {"noop", &RepResult::noop},
      {"score", &RepResult::score},
      {"open", &RepResult::open},
      {"noop_open", &RepResult::noop_open},
      {"reload", &RepResult::reload},
      {"noop_half", &RepResult::noop_half}};
  for (const auto& [name, member] : rows) {
    Column c = column(member);
    if (c.qps.empty()) continue;
    double errors = 0;
    for (double e : c.errors) errors += e;
    PrintRow(name, Median(c.qps), Median(c.p50), Median(c.p99), Median(c.p999), errors,
             Median(c.server_cpu), Median(c.client_cpu), "(errors: total over repetitions)");
  }

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
                100 * absl::GetFlag(FLAGS_open_fraction), v, verdict(v <= 2.0));
    if (!noop_open_p99_ms.empty()) {
      std::printf("  (no-op at the same rate: p99 %.3f ms)", Median(noop_open_p99_ms));
    }
    std::printf("\n");
  }
  if (!noop_half_p99_ms.empty()) {
    const double v = Median(noop_half_p99_ms);
    std::printf("  the floor: no-op p99 at %.0f%% of max no-op rate %6.3f ms  (the same target "
                "applied to the cheapest RPC: %s)\n",
                100 * absl::GetFlag(FLAGS_open_fraction), v, verdict(v <= 2.0));
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
        Median(publish_ms), Cell(Median(load_cpu_ms), "%.0f").c_str());
  }
  std::printf("  failed calls                   %llu       target 0         %s\n",
              static_cast<unsigned long long>(total_errors), verdict(total_errors == 0));

  // 4. The independent cross-check.
  if (absl::GetFlag(FLAGS_h2load)) {
    if (server == nullptr && !absl::StartsWith(target, "127.0.0.1:")) {
      std::printf("\n h2load: skipped (needs a 127.0.0.1 server)\n");
    } else {
      const int port = server != nullptr ? server->port()
                                         : std::atoi(target.substr(target.find(':') + 1).c_str());
      std::printf(
          "\n h2load cross-check (%d connections x %d streams, one body repeated, "
          "no warm-up; h2load does not check grpc-status)\n",
          connections, streams);
      double noop_rps = 0, score_rps = 0;
      // The OK responses' sizes: of Health/Check (SERVING), and of row 1's Score (its size
      // does not vary between calls: the generated request_id has a fixed length).
      grpc::health::v1::HealthCheckResponse serving;
      serving.set_status(grpc::health::v1::HealthCheckResponse::SERVING);
      const double noop_ok_bytes = 5.0 + static_cast<double>(serving.ByteSizeLong());
      for (const char* name : {"noop", "score"}) {
        const std::string message = std::string(name) == "noop"
                                        ? grpc::health::v1::HealthCheckRequest().SerializeAsString()
                                        : Flatten(requests->score[0]);
        absl::StatusOr<H2loadResult> h =
            RunH2load(work_dir, name, message, port, connections, streams, duration);
        if (!h.ok()) {
          std::printf("  %-8s %s\n", name, h.status().ToString().c_str());
          continue;
        }
        (std::string(name) == "noop" ? noop_rps : score_rps) = h->rps;
        const double ok_bytes = std::string(name) == "noop"
                                    ? noop_ok_bytes
                                    : 5.0 + static_cast<double>(check_response_bytes);
        std::printf(
            "  %-8s %10.0f req/s   %s; %.1f DATA bytes per request (%.0f for an OK "
            "response: %s)\n",
            name, h->rps, h->summary.c_str(), h->data_bytes_per_request, ok_bytes,
            std::abs(h->data_bytes_per_request - ok_bytes) < 0.5 ? "all OK" : "SOME FAILED");
        if (std::abs(h->data_bytes_per_request - ok_bytes) >= 0.5) ++total_errors;
      }
      if (noop_rps > 0 && score_rps > 0) {
        std::printf("  Score / no-op (h2load)         %6.3f\n", score_rps / noop_rps);
      }
    }
  }
  std::printf("\nmachine load average %s (after)\n", LoadAverage().c_str());
  return total_errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "load test of coupond with the Tianchi O2O request stream: no-op floor, Score at max "
      "throughput, Score open loop at half that rate, and the same during model reloads.");
  absl::ParseCommandLine(argc, argv);
  // The in-process breakdown uses the server library, which logs model loads at info.
  spdlog::set_level(spdlog::level::warn);
  return Run();
}
