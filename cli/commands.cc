#include "cli/commands.h"

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "api/convert.h"
#include "cli/cli_util.h"
#include "core/assignment.h"
#include "core/assignment_baselines.h"
#include "core/campaign.h"
#include "core/user_key.h"
#include "google/protobuf/util/json_util.h"
#include "pipeline/factor_files.h"
#include "storage/model_store.h"

namespace coupond::couponctl {
namespace {

void PrintJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  if (google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    std::fputs(json.c_str(), stdout);
  }
}

std::string FormatTime(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

// Reads a JSON file into a message (the proto3 JSON mapping, field names as in the .proto).
absl::Status ReadJson(const std::string& path, google::protobuf::Message* message) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream text;
  text << in.rdbuf();
  const auto status = google::protobuf::util::JsonStringToMessage(text.str(), message);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", status.ToString()));
  }
  return absl::OkStatus();
}

absl::Status WriteJson(const std::string& path, const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    return absl::InternalError("cannot print JSON");
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << json;
  out.flush();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

void PrintSummary(const v1::AssignSummary& s) {
  std::printf("campaign '%s' on model version %llu\n", s.campaign_id().c_str(),
              static_cast<unsigned long long>(s.model_version()));
  std::printf("  users considered      %llu (unknown to the model: %llu)\n",
              static_cast<unsigned long long>(s.users_considered()),
              static_cast<unsigned long long>(s.unknown_users()));
  std::printf("  users given a coupon  %llu (%llu assignments)\n",
              static_cast<unsigned long long>(s.users_assigned()),
              static_cast<unsigned long long>(s.assignments()));
  std::printf("  expected redemptions  %.2f\n", s.expected_redemptions());
  std::printf("  expected value        %.2f\n", s.expected_value());
  std::printf("  expected spend        %.2f of budget %.2f\n", s.expected_spend(), s.budget());
  std::printf("  dual bound            %.2f (relative gap %.2e, %s after %u passes)\n",
              s.dual_bound(), s.relative_gap(), s.converged() ? "converged" : "iteration limit",
              s.passes());
  std::printf("  budget price lambda   %.6f\n", s.prices().budget_price());
  std::printf("  solve time            %.3f s\n", s.solve_seconds());
  for (const v1::CouponIssue& c : s.coupons()) {
    if (c.issued() == 0) continue;
    const auto mu = s.prices().stock_prices().find(c.coupon_id());
    std::printf("    %-16s issued %8llu  expected redemptions %9.2f  stock price %.4f\n",
                c.coupon_id().c_str(), static_cast<unsigned long long>(c.issued()),
                c.expected_redemptions(), mu == s.prices().stock_prices().end() ? 0.0 : mu->second);
  }
}

// Solves in-process against the newest version of a model store (no server needed).
// With `keyer` (null: raw ids), ids are keyed as coupond keys them (the population and the
// eligibility lists), and an explicit population is answered with the caller's own ids.
int AssignInProcess(const v1::AssignRequest& request, const AssignFlags& flags,
                    const core::UserKeyer* keyer, std::ofstream& csv, v1::AssignSummary* summary) {
  auto store = storage::ModelStore::OpenForRead(flags.store);
  if (!store.ok()) return Fail(store.status());
  auto latest = (*store)->LatestVersion();
  if (!latest.ok()) return Fail(latest.status());
  auto snapshot = (*store)->LoadSnapshot(latest->version);
  if (!snapshot.ok()) return Fail(snapshot.status());
  auto population = api::PopulationFromProto(request);
  if (!population.ok()) return Fail(population.status());
  core::CampaignSpec spec = api::CampaignFromProto(request.campaign(), absl::ToUnixSeconds(absl::Now()));
  if (keyer != nullptr) {
    absl::Status keyed = keyer->KeyAll(&population->user_ids);
    for (core::CampaignCouponSpec& c : spec.coupons) {
      if (keyed.ok()) keyed = keyer->KeyAll(&c.eligible_user_ids);
    }
    if (!keyed.ok()) return Fail(keyed);
  }
  auto plan = core::CampaignPlan::Create(*snapshot, spec, *std::move(population));
  if (!plan.ok()) return Fail(plan.status());
  const core::AssignmentOptions options = api::SolverOptionsFromProto(
      request.solver(), (*plan)->spec().max_coupons_per_user, /*threads=*/0);
  const absl::Time start = absl::Now();
  auto result = core::SolveAssignment((*plan)->coupons(), (*plan)->spec().budget, **plan, options);
  if (!result.ok()) return Fail(result.status());
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  for (const core::AssignedCoupon& a : result->assignments) {
    if (keyer != nullptr && request.has_users()) {
      csv << request.users().user_ids(static_cast<int>(a.user));
    } else {
      csv << (*plan)->user_id(a.user);
    }
    csv << ',' << (*plan)->coupons()[a.coupon].id << ',' << absl::StrFormat("%.9g", a.probability)
        << '\n';
  }
  *summary = api::SummaryToProto(*result, **plan, seconds);
  if (flags.compare_baselines) {
    auto greedy = core::GreedyHighestProbabilityPolicy((*plan)->coupons(), (*plan)->spec().budget, **plan);
    auto random = core::RandomPolicy((*plan)->coupons(), (*plan)->spec().budget, **plan, 42);
    if (!greedy.ok()) return Fail(greedy.status());
    if (!random.ok()) return Fail(random.status());
    std::printf("policy comparison on the same probabilities (ground truth on the synthetic platform):\n");
    std::printf("  %-58s %12s %12s %12s\n", "policy", "redemptions", "value", "spend");
    std::printf("  %-58s %12.2f %12.2f %12.2f\n", "coupond (Lagrangian + repair)",
                summary->expected_redemptions(), summary->expected_value(), summary->expected_spend());
    for (const core::PolicyOutcome& o : {*greedy, *random}) {
      std::printf("  %-58s %12.2f %12.2f %12.2f\n", o.policy.c_str(), o.expected_redemptions,
                  o.expected_value, o.expected_spend);
    }
  }
  return 0;
}

}  // namespace

