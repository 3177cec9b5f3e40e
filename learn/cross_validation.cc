#include "learn/cross_validation.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/random.h"
#include "learn/metrics.h"

namespace coupond::learn {
namespace {

uint64_t Mix(uint64_t x) { return core::SplitMix64Hash(x); }

uint64_t PairHash(const Example& e, uint64_t seed) {
  return Mix(Mix(seed) ^ ((uint64_t{e.user} << 32) | e.coupon));
}

}  // namespace

absl::StatusOr<std::vector<int>> AssignFoldsByPair(const TrainingData& data,
                                                   absl::Span<const uint32_t> examples,
                                                   int folds, uint64_t seed) {
  if (folds < 2 || folds > 100) {
    return absl::InvalidArgumentError(absl::StrCat("folds: ", folds, " is not in [2, 100]"));
  }
  std::vector<int> out;
  out.reserve(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    if (examples[i] >= data.examples.size()) {
      return absl::InvalidArgumentError(absl::StrCat("examples[", i, "]: index ", examples[i],
                                                     " >= ", data.examples.size()));
    }
    out.push_back(static_cast<int>(PairHash(data.examples[examples[i]], seed) %
                                   static_cast<uint64_t>(folds)));
  }
  return out;
}

absl::StatusOr<CrossValidationResult> CrossValidateLmf(
    const TrainingData& data, absl::Span<const uint32_t> examples,
    const CrossValidationOptions& options,
    const std::function<void(const GridPointResult&)>& progress) {
  if (options.dimensions.empty() || options.l2_factors.empty() ||
      options.learning_rates.empty()) {
    return absl::InvalidArgumentError(
        "options.dimensions, options.l2_factors, options.learning_rates: each must be non-empty");
  }
  if (!(options.inner_validation_fraction > 0 && options.inner_validation_fraction <= 0.5)) {
    return absl::InvalidArgumentError(absl::StrCat("options.inner_validation_fraction: ",
                                                   options.inner_validation_fraction,
                                                   " is not in (0, 0.5]"));
  }
  if (examples.empty()) return absl::InvalidArgumentError("examples: empty");
  COUPOND_RETURN_IF_ERROR(data.Validate());
  COUPOND_ASSIGN_OR_RETURN(std::vector<int> fold,
                           AssignFoldsByPair(data, examples, options.folds, options.seed));
  // Check every grid value up front, so a bad one fails before hours of training.
  CrossValidationResult result;
  for (uint32_t dimension : options.dimensions) {
    for (float l2 : options.l2_factors) {
      for (float lr : options.learning_rates) {
        LmfTrainerOptions o = options.base;
        o.dimension = dimension;
        o.l2_id_factors = l2;
        o.l2_feature_factors = l2;
        o.learning_rate = lr;
        COUPOND_RETURN_IF_ERROR(ValidateLmfTrainerOptions(o));
        GridPointResult g;
        g.dimension = dimension;
        g.l2_factors = l2;
        g.learning_rate = lr;
        result.grid.push_back(g);
      }
    }
  }

  // Per fold: train / inner-validation / held-out index lists. The inner split hashes the
  // pair with a different seed so that it is independent of the fold assignment.
  const uint64_t inner_seed = options.seed ^ 0x5851f42d4c957f2dULL;
  const uint64_t inner_cut = static_cast<uint64_t>(
      options.inner_validation_fraction * 18446744073709551615.0);
  struct Split {
    std::vector<uint32_t> train, inner, held_out;
    std::vector<float> held_out_labels;
  };
  std::vector<Split> splits(static_cast<size_t>(options.folds));
  for (size_t i = 0; i < examples.size(); ++i) {
    for (int f = 0; f < options.folds; ++f) {
      Split& s = splits[static_cast<size_t>(f)];
      if (fold[i] == f) {
        s.held_out.push_back(examples[i]);
        s.held_out_labels.push_back(data.examples[examples[i]].label);
      } else if (PairHash(data.examples[examples[i]], inner_seed) < inner_cut) {
        s.inner.push_back(examples[i]);
      } else {
        s.train.push_back(examples[i]);
      }
    }
  }
  for (int f = 0; f < options.folds; ++f) {
    const Split& s = splits[static_cast<size_t>(f)];
    if (s.train.empty() || s.held_out.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("examples: too few (", examples.size(), ") for ", options.folds,
                       " folds: fold ", f, " has an empty part"));
    }
  }

  for (GridPointResult& g : result.grid) {
    LmfTrainerOptions o = options.base;
    o.dimension = g.dimension;
    o.l2_id_factors = g.l2_factors;
    o.l2_feature_factors = g.l2_factors;
    o.learning_rate = g.learning_rate;
    for (int f = 0; f < options.folds; ++f) {
      const Split& s = splits[static_cast<size_t>(f)];
      COUPOND_ASSIGN_OR_RETURN(LmfTrainResult trained, TrainLmf(data, s.train, s.inner, o));
      COUPOND_ASSIGN_OR_RETURN(std::vector<float> p, PredictLmf(trained.model, data, s.held_out));
      FoldMetrics m;
      m.best_epoch = trained.best_epoch;
      COUPOND_ASSIGN_OR_RETURN(m.auc, RocAuc(p, s.held_out_labels));
      COUPOND_ASSIGN_OR_RETURN(m.log_loss, LogLoss(p, s.held_out_labels));
      g.folds.push_back(m);
      g.mean_auc += m.auc / options.folds;
      g.mean_log_loss += m.log_loss / options.folds;
    }
    if (progress) progress(g);
  }
  for (size_t i = 1; i < result.grid.size(); ++i) {
    if (result.grid[i].mean_log_loss < result.grid[result.best_index].mean_log_loss) {
      result.best_index = i;
    }
  }
  const GridPointResult& best = result.grid[result.best_index];
  result.best_options = options.base;
  result.best_options.dimension = best.dimension;
  result.best_options.l2_id_factors = best.l2_factors;
  result.best_options.l2_feature_factors = best.l2_factors;
  result.best_options.learning_rate = best.learning_rate;
  return result;
}

}  // namespace coupond::learn
