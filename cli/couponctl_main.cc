// couponctl: the command line of coupond. Online commands talk to a server through the
// client library; offline commands (generate, publish, versions) work on files and a
// model store directly. Flags are parsed here and copied into each command's inputs.

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "cli/admin_commands.h"
#include "cli/analysis_commands.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/feedback_commands.h"
#include "cli/ope_commands.h"
#include "cli/pipeline_commands.h"
#include "cli/store_commands.h"

ABSL_FLAG(std::string, server, "localhost:8980", "coupond address (score, model-info, health).");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(5), "Deadline of each RPC.");
ABSL_FLAG(std::string, tls_ca, "", "Connect with TLS; PEM CA certificate(s) the server's certificate must verify against.");
ABSL_FLAG(std::string, tls_cert, "", "Connect with TLS and present this PEM client certificate (servers with --tls_client_ca); with --tls_key.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, tls_server_name, "", "Connect with TLS; check the server's certificate against this name instead of --server's host.");
ABSL_FLAG(std::string, admin_token_file, "", "reload, status: file holding the server's admin token.");
ABSL_FLAG(std::string, collector_token_file, "", "report-outcome, simulate-traffic, collector-stats: file holding the collector's token (its --collector_token_file); --tls_* flags apply to --collector too.");
ABSL_FLAG(bool, json, false, "Print responses as JSON (score, model-info).");
ABSL_FLAG(std::string, user, "", "score: the user id.");
ABSL_FLAG(std::vector<std::string>, coupons, {}, "score: comma-separated candidate coupon ids (default: every active coupon).");
ABSL_FLAG(uint32_t, top_k, 0,
          "score: return only the k most likely coupons (0: all; required, 1..10000, with "
          "neither --coupons nor --campaign_id).");
ABSL_FLAG(int64_t, as_of, 0, "score: judge coupon validity at this Unix time (0: now).");
ABSL_FLAG(absl::Duration, wait, absl::ZeroDuration(), "health: wait up to this long for SERVING.");
ABSL_FLAG(std::string, store, "", "publish, versions, prune, train, evaluate, pipeline, pace, campaigns: the model store directory; assign: solve in-process against it.");
ABSL_FLAG(std::string, factors, "", "publish: directory of factor files to publish.");
ABSL_FLAG(uint64_t, version, 0, "publish: version number (0: newest + 1); evaluate: the version to evaluate (0: newest).");
ABSL_FLAG(std::string, out, "", "generate: directory for the factor files; simulate: directory for the logs; assign: the assignment CSV; ab-report: the report (default stdout).");
ABSL_FLAG(std::string, campaign, "", "assign, decide: JSON file holding a coupond.v1.AssignRequest (campaign and population).");
ABSL_FLAG(std::string, prices, "", "decide: JSON file with the campaign's prices (from assign --prices_out).");
ABSL_FLAG(std::string, prices_out, "", "assign: write the campaign's prices (JSON) here, for decide.");
ABSL_FLAG(bool, compare_baselines, false, "assign --store: also evaluate two naive policies on the same probabilities.");
ABSL_FLAG(std::string, publish_to, "", "assign: store the campaign with its prices in this model store (servers on it then decide with --campaign_id).");
ABSL_FLAG(std::string, campaign_id, "", "decide: a campaign stored with the model (instead of --campaign and --prices); score: score that campaign's coupons (instead of --coupons); campaigns --store: list every record of it.");
ABSL_FLAG(std::vector<std::string>, user_attributes, {}, "score: comma-separated name=value attributes of the user, used when the model does not know it (cold start: nearest segment's prior).");
ABSL_FLAG(absl::Duration, assign_timeout, absl::Minutes(10), "assign: deadline of the Assign call.");
ABSL_FLAG(uint32_t, num_users, 10000, "generate: number of users.");
ABSL_FLAG(uint32_t, num_coupons, 200, "generate: number of coupons.");
ABSL_FLAG(uint32_t, dimension, 16, "generate: latent dimension.");
ABSL_FLAG(uint64_t, seed, 42, "Random seed of generate and simulate (the platform and its logs), simulate-traffic (the outcomes drawn), and train and pipeline (trainer initialisation, k-means).");
ABSL_FLAG(std::string, logs, "", "ingest, train, evaluate, pipeline: directory of canonical CSV logs (exposures.csv, redemptions.csv[, users.csv, coupons.csv]).");
ABSL_FLAG(std::string, dunnhumby, "", "ingest, train, evaluate, pipeline: directory of the dunnhumby coupon tables (instead of --logs).");
ABSL_FLAG(bool, dunnhumby_products, true, "dunnhumby: use the coupons' product lists (turned into a nearest-training-coupon feature; see pipeline/train_job.h).");
ABSL_FLAG(bool, like_neighbours, true, "train, evaluate, pipeline: replace each coupon's product list by one like=<id> feature, the training coupon whose list overlaps it most (step 2b of pipeline/train_job.h); false keeps every product as a feature (on dunnhumby about 90 per coupon, so training is tens of times slower).");
ABSL_FLAG(std::string, prior_bias, "auto", "train, pipeline: the bias of the segment priors user cold start serves: auto (the lower log loss on the validation period, its users scored as new ones), calibrated (to the members' training redemption rate) or mean (the members' mean bias); see docs/cold-start.md.");
ABSL_FLAG(std::vector<std::string>, grid_dimensions, {}, "train, pipeline: comma-separated latent dimensions searched on the validation period (default 1,4).");
ABSL_FLAG(std::vector<std::string>, grid_l2, {}, "train, pipeline: comma-separated L2 factors searched on the validation period (default 0.001,0.01).");
ABSL_FLAG(std::vector<std::string>, grid_learning_rates, {}, "train, pipeline: comma-separated Adam learning rates searched on the validation period (default 0.001,0.003).");
ABSL_FLAG(std::string, quarantine, "", "ingest, train, evaluate, pipeline (--logs): write quarantined log rows (CSV) here.");
ABSL_FLAG(std::string, time_format, "day_number",
          "ingest, train, evaluate, pipeline (--logs): what the time columns hold: day_number "
          "(integer days since any epoch), iso_date (YYYY-MM-DD) or unix_seconds (integer); "
          "iso_date and unix_seconds become day numbers counted from 1970-01-01 (UTC), day 0.");
ABSL_FLAG(int, redemption_window_days, 30,
          "ingest, train, evaluate, pipeline (--logs): a redemption counts for an exposure up to "
          "this many days after it (>= 0); later ones are quarantined as outside_window.");
ABSL_FLAG(std::vector<std::string>, multi_value_columns, {"products"},
          "ingest, train, evaluate, pipeline (--logs): users.csv/coupons.csv attribute columns "
          "whose values are ';'-joined lists, one feature per value (empty: none). A listed "
          "products column is also replaced by like=<nearest training coupon> (docs/pipeline.md).");
ABSL_FLAG(double, test_fraction, 0.2,
          "train, evaluate, pipeline: share of the examples in the test period (latest campaigns), in (0, 1).");
ABSL_FLAG(double, validation_fraction, 0.2,
          "train, evaluate, pipeline: share of the training period held out as the validation period (its latest campaigns), in (0, 1).");
ABSL_FLAG(std::string, report, "", "pipeline: write the report here (.md with inline SVG, or .html).");
ABSL_FLAG(std::string, truth, "", "train, evaluate, pipeline: factor files of the true model (default: <logs>/truth when present); simulate-traffic: the truth to draw outcomes from.");
ABSL_FLAG(int, cv_folds, 0, "train, pipeline: choose hyperparameters by k-fold cross-validation over the training period (k >= 2; 0: on the validation period).");
ABSL_FLAG(int, threads, 0, "train, pipeline: trainer threads (0: every core); the results do not depend on it.");
ABSL_FLAG(int, days, 30, "simulate: simulated days (one campaign each).");
ABSL_FLAG(int, coupons_per_day, 8, "simulate: distinct coupons shown to each active user per day.");
ABSL_FLAG(int, dirty_rows, 0, "simulate: deliberately bad log rows to append (they end in the quarantine).");
ABSL_FLAG(int64_t, now, 0, "generate: place validity windows around this Unix time (0: open-ended windows); pace: the time to pace at (0: now).");
ABSL_FLAG(std::string, input, "", "ab-report: CSV with one row per unit (arm, outcomes[, covariate]).");
ABSL_FLAG(std::string, arm_column, "arm", "ab-report: column holding the arm label.");
ABSL_FLAG(std::vector<std::string>, conversion_column, {}, "ab-report: comma-separated 0/1 outcome columns (rates).");
ABSL_FLAG(std::vector<std::string>, value_column, {}, "ab-report: comma-separated numeric outcome columns (means).");
ABSL_FLAG(std::string, control, "", "ab-report: the control arm's label.");
ABSL_FLAG(std::string, covariate_column, "", "ab-report: pre-period covariate for CUPED (empty: none).");
ABSL_FLAG(std::string, format, "text", "ab-report: text, markdown or csv (written to --out, or stdout).");
ABSL_FLAG(double, alpha, 0.05, "ab-report: intervals at 1 - alpha; sample-size: two-sided significance level.");
ABSL_FLAG(double, baseline_rate, 0, "sample-size: control conversion rate p0.");
ABSL_FLAG(double, relative_lift, 0, "sample-size: relative lift to detect (0.5 = +50%).");
ABSL_FLAG(double, absolute_lift, 0, "sample-size: absolute lift to detect (instead of --relative_lift).");
ABSL_FLAG(double, power, 0.8, "sample-size: probability of detecting the lift.");
ABSL_FLAG(int, arms, 2, "sample-size: arms including the control (alpha split over arms - 1 comparisons).");
ABSL_FLAG(double, sd, 0, "sample-size (means): outcome standard deviation.");
ABSL_FLAG(double, delta, 0, "sample-size (means): difference of means to detect.");
ABSL_FLAG(std::string, decisions, "", "ope: the decision log CSV (couponctl export --decisions_out).");
ABSL_FLAG(std::string, policy, "greedy", "ope: the target policy: greedy, epsilon_greedy:E, softmax:T, none or uniform.");
ABSL_FLAG(std::string, reward, "redeemed", "ope: redeemed (1/0) or order_value (the order's value when redeemed, else 0).");
ABSL_FLAG(std::string, missing_outcome, "drop", "ope: decisions without an outcome are dropped, or counted as reward 0 (zero).");
ABSL_FLAG(std::string, arm, "", "ope: use only the decisions of this experiment arm (default: all).");
ABSL_FLAG(std::string, collector, "", "report-outcome, collector-stats: the collector's address (default: --server, a coupond run with --collector_db).");
ABSL_FLAG(std::string, collector_db, "", "export, pace: the collector's RocksDB directory (read-only; may be live).");
ABSL_FLAG(std::string, decision_id, "", "report-outcome: the decision (DecideResponse.decision_id).");
ABSL_FLAG(bool, redeemed, false, "report-outcome: the coupon was redeemed.");
ABSL_FLAG(double, order_value, 0, "report-outcome: value of the redeeming order.");
ABSL_FLAG(int64_t, when, 0, "report-outcome: when the outcome happened, Unix seconds (0: now).");
ABSL_FLAG(std::string, decisions_out, "", "export: write the decision log CSV here (for ope).");
ABSL_FLAG(std::string, logs_out, "", "export: write canonical logs (exposures.csv, redemptions.csv) into this directory (for pipeline).");
ABSL_FLAG(std::string, user_id_key_file, "", "publish, ingest, train, evaluate, pipeline, assign (--store, --publish_to): key user ids with the secret in this file (core/user_key.h); give coupond the same file.");
ABSL_FLAG(bool, append, false, "export: append to the logs already in --logs_out (in their column order).");
ABSL_FLAG(int64_t, days_from, 0, "export: number days from this Unix time (0: the epoch).");
ABSL_FLAG(int, traffic, 1000, "simulate-traffic: how many decisions to drive.");
ABSL_FLAG(int64_t, start, 0, "pace: campaign start, Unix seconds.");
ABSL_FLAG(int64_t, end, 0, "pace: campaign end, Unix seconds.");
ABSL_FLAG(double, gain, 1.0, "pace: controller gain (see core/pacing.h).");
ABSL_FLAG(bool, dry_run, false, "pace: print the new price without publishing it.");
ABSL_FLAG(int64_t, keep, 0, "prune: versions to keep, newest first (required; at least 2).");
ABSL_FLAG(int64_t, keep_versions, 0,
          "publish, train, pipeline: after publishing, prune the store to this many versions, "
          "newest first (at least 2; 0: no pruning, the default). See prune.");
ABSL_FLAG(int64_t, keep_campaign_records, 0,
          "prune, and publish/train/pipeline with --keep_versions: records kept per campaign, "
          "newest first (0: as many as versions kept).");
ABSL_FLAG(absl::Duration, min_age, absl::Minutes(10),
          "prune, and publish/train/pipeline with --keep_versions: delete no version or campaign "
          "record superseded more recently than this (must exceed the servers' --poll_interval).");

namespace {

constexpr char kUsage[] =
    "the command line of coupond, the coupon scoring service.\n"
    "\n"
    "usage: couponctl <command> [flags]\n"
    "\n"
    "online commands (talk to a running coupond at --server):\n"
    "  score       --user U [--coupons a,b,c | --campaign_id ID] [--user_attributes k=v,...]\n"
    "              [--top_k K] [--as_of T] [--json]\n"
    "              redemption probabilities of one user, highest first (without\n"
    "              --coupons or --campaign_id: every active coupon, --top_k required)\n"
    "  model-info  [--json]            the model version the server answers with\n"
    "  health      [--wait 30s]        grpc.health.v1 status; with --wait, until SERVING\n"
    "  assign      --campaign FILE.json --out FILE.csv [--prices_out P.json] [--store DIR [--compare_baselines]]\n"
    "              [--publish_to STORE]\n"
    "              budget-constrained assignment of a campaign (on the server, or in-process\n"
    "              against a model store with --store); --publish_to stores the campaign with\n"
    "              its prices beside the model, for decide --campaign_id\n"
    "  decide      --user U (--campaign_id ID | --campaign FILE.json --prices P.json)\n"
    "              the online decision for one user from the campaign's prices\n"
    "  reload      --admin_token_file F   make the server poll its store now (Admin.ReloadModel)\n"
    "  status      --admin_token_file F [--json]   served version, loads, refusals, memory limit,\n"
    "              dropped calls (Admin.GetServerStatus)\n"
    "  (every online command: --tls_ca F [--tls_cert F --tls_key F] [--tls_server_name N] for TLS)\n"
    "  campaigns   [--store DIR [--campaign_id ID]]\n"
    "              the stored campaigns the server decides with (or, with --store, the store's\n"
    "              newest records; with --campaign_id, every record of one campaign)\n"
    "\n"
    "offline commands (work on files and a model store directory):\n"
    "  generate    --out DIR [--num_users N] [--num_coupons M] [--dimension D] [--seed S] [--now T]\n"
    "              a synthetic platform with known true preferences, as factor files\n"
    "  publish     --store DIR --factors DIR [--version V]\n"
    "              publish factor files as a new model version (atomic bulk ingest)\n"
    "  versions    --store DIR         the versions in a model store\n"
    "  prune       --store DIR --keep N [--keep_campaign_records M] [--min_age 10m]\n"
    "              delete all but the newest N versions (N >= 2) and M records per campaign, and\n"
    "              their files; nothing superseded less than --min_age ago (docs/store-format.md).\n"
    "              publish, train and pipeline do the same after publishing with --keep_versions N\n"
    "\n"
    "offline pipeline (behaviour logs -> trained, evaluated, published model):\n"
    "  ingest      (--logs DIR | --dunnhumby DIR) [--quarantine FILE]   clean the logs, print the report\n"
    "              (fails, with the quarantine counts by reason, when nothing is left to train on)\n"
    "  train       (--logs DIR | --dunnhumby DIR) [--store DIR] [--seed S] [--threads T]\n"
    "              time split, hyperparameters chosen on the validation period, train, test metrics\n"
    "  evaluate    (--logs DIR | --dunnhumby DIR) --store DIR [--version V]\n"
    "              a published model (also one imported with publish --factors, e.g. from Spark\n"
    "              ALS) on the test period, beside the baselines\n"
    "  pipeline    (--logs DIR | --dunnhumby DIR) --store DIR --report R.md [--seed S] [--threads T] [--cv_folds K]\n"
    "              all of it: ingest, train, evaluate, publish, and a report with plots\n"
    "  (with --logs: [--time_format day_number|iso_date|unix_seconds] [--redemption_window_days N]\n"
    "   [--multi_value_columns a,b]; train, evaluate, pipeline: [--test_fraction F] [--validation_fraction F]\n"
    "   [--like_neighbours=false]; train, pipeline: [--grid_dimensions 1,4] [--grid_l2 0.001,0.01]\n"
    "   [--grid_learning_rates 0.001,0.003] [--prior_bias auto|calibrated|mean])\n"
    "  simulate    --out DIR [--num_users N] [--num_coupons M] [--dimension D] [--days K] [--coupons_per_day C]\n"
    "              [--seed S] [--dirty_rows R]\n"
    "              behaviour logs simulated from a synthetic platform (truth in DIR/truth)\n"
    "\n"
    "experiment analysis:\n"
    "  ab-report   --input FILE.csv --control LABEL [--arm_column C] [--conversion_column a,b]\n"
    "              [--value_column v] [--covariate_column x] [--alpha A] [--format text|markdown|csv] [--out F]\n"
    "              rates, means, lifts vs control with CIs and (Holm-adjusted) p-values; CUPED with a covariate\n"
    "  sample-size (--baseline_rate P --relative_lift R | --absolute_lift D | --sd S --delta D)\n"
    "              [--alpha A] [--power W] [--arms K]   units per arm to detect the lift\n"
    "feedback loop (the collector; a collector with a token: --collector_token_file F, TLS: --tls_ca F):\n"
    "  report-outcome --decision_id D [--redeemed] [--order_value V] [--when T] [--collector HOST:PORT]\n"
    "              store a decision's outcome durably (idempotent)\n"
    "  collector-stats [--collector HOST:PORT]   decisions, outcomes, unmatched and duplicate reports\n"
    "  export      --collector_db DIR [--decisions_out D.csv] [--logs_out DIR [--append] [--days_from T]]\n"
    "              the decision log (for ope) and canonical logs (for pipeline: tomorrow's model)\n"
    "  simulate-traffic --campaign_id ID --truth DIR [--traffic N] [--seed S] [--collector HOST:PORT]\n"
    "              synthetic platform: Decide for true users, report outcomes drawn from the truth\n"
    "  pace        --store DIR --campaign_id ID --collector_db DIR --start T0 --end T1 [--gain G] [--dry_run]\n"
    "              new budget price from observed spend against plan, published beside the model\n"
    "\n"
    "offline analysis (decision logs):\n"
    "  ope         --decisions FILE.csv [--policy greedy|epsilon_greedy:E|softmax:T|none|uniform]\n"
    "              [--reward redeemed|order_value] [--missing_outcome drop|zero] [--arm NAME]\n"
    "              off-policy value of a policy (IPS, SNIPS, doubly robust) with 95% intervals\n"
    "\n"
    "Factor file format: see docs/pipeline.md (\"Factor files\").";

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::fprintf(stderr, "%s\n\n%s\n",
                 args.size() < 2 ? "couponctl: missing command" : "couponctl: one command at a time",
                 kUsage);
    return 2;
  }
  const std::string command = args[1];
  namespace cmd = coupond::couponctl;

  cmd::OnlineFlags online;
  online.client.target = absl::GetFlag(FLAGS_server);
  online.client.timeout = absl::GetFlag(FLAGS_timeout);
  online.json = absl::GetFlag(FLAGS_json);
  cmd::SecurityFlags security;
  security.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  security.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  security.tls_key = absl::GetFlag(FLAGS_tls_key);
  security.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  security.admin_token_file = absl::GetFlag(FLAGS_admin_token_file);
  security.collector_token_file = absl::GetFlag(FLAGS_collector_token_file);
  if (absl::Status s = cmd::ApplySecurityFlags(security, &online.client); !s.ok()) {
    return cmd::Fail(s);
  }
  if (command == "reload") return cmd::Reload(online);
  if (command == "status") return cmd::Status(online);

  if (command == "score") {
    cmd::ScoreFlags f;
    f.user = absl::GetFlag(FLAGS_user);
    f.coupons = absl::GetFlag(FLAGS_coupons);
    f.campaign_id = absl::GetFlag(FLAGS_campaign_id);
    f.user_attributes = absl::GetFlag(FLAGS_user_attributes);
    f.top_k = absl::GetFlag(FLAGS_top_k);
    f.as_of = absl::GetFlag(FLAGS_as_of);
    return cmd::Score(online, f);
  }
  if (command == "assign") {
    cmd::AssignFlags f;
    f.campaign = absl::GetFlag(FLAGS_campaign);
    f.out = absl::GetFlag(FLAGS_out);
    f.prices_out = absl::GetFlag(FLAGS_prices_out);
    f.store = absl::GetFlag(FLAGS_store);
    f.compare_baselines = absl::GetFlag(FLAGS_compare_baselines);
    f.timeout = absl::GetFlag(FLAGS_assign_timeout);
    f.publish_to = absl::GetFlag(FLAGS_publish_to);
    f.user_id_key_file = absl::GetFlag(FLAGS_user_id_key_file);
    return cmd::Assign(online, f);
  }
  if (command == "decide") {
    cmd::DecideFlags f;
    f.user = absl::GetFlag(FLAGS_user);
    f.campaign = absl::GetFlag(FLAGS_campaign);
    f.prices = absl::GetFlag(FLAGS_prices);
    f.campaign_id = absl::GetFlag(FLAGS_campaign_id);
    return cmd::Decide(online, f);
  }
  if (command == "campaigns") {
    cmd::CampaignsFlags f;
    f.store = absl::GetFlag(FLAGS_store);
    f.campaign_id = absl::GetFlag(FLAGS_campaign_id);
    return cmd::Campaigns(online, f);
  }
  if (command == "model-info") return cmd::ModelInfo(online);
  if (command == "health") return cmd::Health(online, absl::GetFlag(FLAGS_wait));
  if (command == "generate") {
    cmd::GenerateFlags f;
    f.out = absl::GetFlag(FLAGS_out);
    f.options.num_users = absl::GetFlag(FLAGS_num_users);
    f.options.num_coupons = absl::GetFlag(FLAGS_num_coupons);
    f.options.dimension = absl::GetFlag(FLAGS_dimension);
    f.options.seed = absl::GetFlag(FLAGS_seed);
    f.options.now_unix_seconds = absl::GetFlag(FLAGS_now);
    return cmd::Generate(f);
  }
  cmd::RetentionFlags retention;
  retention.keep = absl::GetFlag(FLAGS_keep_versions);
  retention.keep_campaign_records = absl::GetFlag(FLAGS_keep_campaign_records);
  retention.min_age = absl::GetFlag(FLAGS_min_age);
  if (command == "publish") {
    return cmd::Publish(absl::GetFlag(FLAGS_store), absl::GetFlag(FLAGS_factors),
                        absl::GetFlag(FLAGS_version), absl::GetFlag(FLAGS_user_id_key_file),
                        retention);
  }
  if (command == "prune") {
    retention.keep = absl::GetFlag(FLAGS_keep);
    return cmd::Prune(absl::GetFlag(FLAGS_store), retention);
  }
  if (command == "versions") return cmd::Versions(absl::GetFlag(FLAGS_store));
  if (command == "ingest" || command == "train" || command == "evaluate" || command == "pipeline") {
    cmd::PipelineFlags f;
    f.logs = absl::GetFlag(FLAGS_logs);
    f.dunnhumby = absl::GetFlag(FLAGS_dunnhumby);
    f.dunnhumby_products = absl::GetFlag(FLAGS_dunnhumby_products);
    f.like_neighbours = absl::GetFlag(FLAGS_like_neighbours);
    f.prior_bias = absl::GetFlag(FLAGS_prior_bias);
    f.grid_dimensions = absl::GetFlag(FLAGS_grid_dimensions);
    f.grid_l2 = absl::GetFlag(FLAGS_grid_l2);
    f.grid_learning_rates = absl::GetFlag(FLAGS_grid_learning_rates);
    f.quarantine = absl::GetFlag(FLAGS_quarantine);
    f.store = absl::GetFlag(FLAGS_store);
    f.report = absl::GetFlag(FLAGS_report);
    f.truth = absl::GetFlag(FLAGS_truth);
    f.version = absl::GetFlag(FLAGS_version);
    f.seed = absl::GetFlag(FLAGS_seed);
    f.threads = absl::GetFlag(FLAGS_threads);
    f.cv_folds = absl::GetFlag(FLAGS_cv_folds);
    f.user_id_key_file = absl::GetFlag(FLAGS_user_id_key_file);
    f.time_format = absl::GetFlag(FLAGS_time_format);
    f.redemption_window_days = absl::GetFlag(FLAGS_redemption_window_days);
    f.multi_value_columns = absl::GetFlag(FLAGS_multi_value_columns);
    f.test_fraction = absl::GetFlag(FLAGS_test_fraction);
    f.validation_fraction = absl::GetFlag(FLAGS_validation_fraction);
    f.retention = retention;
    if (command == "ingest") return cmd::Ingest(f);
    if (command == "train") return cmd::Train(f);
    if (command == "evaluate") return cmd::EvaluateModel(f);
    return cmd::Pipeline(f);
  }
  if (command == "simulate") {
    cmd::SimulateFlags f;
    f.out = absl::GetFlag(FLAGS_out);
    f.options.platform.num_users = absl::GetFlag(FLAGS_num_users);
    f.options.platform.num_coupons = absl::GetFlag(FLAGS_num_coupons);
    f.options.platform.dimension = absl::GetFlag(FLAGS_dimension);
    f.options.platform.seed = absl::GetFlag(FLAGS_seed);
    f.options.days = absl::GetFlag(FLAGS_days);
    f.options.dirty_rows = absl::GetFlag(FLAGS_dirty_rows);
    f.options.coupons_per_exposure = absl::GetFlag(FLAGS_coupons_per_day);
    f.options.seed = absl::GetFlag(FLAGS_seed) + 1;
    return cmd::Simulate(f);
  }
  if (command == "ab-report") {
    cmd::AbReportFlags f;
    f.input = absl::GetFlag(FLAGS_input);
    f.arm_column = absl::GetFlag(FLAGS_arm_column);
    f.conversion_columns = absl::GetFlag(FLAGS_conversion_column);
    f.value_columns = absl::GetFlag(FLAGS_value_column);
    f.control = absl::GetFlag(FLAGS_control);
    f.covariate_column = absl::GetFlag(FLAGS_covariate_column);
    f.alpha = absl::GetFlag(FLAGS_alpha);
    f.format = absl::GetFlag(FLAGS_format);
    f.out = absl::GetFlag(FLAGS_out);
    return cmd::AbReportCommand(f);
  }
  if (command == "sample-size") {
    cmd::SampleSizeFlags f;
    f.baseline_rate = absl::GetFlag(FLAGS_baseline_rate);
    f.relative_lift = absl::GetFlag(FLAGS_relative_lift);
    f.absolute_lift = absl::GetFlag(FLAGS_absolute_lift);
    f.sd = absl::GetFlag(FLAGS_sd);
    f.delta = absl::GetFlag(FLAGS_delta);
    f.alpha = absl::GetFlag(FLAGS_alpha);
    f.power = absl::GetFlag(FLAGS_power);
    f.arms = absl::GetFlag(FLAGS_arms);
    return cmd::SampleSizeCommand(f);
  }
  if (command == "report-outcome" || command == "collector-stats") {
    coupond::client::ClientOptions collector = online.client;
    if (!absl::GetFlag(FLAGS_collector).empty()) collector.target = absl::GetFlag(FLAGS_collector);
    if (command == "collector-stats") return cmd::CollectorStats(collector);
    cmd::ReportOutcomeFlags f;
    f.collector = collector;
    f.decision_id = absl::GetFlag(FLAGS_decision_id);
    f.redeemed = absl::GetFlag(FLAGS_redeemed);
    f.order_value = absl::GetFlag(FLAGS_order_value);
    f.unix_seconds = absl::GetFlag(FLAGS_when);
    return cmd::ReportOutcome(f);
  }
  if (command == "export") {
    cmd::ExportFlags f;
    f.collector_db = absl::GetFlag(FLAGS_collector_db);
    f.decisions_out = absl::GetFlag(FLAGS_decisions_out);
    f.logs_out = absl::GetFlag(FLAGS_logs_out);
    f.append = absl::GetFlag(FLAGS_append);
    f.days_from = absl::GetFlag(FLAGS_days_from);
    return cmd::Export(f);
  }
  if (command == "simulate-traffic") {
    cmd::SimulateTrafficFlags f;
    f.server = online.client;
    f.collector = online.client;
    if (!absl::GetFlag(FLAGS_collector).empty()) f.collector.target = absl::GetFlag(FLAGS_collector);
    f.campaign_id = absl::GetFlag(FLAGS_campaign_id);
    f.truth = absl::GetFlag(FLAGS_truth);
    f.decisions = absl::GetFlag(FLAGS_traffic);
    f.seed = absl::GetFlag(FLAGS_seed);
    return cmd::SimulateTraffic(f);
  }
  if (command == "pace") {
    cmd::PaceFlags f;
    f.store = absl::GetFlag(FLAGS_store);
    f.campaign_id = absl::GetFlag(FLAGS_campaign_id);
    f.collector_db = absl::GetFlag(FLAGS_collector_db);
    f.start = absl::GetFlag(FLAGS_start);
    f.end = absl::GetFlag(FLAGS_end);
    f.now = absl::GetFlag(FLAGS_now);
    f.gain = absl::GetFlag(FLAGS_gain);
    f.dry_run = absl::GetFlag(FLAGS_dry_run);
    return cmd::Pace(f);
  }
  if (command == "ope") {
    cmd::OpeFlags f;
    f.decisions = absl::GetFlag(FLAGS_decisions);
    f.policy = absl::GetFlag(FLAGS_policy);
    f.reward = absl::GetFlag(FLAGS_reward);
    f.missing_outcome = absl::GetFlag(FLAGS_missing_outcome);
    f.arm = absl::GetFlag(FLAGS_arm);
    return cmd::Ope(f);
  }
  std::fprintf(stderr, "couponctl: unknown command '%s'\n\n%s\n", command.c_str(), kUsage);
  return 2;
}
