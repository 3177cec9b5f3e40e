#include "cli/pipeline_commands.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "cli/cli_util.h"
#include "pipeline/report.h"
#include "pipeline/train_job.h"

namespace coupond::couponctl {
namespace {

bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

// Flags -> PipelineOptions. Returns false (after printing why) on a usage error.
bool MakeOptions(const PipelineFlags& f, pipeline::PipelineOptions* o) {
  if (f.logs.empty() == f.dunnhumby.empty()) {
    std::fprintf(stderr, "couponctl: give exactly one of --logs DIR and --dunnhumby DIR (see --help)\n");
    return false;
  }
  if (!f.user_id_key_file.empty()) {
    auto keyer = ReadUserKeyer(f.user_id_key_file);
    if (!keyer.ok()) {
      std::fprintf(stderr, "couponctl: %s\n", keyer.status().ToString().c_str());
      return false;
    }
    o->user_keyer = std::make_shared<const core::UserKeyer>(*std::move(keyer));
  }
  if (!f.logs.empty()) {
    o->source = pipeline::PipelineSource::kLogs;
    o->logs.exposures = f.logs + "/exposures.csv";
    o->logs.redemptions = f.logs + "/redemptions.csv";
    if (Exists(f.logs + "/users.csv")) o->logs.users = f.logs + "/users.csv";
    if (Exists(f.logs + "/coupons.csv")) o->logs.coupons = f.logs + "/coupons.csv";
    o->ingest.quarantine_path = f.quarantine;
    o->truth_factors = f.truth;
    if (o->truth_factors.empty() && Exists(f.logs + "/truth/model.tsv")) {
      o->truth_factors = f.logs + "/truth";
    }
  } else {
    o->source = pipeline::PipelineSource::kDunnhumby;
    o->dunnhumby_dir = f.dunnhumby;
    o->dunnhumby.product_features = f.dunnhumby_products;
    o->truth_factors = f.truth;
  }
  o->seed = f.seed;
  o->threads = f.threads;
  if (f.cv_folds != 0) {
    o->selection = pipeline::SelectionMethod::kPairFolds;
    o->cv_folds = f.cv_folds;  // checked by the cross-validation (2..100)
  }
  return true;
}

pipeline::PipelineProgress StderrProgress() {
  pipeline::PipelineProgress p;
  p.message = [](const std::string& m) { std::fprintf(stderr, "[pipeline] %s\n", m.c_str()); };
  p.epoch = [](const std::string& run, const learn::LmfEpochStats& s) {
    if (std::isnan(s.validation_log_loss)) {
      std::fprintf(stderr, "[%s] epoch %2d  train loss %.5f  (%.1f s)\n", run.c_str(), s.epoch,
                   s.train_log_loss, absl::ToDoubleSeconds(s.elapsed));
    } else {
      std::fprintf(stderr,
                   "[%s] epoch %2d  train loss %.5f  validation loss %.5f  validation AUC %.4f  "
                   "(%.1f s)\n",
                   run.c_str(), s.epoch, s.train_log_loss, s.validation_log_loss,
                   s.validation_auc, absl::ToDoubleSeconds(s.elapsed));
    }
  };
  return p;
}

void PrintResult(const pipeline::PipelineResult& r) {
  if (!r.grid.empty()) {
    const learn::LmfTrainerOptions& c = r.chosen_options;
    const std::string how = r.selection == pipeline::SelectionMethod::kPairFolds
                                ? absl::StrCat("chosen by ", r.cv_folds, "-fold cross-validation")
                                : std::string("chosen on the validation period");
    std::printf("%s: dimension %u, l2 %g, learning rate %g, %d epochs\n", how.c_str(),
                c.dimension, c.l2_id_factors, c.learning_rate, r.final_epochs);
  }
  std::printf("test period: %lld examples, %lld positives (campaigns from day %d)\n",
              static_cast<long long>(r.test_examples), static_cast<long long>(r.test_positives),
              r.test_cutoff_day);
  std::fputs(pipeline::SummaryLines(r).c_str(), stdout);
  if (r.published.has_value()) {
    // The checksum covers every data key and value of the version: equal checksums mean
    // equal published bytes (runs are deterministic, so reruns print the same one).
    std::printf("published version %llu (%llu users, %llu coupons, d = %u, checksum %016llx)\n",
                static_cast<unsigned long long>(r.published->version),
                static_cast<unsigned long long>(r.published->num_users),
                static_cast<unsigned long long>(r.published->num_coupons), r.published->dimension,
                static_cast<unsigned long long>(r.published->checksum));
  }
}

}  // namespace

int Ingest(const PipelineFlags& flags) {
  pipeline::PipelineOptions o;
  if (!MakeOptions(flags, &o)) return 2;
  auto loaded = pipeline::LoadPipelineData(o);
  if (!loaded.ok()) return Fail(loaded.status());
  std::printf("%s\n", loaded->load_summary.c_str());
  if (!flags.quarantine.empty() && loaded->ingest.has_value()) {
    std::printf("quarantined rows written to %s\n", flags.quarantine.c_str());
  }
  return 0;
}

int Train(const PipelineFlags& flags) {
  pipeline::PipelineOptions o;
  if (!MakeOptions(flags, &o)) return 2;
  o.store_path = flags.store;
  auto r = pipeline::RunPipeline(o, StderrProgress());
  if (!r.ok()) return Fail(r.status());
  PrintResult(*r);
  return 0;
}

int EvaluateModel(const PipelineFlags& flags) {
  if (flags.store.empty()) return Usage("evaluate: --store is required");
  pipeline::PipelineOptions o;
  if (!MakeOptions(flags, &o)) return 2;
  auto r = pipeline::EvaluateStoredModel(o, flags.store, flags.version, StderrProgress());
  if (!r.ok()) return Fail(r.status());
  PrintResult(*r);
  return 0;
}

int Pipeline(const PipelineFlags& flags) {
  if (flags.store.empty()) return Usage("pipeline: --store is required");
  if (flags.report.empty()) return Usage("pipeline: --report is required");
  pipeline::PipelineOptions o;
  if (!MakeOptions(flags, &o)) return 2;
  o.store_path = flags.store;
  auto r = pipeline::RunPipeline(o, StderrProgress());
  if (!r.ok()) return Fail(r.status());
  if (absl::Status s = pipeline::WriteReport(*r, flags.report); !s.ok()) return Fail(s);
  std::printf("%s\n", r->load_summary.c_str());
  PrintResult(*r);
  std::printf("report: %s\n", flags.report.c_str());
  return 0;
}

int Simulate(const SimulateFlags& flags) {
  if (flags.out.empty()) return Usage("simulate: --out is required");
  auto r = pipeline::SimulateLogs(flags.options, flags.out);
  if (!r.ok()) return Fail(r.status());
  std::printf("simulated %lld exposures, %lld redemptions (mean true p %.4f) over %d days into %s\n"
              "truth (factor files): %s\n",
              static_cast<long long>(r->exposures), static_cast<long long>(r->redemptions),
              r->mean_true_p, flags.options.days, flags.out.c_str(), r->truth_dir.c_str());
  return 0;
}

}  // namespace coupond::couponctl
