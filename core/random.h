#ifndef COUPOND_CORE_RANDOM_H_
#define COUPOND_CORE_RANDOM_H_

// SplitMix64 (Steele, Lea and Flood, 2014): a tiny generator whose stream is the same on
// every platform and standard library. Seeded jobs (sampling, k-means++ seeding, log
// simulation, fold assignment) use it where a result must be reproducible across builds;
// std::*_distribution is implementation-defined and std::hash unspecified.

#include <cstddef>
#include <cstdint>

namespace coupond::core {

// The SplitMix64 output function applied to x + golden ratio: a fixed, well-mixed 64-bit hash.
inline uint64_t SplitMix64Hash(uint64_t x) {
  uint64_t z = x + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Not thread-safe: one generator per thread.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    const uint64_t out = SplitMix64Hash(state_);
    state_ += 0x9e3779b97f4a7c15ULL;
    return out;
  }
  // Uniform in [0, 1), 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n) up to modulo bias (negligible for n << 2^64). REQUIRES: n > 0.
  uint64_t Below(uint64_t n) { return Next() % n; }

 private:
  uint64_t state_;
};

}  // namespace coupond::core

#endif  // COUPOND_CORE_RANDOM_H_
