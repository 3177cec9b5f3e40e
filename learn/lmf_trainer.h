#ifndef COUPOND_LEARN_LMF_TRAINER_H_
#define COUPOND_LEARN_LMF_TRAINER_H_

// Training of the logistic matrix-factorisation model served by coupond,
//   p(u, c) = sigmoid(b + b_u + b_c + <x_u, y_c>),
// from a TrainingData, with LightFM-style side features: a user's effective factor x_u and
// bias b_u are the SUM of the embedding (and bias) of its id and of each of its categorical
// features; likewise for coupons. A coupon never seen in training therefore still gets a
// meaningful vector from its attributes (its id embedding is zero).
//
// Loss: binary cross-entropy (optionally weighting positives) plus L2 regularisation, applied
// per touched row and per example (each time a row takes part in an example, its gradient gets
// l2 * row), as SGD-trained MF and LightFM do; frequent users/coupons are thus regularised in
// proportion to their data.
//
// Optimiser: per-example ("batch size 1") Adam with LAZY, SPARSE updates. Only the rows an
// example touches (its user's id + feature rows, its coupon's id + feature rows) are updated;
// each row keeps its own moments and its own step count, so the moments of rows not touched in
// a step are left stale (not decayed), and a row's bias correction advances only when it is
// touched: a rarely seen row behaves as if Adam ran on the subsequence of its own gradients.
// This is the standard "lazy Adam" approximation (TF LazyAdam, PyTorch SparseAdam); dense
// exact Adam would cost O(parameters) per example.
//
// Threads: deterministic data parallelism with fixed shards and an ordered reduction. Each
// epoch shuffles the training examples with the seeded generator and deals them, in that
// order, to `shards` shards by user (user index % shards). The epoch runs in rounds of a fixed
// number of consecutive examples of the order; in a round every shard runs serial lazy Adam
// on its part: on its own users' id rows, which no other shard touches, and on its own
// replicas of the rows all shards share (coupon id and feature rows, user feature rows, the
// global bias). After each round the replicas are merged in shard order: a shared row moves
// by the mean change of the shards that moved it. `threads` threads run the
// shards; which thread runs which shard changes nothing, so for a given seed and `shards`
// the result is bit-identical across runs and across thread counts. With shards = 1 it is
// plain serial Adam over the shuffled order (and threads beyond 1 only speed up the
// validation predictions). The default is 1 shard: more shards slow the learning of the
// shared rows (the mean merge), and the faster sum merge diverged on dunnhumby's rare
// positives; see MergeReplicas in lmf_trainer.cc and bench/RESULTS-train.md. Why not Hogwild (lock-free racing updates, as LightFM does): its
// result depends on thread scheduling, so identical runs gave different models.
//
// Early stopping: after each epoch the model is evaluated on the validation examples; the
// parameters of the epoch with the lowest validation LOG LOSS are kept (log loss, not AUC,
// because the assignment solver consumes the probabilities themselves: expected cost is
// p * face value, so calibration matters, not only ranking). Training stops after
// `early_stopping_patience` epochs without improvement.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/model.h"
#include "learn/training_data.h"

