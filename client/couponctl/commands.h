#ifndef COUPOND_CLIENT_COUPONCTL_COMMANDS_H_
#define COUPOND_CLIENT_COUPONCTL_COMMANDS_H_

// couponctl's commands. Each returns the process exit status: 0 success, 1 failure (the
// reason printed on stderr), 2 usage error.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/coupond_client.h"
#include "core/synthetic.h"

namespace coupond::couponctl {

struct OnlineFlags {
  client::ClientOptions client;
  bool json = false;
};

struct ScoreFlags {
  std::string user;
  std::vector<std::string> coupons;
  uint32_t top_k = 0;
  int64_t as_of = 0;
};

struct GenerateFlags {
  std::string out;
  core::SyntheticPlatformOptions options;
};

int Score(const OnlineFlags& online, const ScoreFlags& flags);
int ModelInfo(const OnlineFlags& online);
int Health(const OnlineFlags& online, absl::Duration wait);
int Generate(const GenerateFlags& flags);
int Publish(const std::string& store, const std::string& factors, uint64_t version);
int Versions(const std::string& store);

}  // namespace coupond::couponctl

#endif  // COUPOND_CLIENT_COUPONCTL_COMMANDS_H_