int Assign(const OnlineFlags& online, const AssignFlags& flags) {
  if (flags.campaign.empty()) return Usage("assign: --campaign is required");
  if (flags.out.empty()) return Usage("assign: --out is required");
  if (flags.compare_baselines && flags.store.empty()) {
    return Usage("assign: --compare_baselines needs --store (it runs the policies in-process)");
  }
  v1::AssignRequest request;
  if (absl::Status s = ReadJson(flags.campaign, &request); !s.ok()) return Fail(s);
  std::optional<core::UserKeyer> keyer;
  if (!flags.user_id_key_file.empty()) {
    auto read = ReadUserKeyer(flags.user_id_key_file);
    if (!read.ok()) return Fail(read.status());
    keyer.emplace(*std::move(read));
  }
  if (!flags.publish_to.empty()) {
    // Refuse before the solve, not after it: a campaign to store needs a storable id.
    if (absl::Status s = storage::ValidateCampaignId(request.campaign().campaign_id()); !s.ok()) {
      return Fail(absl::InvalidArgumentError(absl::StrCat("campaign.", s.message())));
    }
  }
  std::ofstream csv(flags.out, std::ios::binary | std::ios::trunc);
  if (!csv) return Fail(absl::UnavailableError(absl::StrCat("cannot write ", flags.out)));
  csv << "user_id,coupon_id,probability\n";
  v1::AssignSummary summary;
  if (!flags.store.empty()) {
    if (int rc = AssignInProcess(request, flags, keyer ? &*keyer : nullptr, csv, &summary); rc != 0) {
      return rc;
    }
  } else {
    auto client = client::CoupondClient::Create(online.client);
    if (!client.ok()) return Fail(client.status());
    auto result = (*client)->Assign(request, flags.timeout, [&](const v1::AssignResponse& m) {
      for (const v1::Assignment& a : m.assignments()) {
        csv << a.user_id() << ',' << a.coupon_id() << ','
            << absl::StrFormat("%.9g", a.probability()) << '\n';
      }
      return csv ? absl::OkStatus() : absl::DataLossError(absl::StrCat("error writing ", flags.out));
    });
    if (!result.ok()) return Fail(result.status());
    summary = *std::move(result);
  }
  csv.flush();
  if (!csv) return Fail(absl::DataLossError(absl::StrCat("error writing ", flags.out)));
  if (!flags.prices_out.empty()) {
    if (absl::Status s = WriteJson(flags.prices_out, summary.prices()); !s.ok()) return Fail(s);
  }
  if (online.json) {
    PrintJson(summary);
  } else {
    PrintSummary(summary);
    std::printf("assignment written to %s\n", flags.out.c_str());
  }
  if (!flags.publish_to.empty()) {
    // The stored lists hold keys when the operator keys ids: no raw id at rest.
    v1::Campaign campaign = request.campaign();
    if (keyer) {
      if (auto keyed = api::KeyEligibleUserIds(*keyer, &campaign); !keyed.ok()) return Fail(keyed.status());
    }
    auto payload = api::EncodeStoredCampaign(campaign, summary.prices());
    if (!payload.ok()) return Fail(payload.status());
    auto store = storage::ModelStore::OpenForWrite(flags.publish_to);
    if (!store.ok()) return Fail(store.status());
    auto record = (*store)->PublishCampaign(request.campaign().campaign_id(), *payload);
    if (!record.ok()) return Fail(record.status());
    std::fprintf(online.json ? stderr : stdout,
                 "campaign '%s' stored with its prices in %s (record %llu); servers on that "
                 "store decide with it after their next poll (Decide campaign_id)\n",
                 record->campaign_id.c_str(), flags.publish_to.c_str(),
                 static_cast<unsigned long long>(record->sequence));
  }
  return 0;
}