namespace coupond::learn {

struct LmfTrainerOptions {
  // Latent dimension d, 1..kMaxDimension. Default 32.
  uint32_t dimension = 32;
  // Adam step size. Finite, > 0. Default 0.01.
  float learning_rate = 0.01f;
  // Adam moment decays, each in [0, 1), and epsilon (> 0). Defaults 0.9, 0.999, 1e-8.
  float adam_beta1 = 0.9f;
  float adam_beta2 = 0.999f;
  float adam_epsilon = 1e-8f;
  // L2 coefficients per parameter group (finite, >= 0), applied per example to the rows the
  // example touches (see above). Defaults: 1e-4 for id factors, 1e-4 for feature factors,
  // 1e-5 for all biases (ids' and features'). The global bias is not regularised.
  float l2_id_factors = 1e-4f;
  float l2_feature_factors = 1e-4f;
  float l2_biases = 1e-5f;
  // Passes over the training examples (maximum, before early stopping). >= 1. Default 30.
  int epochs = 30;
  // Stop after this many epochs without a lower validation log loss. >= 1. Default 3.
  int early_stopping_patience = 3;
  // Seed of the initialisation and of the per-epoch shuffles. Default 42.
  uint64_t seed = 42;
  // Data shards trained in parallel (see "Threads" above), 1..256. The result depends on it
  // (not on `threads`); more shards allow more threads but make the shared rows (coupons,
  // features, global bias) learn more slowly, from merged replicas. Default 1 (serial: the
  // quality every figure of the project was measured with).
  int shards = 1;
  // Threads that run the shards (at most `shards` are used for training) and the validation
  // predictions. 0 (the default) means std::thread::hardware_concurrency(). Does not change
  // the result. >= 0.
  int threads = 0;
  // Whether each user/coupon has its own id embedding and bias, and whether its categorical
  // features have embeddings and biases. At least one must be true. Defaults: both true.
  // Features only gives a pure content model (every entity is "cold").
  bool use_id_embeddings = true;
  bool use_feature_embeddings = true;
  // Weight of the loss of positive (label 1) examples; negatives weigh 1. Finite, > 0.
  // Default 1: the model stays calibrated. Values > 1 favour recall of rare redemptions at
  // the price of inflated probabilities.
  float positive_weight = 1.0f;
  // Initial factor entries are N(0, (init_scale / sqrt(d))^2), so an initial row has norm
  // about init_scale and initial interactions are near 0. Rows that no training example
  // touches start (and stay) at 0. Biases start at 0, the global bias at the logit of the
  // training base rate. Finite, >= 0. Default 0.1.
  float init_scale = 0.1f;
};

// Figures after one epoch, as shown by the CLI.
struct LmfEpochStats {
  int epoch = 0;                        // 1-based
  double train_log_loss = 0.0;          // mean weighted loss of the epoch's examples, each
                                        // measured just before its update (no L2 term)
  double validation_log_loss = 0.0;     // NaN without validation examples
  double validation_auc = 0.0;          // NaN without validation examples or with one class
  absl::Duration elapsed;               // since the start of training
};

using LmfProgressCallback = std::function<void(const LmfEpochStats&)>;

// The trained parameters, indexed like the TrainingData they were trained on. Plain data;
// materialise it into a core::ModelData to serve it.
struct LmfModel {
  uint32_t dimension = 0;
  double global_bias = 0.0;
  // Id embeddings, one row per entity of the training data (all zero for an entity without
  // training examples). Empty when options.use_id_embeddings was false.
  std::vector<std::string> user_ids;
  std::vector<float> user_id_factors;  // user_ids.size() * dimension, row-major
  std::vector<float> user_id_bias;     // user_ids.size()
  std::vector<std::string> coupon_ids;
  std::vector<float> coupon_id_factors;
  std::vector<float> coupon_id_bias;
  // Feature embeddings, one row per feature name of the training data. Empty when
  // options.use_feature_embeddings was false.
  std::vector<std::string> user_feature_names;
  std::vector<float> user_feature_factors;
  std::vector<float> user_feature_bias;
  std::vector<std::string> coupon_feature_names;
  std::vector<float> coupon_feature_factors;
  std::vector<float> coupon_feature_bias;
};

struct LmfTrainResult {
  LmfModel model;                     // parameters of best_epoch
  int best_epoch = 0;                 // 1-based; the last epoch when there is no validation set
  std::vector<LmfEpochStats> history;  // one entry per epoch run
};

// Trains on data.examples[i] for i in `train_examples`, early-stopping on those in
// `validation_examples` (which may be empty: then every epoch runs and the last is kept).
// Indices may repeat (a bootstrap) but should not overlap between the two sets.
// `progress`, if set, is called on the calling thread after every epoch.
//
// Errors: InvalidArgument naming the field for invalid options, invalid data
// (TrainingData::Validate), an empty train set, or an index >= data.examples.size().
absl::StatusOr<LmfTrainResult> TrainLmf(const TrainingData& data,
                                        absl::Span<const uint32_t> train_examples,
                                        absl::Span<const uint32_t> validation_examples,
                                        const LmfTrainerOptions& options,
                                        const LmfProgressCallback& progress = nullptr);

// The servable model for the given users and coupons: each row is the entity's id embedding
// (when `ids` names an entity of the training data) plus the sum of the embeddings of its
// features; biases likewise. Features are matched to the model's by NAME (features.names), so
// the lists may come from other data than the training data; a feature name the model does
// not know contributes nothing, and an entity unknown to the model gets its features only.
// REQUIRES features.rows() == ids.size(), coupon_attributes.size() == coupon_ids.size()
// (else InvalidArgument); the result passes ValidateModelData when ids are unique and valid.
absl::StatusOr<core::ModelData> MaterializeLmfModel(const LmfModel& model,
                                              absl::Span<const std::string> user_ids,
                                              const SparseFeatures& user_features,
                                              absl::Span<const std::string> coupon_ids,
                                              const SparseFeatures& coupon_features,
                                              absl::Span<const core::CouponAttributes> coupon_attributes);

// Shorthand: every user and coupon of `data`.
absl::StatusOr<core::ModelData> MaterializeLmfModel(const LmfModel& model, const TrainingData& data);

// p(u, c) of data.examples[i] for each i in `examples` under `model` (materialised over
// `data`'s users and coupons). InvalidArgument for an index out of range.
absl::StatusOr<std::vector<float>> PredictLmf(const LmfModel& model, const TrainingData& data,
                                              absl::Span<const uint32_t> examples);

// Validates `options` alone: OK, or InvalidArgument naming the first bad field.
absl::Status ValidateLmfTrainerOptions(const LmfTrainerOptions& options);

}  // namespace coupond::learn

#endif  // COUPOND_LEARN_LMF_TRAINER_H_
