#include "pipeline/simulate.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "core/random.h"
#include "pipeline/factor_files.h"

namespace coupond::pipeline {
namespace {

using Rng = core::SplitMix64;

// A FILE* that closes itself; Close() reports write errors.
class Writer {
 public:
  static absl::StatusOr<Writer> Open(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) {
      return absl::UnavailableError(
          absl::StrCat(path, ": cannot open for writing: ", std::strerror(errno)));
    }
    return Writer(path, f);
  }
  Writer(Writer&& o) noexcept : path_(std::move(o.path_)), f_(o.f_) { o.f_ = nullptr; }
  Writer& operator=(Writer&&) = delete;
  ~Writer() {
    if (f_ != nullptr) std::fclose(f_);
  }
  void Put(const std::string& line) { std::fputs(line.c_str(), f_); }
  absl::Status Close() {
    const bool bad = std::ferror(f_) != 0;
    const bool close_failed = std::fclose(f_) != 0;
    f_ = nullptr;
    if (bad || close_failed) return absl::UnavailableError(absl::StrCat(path_, ": write failed"));
    return absl::OkStatus();
  }

 private:
  Writer(std::string path, FILE* f) : path_(std::move(path)), f_(f) {}
  std::string path_;
  FILE* f_;
};

std::string SignPattern(const std::vector<float>& factors, size_t row, size_t dim, int bits) {
  std::string s;
  for (int k = 0; k < bits; ++k) s.push_back(factors[row * dim + k] >= 0 ? '1' : '0');
  return s;
}

}  // namespace

