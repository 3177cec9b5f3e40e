#include "server/request_validation.h"

#include <cmath>

#include "absl/strings/string_view.h"

#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/numeric_bounds.h"
#include "core/model.h"
#include "storage/model_store.h"

namespace coupond::server {
namespace {

// Ids are echoed in error messages; keep the echo short and printable.
std::string Quote(absl::string_view id) {
  constexpr size_t kMaxEcho = 64;
  std::string out;
  for (char c : id.substr(0, kMaxEcho)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (id.size() > kMaxEcho) out += "...";
  return absl::StrCat("'", out, "'");
}

absl::Status CheckRequestId(const std::string& request_id, const RequestLimits& limits) {
  if (request_id.size() > limits.max_request_id_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("request_id: ", request_id.size(),
                                                   " bytes, limit ",
                                                   limits.max_request_id_bytes));
  }
  return absl::OkStatus();
}

// user_attributes (Score and Decide): bounded in count and size, names non-empty, without
// '=' (the pipeline's column separator) and unique ignoring ASCII case (the model matches
// names that way, so two spellings would be one attribute given twice). Values may be
// empty: the model knows no such column, and the attribute is ignored and counted.
absl::Status CheckUserAttributes(const google::protobuf::Map<std::string, std::string>& attributes,
                                 const RequestLimits& limits) {
  if (static_cast<size_t>(attributes.size()) > limits.max_user_attributes) {
    return absl::InvalidArgumentError(absl::StrCat("user_attributes: ", attributes.size(),
                                                   " entries, limit ",
                                                   limits.max_user_attributes));
  }
  absl::flat_hash_map<std::string, absl::string_view> lowered;
  lowered.reserve(attributes.size());
  for (const auto& [name, value] : attributes) {
    const std::string field = absl::StrCat("user_attributes[", Quote(name), "]");
    if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": empty name"));
    if (name.size() > core::kMaxIdBytes) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": name is ", name.size(),
                                                     " bytes, limit ", core::kMaxIdBytes));
    }
    if (name.find('=') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": name contains '='"));
    }
    if (value.size() > core::kMaxIdBytes) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": value is ", value.size(),
                                                     " bytes, limit ", core::kMaxIdBytes));
    }
    auto [it, inserted] = lowered.emplace(absl::AsciiStrToLower(name), name);
    if (!inserted) {
      // Map order is unspecified: name the pair in a stable order.
      absl::string_view a = it->second, b = name;
      if (b < a) std::swap(a, b);
      return absl::InvalidArgumentError(absl::StrCat("user_attributes: names ", Quote(a), " and ",
                                                     Quote(b), " differ only in case"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateScoreRequest(const v1::ScoreRequest& request, const RequestLimits& limits) {
  if (absl::Status s = CheckRequestId(request.request_id(), limits); !s.ok()) return s;
  if (request.user_id().empty()) {
    return absl::InvalidArgumentError("user_id: required");
  }
  if (request.user_id().size() > core::kMaxIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "user_id: ", request.user_id().size(), " bytes, limit ", core::kMaxIdBytes));
  }
  if (absl::Status s = common::CheckIntRange("as_of_unix_seconds", request.as_of_unix_seconds(), 0,
                                             common::kMaxRequestUnixSeconds);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckUserAttributes(request.user_attributes(), limits); !s.ok()) return s;
  const auto& ids = request.coupon_ids();
  // top_k bounds the response when nothing else does: with neither coupon_ids nor a
  // campaign_id the candidates are every active coupon of the model (hundreds of thousands
  // in a large catalogue), so the caller must say how many it wants. A response never needs
  // more scores than one request may name candidates, hence the same limit everywhere.
  if (request.top_k() > limits.max_candidates) {
    return absl::InvalidArgumentError(absl::StrCat("top_k: ", request.top_k(),
                                                   " is out of range [0, ", limits.max_candidates,
                                                   "]"));
  }
  if (ids.empty() && request.campaign_id().empty() && request.top_k() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "top_k: required (1..", limits.max_candidates,
        ") when neither coupon_ids nor campaign_id is given: the candidates are then every "
        "active coupon of the model"));
  }
  if (!request.campaign_id().empty()) {
    if (!ids.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "campaign_id: set together with ", ids.size(),
          " coupon_ids; give either a stored campaign's id or the candidate list"));
    }
    if (request.campaign_id().size() > storage::kMaxCampaignIdBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "campaign_id: ", request.campaign_id().size(), " bytes, limit ", storage::kMaxCampaignIdBytes));
    }
    return absl::OkStatus();
  }
  if (static_cast<size_t>(ids.size()) > limits.max_candidates) {
    return absl::InvalidArgumentError(absl::StrCat("coupon_ids: ", ids.size(),
                                                   " candidates, limit ",
                                                   limits.max_candidates));
  }
  absl::flat_hash_map<absl::string_view, int> first_index;
  first_index.reserve(ids.size());
  for (int i = 0; i < ids.size(); ++i) {
    const std::string& id = ids[i];
    if (id.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("coupon_ids[", i, "]: empty id"));
    }
    if (id.size() > core::kMaxIdBytes) {
      return absl::InvalidArgumentError(absl::StrCat("coupon_ids[", i, "]: ", id.size(),
                                                     " bytes, limit ", core::kMaxIdBytes));
    }
    auto [it, inserted] = first_index.emplace(id, i);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat("coupon_ids[", i, "]: duplicate of coupon_ids[",
                                                     it->second, "] (", Quote(id), ")"));
    }
  }
  return absl::OkStatus();
}

