#include "learn/lmf_trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "learn/metrics.h"

namespace coupond::learn {
namespace {

// Row layout: every parameter row holds d factors then the bias at index d, zero-padded to
// `stride` = round_up(d + 1, kLanes) floats, so that the bias is updated by the same
// element-wise Adam loop as the factors and the loops have no remainder. A row's weights,
// first moments and second moments are stored side by side ([w | m | v], 3 * stride floats)
// so that one update touches one contiguous block.
constexpr size_t kLanes = 8;

size_t RoundUp(size_t n, size_t k) { return (n + k - 1) / k * k; }

struct Adam {
  float lr, b1, b2, eps;
};

// The parameters of one side (users or coupons): id rows [0, num_id_rows) then feature rows,
// and for each entity the list of its rows (CSR), precomputed so the inner loop only sums.
struct Side {
  size_t stride = 0;
  size_t num_id_rows = 0;
  size_t num_rows = 0;
  // num_rows blocks of block() floats: [w | m | v | beta1^t, beta2^t, padding], where t is
  // the row's own step count; one block is all the state a row update touches.
  std::vector<float> storage;
  std::vector<uint32_t> offsets;
  std::vector<uint32_t> rows;
  std::vector<float> l2_id;       // per element: L2 of an id row
  std::vector<float> l2_feature;  // per element: L2 of a feature row

  size_t block() const { return 3 * stride + kLanes; }
  float* Row(size_t r) { return storage.data() + r * block(); }
  const float* Row(size_t r) const { return storage.data() + r * block(); }
};

// Where one shard reads and writes a side's rows: its id rows and its feature rows may live
// in different arrays (the shared master storage, or the shard's own replica; see Trainer).
// Row r < num_id_rows is id row r of `id_rows`; the others are feature rows of `feature_rows`.
struct SideRef {
  const Side* side = nullptr;
  float* id_rows = nullptr;
  float* feature_rows = nullptr;

