#include "bench/load/run.h"

#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/load/common.h"
#include "bench/load/h2load.h"
#include "bench/load/handler_cost.h"
#include "bench/load/load_generator.h"
#include "bench/load/repetition.h"
#include "bench/load/report.h"
#include "bench/load/requests.h"
#include "bench/load/server_process.h"
#include "bench/load/store_setup.h"
#include "bench/load/stream.h"
#include "client/coupond_client.h"
#include "coupond/v1/coupon_scoring.pb.h"

namespace coupond::load_bench {
namespace {

// The options with their lower bounds: at least 1 connection, stream and repetition, and
// between 1 and `connections` client threads.
LoadBenchOptions WithLowerBounds(LoadBenchOptions o) {
  o.connections = std::max(1, o.connections);
  o.streams = std::max(1, o.streams);
  o.client_threads = std::clamp(o.client_threads, 1, o.connections);
  o.reps = std::max(1, o.reps);
  return o;
}

// Prints "load_bench: <message>" (the status' message is worded for it) and returns 1.
int Fail(const absl::Status& status) {
  std::fprintf(stderr, "load_bench: %s\n", std::string(status.message()).c_str());
  return 1;
}

void PrintPreamble(int client_threads) {
  std::printf("load_bench: coupond under the Tianchi O2O request stream\n");
  std::printf("machine: %u hardware threads, load average %s (before)\n",
              std::thread::hardware_concurrency(), LoadAverage().c_str());
  std::printf(
      "NOTE: the client (%d threads), the reload publisher and the server share these "
      "cores; figures are of the whole system, compare ratios within one run.\n",
      client_threads);
}

// The stream and the requests built from it.
struct Workload {
  TianchiStream stream;
  RequestSet requests;
  bool campaign_mode = false;  // the requests name stored campaigns
  size_t expected_scored = 0;  // candidates the server should score per request
};

// Reads the stream at `data` and builds the requests; prints the "stream:", "requests:" and
// "no-op RPC:" lines.
absl::StatusOr<Workload> PrepareWorkload(const LoadBenchOptions& o, const std::string& data) {
  Workload w;
  const absl::Time t_read = absl::Now();
  absl::StatusOr<TianchiStream> stream = ReadTianchi(data);
  if (!stream.ok()) return Annotate(stream.status());
  w.stream = std::move(*stream);
  const size_t real_coupons = w.stream.coupons.size();
  PadCoupons(static_cast<size_t>(std::max(o.candidates, 1)), &w.stream);
  std::printf("stream: %s, %zu rows (%zu skipped), %zu users, %zu coupons", data.c_str(),
              w.stream.row_user.size(), w.stream.skipped_rows, w.stream.users.size(), real_coupons);
  if (w.stream.coupons.size() > real_coupons) {
    std::printf(" + %zu padding coupons of weight 1", w.stream.coupons.size() - real_coupons);
  }
  std::printf(" (read in %.2f s)\n", absl::ToDoubleSeconds(absl::Now() - t_read));

  const absl::Time t_build = absl::Now();
  w.campaign_mode = o.candidate_source == "campaign" && o.candidates > 0;
  if (o.candidate_source != "campaign" && o.candidate_source != "list") {
    return absl::InvalidArgumentError("--candidate_source must be campaign or list");
  }
  const uint32_t top_k = static_cast<uint32_t>(std::max(0, o.top_k));
  const size_t candidates = static_cast<size_t>(o.candidates);
  absl::StatusOr<RequestSet> requests =
      w.campaign_mode ? BuildCampaignRequests(w.stream, candidates, top_k,
                                              static_cast<size_t>(std::max(1, o.campaigns)), o.seed)
                      : BuildRequests(w.stream, candidates, top_k, o.seed);
  if (!requests.ok()) return Annotate(requests.status());
  w.requests = std::move(*requests);
  std::string candidate_text;
  if (o.candidates == 0) {
    candidate_text =
        absl::StrCat("no candidate list (every active coupon: ", w.stream.coupons.size(), ")");
  } else if (w.campaign_mode) {
    candidate_text = absl::StrFormat(
        "%d candidates = the coupons of one of %zu stored campaigns (ScoreRequest.campaign_id), "
        "each %d coupons drawn by the stream's coupon popularity; the named campaign holds the "
        "row's coupon in %.1f%% of rows",
        o.candidates, w.requests.campaigns.size(), o.candidates,
        100.0 * static_cast<double>(w.requests.rows_with_own_coupon) /
            static_cast<double>(w.requests.score.size()));
  } else {
    candidate_text =
        absl::StrCat(o.candidates, " candidates listed in coupon_ids = the row's coupon + ",
                     o.candidates - 1, " drawn by the stream's coupon popularity");
  }
  w.expected_scored = o.candidates == 0 ? w.stream.coupons.size() : candidates;
  std::printf(
      "requests: one Score per row, file order, cycling; user = the row's user; %s; "
      "top_k=%d; %zu bytes each on average (built in %.2f s)\n",
      candidate_text.c_str(), o.top_k, w.requests.mean_score_bytes,
      absl::ToDoubleSeconds(absl::Now() - t_build));
  std::printf(
      "no-op RPC: grpc.health.v1.Health/Check with service \"\" (the server's default "
      "health service)\n");
  return w;
}

// Where the fresh store and the server's log go: --work_dir (created if missing), or a new
// directory under $TMPDIR, removed with this object unless --keep_work_dir.
class WorkDir {
 public:
  static absl::StatusOr<std::unique_ptr<WorkDir>> Create(const std::string& work_dir, bool keep) {
    if (work_dir.empty()) {
      std::string tmpl = (std::filesystem::temp_directory_path() / "coupond-load-XXXXXX").string();
      if (mkdtemp(tmpl.data()) == nullptr) {
        return absl::InternalError("cannot create a work directory");
      }
      return std::unique_ptr<WorkDir>(new WorkDir(tmpl, !keep));
    }
    std::error_code ec;
    std::filesystem::create_directories(work_dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("--work_dir ", work_dir, ": ", ec.message()));
    return std::unique_ptr<WorkDir>(new WorkDir(work_dir, false));
  }
  ~WorkDir() {
    std::error_code ignored;
    if (remove_) std::filesystem::remove_all(path_, ignored);
  }
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  WorkDir(std::string path, bool remove) : path_(std::move(path)), remove_(remove) {}
  const std::string path_;
  const bool remove_;
};

// --store; without it, a fresh store in the work directory, unless --server names a running
// server (then none: "").
std::string StorePath(const LoadBenchOptions& o, const std::string& work_dir) {
  if (o.store.empty() && o.server.empty()) return work_dir + "/store";
  return o.store;
}

// Opens the store at `store_path` (none when empty), with a model, and in campaign mode
// stores the requests' campaigns; prints the "model:" and "campaigns:" lines.
absl::StatusOr<ModelStoreSetup> PrepareStore(const LoadBenchOptions& o,
                                             const std::string& store_path, const Workload& w) {
  ModelStoreSetup setup;
  if (!store_path.empty()) {
    absl::StatusOr<ModelStoreSetup> opened =
        OpenModelStore(store_path, w.stream, static_cast<uint32_t>(o.dimension), o.seed);
    if (!opened.ok()) return opened.status();
    setup = std::move(*opened);
  }
  if (w.campaign_mode) {
    if (setup.store == nullptr) {
      return absl::FailedPreconditionError(
          "--candidate_source=campaign needs --store (the store the server polls) to publish "
          "its campaigns");
    }
    const absl::Time t0 = absl::Now();
    if (absl::Status s = PublishLoadCampaigns(w.stream, w.requests, setup.store.get()); !s.ok()) {
      return Annotate(s, "campaigns: ");
    }
    std::printf("campaigns: %zu stored in %.2f s\n", w.requests.campaigns.size(),
                absl::ToDoubleSeconds(absl::Now() - t0));
  }
  return setup;
}

// Waits up to 60 s for the server to load every stored campaign the requests name (it
// does at its next poll of the store).
absl::Status WaitForCampaigns(const client::CoupondClient& control, size_t campaigns) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  size_t loaded = 0;
  while (absl::Now() < deadline) {
    absl::StatusOr<v1::ListCampaignsResponse> list = control.ListCampaigns();
    loaded = 0;
    if (list.ok()) {
      for (const v1::CampaignInfo& c : list->campaigns()) {
        loaded += absl::StartsWith(c.campaign_id(), "load-");
      }
    }
    if (loaded >= campaigns) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  if (loaded < campaigns) {
    return absl::DeadlineExceededError(
        absl::StrFormat("the server loaded %zu of %zu campaigns in 60 s", loaded, campaigns));
  }
  return absl::OkStatus();
}

// The control connection to the server, and the size of the checked response.
struct Control {
  std::unique_ptr<client::CoupondClient> client;
  size_t check_response_bytes = 0;  // of row 1's Score response
};

// Connects to `target`, waits until it is SERVING (and has the campaigns), and checks one
// request end to end: the model knows the row's user and every candidate (a WARNING line
// when not). Prints the "check:" line.
absl::StatusOr<Control> ConnectAndCheck(const std::string& target, const Workload& w) {
  Control control;
  client::ClientOptions client_options;
  client_options.target = target;
  absl::StatusOr<std::unique_ptr<client::CoupondClient>> created =
      client::CoupondClient::Create(client_options);
  if (!created.ok()) return Annotate(created.status());
  control.client = std::move(*created);
  if (absl::Status s = control.client->WaitUntilServing(absl::Seconds(60)); !s.ok()) {
    return Annotate(s, "server not SERVING: ");
  }
  if (w.campaign_mode) {
    if (absl::Status s = WaitForCampaigns(*control.client, w.requests.campaigns.size()); !s.ok()) {
      return s;
    }
  }
  v1::ScoreRequest request;
  request.ParseFromString(Flatten(w.requests.score[0]));
  absl::StatusOr<v1::ScoreResponse> response = control.client->Score(request);
  if (!response.ok()) return Annotate(response.status(), "Score: ");
  if (response->user_resolution() != v1::USER_RESOLUTION_KNOWN_USER ||
      response->candidates_scored() != w.expected_scored) {
    std::printf(
        "WARNING: the served model does not cover the stream: first request scored "
        "%u of %zu candidates, user %s\n",
        response->candidates_scored(), w.expected_scored,
        v1::UserResolution_Name(response->user_resolution()).c_str());
  }
  control.check_response_bytes = response->ByteSizeLong();
  std::printf(
      "check: Score of row 1 (user %s) scored %u candidates, returned %d scores, "
      "%zu response bytes\n",
      request.user_id().c_str(), response->candidates_scored(), response->scores_size(),
      control.check_response_bytes);
  return control;
}

// The in-process handler breakdown (--breakdown): 2 s of the Score handler over the same
// request bytes and the store's model, then its "handler in process" lines.
absl::Status RunBreakdown(const std::string& store_path, const RequestSet& requests) {
  absl::StatusOr<HandlerCost> cost = MeasureHandler(store_path, requests.score, absl::Seconds(2));
  if (!cost.ok()) return Annotate(cost.status(), "breakdown: ");
  PrintHandlerCost(*cost);
  return absl::OkStatus();
}

}  // namespace

int Run(const LoadBenchOptions& options) {
  const LoadBenchOptions o = WithLowerBounds(options);
  const std::string data = o.data.empty() ? DefaultDataPath() : o.data;
  std::error_code ec;
  if (!std::filesystem::exists(data, ec)) {
    std::printf(
        "SKIP: the Tianchi O2O request stream is absent (%s); set --data or "
        "COUPOND_SHARED_DATA.\n",
        data.c_str());
    return 0;
  }
  PrintPreamble(o.client_threads);

  // 1. The stream and the requests.
  absl::StatusOr<Workload> workload = PrepareWorkload(o, data);
  if (!workload.ok()) return Fail(workload.status());

  // 2. The store, the model, the server.
  absl::StatusOr<std::unique_ptr<WorkDir>> work_dir = WorkDir::Create(o.work_dir, o.keep_work_dir);
  if (!work_dir.ok()) return Fail(work_dir.status());
  const std::string store_path = StorePath(o, (*work_dir)->path());
  absl::StatusOr<ModelStoreSetup> store = PrepareStore(o, store_path, *workload);
  if (!store.ok()) return Fail(store.status());
  absl::StatusOr<Server> server = StartPinnedServer(o, store_path, (*work_dir)->path());
  if (!server.ok()) return Fail(server.status());
  absl::StatusOr<Control> control = ConnectAndCheck(server->target, *workload);
  if (!control.ok()) return Fail(control.status());
  if (o.breakdown && !store_path.empty()) {
    if (absl::Status s = RunBreakdown(store_path, workload->requests); !s.ok()) return Fail(s);
  }

  // 3. The load phases, repeated.
  std::printf(
      "load: %d connections x %d in flight (closed loop), %d client threads, warm-up "
      "%s + %s measured per phase, %d repetitions\n\n",
      o.connections, o.streams, o.client_threads, absl::FormatDuration(o.warmup).c_str(),
      absl::FormatDuration(o.duration).c_str(), o.reps);
  LoadGenerator generator(server->target, o.connections, o.client_threads, o.timeout);
  if (absl::Status s = generator.WaitConnected(absl::Seconds(10)); !s.ok()) {
    return Fail(Annotate(s));
  }
  LoadTarget target;
  target.generator = &generator;
  target.requests = &workload->requests;
  target.server = server->process.get();
  target.store = store->store.get();
  target.model = &store->model;
  target.control = control->client.get();
  uint64_t total_errors = 0;
  absl::StatusOr<std::vector<RepResult>> results = RunRepetitions(o, target, &total_errors);
  if (!results.ok()) return Fail(results.status());

  // 4. Medians over repetitions, and the targets.
  PrintMedians(*results, o.reps);
  PrintTargets(*results, o.open_fraction, total_errors);

  // 5. The independent cross-check.
  if (o.h2load) {
    H2loadCrossCheck(o, *server, (*work_dir)->path(), workload->requests,
                     control->check_response_bytes, &total_errors);
  }
  std::printf("\nmachine load average %s (after)\n", LoadAverage().c_str());
  return total_errors == 0 ? 0 : 1;
}

}  // namespace coupond::load_bench