int Decide(const OnlineFlags& online, const DecideFlags& flags) {
  if (flags.user.empty()) return Usage("decide: --user is required");
  const bool inline_campaign = !flags.campaign.empty() || !flags.prices.empty();
  const bool stored_campaign = !flags.campaign_id.empty();
  if (stored_campaign == inline_campaign ||
      (inline_campaign && (flags.campaign.empty() || flags.prices.empty()))) {
    return Usage("decide: give either --campaign_id (a stored campaign) or --campaign and --prices");
  }
  v1::DecideRequest request;
  request.set_user_id(flags.user);
  if (inline_campaign) {
    v1::AssignRequest campaign_file;
    if (absl::Status s = ReadJson(flags.campaign, &campaign_file); !s.ok()) return Fail(s);
    *request.mutable_campaign() = campaign_file.campaign();
    if (absl::Status s = ReadJson(flags.prices, request.mutable_prices()); !s.ok()) return Fail(s);
  } else {
    request.set_campaign_id(flags.campaign_id);
  }
  auto client = client::CoupondClient::Create(online.client);
  if (!client.ok()) return Fail(client.status());
  auto response = (*client)->Decide(request);
  if (!response.ok()) return Fail(response.status());
  if (online.json) {
    PrintJson(*response);
    return 0;
  }
  if (!response->campaign_id().empty()) {
    std::printf("campaign '%s' record %llu (prices from model version %llu), ",
                response->campaign_id().c_str(),
                static_cast<unsigned long long>(response->campaign_sequence()),
                static_cast<unsigned long long>(response->prices_model_version()));
  }
  std::printf("model version %llu, user %s (%s): ",
              static_cast<unsigned long long>(response->model_version()), flags.user.c_str(),
              response->user_resolution() == v1::USER_RESOLUTION_KNOWN_USER ? "known user"
                                                                            : "population prior");
  if (response->chosen_size() == 0) {
    std::printf("no coupon (no positive budget-adjusted score)\n");
  } else {
    std::printf("\n");
    for (const v1::CouponDecision& c : response->chosen()) {
      std::printf("  %-16s probability %.4f  score %.5f\n", c.coupon_id().c_str(),
                  c.probability(), c.score());
    }
  }
  return 0;
}