namespace {

absl::Status CheckCampaignSize(const v1::Campaign& campaign, const RequestLimits& limits) {
  if (static_cast<size_t>(campaign.coupons_size()) > limits.max_campaign_coupons) {
    return absl::InvalidArgumentError(absl::StrCat("campaign.coupons: ", campaign.coupons_size(),
                                                   " coupons, limit ",
                                                   limits.max_campaign_coupons));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateAssignRequest(const v1::AssignRequest& request, const RequestLimits& limits) {
  if (absl::Status s = CheckRequestId(request.request_id(), limits); !s.ok()) return s;
  if (absl::Status s = CheckCampaignSize(request.campaign(), limits); !s.ok()) return s;
  if (request.has_users() &&
      static_cast<size_t>(request.users().user_ids_size()) > limits.max_population) {
    return absl::InvalidArgumentError(absl::StrCat("users.user_ids: ",
                                                   request.users().user_ids_size(),
                                                   " users, limit ", limits.max_population));
  }
  if (request.chunk_size() > limits.max_assign_chunk_size) {
    return absl::InvalidArgumentError(absl::StrCat("chunk_size: ", request.chunk_size(),
                                                   " assignments per message, limit ",
                                                   limits.max_assign_chunk_size));
  }
  // A client must not be able to buy an arbitrarily long solve (found by the fuzzer).
  if (request.solver().max_iterations() > limits.max_solver_iterations) {
    return absl::InvalidArgumentError(absl::StrCat("solver.max_iterations: ",
                                                   request.solver().max_iterations(), ", limit ",
                                                   limits.max_solver_iterations));
  }
  // A relative gap: above 1 means nothing (the gap of any feasible plan is at most 1).
  if (absl::Status s = common::CheckDoubleRange("solver.tolerance", request.solver().tolerance(), 0, 1);
      !s.ok()) {
    return s;
  }
  return absl::OkStatus();
}

absl::Status ValidateDecideRequest(const v1::DecideRequest& request, const RequestLimits& limits) {
  if (absl::Status s = CheckRequestId(request.request_id(), limits); !s.ok()) return s;
  if (request.user_id().empty()) return absl::InvalidArgumentError("user_id: required");
  if (request.user_id().size() > core::kMaxIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "user_id: ", request.user_id().size(), " bytes, limit ", core::kMaxIdBytes));
  }
  if (absl::Status s = CheckUserAttributes(request.user_attributes(), limits); !s.ok()) return s;
  if (!request.campaign_id().empty()) {
    if (request.has_campaign() || request.has_prices()) {
      return absl::InvalidArgumentError(
          "campaign_id: set together with campaign/prices; give either a stored campaign's id "
          "or the campaign with its prices");
    }
    if (request.campaign_id().size() > storage::kMaxCampaignIdBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "campaign_id: ", request.campaign_id().size(), " bytes, limit ", storage::kMaxCampaignIdBytes));
    }
    return absl::OkStatus();
  }
  if (!request.has_campaign()) {
    return absl::InvalidArgumentError(
        "campaign: required (or campaign_id, to decide with a stored campaign)");
  }
  return CheckCampaignSize(request.campaign(), limits);
}

absl::Status ValidateListCampaignsRequest(const v1::ListCampaignsRequest& request,
                                          const RequestLimits& limits) {
  return CheckRequestId(request.request_id(), limits);
}

absl::Status ValidateGetModelInfoRequest(const v1::GetModelInfoRequest& request,
                                         const RequestLimits& limits) {
  return CheckRequestId(request.request_id(), limits);
}

}  // namespace coupond::server
