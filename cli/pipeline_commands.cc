#include "cli/pipeline_commands.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "cli/cli_util.h"
#include "core/model.h"
#include "pipeline/ingest.h"
#include "pipeline/periods.h"
#include "pipeline/report.h"
#include "pipeline/train_job.h"

namespace coupond::couponctl {
namespace {

bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

// Prints a usage error about `flag` and returns false.
bool BadFlag(const char* flag, const std::string& why) {
  std::fprintf(stderr, "couponctl: --%s: %s (see --help)\n", flag, why.c_str());
  return false;
}

bool InOpenUnitInterval(double v) { return v > 0 && v < 1; }  // false for NaN

// A grid flag's values (pipeline::HyperparameterGrid) into `out`, left as is when `values`
// is empty. Each must parse and be in range; a value given twice is refused (its point would
// be trained twice). Returns false after printing which value is wrong.
bool ParseDimensions(const std::vector<std::string>& values, std::vector<uint32_t>* out) {
  if (values.empty()) return true;
  std::vector<uint32_t> parsed;
  for (const std::string& text : values) {
    uint32_t d = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &d) || d < 1 ||
        d > core::kMaxDimension) {
      return BadFlag("grid_dimensions",
                     absl::StrCat("'", text, "' is not a dimension in 1..", core::kMaxDimension));
    }
    if (std::find(parsed.begin(), parsed.end(), d) != parsed.end()) {
      return BadFlag("grid_dimensions", absl::StrCat("'", text, "' is given twice"));
    }
    parsed.push_back(d);
  }
  *out = std::move(parsed);
  return true;
}

bool ParsePositiveFloats(const char* flag, const std::vector<std::string>& values,
                         std::vector<float>* out) {
  if (values.empty()) return true;
  std::vector<float> parsed;
  for (const std::string& text : values) {
    float v = 0;
    if (!absl::SimpleAtof(absl::StripAsciiWhitespace(text), &v) || !std::isfinite(v) ||
        v <= 0) {
      return BadFlag(flag, absl::StrCat("'", text, "' is not a finite number above 0"));
    }
    if (std::find(parsed.begin(), parsed.end(), v) != parsed.end()) {
      return BadFlag(flag, absl::StrCat("'", text, "' is given twice"));
    }
    parsed.push_back(v);
  }
  *out = std::move(parsed);
  return true;
}