absl::StatusOr<SimulationResult> SimulateLogs(const SimulationOptions& o,
                                              const std::string& out_dir) {
  if (o.days < 2) return absl::InvalidArgumentError(absl::StrCat("days: ", o.days, " must be >= 2"));
  if (!(o.active_fraction > 0 && o.active_fraction <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("active_fraction: ", o.active_fraction, " must be in (0, 1]"));
  }
  if (o.coupons_per_exposure < 1 ||
      static_cast<uint32_t>(o.coupons_per_exposure) > o.platform.num_coupons) {
    return absl::InvalidArgumentError(absl::StrCat("coupons_per_exposure: ", o.coupons_per_exposure,
                                                   " must be in [1, number of coupons]"));
  }
  if (o.max_redemption_delay_days < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_redemption_delay_days: ", o.max_redemption_delay_days, " must be >= 0"));
  }
  if (o.attribute_bits < 1 || o.attribute_bits > 8 ||
      static_cast<uint32_t>(o.attribute_bits) > o.platform.dimension) {
    return absl::InvalidArgumentError(absl::StrCat(
        "attribute_bits: ", o.attribute_bits, " must be in [1, min(8, dimension)]"));
  }
  if (o.dirty_rows < 0) {
    return absl::InvalidArgumentError(absl::StrCat("dirty_rows: ", o.dirty_rows, " must be >= 0"));
  }
  COUPOND_ASSIGN_OR_RETURN(core::ModelData truth, learn::GenerateSyntheticPlatform(o.platform));
  truth.description = absl::StrCat("simulation truth, platform seed ", o.platform.seed);

  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat(out_dir, ": ", ec.message()));
  SimulationResult r;
  r.paths.exposures = out_dir + "/exposures.csv";
  r.paths.redemptions = out_dir + "/redemptions.csv";
  r.paths.users = out_dir + "/users.csv";
  r.paths.coupons = out_dir + "/coupons.csv";
  r.truth_dir = out_dir + "/truth";
  COUPOND_RETURN_IF_ERROR(WriteFactorFiles(truth, r.truth_dir));

  const size_t d = truth.dimension;
  const size_t nu = truth.num_users(), nc = truth.num_coupons();
  {
    COUPOND_ASSIGN_OR_RETURN(Writer w, Writer::Open(r.paths.users));
    w.Put("user_id,segment,tier\n");
    const double sd = o.platform.user_bias_stddev;
    for (size_t u = 0; u < nu; ++u) {
      const double b = truth.user_bias[u];
      const char* tier = b < -0.5 * sd ? "low" : (b > 0.5 * sd ? "high" : "mid");
      w.Put(absl::StrCat(truth.user_ids[u], ",s",
                         SignPattern(truth.user_factors, u, d, o.attribute_bits), ",", tier, "\n"));
    }
    COUPOND_RETURN_IF_ERROR(w.Close());
  }
  {
    COUPOND_ASSIGN_OR_RETURN(Writer w, Writer::Open(r.paths.coupons));
    w.Put("coupon_id,face_value,stock,category\n");
    for (size_t c = 0; c < nc; ++c) {
      const core::CouponAttributes& a = truth.coupon_attributes[c];
      w.Put(absl::StrCat(truth.coupon_ids[c], ",", absl::StrFormat("%.2f", a.face_value), ",",
                         a.stock, ",k",
                         SignPattern(truth.coupon_factors, c, d, o.attribute_bits), "\n"));
    }
    COUPOND_RETURN_IF_ERROR(w.Close());
  }

  Rng rng(o.seed);
  COUPOND_ASSIGN_OR_RETURN(Writer ex, Writer::Open(r.paths.exposures));
  COUPOND_ASSIGN_OR_RETURN(Writer rd, Writer::Open(r.paths.redemptions));
  ex.Put("user_id,coupon_id,campaign_id,time\n");
  rd.Put("user_id,coupon_id,time\n");
  double sum_p = 0;
  std::vector<uint32_t> chosen;
  for (int day = 0; day < o.days; ++day) {
    const std::string campaign = absl::StrCat("day-", day);
    for (size_t u = 0; u < nu; ++u) {
      if (rng.Uniform() >= o.active_fraction) continue;
      chosen.clear();
      while (chosen.size() < static_cast<size_t>(o.coupons_per_exposure)) {
        const uint32_t c = static_cast<uint32_t>(rng.Below(nc));
        bool dup = false;
        for (uint32_t x : chosen) dup = dup || x == c;
        if (!dup) chosen.push_back(c);
      }
      for (uint32_t c : chosen) {
        double z = truth.global_bias + truth.user_bias[u] + truth.coupon_bias[c];
        for (size_t k = 0; k < d; ++k) {
          z += double{truth.user_factors[u * d + k]} * double{truth.coupon_factors[c * d + k]};
        }
        const double p = 1.0 / (1.0 + std::exp(-z));
        sum_p += p;
        ex.Put(absl::StrCat(truth.user_ids[u], ",", truth.coupon_ids[c], ",", campaign, ",", day,
                            "\n"));
        ++r.exposures;
        // Draw both numbers always, so the stream does not depend on the outcome.
        const double draw = rng.Uniform();
        const int delay = static_cast<int>(rng.Below(o.max_redemption_delay_days + 1));
        if (draw < p) {
          rd.Put(absl::StrCat(truth.user_ids[u], ",", truth.coupon_ids[c], ",", day + delay, "\n"));
          ++r.redemptions;
        }
      }
    }
  }
  for (int k = 0; k < o.dirty_rows; ++k) {
    switch (k % 3) {
      case 0:
        ex.Put(absl::StrCat(",", truth.coupon_ids[0], ",day-0,0\n"));  // missing user id
        break;
      case 1:
        ex.Put(absl::StrCat(truth.user_ids[0], ",", truth.coupon_ids[0], ",day-0,yesterday\n"));
        break;
      default:
        rd.Put(absl::StrCat("never-exposed-", k, ",", truth.coupon_ids[0], ",1\n"));
        break;
    }
  }
  COUPOND_RETURN_IF_ERROR(ex.Close());
  COUPOND_RETURN_IF_ERROR(rd.Close());
  r.mean_true_p = r.exposures > 0 ? sum_p / static_cast<double>(r.exposures) : 0.0;
  return r;
}

}  // namespace coupond::pipeline