int Campaigns(const OnlineFlags& online, const CampaignsFlags& flags) {
  if (flags.store.empty()) {
    if (!flags.campaign_id.empty()) return Usage("campaigns: --campaign_id needs --store");
    auto client = client::CoupondClient::Create(online.client);
    if (!client.ok()) return Fail(client.status());
    auto response = (*client)->ListCampaigns();
    if (!response.ok()) return Fail(response.status());
    if (online.json) {
      PrintJson(*response);
      return 0;
    }
    std::printf("%-24s %8s %12s %8s %12s %14s %12s\n", "campaign", "record", "published",
                "coupons", "budget", "budget price", "prices@model");
    for (const v1::CampaignInfo& c : response->campaigns()) {
      std::printf("%-24s %8llu %12lld %8u %12.2f %14.6g %12llu\n", c.campaign_id().c_str(),
                  static_cast<unsigned long long>(c.sequence()),
                  static_cast<long long>(c.published_unix_seconds()), c.num_coupons(), c.budget(),
                  c.budget_price(), static_cast<unsigned long long>(c.prices_model_version()));
    }
    return 0;
  }
  auto store = storage::ModelStore::OpenForRead(flags.store);
  if (!store.ok()) return Fail(store.status());
  auto records = flags.campaign_id.empty() ? (*store)->LatestCampaigns()
                                           : (*store)->CampaignHistory(flags.campaign_id);
  if (!records.ok()) return Fail(records.status());
  std::printf("%-24s %8s %12s %8s %12s %14s %12s\n", "campaign", "record", "published",
              "coupons", "budget", "budget price", "prices@model");
  for (const storage::CampaignRecord& r : *records) {
    auto stored = api::DecodeStoredCampaign(r.campaign_id, r.payload);
    if (!stored.ok()) {
      std::printf("%-24s %8llu %12lld  unreadable: %s\n", r.campaign_id.c_str(),
                  static_cast<unsigned long long>(r.sequence),
                  static_cast<long long>(r.published_unix_seconds),
                  std::string(stored.status().message()).c_str());
      continue;
    }
    std::printf("%-24s %8llu %12lld %8d %12.2f %14.6g %12llu\n", r.campaign_id.c_str(),
                static_cast<unsigned long long>(r.sequence),
                static_cast<long long>(r.published_unix_seconds), stored->campaign().coupons_size(),
                stored->campaign().budget(), stored->prices().budget_price(),
                static_cast<unsigned long long>(stored->prices().model_version()));
  }
  return 0;
}

int Score(const OnlineFlags& online, const ScoreFlags& flags) {
  if (flags.user.empty()) return Usage("score: --user is required");
  auto client = client::CoupondClient::Create(online.client);
  if (!client.ok()) return Fail(client.status());
  v1::ScoreRequest request;
  request.set_user_id(flags.user);
  for (const std::string& c : flags.coupons) request.add_coupon_ids(c);
  request.set_campaign_id(flags.campaign_id);
  for (const std::string& pair : flags.user_attributes) {
    const size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Usage(absl::StrCat("score: --user_attributes: '", pair, "' is not name=value").c_str());
    }
    (*request.mutable_user_attributes())[pair.substr(0, eq)] = pair.substr(eq + 1);
  }
  request.set_top_k(flags.top_k);
  request.set_as_of_unix_seconds(flags.as_of);
  auto response = (*client)->Score(request);
  if (!response.ok()) return Fail(response.status());
  if (online.json) {
    PrintJson(*response);
    return 0;
  }
  std::string resolution = "known user";
  if (response->user_resolution() == v1::USER_RESOLUTION_SEGMENT_PRIOR) {
    resolution = absl::StrCat("unknown user: prior of segment ", response->segment());
  } else if (response->user_resolution() == v1::USER_RESOLUTION_POPULATION_PRIOR) {
    resolution = "unknown user: population prior";
  }
  std::printf("model version %llu, user %s (%s), %u active candidates scored%s\n",
              static_cast<unsigned long long>(response->model_version()), flags.user.c_str(),
              resolution.c_str(), response->candidates_scored(),
              response->campaign_id().empty()
                  ? ""
                  : absl::StrCat(" (campaign '", response->campaign_id(), "' record ",
                                 response->campaign_sequence(), ")")
                        .c_str());
  std::printf("%5s  %-24s %12s %10s\n", "rank", "coupon", "probability", "logit");
  int rank = 0;
  for (const v1::CouponScore& s : response->scores()) {
    std::printf("%5d  %-24s %12.6f %10.4f\n", ++rank, s.coupon_id().c_str(), s.probability(),
                s.logit());
  }
  if (response->unknown_coupon_ids_size() > 0) {
    std::printf("unknown coupon ids: %s\n",
                absl::StrJoin(response->unknown_coupon_ids(), ", ").c_str());
  }
  if (response->inactive_coupon_ids_size() > 0) {
    std::printf("inactive coupon ids: %s\n",
                absl::StrJoin(response->inactive_coupon_ids(), ", ").c_str());
  }
  return 0;
}