  // Both parts in the side's own (master) storage.
  static SideRef Master(Side& s) {
    return {&s, s.storage.data(), s.storage.data() + s.num_id_rows * s.block()};
  }
  float* Row(size_t r) const {
    const size_t n = side->num_id_rows;
    return r < n ? id_rows + r * side->block() : feature_rows + (r - n) * side->block();
  }
};

// Builds one side. `entity_used[e]` says whether entity e occurs in a training example: rows
// that no training example touches start (and stay) at zero, so an entity unseen in training
// is represented by its seen features only, not by random noise.
void BuildSide(size_t num_entities, const SparseFeatures& features, const LmfTrainerOptions& o,
               const std::vector<char>& entity_used, std::mt19937_64& rng, Side& s) {
  const size_t d = o.dimension;
  s.stride = RoundUp(d + 1, kLanes);
  s.num_id_rows = o.use_id_embeddings ? num_entities : 0;
  const size_t num_features = o.use_feature_embeddings ? features.num_features() : 0;
  s.num_rows = s.num_id_rows + num_features;
  s.offsets.assign(1, 0);
  s.rows.clear();
  std::vector<char> row_used(s.num_rows, 0);
  for (size_t e = 0; e < num_entities; ++e) {
    if (o.use_id_embeddings) s.rows.push_back(static_cast<uint32_t>(e));
    if (o.use_feature_embeddings) {
      for (uint32_t f : features.row(e)) {
        s.rows.push_back(static_cast<uint32_t>(s.num_id_rows + f));
      }
    }
    if (entity_used[e]) {
      for (size_t i = s.offsets.back(); i < s.rows.size(); ++i) row_used[s.rows[i]] = 1;
    }
    s.offsets.push_back(static_cast<uint32_t>(s.rows.size()));
  }
  s.storage.assign(s.num_rows * s.block(), 0.0f);
  for (size_t r = 0; r < s.num_rows; ++r) {
    s.Row(r)[3 * s.stride] = 1.0f;
    s.Row(r)[3 * s.stride + 1] = 1.0f;
  }
  const float stddev = o.init_scale / std::sqrt(static_cast<float>(d));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (size_t r = 0; r < s.num_rows; ++r) {
    // Draw for every row, used or not, so that the draws of one row do not depend on others.
    float* w = s.Row(r);
    for (size_t k = 0; k < d; ++k) {
      const float x = stddev * normal(rng);
      if (row_used[r]) w[k] = x;
    }
  }
  s.l2_id.assign(s.stride, 0.0f);
  s.l2_feature.assign(s.stride, 0.0f);
  for (size_t k = 0; k < d; ++k) {
    s.l2_id[k] = o.l2_id_factors;
    s.l2_feature[k] = o.l2_feature_factors;
  }
  s.l2_id[d] = o.l2_biases;
  s.l2_feature[d] = o.l2_biases;
}

// out = sum of the entity's rows (factors and bias; padding stays 0).
inline void SumRows(const SideRef& ref, uint32_t entity, float* __restrict out) {
  const Side& s = *ref.side;
  const size_t n = s.stride;
  std::fill(out, out + n, 0.0f);
  for (uint32_t i = s.offsets[entity]; i < s.offsets[entity + 1]; ++i) {
    const float* __restrict w = ref.Row(s.rows[i]);
    for (size_t k = 0; k < n; ++k) out[k] += w[k];
  }
}

// Dot product of the first `n` (a multiple of kLanes) entries with kLanes partial sums, which
// GCC vectorises (a single running float sum it would not reorder).
inline float Dot(const float* __restrict a, const float* __restrict b, size_t n) {
  float acc[kLanes] = {};
  for (size_t i = 0; i < n; i += kLanes) {
    for (size_t j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float sum = 0.0f;
  for (size_t j = 0; j < kLanes; ++j) sum += acc[j];
  return sum;
}

// Logit of an example from the two effective rows (bias at index d, padding 0).
// Leaves eu[d] = 0 (the dot over the whole stride must not include the biases' product).
inline float Logit(float global_bias, float* eu, const float* ec, size_t d, size_t stride) {
  const float user_bias = eu[d];
  eu[d] = 0.0f;
  return global_bias + user_bias + ec[d] + Dot(eu, ec, stride);
}

inline float Sigmoid(float z) { return 1.0f / (1.0f + std::exp(-z)); }

// One lazy Adam step on row `r` of `s`: gradient g * partner + l2 * w, where partner holds
// the other side's effective factors and 1 at the bias index.
inline void AdamRow(const SideRef& ref, uint32_t r, float g, const float* __restrict partner,
                    const Adam& a) {
  const Side& s = *ref.side;
  const size_t n = s.stride;
  float* __restrict w = ref.Row(r);
  float* __restrict m = w + n;
  float* __restrict v = w + 2 * n;
  const float* __restrict l2 = r < s.num_id_rows ? s.l2_id.data() : s.l2_feature.data();
  float& p1 = w[3 * n];
  float& p2 = w[3 * n + 1];
  p1 *= a.b1;
  p2 *= a.b2;
  // Locals, so the compiler knows they do not alias the row it writes.
  const float b1 = a.b1, b2 = a.b2, eps = a.eps;
  const float step = a.lr * std::sqrt(1.0f - p2) / (1.0f - p1);
  const float c1 = 1.0f - b1;
  const float c2 = 1.0f - b2;
  for (size_t k = 0; k < n; ++k) {
    const float gr = g * partner[k] + l2[k] * w[k];
    const float mk = b1 * m[k] + c1 * gr;
    const float vk = b2 * v[k] + c2 * gr * gr;
    m[k] = mk;
    v[k] = vk;
    w[k] -= step * mk / (std::sqrt(vk) + eps);
  }
}

// Adam state of one shard's copy of the global bias.
struct ScalarAdam {
  float value = 0.0f, m = 0.0f, v = 0.0f, p1 = 1.0f, p2 = 1.0f;
  void Step(float g, const Adam& a) {
    p1 *= a.b1;
    p2 *= a.b2;
    m = a.b1 * m + (1.0f - a.b1) * g;
    v = a.b2 * v + (1.0f - a.b2) * g * g;
    value -= a.lr * std::sqrt(1.0f - p2) / (1.0f - p1) * m / (std::sqrt(v) + a.eps);
  }
};

// One data shard of the training (see Trainer): its examples, its replicas of the shared
// rows, its copy of the global bias and its scratch rows. Owned by one thread at a time.
struct Shard {
  // This epoch's examples of the shard, in shuffled order, and where each round ends in it.
  std::vector<uint32_t> examples;
  std::vector<size_t> round_ends;
  // Replicas (whole blocks, weights and Adam state) of every coupon row and of the user
  // feature rows; empty when the trainer has one shard (it then writes the master rows).
  std::vector<float> coupon_rows;
  std::vector<float> user_feature_rows;
  SideRef users, coupons;
  ScalarAdam global;
  std::vector<float> eu, ec;  // effective rows, stride floats each
  double loss_sum = 0.0;      // this epoch's, summed in example order
};

struct ShardContext {
  SideRef users;
  SideRef coupons;
  const Example* examples;
  absl::Span<const uint32_t> run;
  Shard* shard;
  Adam adam;
  float positive_weight;
  size_t d;
};

// The inner loop: per example, sum the effective rows, one forward pass, then one lazy Adam
// step on each touched row. No allocation. Compiled for AVX-512, AVX2 and the baseline, chosen
// at load time (GCC function multi-versioning); results are bit-identical across versions
// because the code fixes every summation order and this file is built with -ffp-contract=off.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
void TrainShard(const ShardContext& c) {
  const SideRef& users = c.users;
  const SideRef& coupons = c.coupons;
  const Side& us = *users.side;
  const Side& cs = *coupons.side;
  Shard& w = *c.shard;
  const size_t d = c.d;
  float* __restrict eu = w.eu.data();
  float* __restrict ec = w.ec.data();
  constexpr float kClip = 1e-7f;
  double loss_sum = w.loss_sum;
  const size_t n = c.run.size();
  const size_t row_bytes = us.block() * sizeof(float);
  for (size_t j = 0; j < n; ++j) {
    // The shuffled order makes both the example and its user's rows cache misses (millions
    // of users do not fit in cache): fetch the example kAhead * 2 steps ahead, and the user's
    // rows kAhead steps ahead (its example has arrived by then). Coupon and feature rows are
    // few and stay cached.
    constexpr size_t kAhead = 4;
    if (j + 2 * kAhead < n) __builtin_prefetch(&c.examples[c.run[j + 2 * kAhead]]);
    if (j + kAhead < n) {
      const uint32_t u = c.examples[c.run[j + kAhead]].user;
      if (us.offsets[u] < us.offsets[u + 1]) {  // the user has a row
        const char* row = reinterpret_cast<const char*>(users.Row(us.rows[us.offsets[u]]));
        for (size_t b = 0; b < row_bytes; b += 64) __builtin_prefetch(row + b, 1);
      }
    }
    const Example& e = c.examples[c.run[j]];
    SumRows(users, e.user, eu);
    SumRows(coupons, e.coupon, ec);
    const float p = Sigmoid(Logit(w.global.value, eu, ec, d, us.stride));
    const bool positive = e.label != 0.0f;
    const float weight = positive ? c.positive_weight : 1.0f;
    loss_sum -= weight * std::log(std::clamp(positive ? p : 1.0f - p, kClip, 1.0f));
    const float g = weight * (p - e.label);  // d loss / d logit
    // The bias entries of the effective rows become the bias gradients' partner (1).
    eu[d] = 1.0f;
    ec[d] = 1.0f;
    for (uint32_t i = us.offsets[e.user]; i < us.offsets[e.user + 1]; ++i) {
      AdamRow(users, us.rows[i], g, ec, c.adam);
    }
    for (uint32_t i = cs.offsets[e.coupon]; i < cs.offsets[e.coupon + 1]; ++i) {
      AdamRow(coupons, cs.rows[i], g, eu, c.adam);
    }
    w.global.Step(g, c.adam);
  }
  w.loss_sum = loss_sum;
}

// Runs fn(t) for t in [0, n) on n threads (the calling thread runs t = 0).
template <typename Fn>
void RunOnThreads(int n, Fn fn) {
  std::vector<std::thread> pool;
  for (int t = 1; t < n; ++t) pool.emplace_back(fn, t);
  fn(0);
  for (std::thread& th : pool) th.join();
}

// Merges one replicated row of `num_replicas` shards into `master`, summing in shard order,
// then gives every replica the merged weights. `replica(s)` points at shard s's copy.
// average = true (what the trainer uses): master += the MEAN change of the replicas that
// moved the row. average = false: the SUM of the changes, as serial Adam applies every
// update. The sum learns shared rows faster (train_bench, 300k examples, 3 epochs, 4 shards:
// train AUC 0.837 against 0.790 with the mean, 0.840 serial) but each replica corrects a hot
// row fully in a round, so the sum multiplies the correction by the shards: on dunnhumby's
// rare positives it diverged (validation AUC 0.40-0.69, test AUC 0.809 against 0.840
// serial). The mean cannot overshoot (it is a convex combination of the replicas).
template <typename ReplicaFn>
void MergeReplicas(float* master, size_t n, size_t num_replicas, bool average,
                   ReplicaFn replica) {
  int touched = 1;
  if (average) {
    touched = 0;
    for (size_t s = 0; s < num_replicas; ++s) {
      touched += std::memcmp(replica(s), master, n * sizeof(float)) != 0 ? 1 : 0;
    }
    if (touched == 0) return;
  }
  for (size_t k = 0; k < n; ++k) {
    float sum = 0.0f;
    for (size_t s = 0; s < num_replicas; ++s) sum += replica(s)[k] - master[k];
    master[k] += average ? sum / static_cast<float>(touched) : sum;
  }
  for (size_t s = 0; s < num_replicas; ++s) std::memcpy(replica(s), master, n * sizeof(float));
}

// Deterministic data-parallel training with fixed shards and an ordered reduction.
//
// Every epoch the shuffled order is dealt to `shards` shards by user (example -> shard
// user % shards, keeping the order), and cut into rounds of kRoundExamples consecutive
// positions of the order. In a round each shard runs serial lazy Adam on its
// part of the round: on its users' id rows, which no other shard touches (they stay in the
// shared master storage), and on its own replicas of the rows every shard may touch (all
// coupon rows, the user feature rows, the global bias). After the round the replicas are
// merged in shard order (MergeReplicas: the mean change of the shards that moved each row)
// and the next round starts from the merged weights; each replica keeps its own Adam moments.
//
// Which thread runs which shard changes nothing: a shard's work reads only its own rows and
// the merged weights, and every reduction (the merge, the loss) runs in shard order. So the
// result depends on the seed and `shards`, never on `threads` or on scheduling: bit-identical
// across runs and thread counts. With one shard this is plain serial lazy Adam over the
// shuffled order (no replicas, one round per epoch).
class Trainer {
 public:
  // Examples per round, all shards together: large enough that the merge (proportional to
  // the replicated rows times the shards) and the thread start-up cost little beside the
  // round's training; small enough that the replicas do not drift far apart between merges.
  // Fixed, not per shard, so that how stale a replica gets does not grow with the shards.
  static constexpr size_t kRoundExamples = 16384;

  Trainer(const TrainingData& data, const LmfTrainerOptions& o, int threads)
      : data_(data), o_(o), threads_(threads), d_(o.dimension) {
    adam_ = {o.learning_rate, o.adam_beta1, o.adam_beta2, o.adam_epsilon};
  }

  void Init(absl::Span<const uint32_t> train) {
    std::vector<char> user_used(data_.user_ids.size(), 0);
    std::vector<char> coupon_used(data_.coupon_ids.size(), 0);
    double positives = 0;
    for (uint32_t i : train) {
      const Example& e = data_.examples[i];
      user_used[e.user] = 1;
      coupon_used[e.coupon] = 1;
      positives += e.label;
    }
    std::mt19937_64 rng(o_.seed);
    BuildSide(data_.user_ids.size(), data_.user_features, o_, user_used, rng, users_);
    BuildSide(data_.coupon_ids.size(), data_.coupon_features, o_, coupon_used, rng, coupons_);
    // Start the global bias at the logit of the (weighted) base rate, clamped away from 0/1.
    const double pos = positives * o_.positive_weight;
    const double rate =
        std::clamp(pos / (pos + static_cast<double>(train.size()) - positives), 1e-4, 1 - 1e-4);
    global_bias_ = static_cast<float>(std::log(rate / (1 - rate)));
    shards_.resize(static_cast<size_t>(o_.shards));
    const bool replicate = shards_.size() > 1;
    const size_t user_id_floats = users_.num_id_rows * users_.block();
    for (Shard& s : shards_) {
      s.eu.assign(users_.stride, 0.0f);
      s.ec.assign(coupons_.stride, 0.0f);
      s.global.value = global_bias_;
      if (replicate) {
        s.coupon_rows = coupons_.storage;
        s.user_feature_rows.assign(users_.storage.begin() + static_cast<std::ptrdiff_t>(user_id_floats),
                                   users_.storage.end());
        s.users = {&users_, users_.storage.data(), s.user_feature_rows.data()};
        s.coupons = {&coupons_, s.coupon_rows.data(),
                     s.coupon_rows.data() + coupons_.num_id_rows * coupons_.block()};
      } else {
        s.users = SideRef::Master(users_);
        s.coupons = SideRef::Master(coupons_);
      }
    }
    // Predictions read the master rows; they never race with training (not concurrent).
    predict_scratch_.resize(static_cast<size_t>(threads_));
    for (auto& [eu, ec] : predict_scratch_) {
      eu.assign(users_.stride, 0.0f);
      ec.assign(coupons_.stride, 0.0f);
    }
  }

  // One pass over `order` (see the class comment). Returns the mean train loss.
  double Epoch(const std::vector<uint32_t>& order) {
    const size_t n = order.size();
    const size_t num_shards = shards_.size();
    const size_t round = num_shards == 1 ? n : kRoundExamples;
    for (Shard& s : shards_) {
      s.examples.clear();
      s.round_ends.clear();
      s.loss_sum = 0.0;
    }
    for (size_t i = 0; i < n; ++i) {
      const uint32_t example = order[i];
      shards_[data_.examples[example].user % num_shards].examples.push_back(example);
      if ((i + 1) % round == 0 || i + 1 == n) {
        for (Shard& s : shards_) s.round_ends.push_back(s.examples.size());
      }
    }
    const size_t rounds = shards_[0].round_ends.size();
    const int threads = static_cast<int>(std::min<size_t>(static_cast<size_t>(threads_), num_shards));
    for (size_t r = 0; r < rounds; ++r) {
      RunOnThreads(threads, [&](int t) {
        for (size_t k = static_cast<size_t>(t); k < num_shards; k += static_cast<size_t>(threads)) {
          Shard& s = shards_[k];
          const size_t begin = r == 0 ? 0 : s.round_ends[r - 1];
          s.global.value = global_bias_;
          ShardContext c{s.users, s.coupons, data_.examples.data(),
                         absl::MakeConstSpan(s.examples.data() + begin, s.round_ends[r] - begin),
                         &s, adam_, o_.positive_weight, d_};
          TrainShard(c);
        }
      });
      Merge();
    }
    double loss = 0.0;
    for (const Shard& s : shards_) loss += s.loss_sum;
    return loss / static_cast<double>(n);
  }

  // Current p for each example index, computed on threads_ threads (each output is computed
  // alone, so the thread count does not change it).
  std::vector<float> Predict(absl::Span<const uint32_t> examples) {
    std::vector<float> out(examples.size());
    const size_t n = examples.size();
    const SideRef users = SideRef::Master(users_);
    const SideRef coupons = SideRef::Master(coupons_);
    RunOnThreads(threads_, [&](int t) {
      auto& [eu, ec] = predict_scratch_[static_cast<size_t>(t)];
      const size_t begin = n * static_cast<size_t>(t) / static_cast<size_t>(threads_);
      const size_t end = n * static_cast<size_t>(t + 1) / static_cast<size_t>(threads_);
      for (size_t i = begin; i < end; ++i) {
        const Example& e = data_.examples[examples[i]];
        SumRows(users, e.user, eu.data());
        SumRows(coupons, e.coupon, ec.data());
        out[i] = Sigmoid(Logit(global_bias_, eu.data(), ec.data(), d_, users_.stride));
      }
    });
    return out;
  }

  LmfModel Export() const {
    LmfModel m;
    m.dimension = static_cast<uint32_t>(d_);
    m.global_bias = global_bias_;
    auto copy = [&](const Side& s, size_t first, size_t count, std::vector<float>& factors,
                    std::vector<float>& bias) {
      factors.resize(count * d_);
      bias.resize(count);
      for (size_t r = 0; r < count; ++r) {
        const float* w = s.Row(first + r);
        std::copy(w, w + d_, factors.begin() + static_cast<std::ptrdiff_t>(r * d_));
        bias[r] = w[d_];
      }
    };
    if (o_.use_id_embeddings) {
      m.user_ids = data_.user_ids;
      m.coupon_ids = data_.coupon_ids;
      copy(users_, 0, users_.num_id_rows, m.user_id_factors, m.user_id_bias);
      copy(coupons_, 0, coupons_.num_id_rows, m.coupon_id_factors, m.coupon_id_bias);
    }
    if (o_.use_feature_embeddings) {
      m.user_feature_names = data_.user_features.names;
      m.coupon_feature_names = data_.coupon_features.names;
      copy(users_, users_.num_id_rows, users_.num_rows - users_.num_id_rows,
           m.user_feature_factors, m.user_feature_bias);
      copy(coupons_, coupons_.num_id_rows, coupons_.num_rows - coupons_.num_id_rows,
           m.coupon_feature_factors, m.coupon_feature_bias);
    }
    return m;
  }

 private:
  // After a round: the replicated rows' weights (the first stride floats of each block; the
  // Adam state stays per replica) and the global bias, merged in shard order. With one
  // shard the master rows were trained in place: only the global bias is copied back.
  void Merge() {
    const size_t num_shards = shards_.size();
    if (num_shards == 1) {
      global_bias_ = shards_[0].global.value;
      return;
    }
    auto merge_rows = [&](Side& side, size_t first, size_t count, auto replica_base) {
      const size_t block = side.block();
      for (size_t r = 0; r < count; ++r) {
        MergeReplicas(side.Row(first + r), side.stride, num_shards, /*average=*/true,
                      [&](size_t s) { return replica_base(shards_[s]) + r * block; });
      }
    };
    merge_rows(coupons_, 0, coupons_.num_rows,
               [](Shard& s) { return s.coupon_rows.data(); });
    merge_rows(users_, users_.num_id_rows, users_.num_rows - users_.num_id_rows,
               [](Shard& s) { return s.user_feature_rows.data(); });
    MergeReplicas(&global_bias_, 1, num_shards, /*average=*/true,
                  [&](size_t s) { return &shards_[s].global.value; });
  }

  const TrainingData& data_;
  const LmfTrainerOptions o_;
  const int threads_;
  const size_t d_;
  Adam adam_;
  Side users_;
  Side coupons_;
  float global_bias_ = 0.0f;
  std::vector<Shard> shards_;
  std::vector<std::pair<std::vector<float>, std::vector<float>>> predict_scratch_;
};

absl::Status CheckIndices(absl::Span<const uint32_t> indices, size_t n, const char* name) {
  for (size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] >= n) {
      return absl::InvalidArgumentError(absl::StrCat(name, "[", i, "]: example index ",
                                                     indices[i], " >= ", n, " examples"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckFinite(double v, bool allow_zero, const char* name) {
  if (!std::isfinite(v) || v < 0 || (!allow_zero && v == 0)) {
    return absl::InvalidArgumentError(absl::StrCat("options.", name, ": ", v, " is not a finite ",
                                                   allow_zero ? "value >= 0" : "value > 0"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateLmfTrainerOptions(const LmfTrainerOptions& o) {
  if (o.dimension < 1 || o.dimension > core::kMaxDimension) {
    return absl::InvalidArgumentError(absl::StrCat("options.dimension: ", o.dimension,
                                                   " is outside [1, ", core::kMaxDimension, "]"));
  }
  COUPOND_RETURN_IF_ERROR(CheckFinite(o.learning_rate, false, "learning_rate"));
  for (auto [v, name] : {std::pair{o.adam_beta1, "adam_beta1"},
                         std::pair{o.adam_beta2, "adam_beta2"}}) {
    if (!(v >= 0.0f && v < 1.0f)) {
      return absl::InvalidArgumentError(
          absl::StrCat("options.", name, ": ", v, " is not in [0, 1)"));
    }
  }
  COUPOND_RETURN_IF_ERROR(CheckFinite(o.adam_epsilon, false, "adam_epsilon"));
  COUPOND_RETURN_IF_ERROR(CheckFinite(o.l2_id_factors, true, "l2_id_factors"));
  COUPOND_RETURN_IF_ERROR(CheckFinite(o.l2_feature_factors, true, "l2_feature_factors"));
  COUPOND_RETURN_IF_ERROR(CheckFinite(o.l2_biases, true, "l2_biases"));
  COUPOND_RETURN_IF_ERROR(CheckFinite(o.positive_weight, false, "positive_weight"));
  COUPOND_RETURN_IF_ERROR(CheckFinite(o.init_scale, true, "init_scale"));
  if (o.epochs < 1) {
    return absl::InvalidArgumentError(absl::StrCat("options.epochs: ", o.epochs, " < 1"));
  }
  if (o.early_stopping_patience < 1) {
    return absl::InvalidArgumentError(absl::StrCat("options.early_stopping_patience: ",
                                                   o.early_stopping_patience, " < 1"));
  }
  if (o.shards < 1 || o.shards > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.shards: ", o.shards, " is outside [1, 256]"));
  }
  if (o.threads < 0) {
    return absl::InvalidArgumentError(absl::StrCat("options.threads: ", o.threads, " < 0"));
  }
  if (!o.use_id_embeddings && !o.use_feature_embeddings) {
    return absl::InvalidArgumentError(
        "options.use_id_embeddings, options.use_feature_embeddings: at least one must be true");
  }
  return absl::OkStatus();
}

absl::StatusOr<LmfTrainResult> TrainLmf(const TrainingData& data,
                                        absl::Span<const uint32_t> train_examples,
                                        absl::Span<const uint32_t> validation_examples,
                                        const LmfTrainerOptions& options,
                                        const LmfProgressCallback& progress) {
  COUPOND_RETURN_IF_ERROR(ValidateLmfTrainerOptions(options));
  COUPOND_RETURN_IF_ERROR(data.Validate());
  if (data.examples.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError("data.examples: more than 2^32 - 1 examples");
  }
  if (train_examples.empty()) return absl::InvalidArgumentError("train_examples: empty");
  COUPOND_RETURN_IF_ERROR(CheckIndices(train_examples, data.examples.size(), "train_examples"));
  COUPOND_RETURN_IF_ERROR(
      CheckIndices(validation_examples, data.examples.size(), "validation_examples"));

  const int threads =
      options.threads > 0
          ? options.threads
          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const absl::Time start = absl::Now();
  Trainer trainer(data, options, threads);
  trainer.Init(train_examples);

  std::vector<float> validation_labels;
  validation_labels.reserve(validation_examples.size());
  for (uint32_t i : validation_examples) validation_labels.push_back(data.examples[i].label);

  LmfTrainResult result;
  double best_loss = std::numeric_limits<double>::infinity();
  int since_best = 0;
  std::vector<uint32_t> order(train_examples.begin(), train_examples.end());
  std::mt19937_64 shuffle_rng(options.seed ^ 0x9e3779b97f4a7c15ULL);
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    // Fisher-Yates with our own index draw: std::shuffle's is implementation-defined.
    for (size_t i = order.size() - 1; i > 0; --i) {
      std::swap(order[i], order[shuffle_rng() % (i + 1)]);
    }
    LmfEpochStats stats;
    stats.epoch = epoch;
    stats.train_log_loss = trainer.Epoch(order);
    stats.validation_log_loss = std::numeric_limits<double>::quiet_NaN();
    stats.validation_auc = std::numeric_limits<double>::quiet_NaN();
    bool improved = validation_examples.empty();
    if (!validation_examples.empty()) {
      const std::vector<float> p = trainer.Predict(validation_examples);
      absl::StatusOr<double> loss = LogLoss(p, validation_labels);
      if (!loss.ok()) {  // only a NaN prediction can fail here: the model diverged
        return absl::InternalError(absl::StrCat("epoch ", epoch, ": training diverged (",
                                                loss.status().message(),
                                                "); lower options.learning_rate"));
      }
      stats.validation_log_loss = *loss;
      if (absl::StatusOr<double> auc = RocAuc(p, validation_labels); auc.ok()) {
        stats.validation_auc = *auc;
      }
      improved = *loss < best_loss;
      if (improved) best_loss = *loss;
    } else if (!std::isfinite(stats.train_log_loss)) {
      return absl::InternalError(
          absl::StrCat("epoch ", epoch, ": training diverged; lower options.learning_rate"));
    }
    stats.elapsed = absl::Now() - start;
    result.history.push_back(stats);
    if (progress) progress(stats);
    if (improved) {
      result.best_epoch = epoch;
      since_best = 0;
      // Without validation only the last epoch matters: export it once, after the loop.
      if (!validation_examples.empty()) result.model = trainer.Export();
    } else if (++since_best >= options.early_stopping_patience) {
      break;
    }
  }
  if (validation_examples.empty()) result.model = trainer.Export();
  return result;
}

absl::StatusOr<core::ModelData> MaterializeLmfModel(
    const LmfModel& model, absl::Span<const std::string> user_ids,
    const SparseFeatures& user_features, absl::Span<const std::string> coupon_ids,
    const SparseFeatures& coupon_features, absl::Span<const core::CouponAttributes> coupon_attributes) {
  const size_t d = model.dimension;
  if (d < 1 || d > core::kMaxDimension) {
    return absl::InvalidArgumentError(absl::StrCat("model.dimension: ", d, " is out of range"));
  }
  if (user_features.rows() != user_ids.size()) {
    return absl::InvalidArgumentError(absl::StrCat("user_features: ", user_features.rows(),
                                                   " rows for ", user_ids.size(), " users"));
  }
  if (coupon_features.rows() != coupon_ids.size()) {
    return absl::InvalidArgumentError(absl::StrCat("coupon_features: ", coupon_features.rows(),
                                                   " rows for ", coupon_ids.size(), " coupons"));
  }
  if (coupon_attributes.size() != coupon_ids.size()) {
    return absl::InvalidArgumentError(absl::StrCat("coupon_attributes: ",
                                                   coupon_attributes.size(), " for ",
                                                   coupon_ids.size(), " coupons"));
  }
  // One side: rows[e] = id row (if the model knows the id) + rows of its known features.
  auto side = [d](absl::Span<const std::string> ids, const SparseFeatures& features,
                  const std::vector<std::string>& model_ids, const std::vector<float>& id_factors,
                  const std::vector<float>& id_bias, const std::vector<std::string>& model_names,
                  const std::vector<float>& feature_factors,
                  const std::vector<float>& feature_bias, const char* name,
                  std::vector<float>& out_factors, std::vector<float>& out_bias) -> absl::Status {
    if (id_factors.size() != model_ids.size() * d || id_bias.size() != model_ids.size() ||
        feature_factors.size() != model_names.size() * d ||
        feature_bias.size() != model_names.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("model: ", name, " arrays do not match their ids/names and dimension"));
    }
    absl::flat_hash_map<absl::string_view, uint32_t> id_row;
    for (size_t i = 0; i < model_ids.size(); ++i) id_row.emplace(model_ids[i], i);
    absl::flat_hash_map<absl::string_view, uint32_t> name_row;
    for (size_t i = 0; i < model_names.size(); ++i) name_row.emplace(model_names[i], i);
    // The given feature indices, mapped to the model's feature rows (-1: unknown name).
    std::vector<int64_t> feature_map(features.names.size(), -1);
    for (size_t f = 0; f < features.names.size(); ++f) {
      if (auto it = name_row.find(features.names[f]); it != name_row.end()) {
        feature_map[f] = it->second;
      }
    }
    out_factors.assign(ids.size() * d, 0.0f);
    out_bias.assign(ids.size(), 0.0f);
    for (size_t e = 0; e < ids.size(); ++e) {
      float* x = out_factors.data() + e * d;
      auto add = [&](const float* row, float bias) {
        for (size_t k = 0; k < d; ++k) x[k] += row[k];
        out_bias[e] += bias;
      };
      if (auto it = id_row.find(ids[e]); it != id_row.end()) {
        add(id_factors.data() + size_t{it->second} * d, id_bias[it->second]);
      }
      if (features.offsets[e + 1] > features.features.size() ||
          features.offsets[e] > features.offsets[e + 1]) {
        return absl::InvalidArgumentError(absl::StrCat(name, "_features.offsets[", e + 1,
                                                       "]: out of range"));
      }
      for (uint32_t f : features.row(e)) {
        if (f >= feature_map.size()) {
          return absl::InvalidArgumentError(absl::StrCat(name, "_features: row ", e,
                                                         " has feature index ", f, " >= ",
                                                         feature_map.size(), " names"));
        }
        if (feature_map[f] >= 0) {
          const size_t r = static_cast<size_t>(feature_map[f]);
          add(feature_factors.data() + r * d, feature_bias[r]);
        }
      }
    }
    return absl::OkStatus();
  };
  core::ModelData out;
  out.dimension = static_cast<uint32_t>(d);
  out.global_bias = model.global_bias;
  COUPOND_RETURN_IF_ERROR(side(user_ids, user_features, model.user_ids, model.user_id_factors,
                               model.user_id_bias, model.user_feature_names,
                               model.user_feature_factors, model.user_feature_bias, "user",
                               out.user_factors, out.user_bias));
  COUPOND_RETURN_IF_ERROR(side(coupon_ids, coupon_features, model.coupon_ids,
                               model.coupon_id_factors, model.coupon_id_bias,
                               model.coupon_feature_names, model.coupon_feature_factors,
                               model.coupon_feature_bias, "coupon", out.coupon_factors,
                               out.coupon_bias));
  out.user_ids.assign(user_ids.begin(), user_ids.end());
  out.coupon_ids.assign(coupon_ids.begin(), coupon_ids.end());
  out.coupon_attributes.assign(coupon_attributes.begin(), coupon_attributes.end());
  out.description = absl::StrFormat(
      "logistic MF (Adam, LightFM-style features) d=%d id_rows=%d/%d feature_rows=%d/%d", d,
      model.user_ids.size(), model.coupon_ids.size(), model.user_feature_names.size(),
      model.coupon_feature_names.size());
  return out;
}

absl::StatusOr<core::ModelData> MaterializeLmfModel(const LmfModel& model, const TrainingData& data) {
  return MaterializeLmfModel(model, data.user_ids, data.user_features, data.coupon_ids,
                             data.coupon_features, data.coupon_attributes);
}

absl::StatusOr<std::vector<float>> PredictLmf(const LmfModel& model, const TrainingData& data,
                                              absl::Span<const uint32_t> examples) {
  COUPOND_RETURN_IF_ERROR(data.Validate());
  COUPOND_RETURN_IF_ERROR(CheckIndices(examples, data.examples.size(), "examples"));
  COUPOND_ASSIGN_OR_RETURN(core::ModelData m, MaterializeLmfModel(model, data));
  const size_t d = m.dimension;
  std::vector<float> out;
  out.reserve(examples.size());
  for (uint32_t i : examples) {
    const Example& e = data.examples[i];
    const float* x = m.user_factors.data() + size_t{e.user} * d;
    const float* y = m.coupon_factors.data() + size_t{e.coupon} * d;
    double z = m.global_bias + m.user_bias[e.user] + m.coupon_bias[e.coupon];
    for (size_t k = 0; k < d; ++k) z += static_cast<double>(x[k]) * y[k];
    out.push_back(static_cast<float>(1.0 / (1.0 + std::exp(-z))));
  }
  return out;
}

}  // namespace coupond::learn
