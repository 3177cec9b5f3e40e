#include "pipeline/coupon_cold_start.h"

#include <cmath>
#include <vector>

#include <Eigen/Dense>
#include <Eigen/SparseCholesky>
#include <Eigen/SparseCore>

#include "absl/strings/str_cat.h"

namespace coupond::pipeline {

absl::StatusOr<CouponColdStartReport> PredictColdCoupons(const learn::TrainingData& data,
                                                         absl::Span<const uint32_t> train,
                                                         const CouponColdStartOptions& options,
                                                         core::ModelData* model) {
  if (!(std::isfinite(options.l2) && options.l2 > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cold_coupons.l2: ", options.l2, " must be finite and > 0"));
  }
  const size_t nc = data.coupon_ids.size();
  if (model == nullptr || model->coupon_ids.size() != nc ||
      model->coupon_factors.size() != nc * model->dimension ||
      model->coupon_bias.size() != nc || data.coupon_features.rows() != nc) {
    return absl::InvalidArgumentError(
        "PredictColdCoupons: the model must be materialised over the data's coupons");
  }
  for (size_t c = 0; c < nc; ++c) {
    if (model->coupon_ids[c] != data.coupon_ids[c]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "PredictColdCoupons: model coupon ", c, " is '", model->coupon_ids[c],
          "', the data's '", data.coupon_ids[c], "' (expected the data's order)"));
    }
  }
  std::vector<char> warm(nc, 0);
  for (uint32_t i : train) {
    if (i >= data.examples.size() || data.examples[i].coupon >= nc) {
      return absl::InvalidArgumentError(absl::StrCat("train: index ", i, " out of range"));
    }
    warm[data.examples[i].coupon] = 1;
  }
  CouponColdStartReport report;
  const learn::SparseFeatures& features = data.coupon_features;
  // Columns: features carried by a warm coupon.
  std::vector<int64_t> column(features.num_features(), -1);
  std::vector<uint32_t> warm_rows;
  for (uint32_t c = 0; c < nc; ++c) {
    if (!warm[c]) continue;
    warm_rows.push_back(c);
    for (uint32_t f : features.row(c)) {
      if (column[f] < 0) column[f] = report.columns++;
    }
  }
  report.warm_coupons = static_cast<int64_t>(warm_rows.size());
  std::vector<uint32_t> cold_rows;
  for (uint32_t c = 0; c < nc; ++c) {
    if (warm[c]) continue;
    bool any = false;
    for (uint32_t f : features.row(c)) any = any || column[f] >= 0;
    if (any) {
      cold_rows.push_back(c);
    } else {
      ++report.cold_without_columns;
    }
  }
  model->coupon_predicted_from_attributes.assign(nc, 0);
  if (warm_rows.empty() || cold_rows.empty()) return report;

  const size_t d = model->dimension;
  const Eigen::Index n = static_cast<Eigen::Index>(warm_rows.size());
  const Eigen::Index p = static_cast<Eigen::Index>(report.columns);
  const Eigen::Index t = static_cast<Eigen::Index>(d + 1);  // bias, then factors
  auto design = [&](const std::vector<uint32_t>& rows) {
    std::vector<Eigen::Triplet<double>> entries;
    for (size_t r = 0; r < rows.size(); ++r) {
      for (uint32_t f : features.row(rows[r])) {
        if (column[f] >= 0) {
          entries.emplace_back(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(column[f]),
                               1.0);
        }
      }
    }
    Eigen::SparseMatrix<double> x(static_cast<Eigen::Index>(rows.size()), p);
    // A feature listed twice on one row counts once (one-hot).
    x.setFromTriplets(entries.begin(), entries.end(), [](double a, double) { return a; });
    return x;
  };
  const Eigen::SparseMatrix<double> x = design(warm_rows);
  Eigen::MatrixXd y(n, t);
  for (Eigen::Index r = 0; r < n; ++r) {
    const uint32_t c = warm_rows[static_cast<size_t>(r)];
    y(r, 0) = model->coupon_bias[c];
    for (size_t k = 0; k < d; ++k) {
      y(r, static_cast<Eigen::Index>(k + 1)) = model->coupon_factors[c * d + k];
    }
  }
  const Eigen::RowVectorXd mean = y.colwise().mean();
  y.rowwise() -= mean;
  report.target_rms = std::sqrt(y.squaredNorm() / static_cast<double>(n * t));

  Eigen::SparseMatrix<double> gram = x.transpose() * x;
  Eigen::SparseMatrix<double> ridge(p, p);
  ridge.setIdentity();
  gram += options.l2 * ridge;
  Eigen::SimplicialLDLT<Eigen::SparseMatrix<double>> solver(gram);
  if (solver.info() != Eigen::Success) {
    return absl::FailedPreconditionError(absl::StrCat(
        "coupon cold start: the ridge system (", p, " columns) could not be factorised"));
  }
  const Eigen::MatrixXd rhs = x.transpose() * y;
  const Eigen::MatrixXd w = solver.solve(rhs);
  if (solver.info() != Eigen::Success || !w.allFinite()) {
    return absl::FailedPreconditionError("coupon cold start: the ridge solve failed");
  }
  report.fit_rmse =
      std::sqrt((x * w - y).squaredNorm() / static_cast<double>(n * t));

  const Eigen::MatrixXd predicted = (design(cold_rows) * w).rowwise() + mean;
  for (size_t r = 0; r < cold_rows.size(); ++r) {
    const uint32_t c = cold_rows[r];
    const Eigen::Index row = static_cast<Eigen::Index>(r);
    model->coupon_bias[c] = static_cast<float>(predicted(row, 0));
    for (size_t k = 0; k < d; ++k) {
      model->coupon_factors[c * d + k] =
          static_cast<float>(predicted(row, static_cast<Eigen::Index>(k + 1)));
    }
    model->coupon_predicted_from_attributes[c] = 1;
  }
  report.predicted_coupons = static_cast<int64_t>(cold_rows.size());
  return report;
}

}  // namespace coupond::pipeline
