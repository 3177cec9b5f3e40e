// The request stream: the Tianchi O2O offline test set (113,640 coupon receipts of 76,309
// users for 2,050 coupons, July 2016), read in file order with the distinct user and coupon
// ids and each coupon's popularity.

#ifndef COUPOND_BENCH_LOAD_STREAM_H_
#define COUPOND_BENCH_LOAD_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace coupond::load_bench {

struct TianchiStream {
  std::vector<std::string> users;     // distinct, in order of first appearance
  std::vector<std::string> coupons;   // distinct, in order of first appearance
  std::vector<uint64_t> coupon_rows;  // rows naming each coupon (its popularity)
  std::vector<uint32_t> row_user;     // per usable row, index into users
  std::vector<uint32_t> row_coupon;   // per usable row, index into coupons
  size_t skipped_rows = 0;            // malformed, or no user or coupon id
};

// $COUPOND_SHARED_DATA/tianchi_o2o_requests/ccf_offline_stage1_test_revised.csv, else the
// same under ../shared/data.
std::string DefaultDataPath();

// Reads the CSV at `path` (columns User_id and Coupon_id). InvalidArgument when no row is
// usable.
absl::StatusOr<TianchiStream> ReadTianchi(const std::string& path);

// The stream's coupons padded with "pad-NNNNN" coupons of popularity 1 (the rarest possible)
// until there are at least `min_coupons`.
void PadCoupons(size_t min_coupons, TianchiStream* s);

}  // namespace coupond::load_bench

#endif  // COUPOND_BENCH_LOAD_STREAM_H_
