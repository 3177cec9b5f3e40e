#include "cli/feedback_commands.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "analysis/decision_log.h"
#include "api/convert.h"
#include "cli/cli_util.h"
#include "client/collector_client.h"
#include "collector/collector_store.h"
#include "core/pacing.h"
#include "core/random.h"
#include "pipeline/csv.h"
#include "pipeline/factor_files.h"
#include "storage/model_store.h"

namespace coupond::couponctl {
namespace {

constexpr int64_t kSecondsPerDay = 86400;

int64_t Day(int64_t unix_seconds) { return unix_seconds / kSecondsPerDay; }

analysis::LoggedDecision ToLogged(const v1::DecisionRecord& d, const v1::ReportOutcomeRequest* o) {
  analysis::LoggedDecision out;
  out.decision_id = d.decision_id();
  out.unix_seconds = d.unix_micros() / 1000000;
  out.user_key = d.user_key();
  out.campaign_id = d.campaign_id();
  out.arm = d.arm();
  out.model_version = d.model_version();
  out.prices_sequence = d.campaign_sequence();
  out.chosen_coupon_id = d.chosen_coupon_id();
  out.propensity = d.propensity();
  if (o != nullptr) {
    out.redeemed = o->redeemed();
    out.order_value = o->order_value();
  }
  for (const v1::DecisionCandidate& c : d.candidates()) {
    out.candidates.push_back(analysis::LoggedCandidate{c.coupon_id(), c.probability(), c.score(), c.propensity()});
  }
  for (const v1::DecisionSlot& slot : d.slots()) {
    out.slots.push_back(analysis::LoggedSlot{slot.coupon_id(), slot.propensity()});
  }
  // 0: a record from before slates (one slot, its slate as likely as its coupon).
  if (d.slate_propensity() != 0.0) out.slate_propensity = d.slate_propensity();
  out.max_slots = std::max<uint32_t>(d.max_slots(), 1);
  out.candidates_total = d.candidates_total();
  out.omitted_propensity = d.omitted_propensity();
  return out;
}

}  // namespace

int ReportOutcome(const ReportOutcomeFlags& flags) {
  if (flags.decision_id.empty()) return Usage("report-outcome: --decision_id is required");
  auto client = client::CollectorClient::Create(flags.collector);
  if (!client.ok()) return Fail(client.status());
  v1::ReportOutcomeRequest request;
  request.set_decision_id(flags.decision_id);
  request.set_redeemed(flags.redeemed);
  request.set_order_value(flags.order_value);
  request.set_unix_seconds(flags.unix_seconds);
  auto response = (*client)->ReportOutcome(request);
  if (!response.ok()) return Fail(response.status());
  std::printf("%s\n", v1::OutcomeDisposition_Name(response->disposition()).c_str());
  return 0;
}

int CollectorStats(const client::ClientOptions& collector) {
  auto client = client::CollectorClient::Create(collector);
  if (!client.ok()) return Fail(client.status());
  auto stats = (*client)->GetStats();
  if (!stats.ok()) return Fail(stats.status());
  std::printf("decisions            %llu\n", static_cast<unsigned long long>(stats->decisions()));
  std::printf("outcomes             %llu\n", static_cast<unsigned long long>(stats->outcomes()));
  std::printf("unmatched outcomes   %llu\n", static_cast<unsigned long long>(stats->unmatched_outcomes()));
  std::printf("duplicate outcomes   %llu\n", static_cast<unsigned long long>(stats->duplicate_outcomes()));
  std::printf("duplicate decisions  %llu\n", static_cast<unsigned long long>(stats->duplicate_decisions()));
  std::printf("conflicting outcomes %llu\n", static_cast<unsigned long long>(stats->conflicting_outcomes()));
  return 0;
}

int Export(const ExportFlags& flags) {
  if (flags.collector_db.empty()) return Usage("export: --collector_db is required");
  if (flags.decisions_out.empty() && flags.logs_out.empty()) {
    return Usage("export: give --decisions_out and/or --logs_out");
  }
  auto store = collector::CollectorStore::OpenForRead(flags.collector_db);
  if (!store.ok()) return Fail(store.status());

  std::ofstream decisions, exposures, redemptions;
  if (!flags.decisions_out.empty()) {
    decisions.open(flags.decisions_out, std::ios::binary | std::ios::trunc);
    if (!decisions) return Fail(absl::UnavailableError(absl::StrCat("cannot write ", flags.decisions_out)));
    decisions << analysis::kDecisionLogHeader << ',' << analysis::kDecisionLogSlateHeader << '\n';
  }
  // Canonical logs (pipeline/logs.h); time as day numbers from --days_from. Each file's
  // columns: ours, or (appending) those of the file's existing header.
  std::vector<std::string> exposure_columns = {"user_id", "coupon_id", "campaign_id", "time"};
  std::vector<std::string> redemption_columns = {"user_id", "coupon_id", "time", "order_value"};
  if (!flags.logs_out.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(flags.logs_out, ec);
    auto open = [&](const std::string& name, std::vector<std::string>* columns,
                    std::ofstream* out) -> absl::Status {
      const std::string path = flags.logs_out + "/" + name;
      std::string header;
      if (flags.append) {
        std::ifstream existing(path, std::ios::binary);
        std::getline(existing, header);
      }
      if (!header.empty()) {
        if (!header.empty() && header.back() == '\r') header.pop_back();
        std::vector<std::string> found = absl::StrSplit(header, ',');
        for (const std::string& c : found) {
          if (std::find(columns->begin(), columns->end(), c) == columns->end()) {
            return absl::InvalidArgumentError(absl::StrCat(path, ": column '", c, "' is not one export writes"));
          }
        }
        *columns = std::move(found);
        out->open(path, std::ios::binary | std::ios::app);
      } else {
        out->open(path, std::ios::binary | std::ios::trunc);
        *out << absl::StrJoin(*columns, ",") << '\n';
      }
      if (!*out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
      return absl::OkStatus();
    };
    if (absl::Status s = open("exposures.csv", &exposure_columns, &exposures); !s.ok()) return Fail(s);
    if (absl::Status s = open("redemptions.csv", &redemption_columns, &redemptions); !s.ok()) return Fail(s);
  }
  auto write_row = [](std::ofstream& out, const std::vector<std::string>& columns,
                      const absl::flat_hash_map<std::string, std::string>& values) {
    std::string row;
    for (size_t i = 0; i < columns.size(); ++i) {
      if (i > 0) row.push_back(',');
      pipeline::AppendCsvField(values.at(columns[i]), &row);
    }
    row.push_back('\n');
    out << row;
  };
  auto day = [&](int64_t unix_seconds) { return absl::StrCat(Day(unix_seconds - flags.days_from)); };
  uint64_t rows = 0, with_outcome = 0, exposed = 0, redeemed = 0;
  std::string line;
  absl::Status s = (*store)->ForEachDecision([&](const v1::DecisionRecord& d,
                                                 const v1::ReportOutcomeRequest* o) -> absl::Status {
    ++rows;
    if (o != nullptr) ++with_outcome;
    if (decisions.is_open()) {
      line.clear();
      if (absl::Status a = analysis::AppendDecisionLogRow(ToLogged(d, o), &line); !a.ok()) {
        return absl::Status(a.code(), absl::StrCat("decision '", d.decision_id(), "': ", a.message()));
      }
      decisions << line;
    }
    if (exposures.is_open() && !d.chosen_coupon_id().empty()) {
      // Only decisions that gave a coupon are exposures; "nothing" and the control arm teach
      // the factor model nothing about a coupon (they stay in the decision log for OPE).
      // Every coupon of a slate was shown; a record from before slates has only chosen.
      std::vector<std::string> shown;
      for (const v1::DecisionSlot& slot : d.slots()) shown.push_back(slot.coupon_id());
      if (shown.empty()) shown.push_back(d.chosen_coupon_id());
      for (const std::string& coupon : shown) {
        ++exposed;
        write_row(exposures, exposure_columns,
                  {{"user_id", d.user_key()}, {"coupon_id", coupon},
                   {"campaign_id", d.campaign_id()}, {"time", day(d.unix_micros() / 1000000)}});
      }
      if (o != nullptr && o->redeemed()) {
        ++redeemed;
        write_row(redemptions, redemption_columns,
                  {{"user_id", d.user_key()}, {"coupon_id", d.chosen_coupon_id()},
                   {"time", day(o->unix_seconds())}, {"order_value", absl::StrFormat("%.9g", o->order_value())}});
      }
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return Fail(s);
  uint64_t unmatched = 0;
  s = (*store)->ForEachUnmatchedOutcome([&](const v1::ReportOutcomeRequest&) {
    ++unmatched;
    return absl::OkStatus();
  });
  if (!s.ok()) return Fail(s);
  for (std::ofstream* f : {&decisions, &exposures, &redemptions}) {
    if (f->is_open()) {
      f->flush();
      if (!*f) return Fail(absl::DataLossError("error writing the export"));
    }
  }
  std::printf("exported %llu decisions (%llu with an outcome); %llu exposures, %llu redemptions\n",
              static_cast<unsigned long long>(rows), static_cast<unsigned long long>(with_outcome),
              static_cast<unsigned long long>(exposed), static_cast<unsigned long long>(redeemed));
  if (unmatched > 0) {
    std::printf("%llu outcomes have no stored decision (kept apart in the collector, not exported)\n",
                static_cast<unsigned long long>(unmatched));
  }
  return 0;
}

int SimulateTraffic(const SimulateTrafficFlags& flags) {
  if (flags.campaign_id.empty() || flags.truth.empty()) {
    return Usage("simulate-traffic: --campaign_id and --truth are required");
  }
  auto truth = pipeline::ReadFactorFiles(flags.truth);
  if (!truth.ok()) return Fail(truth.status());
  absl::flat_hash_map<std::string, uint32_t> coupon_row;
  for (size_t j = 0; j < truth->coupon_ids.size(); ++j) coupon_row[truth->coupon_ids[j]] = static_cast<uint32_t>(j);
  auto scorer = client::CoupondClient::Create(flags.server);
  if (!scorer.ok()) return Fail(scorer.status());
  auto collector = client::CollectorClient::Create(flags.collector);
  if (!collector.ok()) return Fail(collector.status());
  core::SplitMix64 rng(flags.seed);
  auto uniform = [&] { return static_cast<double>(rng.Next() >> 11) * 0x1.0p-53; };
  const uint32_t d = truth->dimension;
  uint64_t given = 0, redeemed = 0, unmatched = 0;
  double true_redemptions = 0;
  for (int i = 0; i < flags.decisions; ++i) {
    const size_t u = static_cast<size_t>(rng.Next() % truth->user_ids.size());
    v1::DecideRequest request;
    request.set_user_id(truth->user_ids[u]);
    request.set_campaign_id(flags.campaign_id);
    auto response = (*scorer)->Decide(request);
    if (!response.ok()) return Fail(response.status());
    if (response->decision_id().empty()) {
      return Fail(absl::FailedPreconditionError("the server logs no decisions (start it with --collector_db or --collector)"));
    }
    v1::ReportOutcomeRequest outcome;
    outcome.set_decision_id(response->decision_id());
    if (response->chosen_size() > 0) {
      ++given;
      auto it = coupon_row.find(response->chosen(0).coupon_id());
      if (it == coupon_row.end()) {
        return Fail(absl::NotFoundError(absl::StrCat("coupon '", response->chosen(0).coupon_id(), "' is not in --truth")));
      }
      double z = truth->global_bias + truth->user_bias[u] + truth->coupon_bias[it->second];
      for (uint32_t k = 0; k < d; ++k) {
        z += double{truth->user_factors[u * d + k]} * double{truth->coupon_factors[size_t{it->second} * d + k]};
      }
      const double p = 1.0 / (1.0 + std::exp(-z));
      true_redemptions += p;
      if (uniform() < p) {
        ++redeemed;
        outcome.set_redeemed(true);
        outcome.set_order_value(std::round(2000 + 6000 * uniform()) / 100);
      }
    }
    auto reported = (*collector)->ReportOutcome(outcome);
    if (!reported.ok()) return Fail(reported.status());
    if (reported->disposition() == v1::OUTCOME_DISPOSITION_UNKNOWN_DECISION) ++unmatched;
  }
  std::printf("%d decisions: %llu gave a coupon, %llu redeemed (true expectation %.1f); %llu outcomes "
              "arrived before their decision record (matched when it lands)\n",
              flags.decisions, static_cast<unsigned long long>(given),
              static_cast<unsigned long long>(redeemed), true_redemptions,
              static_cast<unsigned long long>(unmatched));
  return 0;
}

int Pace(const PaceFlags& flags) {
  if (flags.store.empty() || flags.campaign_id.empty() || flags.collector_db.empty()) {
    return Usage("pace: --store, --campaign_id and --collector_db are required");
  }
  if (flags.end <= flags.start || flags.start <= 0) {
    return Usage("pace: --start and --end (Unix seconds, start < end) give the campaign's schedule");
  }
  const int64_t now = flags.now != 0 ? flags.now : std::time(nullptr);
  v1::StoredCampaign stored;
  absl::flat_hash_map<std::string, double> face_value;
  {
    auto store = storage::ModelStore::OpenForRead(flags.store);
    if (!store.ok()) return Fail(store.status());
    auto history = (*store)->CampaignHistory(flags.campaign_id);
    if (!history.ok()) return Fail(history.status());
    if (history->empty()) {
      return Fail(absl::NotFoundError(absl::StrCat("campaign_id: no stored campaign '", flags.campaign_id, "'")));
    }
    auto decoded = api::DecodeStoredCampaign(flags.campaign_id, history->back().payload);
    if (!decoded.ok()) return Fail(decoded.status());
    stored = *std::move(decoded);
    auto latest = (*store)->LatestVersion();
    if (!latest.ok()) return Fail(latest.status());
    auto model = (*store)->ReadVersion(latest->version);
    if (!model.ok()) return Fail(model.status());
    for (size_t i = 0; i < model->coupon_ids.size(); ++i) {
      face_value[model->coupon_ids[i]] = model->coupon_attributes[i].face_value;
    }
  }
  // Observed spend to date: face values of redeemed coupons of this campaign's decisions.
  double observed = 0;
  uint64_t decisions = 0, redemptions = 0;
  {
    auto collector = collector::CollectorStore::OpenForRead(flags.collector_db);
    if (!collector.ok()) return Fail(collector.status());
    absl::Status s = (*collector)->ForEachDecision([&](const v1::DecisionRecord& d,
                                                       const v1::ReportOutcomeRequest* o) {
      const int64_t t = d.unix_micros() / 1000000;
      if (d.campaign_id() != flags.campaign_id || t < flags.start || t > now) return absl::OkStatus();
      ++decisions;
      if (o != nullptr && o->redeemed()) {
        ++redemptions;
        auto it = face_value.find(d.chosen_coupon_id());
        if (it != face_value.end()) observed += it->second;
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return Fail(s);
  }
  const double elapsed = std::clamp(static_cast<double>(now - flags.start) /
                                        static_cast<double>(flags.end - flags.start), 0.0, 1.0);
  const double planned = stored.campaign().budget() * elapsed;
  core::PacingOptions options;
  options.gain = flags.gain;
  core::PacingInput input;
  input.budget_price = stored.prices().budget_price();
  input.planned_spend = planned;
  input.observed_spend = observed;
  auto price = core::PaceBudgetPrice(input, options);
  if (!price.ok()) return Fail(price.status());
  std::printf("campaign '%s': %.1f%% of its schedule elapsed, %llu decisions, %llu redemptions\n",
              flags.campaign_id.c_str(), 100 * elapsed, static_cast<unsigned long long>(decisions),
              static_cast<unsigned long long>(redemptions));
  std::printf("  spend: observed %.2f against planned %.2f (budget %.2f)\n", observed, planned,
              stored.campaign().budget());
  std::printf("  budget price lambda: %.6g -> %.6g\n", input.budget_price, *price);
  if (flags.dry_run) return 0;
  v1::CampaignPrices prices = stored.prices();
  prices.set_budget_price(*price);
  auto payload = api::EncodeStoredCampaign(stored.campaign(), prices);
  if (!payload.ok()) return Fail(payload.status());
  auto store = storage::ModelStore::OpenForWrite(flags.store);
  if (!store.ok()) return Fail(store.status());
  auto record = (*store)->PublishCampaign(flags.campaign_id, *payload);
  if (!record.ok()) return Fail(record.status());
  std::printf("  published as record %llu (the model is unchanged)\n",
              static_cast<unsigned long long>(record->sequence));
  return 0;
}

}  // namespace coupond::couponctl
