#include "bench/load/stream.h"

#include <cstdlib>
#include <memory>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "core/model.h"
#include "pipeline/csv.h"

namespace coupond::load_bench {

std::string DefaultDataPath() {
  const char* env = std::getenv("COUPOND_SHARED_DATA");
  return std::string(env != nullptr ? env : "../shared/data") +
         "/tianchi_o2o_requests/ccf_offline_stage1_test_revised.csv";
}

absl::StatusOr<TianchiStream> ReadTianchi(const std::string& path) {
  COUPOND_ASSIGN_OR_RETURN(std::unique_ptr<pipeline::CsvReader> reader,
                           pipeline::CsvReader::Open(path));
  COUPOND_ASSIGN_OR_RETURN(const size_t user_col, reader->RequireColumn("User_id"));
  COUPOND_ASSIGN_OR_RETURN(const size_t coupon_col, reader->RequireColumn("Coupon_id"));
  TianchiStream s;
  absl::flat_hash_map<std::string, uint32_t> user_index, coupon_index;
  while (true) {
    COUPOND_ASSIGN_OR_RETURN(const bool more, reader->Next());
    if (!more) break;
    const pipeline::CsvRecord& r = reader->record();
    const std::optional<absl::string_view> user = r.Get(user_col);
    const std::optional<absl::string_view> coupon = r.Get(coupon_col);
    if (!r.ok() || !user || !coupon || user->size() > core::kMaxIdBytes ||
        coupon->size() > core::kMaxIdBytes) {
      ++s.skipped_rows;
      continue;
    }
    auto [u, new_user] = user_index.try_emplace(std::string(*user), s.users.size());
    if (new_user) s.users.emplace_back(*user);
    auto [c, new_coupon] = coupon_index.try_emplace(std::string(*coupon), s.coupons.size());
    if (new_coupon) {
      s.coupons.emplace_back(*coupon);
      s.coupon_rows.push_back(0);
    }
    ++s.coupon_rows[c->second];
    s.row_user.push_back(u->second);
    s.row_coupon.push_back(c->second);
  }
  if (s.row_user.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no usable rows"));
  return s;
}

void PadCoupons(size_t min_coupons, TianchiStream* s) {
  for (size_t i = 0; s->coupons.size() < min_coupons; ++i) {
    s->coupons.push_back(absl::StrFormat("pad-%05d", i));
    s->coupon_rows.push_back(1);
  }
}

}  // namespace coupond::load_bench
