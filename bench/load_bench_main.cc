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
// The program is this file (its flags and main) and bench/load/: the stream (stream.h), the
// requests (requests.h), the model and store (store_setup.h), the server process and CPU
// pinning (server_process.h), the load generator (load_generator.h), the reload publisher
// (reloader.h), the in-process handler breakdown (handler_cost.h), the phases of a
// repetition (repetition.h), the report (report.h), the h2load cross-check (h2load.h) and
// the run that strings them together (run.h).
//
// usage: load_bench [--data=CSV] [--coupond=BIN | --server=HOST:PORT] [--store=DIR]
//                   [--connections=4] [--streams=16] [--reps=3] [--duration=5s] ...
//        (--help lists every flag). Skips (exit 0) with a message when the data are absent.
// Exit status: 0 when the run completed without failed calls (targets are reported, not
// enforced), 1 on any error or failed call.

#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "bench/load/options.h"
#include "bench/load/run.h"
#include "spdlog/spdlog.h"

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
          "active coupon, i.e. all the stream's coupons; needs --top_k >= 1): an experiment "
          "that separates the cost of scoring from the cost of carrying 1,000 ids.");
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

// Every flag, as given (Run applies the lower bounds).
coupond::load_bench::LoadBenchOptions OptionsFromFlags() {
  coupond::load_bench::LoadBenchOptions o;
  o.data = absl::GetFlag(FLAGS_data);
  o.coupond = absl::GetFlag(FLAGS_coupond);
  o.server_env = absl::GetFlag(FLAGS_server_env);
  o.server_flags = absl::GetFlag(FLAGS_server_flags);
  o.server_cpus = absl::GetFlag(FLAGS_server_cpus);
  o.client_cpus = absl::GetFlag(FLAGS_client_cpus);
  o.server = absl::GetFlag(FLAGS_server);
  o.poll_interval = absl::GetFlag(FLAGS_poll_interval);
  o.store = absl::GetFlag(FLAGS_store);
  o.work_dir = absl::GetFlag(FLAGS_work_dir);
  o.keep_work_dir = absl::GetFlag(FLAGS_keep_work_dir);
  o.connections = absl::GetFlag(FLAGS_connections);
  o.streams = absl::GetFlag(FLAGS_streams);
  o.client_threads = absl::GetFlag(FLAGS_client_threads);
  o.candidates = absl::GetFlag(FLAGS_candidates);
  o.candidate_source = absl::GetFlag(FLAGS_candidate_source);
  o.campaigns = absl::GetFlag(FLAGS_campaigns);
  o.top_k = absl::GetFlag(FLAGS_top_k);
  o.dimension = absl::GetFlag(FLAGS_dimension);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.reps = absl::GetFlag(FLAGS_reps);
  o.warmup = absl::GetFlag(FLAGS_warmup);
  o.duration = absl::GetFlag(FLAGS_duration);
  o.open_fraction = absl::GetFlag(FLAGS_open_fraction);
  o.max_in_flight = absl::GetFlag(FLAGS_max_in_flight);
  o.timeout = absl::GetFlag(FLAGS_timeout);
  o.phases = absl::StrSplit(absl::GetFlag(FLAGS_phases), ',');
  o.reload_interval = absl::GetFlag(FLAGS_reload_interval);
  o.stage_versions = absl::GetFlag(FLAGS_stage_versions);
  o.publisher_idle = absl::GetFlag(FLAGS_publisher_idle);
  o.breakdown = absl::GetFlag(FLAGS_breakdown);
  o.h2load = absl::GetFlag(FLAGS_h2load);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "load test of coupond with the Tianchi O2O request stream: no-op floor, Score at max "
      "throughput, Score open loop at half that rate, and the same during model reloads.");
  absl::ParseCommandLine(argc, argv);
  // The in-process breakdown uses the server library, which logs model loads at info.
  spdlog::set_level(spdlog::level::warn);
  return coupond::load_bench::Run(OptionsFromFlags());
}
