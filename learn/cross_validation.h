#ifndef COUPOND_LEARN_CROSS_VALIDATION_H_
#define COUPOND_LEARN_CROSS_VALIDATION_H_

// k-fold cross-validation of the LMF trainer over a small hyperparameter grid
// (dimension x L2 x learning rate).
//
// Folds are by EXAMPLE, grouped by (user, coupon) pair: every exposure of one pair falls in the
// same fold. By example, because coupond scores users it has seen (cold users are the
// exception), so the held-out folds should look like tomorrow's requests: known users, known
// coupons, new exposures. Grouped by pair, because a pair offered twice (two campaigns) would
// otherwise be scored on a label its twin taught the model. Folds by user would instead
// measure cold-start users only, where the id embeddings are never used.
//
// Inside each training run, early stopping uses an inner validation split carved from the
// training folds (again by pair), never the held-out fold, so the held-out metrics are not
// biased by the epoch choice. The grid point with the lowest mean held-out log loss wins
// (the trainer's criterion too; see lmf_trainer.h).
//
// Deterministic: the folds depend only on the seed, and the trainer's result does not depend
// on its threads, so the whole result is bit-identical for equal inputs.

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "learn/lmf_trainer.h"
#include "learn/training_data.h"

namespace coupond::learn {

struct CrossValidationOptions {
  // Number of folds, 2..100. Default 3.
  int folds = 3;
  // The grid: every combination is trained folds times. Each list non-empty, each value valid
  // for LmfTrainerOptions. `l2_factors` sets both l2_id_factors and l2_feature_factors.
  // Defaults: {16, 32} x {1e-5, 1e-4} x {0.005, 0.02}.
  std::vector<uint32_t> dimensions = {16, 32};
  std::vector<float> l2_factors = {1e-5f, 1e-4f};
  std::vector<float> learning_rates = {0.005f, 0.02f};
  // Every other trainer option (epochs, patience, threads, side features, ...). Its seed is
  // used for every run.
  LmfTrainerOptions base;
  // Fraction of each training part's pairs held out for early stopping, in (0, 0.5].
  // Default 0.1.
  double inner_validation_fraction = 0.1;
  // Seed of the fold assignment. Default 42.
  uint64_t seed = 42;
};

struct FoldMetrics {
  double auc = 0.0;       // on the held-out fold
  double log_loss = 0.0;  // on the held-out fold
  int best_epoch = 0;     // chosen by early stopping on the inner validation split
};

struct GridPointResult {
  uint32_t dimension = 0;
  float l2_factors = 0.0f;
  float learning_rate = 0.0f;
  std::vector<FoldMetrics> folds;  // one per fold, in fold order
  double mean_auc = 0.0;
  double mean_log_loss = 0.0;
};

struct CrossValidationResult {
  std::vector<GridPointResult> grid;  // dimension-major, then L2, then learning rate
  size_t best_index = 0;              // into grid: lowest mean_log_loss (first on ties)
  LmfTrainerOptions best_options;     // base with the best point's values filled in
};

// The fold (0..folds-1) of each of `examples`, by a seeded hash of its (user, coupon) pair.
// InvalidArgument for folds outside [2, 100] or an index out of range.
absl::StatusOr<std::vector<int>> AssignFoldsByPair(const TrainingData& data,
                                                   absl::Span<const uint32_t> examples,
                                                   int folds, uint64_t seed);

// Cross-validates over data.examples[i] for i in `examples`. `progress`, if set, is called
// after each grid point. Errors: InvalidArgument naming the field for bad options, data or
// indices; FailedPrecondition when a held-out fold has a single class (AUC undefined: use
// fewer folds or more data); the trainer's errors otherwise.
absl::StatusOr<CrossValidationResult> CrossValidateLmf(
    const TrainingData& data, absl::Span<const uint32_t> examples,
    const CrossValidationOptions& options,
    const std::function<void(const GridPointResult&)>& progress = nullptr);

}  // namespace coupond::learn

#endif  // COUPOND_LEARN_CROSS_VALIDATION_H_
