#include "bench/load/store_setup.h"

#include <cstdio>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api/convert.h"
#include "bench/load/common.h"
#include "common/status_macros.h"
#include "coupond/v1/coupon_scoring.pb.h"
#include "learn/synthetic.h"

namespace coupond::load_bench {

absl::StatusOr<core::ModelData> StreamSizedModel(const TianchiStream& s, uint32_t dimension,
                                                 uint64_t seed) {
  learn::SyntheticPlatformOptions o;
  o.num_users = static_cast<uint32_t>(s.users.size());
  o.num_coupons = static_cast<uint32_t>(s.coupons.size());
  o.dimension = dimension;
  o.seed = seed;
  o.now_unix_seconds = 0;
  o.out_of_stock_fraction = 0;
  COUPOND_ASSIGN_OR_RETURN(core::ModelData m, learn::GenerateSyntheticPlatform(o));
  m.user_ids = s.users;
  m.coupon_ids = s.coupons;
  m.description = absl::StrFormat(
      "load_bench: synthetic factors (seed=%d, d=%d) on the Tianchi O2O ids (%d users, %d "
      "coupons)",
      seed, dimension, s.users.size(), s.coupons.size());
  COUPOND_RETURN_IF_ERROR(core::ValidateModelData(m));
  return m;
}

absl::StatusOr<ModelStoreSetup> OpenModelStore(const std::string& path, const TianchiStream& stream,
                                               uint32_t dimension, uint64_t seed) {
  absl::StatusOr<std::unique_ptr<storage::ModelStore>> opened =
      storage::ModelStore::OpenForWrite(path);
  if (!opened.ok()) return Annotate(opened.status(), "--store: ");
  ModelStoreSetup setup;
  setup.store = std::move(*opened);
  absl::StatusOr<core::ModelVersionInfo> latest = setup.store->LatestVersion();
  if (latest.ok()) {
    absl::StatusOr<core::ModelData> read = setup.store->ReadVersion(latest->version);
    if (!read.ok()) return Annotate(read.status());
    setup.model = std::move(*read);
    std::printf("model: version %llu of %s (%zu users, %zu coupons, d=%u)\n",
                static_cast<unsigned long long>(latest->version), path.c_str(),
                setup.model.num_users(), setup.model.num_coupons(), setup.model.dimension);
  } else if (absl::IsNotFound(latest.status())) {
    const absl::Time t0 = absl::Now();
    absl::StatusOr<core::ModelData> made = StreamSizedModel(stream, dimension, seed);
    absl::StatusOr<core::ModelVersionInfo> info =
        made.ok() ? setup.store->Publish(*made)
                  : absl::StatusOr<core::ModelVersionInfo>(made.status());
    if (!info.ok()) return Annotate(info.status(), "model: ");
    setup.model = std::move(*made);
    std::printf("model: %s; published as version %llu to %s in %.2f s\n",
                setup.model.description.c_str(), static_cast<unsigned long long>(info->version),
                path.c_str(), absl::ToDoubleSeconds(absl::Now() - t0));
  } else {
    return Annotate(latest.status(), "--store: ");
  }
  return setup;
}

absl::Status PublishLoadCampaigns(const TianchiStream& s, const RequestSet& requests,
                                  storage::ModelStore* store) {
  for (size_t b = 0; b < requests.campaigns.size(); ++b) {
    v1::Campaign campaign;
    campaign.set_campaign_id(LoadCampaignId(b));
    campaign.set_budget(1);
    for (uint32_t c : requests.campaigns[b]) campaign.add_coupons()->set_coupon_id(s.coupons[c]);
    COUPOND_ASSIGN_OR_RETURN(std::string payload,
                             api::EncodeStoredCampaign(campaign, v1::CampaignPrices()));
    COUPOND_RETURN_IF_ERROR(store->PublishCampaign(campaign.campaign_id(), payload).status());
  }
  return absl::OkStatus();
}

}  // namespace coupond::load_bench
