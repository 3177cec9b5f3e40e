// The model store the server polls: opened (or made under the work directory), holding a
// synthetic model sized to the request stream, and in campaign mode the stored campaigns the
// requests name.

#ifndef COUPOND_BENCH_LOAD_STORE_SETUP_H_
#define COUPOND_BENCH_LOAD_STORE_SETUP_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/load/requests.h"
#include "bench/load/stream.h"
#include "core/model.h"
#include "storage/model_store.h"

namespace coupond::load_bench {

// A synthetic model sized to the stream: learn/synthetic.h's draws, with the stream's ids.
// Every coupon is active at any time (no validity windows, no coupon out of stock), so each
// request's candidates are all scored.
absl::StatusOr<core::ModelData> StreamSizedModel(const TianchiStream& s, uint32_t dimension,
                                                 uint64_t seed);

struct ModelStoreSetup {
  std::unique_ptr<storage::ModelStore> store;
  core::ModelData model;  // the store's newest version: what the reload phase publishes
};

// Opens the store at `path` for writing and reads its newest version; a store without
// versions gets StreamSizedModel(stream, dimension, seed) published as its first. Prints
// the "model:" line. The error's message is worded for "load_bench: <message>".
absl::StatusOr<ModelStoreSetup> OpenModelStore(const std::string& path, const TianchiStream& stream,
                                               uint32_t dimension, uint64_t seed);

// Stores the campaigns of BuildCampaignRequests (one record each; a budget of 1 and no
// prices: Score reads only their coupons).
absl::Status PublishLoadCampaigns(const TianchiStream& s, const RequestSet& requests,
                                  storage::ModelStore* store);

}  // namespace coupond::load_bench

#endif  // COUPOND_BENCH_LOAD_STORE_SETUP_H_
