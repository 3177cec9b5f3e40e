#ifndef COUPOND_CLI_COMMANDS_H_
#define COUPOND_CLI_COMMANDS_H_

// couponctl's commands. Each returns the process exit status: 0 success, 1 failure (the
// reason printed on stderr), 2 usage error.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cli/store_commands.h"
#include "client/coupond_client.h"
#include "learn/synthetic.h"

namespace coupond::couponctl {

struct OnlineFlags {
  client::ClientOptions client;
  bool json = false;
};

struct ScoreFlags {
  std::string user;
  std::vector<std::string> coupons;
  std::string campaign_id;  // score a stored campaign's coupons instead of `coupons`
  // name=value pairs: the user's attributes, read by the server for a user the model does
  // not know (cold start).
  std::vector<std::string> user_attributes;
  uint32_t top_k = 0;
  int64_t as_of = 0;
};

struct GenerateFlags {
  std::string out;
  learn::SyntheticPlatformOptions options;
};

struct AssignFlags {
  std::string campaign;    // JSON file: a coupond.v1.AssignRequest
  std::string out;         // CSV of the assignment
  std::string prices_out;  // JSON file for the campaign's prices (optional)
  std::string store;       // solve in-process against this model store (else: the server)
  bool compare_baselines = false;
  absl::Duration timeout = absl::Minutes(10);
  std::string publish_to;  // store the campaign with its prices in this model store
  // Key user ids (core/user_key.h) as coupond does: in-process solves and the stored
  // campaign's eligibility lists. "" for raw ids.
  std::string user_id_key_file;
};

struct DecideFlags {
  std::string user;
  std::string campaign;  // JSON file: an AssignRequest (its campaign is used)
  std::string prices;    // JSON file: CampaignPrices, as written by assign --prices_out
  std::string campaign_id;  // instead of campaign + prices: a campaign stored with the model
};

struct CampaignsFlags {
  std::string store;        // list the store's records (else: ask the server)
  std::string campaign_id;  // with --store: every record of this campaign
};

int Score(const OnlineFlags& online, const ScoreFlags& flags);
int Assign(const OnlineFlags& online, const AssignFlags& flags);
int Decide(const OnlineFlags& online, const DecideFlags& flags);
int Campaigns(const OnlineFlags& online, const CampaignsFlags& flags);
int ModelInfo(const OnlineFlags& online);
int Health(const OnlineFlags& online, absl::Duration wait);
int Generate(const GenerateFlags& flags);
// `user_id_key_file`: key the user ids (core/user_key.h) before publishing; "" for raw ids.
// `retention.keep` (--keep_versions) > 0: then prune the store to that many versions
// (cli/store_commands.h); the flags are checked before anything is published.
int Publish(const std::string& store, const std::string& factors, uint64_t version,
            const std::string& user_id_key_file, const RetentionFlags& retention);
int Versions(const std::string& store);

}  // namespace coupond::couponctl

#endif  // COUPOND_CLI_COMMANDS_H_
