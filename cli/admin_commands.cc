#include "cli/admin_commands.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/cli_util.h"
#include "edge/secret_files.h"
#include "google/protobuf/util/json_util.h"

namespace coupond::couponctl {
namespace {

std::string FormatUnix(int64_t unix_seconds) {
  if (unix_seconds == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

std::string MiB(uint64_t bytes) {
  return absl::StrCat(absl::SixDigits(static_cast<double>(bytes) / 1048576.0), " MiB");
}

}  // namespace

absl::Status ApplySecurityFlags(const SecurityFlags& flags, client::ClientOptions* options) {
  if (!flags.tls_ca.empty() || !flags.tls_cert.empty() || !flags.tls_key.empty() ||
      !flags.tls_server_name.empty()) {
    absl::StatusOr<client::ClientTlsOptions> tls =
        client::LoadClientTls(flags.tls_ca, flags.tls_cert, flags.tls_key, flags.tls_server_name);
    if (!tls.ok()) return tls.status();
    options->tls = *std::move(tls);
  }
  if (!flags.admin_token_file.empty()) {
    absl::StatusOr<std::string> token = client::ReadAdminToken(flags.admin_token_file);
    if (!token.ok()) return token.status();
    options->admin_token = *std::move(token);
  }
  if (!flags.collector_token_file.empty()) {
    absl::StatusOr<std::string> token =
        edge::ReadTokenFile(flags.collector_token_file, "collector token file");
    if (!token.ok()) return token.status();
    options->collector_token = *std::move(token);
  }
  return absl::OkStatus();
}

int Reload(const OnlineFlags& online) {
  if (online.client.admin_token.empty()) return Usage("reload: --admin_token_file is required");
  auto client = client::CoupondClient::Create(online.client);
  if (!client.ok()) return Fail(client.status());
  auto response = (*client)->ReloadModel();
  if (!response.ok()) return Fail(response.status());
  if (response->changed()) {
    std::printf("loaded model version %llu (was %llu)\n",
                static_cast<unsigned long long>(response->served_version()),
                static_cast<unsigned long long>(response->previous_version()));
  } else {
    std::printf("model version %llu is the newest; nothing to load\n",
                static_cast<unsigned long long>(response->served_version()));
  }
  if (!response->campaigns_error().empty()) {
    std::fprintf(stderr, "couponctl: campaigns: %s\n", response->campaigns_error().c_str());
  }
  return 0;
}

int Status(const OnlineFlags& online) {
  if (online.client.admin_token.empty()) return Usage("status: --admin_token_file is required");
  auto client = client::CoupondClient::Create(online.client);
  if (!client.ok()) return Fail(client.status());
  auto r = (*client)->GetServerStatus();
  if (!r.ok()) return Fail(r.status());
  if (online.json) {
    std::string json;
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = true;
    options.preserve_proto_field_names = true;
    options.always_print_primitive_fields = true;
    if (!google::protobuf::util::MessageToJsonString(*r, &json, options).ok()) {
      return Fail(absl::InternalError("cannot print JSON"));
    }
    std::fputs(json.c_str(), stdout);
    return 0;
  }
  std::printf("served version    %llu\n", static_cast<unsigned long long>(r->served_version()));
  std::printf("snapshot          %s (%u alive)\n", MiB(r->snapshot_bytes()).c_str(),
              r->live_snapshots());
  std::printf("last load         %s (%.3f s)\n", FormatUnix(r->last_load_unix_seconds()).c_str(),
              r->last_load_seconds());
  std::printf("loads / refusals  %llu / %llu\n", static_cast<unsigned long long>(r->loads()),
              static_cast<unsigned long long>(r->rejections()));
  if (r->has_last_rejection()) {
    const v1::RejectedVersion& x = r->last_rejection();
    std::printf("last refusal      version %llu at %s: %s: %s\n",
                static_cast<unsigned long long>(x.version()),
                FormatUnix(x.rejected_unix_seconds()).c_str(), x.code().c_str(),
                x.reason().c_str());
  }
  std::printf("memory limit      %s (%s)\n",
              r->memory_limit_source().empty() ? "-" : MiB(r->memory_limit_bytes()).c_str(),
              r->memory_limit_source().empty() ? "no load attempted yet"
                                               : r->memory_limit_source().c_str());
  std::printf("dropped calls     %llu past their deadline, %llu cancelled\n",
              static_cast<unsigned long long>(r->dropped_deadline_exceeded()),
              static_cast<unsigned long long>(r->dropped_cancelled()));
  return 0;
}

}  // namespace coupond::couponctl