// Flags -> PipelineOptions. Returns false (after printing why) on a usage error.
bool MakeOptions(const PipelineFlags& f, pipeline::PipelineOptions* o) {
  if (f.logs.empty() == f.dunnhumby.empty()) {
    std::fprintf(stderr, "couponctl: give exactly one of --logs DIR and --dunnhumby DIR (see --help)\n");
    return false;
  }
  if (!InOpenUnitInterval(f.test_fraction)) {
    return BadFlag("test_fraction", absl::StrCat(f.test_fraction, " is not in (0, 1)"));
  }
  if (!InOpenUnitInterval(f.validation_fraction)) {
    return BadFlag("validation_fraction",
                   absl::StrCat(f.validation_fraction, " is not in (0, 1)"));
  }
  o->test_fraction = f.test_fraction;
  o->validation_fraction = f.validation_fraction;
  if (!ParseDimensions(f.grid_dimensions, &o->grid.dimensions) ||
      !ParsePositiveFloats("grid_l2", f.grid_l2, &o->grid.l2_factors) ||
      !ParsePositiveFloats("grid_learning_rates", f.grid_learning_rates,
                           &o->grid.learning_rates)) {
    return false;
  }
  if (!f.like_neighbours) o->neighbour_list_prefixes.clear();
  if (f.prior_bias == "calibrated") {
    o->prior_bias = pipeline::PriorBias::kCalibrated;
  } else if (f.prior_bias == "mean") {
    o->prior_bias = pipeline::PriorBias::kMean;
  } else if (f.prior_bias != "auto") {
    return BadFlag("prior_bias",
                   absl::StrCat("'", f.prior_bias, "' is not auto, calibrated or mean"));
  }
  const absl::StatusOr<pipeline::TimeFormat> time_format =
      pipeline::ParseTimeFormat(f.time_format);
  if (!time_format.ok()) return BadFlag("time_format", std::string(time_format.status().message()));
  if (f.redemption_window_days < 0) {
    return BadFlag("redemption_window_days",
                   absl::StrCat(f.redemption_window_days, " is negative"));
  }
  for (const std::string& column : f.multi_value_columns) {
    if (absl::StripAsciiWhitespace(column).empty()) {
      return BadFlag("multi_value_columns", "an empty column name");
    }
  }
  if (!f.dunnhumby.empty()) {
    // The dunnhumby adapter reads its own tables; these describe canonical logs only.
    const PipelineFlags defaults;
    if (f.time_format != defaults.time_format) {
      return BadFlag("time_format", "applies to --logs only, not --dunnhumby");
    }
    if (f.redemption_window_days != defaults.redemption_window_days) {
      return BadFlag("redemption_window_days", "applies to --logs only, not --dunnhumby");
    }
    if (f.multi_value_columns != defaults.multi_value_columns) {
      return BadFlag("multi_value_columns", "applies to --logs only, not --dunnhumby");
    }
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
    o->ingest.time_format = *time_format;
    o->ingest.redemption_window_days = f.redemption_window_days;
    o->ingest.multi_value_columns.clear();
    bool products = false;
    for (const std::string& column : f.multi_value_columns) {
      o->ingest.multi_value_columns.emplace_back(absl::StripAsciiWhitespace(column));
      products = products || absl::EqualsIgnoreCase(o->ingest.multi_value_columns.back(),
                                                     "products");
    }
    // A products column left whole is one value, not a list to compare: no like= for it.
    if (!products) {
      auto& prefixes = o->neighbour_list_prefixes;
      prefixes.erase(std::remove(prefixes.begin(), prefixes.end(), "products="), prefixes.end());
    }
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

// The automatic pruning after a publish (--keep_versions), checked before any work:
// nullopt when off; InvalidArgument naming the flag when out of range.
absl::StatusOr<std::optional<storage::PruneOptions>> AutomaticPrune(const PipelineFlags& flags) {
  if (flags.retention.keep == 0) return std::optional<storage::PruneOptions>();
  if (flags.store.empty()) {
    return absl::InvalidArgumentError("--keep_versions: needs --store (the store to prune)");
  }
  absl::StatusOr<storage::PruneOptions> options =
      MakePruneOptions(flags.retention, "--keep_versions");
  if (!options.ok()) return options.status();
  return std::optional<storage::PruneOptions>(*options);
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
  std::fputs(pipeline::PeriodLines(r).c_str(), stdout);
  for (const std::string& w : pipeline::ShiftWarnings(r)) std::printf("warning: %s\n", w.c_str());
  std::fputs(pipeline::SummaryLines(r).c_str(), stdout);
  std::fputs(pipeline::ModelVsBaselineLines(r).c_str(), stdout);
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
  if (loaded->ingest.has_value()) {
    if (absl::Status s = pipeline::CheckTrainable(*loaded->ingest); !s.ok()) return Fail(s);
  }
  return 0;
}

int Train(const PipelineFlags& flags) {
  pipeline::PipelineOptions o;
  if (!MakeOptions(flags, &o)) return 2;
  o.store_path = flags.store;
  absl::StatusOr<std::optional<storage::PruneOptions>> prune = AutomaticPrune(flags);
  if (!prune.ok()) return Usage(std::string(prune.status().message()).c_str());
  auto r = pipeline::RunPipeline(o, StderrProgress());
  if (!r.ok()) return Fail(r.status());
  PrintResult(*r);
  if (prune->has_value() && r->published.has_value()) {
    if (absl::Status s = PruneStoreAt(flags.store, **prune); !s.ok()) return Fail(s);
  }
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
  absl::StatusOr<std::optional<storage::PruneOptions>> prune = AutomaticPrune(flags);
  if (!prune.ok()) return Usage(std::string(prune.status().message()).c_str());
  auto r = pipeline::RunPipeline(o, StderrProgress());
  if (!r.ok()) return Fail(r.status());
  if (absl::Status s = pipeline::WriteReport(*r, flags.report); !s.ok()) return Fail(s);
  std::printf("%s\n", r->load_summary.c_str());
  PrintResult(*r);
  std::printf("report: %s\n", flags.report.c_str());
  if (prune->has_value() && r->published.has_value()) {
    if (absl::Status s = PruneStoreAt(flags.store, **prune); !s.ok()) return Fail(s);
  }
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