int ModelInfo(const OnlineFlags& online) {
  auto client = client::CoupondClient::Create(online.client);
  if (!client.ok()) return Fail(client.status());
  auto response = (*client)->GetModelInfo();
  if (!response.ok()) return Fail(response.status());
  if (online.json) {
    PrintJson(*response);
    return 0;
  }
  const v1::ModelInfo& m = response->model();
  std::printf("version      %llu\n", static_cast<unsigned long long>(m.version()));
  std::printf("dimension    %u\n", m.dimension());
  std::printf("users        %llu\n", static_cast<unsigned long long>(m.num_users()));
  std::printf("coupons      %llu\n", static_cast<unsigned long long>(m.num_coupons()));
  std::printf("segments     %u\n", m.num_segments());
  std::printf("global bias  %.6f\n", m.global_bias());
  std::printf("created      %s\n", FormatTime(m.created_unix_seconds()).c_str());
  std::printf("loaded       %s\n", FormatTime(m.loaded_unix_seconds()).c_str());
  std::printf("checksum     %s\n", m.checksum().c_str());
  std::printf("description  %s\n", m.description().c_str());
  return 0;
}

int Health(const OnlineFlags& online, absl::Duration wait) {
  auto client = client::CoupondClient::Create(online.client);
  if (!client.ok()) return Fail(client.status());
  if (wait > absl::ZeroDuration()) {
    if (absl::Status s = (*client)->WaitUntilServing(wait); !s.ok()) return Fail(s);
    std::printf("SERVING\n");
    return 0;
  }
  auto status = (*client)->CheckHealth();
  if (!status.ok()) return Fail(status.status());
  std::printf("%s\n", grpc::health::v1::HealthCheckResponse::ServingStatus_Name(*status).c_str());
  return *status == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

int Generate(const GenerateFlags& flags) {
  if (flags.out.empty()) return Usage("generate: --out is required");
  auto model = learn::GenerateSyntheticPlatform(flags.options);
  if (!model.ok()) return Fail(model.status());
  if (absl::Status s = pipeline::WriteFactorFiles(*model, flags.out); !s.ok()) return Fail(s);
  std::printf("wrote %zu users and %zu coupons (dimension %u) to %s\n", model->num_users(),
              model->num_coupons(), model->dimension, flags.out.c_str());
  return 0;
}

int Publish(const std::string& store_path, const std::string& factors, uint64_t version,
            const std::string& user_id_key_file, const RetentionFlags& retention) {
  if (store_path.empty()) return Usage("publish: --store is required");
  if (factors.empty()) return Usage("publish: --factors is required");
  std::optional<storage::PruneOptions> prune;
  if (retention.keep != 0) {
    absl::StatusOr<storage::PruneOptions> options = MakePruneOptions(retention, "--keep_versions");
    if (!options.ok()) return Usage(std::string(options.status().message()).c_str());
    prune = *options;
  }
  auto model = pipeline::ReadFactorFiles(factors);
  if (!model.ok()) return Fail(model.status());
  if (!user_id_key_file.empty()) {
    auto keyer = ReadUserKeyer(user_id_key_file);
    if (!keyer.ok()) return Fail(keyer.status());
    if (absl::Status s = core::PseudonymiseUsers(*keyer, &*model); !s.ok()) return Fail(s);
  }
  auto store = storage::ModelStore::OpenForWrite(store_path);
  if (!store.ok()) return Fail(store.status());
  storage::PublishOptions options;
  options.version = version;
  auto info = (*store)->Publish(*model, options);
  if (!info.ok()) return Fail(info.status());
  std::printf("published version %llu to %s: %llu users, %llu coupons, dimension %u, checksum %016llx\n",
              static_cast<unsigned long long>(info->version), store_path.c_str(),
              static_cast<unsigned long long>(info->num_users),
              static_cast<unsigned long long>(info->num_coupons), info->dimension,
              static_cast<unsigned long long>(info->checksum));
  if (prune.has_value()) {
    if (absl::Status s = PruneAndReport(store->get(), *prune); !s.ok()) return Fail(s);
  }
  return 0;
}

int Versions(const std::string& store_path) {
  if (store_path.empty()) return Usage("versions: --store is required");
  auto store = storage::ModelStore::OpenForRead(store_path);
  if (!store.ok()) return Fail(store.status());
  auto versions = (*store)->ListVersions();
  if (!versions.ok()) return Fail(versions.status());
  std::printf("%8s  %-23s %5s %10s %9s  %s\n", "version", "created", "dim", "users", "coupons",
              "description");
  for (const core::ModelVersionInfo& v : *versions) {
    std::printf("%8llu  %-23s %5u %10llu %9llu  %s\n", static_cast<unsigned long long>(v.version),
                FormatTime(v.created_unix_seconds).c_str(), v.dimension,
                static_cast<unsigned long long>(v.num_users),
                static_cast<unsigned long long>(v.num_coupons), v.description.c_str());
  }
  return 0;
}

}  // namespace coupond::couponctl
