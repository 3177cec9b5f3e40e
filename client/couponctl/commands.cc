#include "client/couponctl/commands.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "pipeline/factor_files.h"
#include "storage/model_store.h"

namespace coupond::couponctl {
namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "couponctl: %s\n", status.ToString().c_str());
  return 1;
}

int Usage(const char* message) {
  std::fprintf(stderr, "couponctl: %s (see --help)\n", message);
  return 2;
}

void PrintJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  if (google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    std::fputs(json.c_str(), stdout);
  }
}

std::string FormatTime(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

}  // namespace

int Score(const OnlineFlags& online, const ScoreFlags& flags) {
  if (flags.user.empty()) return Usage("score: --user is required");
  auto client = client::CoupondClient::Create(online.client);
  if (!client.ok()) return Fail(client.status());
  v1::ScoreRequest request;
  request.set_user_id(flags.user);
  for (const std::string& c : flags.coupons) request.add_coupon_ids(c);
  request.set_top_k(flags.top_k);
  request.set_as_of_unix_seconds(flags.as_of);
  auto response = (*client)->Score(request);
  if (!response.ok()) return Fail(response.status());
  if (online.json) {
    PrintJson(*response);
    return 0;
  }
  const bool known = response->user_resolution() == v1::USER_RESOLUTION_KNOWN_USER;
  std::printf("model version %llu, user %s (%s), %u active candidates scored\n",
              static_cast<unsigned long long>(response->model_version()), flags.user.c_str(),
              known ? "known user" : "unknown user: population prior", response->candidates_scored());
  std::printf("%5s  %-24s %12s %10s\n", "rank", "coupon", "probability", "logit");
  int rank = 0;
  for (const v1::CouponScore& s : response->scores()) {
    std::printf("%5d  %-24s %12.6f %10.4f\n", ++rank, s.coupon_id().c_str(), s.probability(),
                s.logit());
  }
  if (response->unknown_coupon_ids_size() > 0) {
    std::printf("unknown coupon ids: %s\n",
                absl::StrJoin(response->unknown_coupon_ids(), ", ").c_str());
  }
  if (response->inactive_coupon_ids_size() > 0) {
    std::printf("inactive coupon ids: %s\n",
                absl::StrJoin(response->inactive_coupon_ids(), ", ").c_str());
  }
  return 0;
}

int ModelInfo(const OnlineFlags& online) {
  auto client = client::CoupondClient::Create(online.client);
  if (!client.ok()) return Fail(client.status());
  auto response = (*client)->GetModelInfo();
  if (!response.ok()) return Fail(response.status());
  if (online.json) {
    PrintJson(*response);
    return 0;
  }
  const v1::ModelInfo& m = response->model();
  std::printf("version      %llu\n", static_cast<unsigned long long>(m.version()));
  std::printf("dimension    %u\n", m.dimension());
  std::printf("users        %llu\n", static_cast<unsigned long long>(m.num_users()));
  std::printf("coupons      %llu\n", static_cast<unsigned long long>(m.num_coupons()));
  std::printf("global bias  %.6f\n", m.global_bias());
  std::printf("created      %s\n", FormatTime(m.created_unix_seconds()).c_str());
  std::printf("loaded       %s\n", FormatTime(m.loaded_unix_seconds()).c_str());
  std::printf("checksum     %s\n", m.checksum().c_str());
  std::printf("description  %s\n", m.description().c_str());
  return 0;
}

int Health(const OnlineFlags& online, absl::Duration wait) {
  auto client = client::CoupondClient::Create(online.client);
  if (!client.ok()) return Fail(client.status());
  if (wait > absl::ZeroDuration()) {
    if (absl::Status s = (*client)->WaitUntilServing(wait); !s.ok()) return Fail(s);
    std::printf("SERVING\n");
    return 0;
  }
  auto status = (*client)->CheckHealth();
  if (!status.ok()) return Fail(status.status());
  std::printf("%s\n", grpc::health::v1::HealthCheckResponse::ServingStatus_Name(*status).c_str());
  return *status == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

int Generate(const GenerateFlags& flags) {
  if (flags.out.empty()) return Usage("generate: --out is required");
  auto model = core::GenerateSyntheticPlatform(flags.options);
  if (!model.ok()) return Fail(model.status());
  if (absl::Status s = pipeline::WriteFactorFiles(*model, flags.out); !s.ok()) return Fail(s);
  std::printf("wrote %zu users and %zu coupons (dimension %u) to %s\n", model->num_users(),
              model->num_coupons(), model->dimension, flags.out.c_str());
  return 0;
}

int Publish(const std::string& store_path, const std::string& factors, uint64_t version) {
  if (store_path.empty()) return Usage("publish: --store is required");
  if (factors.empty()) return Usage("publish: --factors is required");
  auto model = pipeline::ReadFactorFiles(factors);
  if (!model.ok()) return Fail(model.status());
  auto store = storage::ModelStore::OpenForWrite(store_path);
  if (!store.ok()) return Fail(store.status());
  storage::PublishOptions options;
  options.version = version;
  auto info = (*store)->Publish(*model, options);
  if (!info.ok()) return Fail(info.status());
  std::printf("published version %llu to %s: %llu users, %llu coupons, dimension %u, checksum %016llx\n",
              static_cast<unsigned long long>(info->version), store_path.c_str(),
              static_cast<unsigned long long>(info->num_users),
              static_cast<unsigned long long>(info->num_coupons), info->dimension,
              static_cast<unsigned long long>(info->checksum));
  return 0;
}

int Versions(const std::string& store_path) {
  if (store_path.empty()) return Usage("versions: --store is required");
  auto store = storage::ModelStore::OpenForRead(store_path);
  if (!store.ok()) return Fail(store.status());
  auto versions = (*store)->ListVersions();
  if (!versions.ok()) return Fail(versions.status());
  std::printf("%8s  %-23s %5s %10s %9s  %s\n", "version", "created", "dim", "users", "coupons",
              "description");
  for (const core::ModelVersionInfo& v : *versions) {
    std::printf("%8llu  %-23s %5u %10llu %9llu  %s\n", static_cast<unsigned long long>(v.version),
                FormatTime(v.created_unix_seconds).c_str(), v.dimension,
                static_cast<unsigned long long>(v.num_users),
                static_cast<unsigned long long>(v.num_coupons), v.description.c_str());
  }
  return 0;
}

}  // namespace coupond::couponctl
