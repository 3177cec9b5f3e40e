#ifndef COUPOND_CLI_ADMIN_COMMANDS_H_
#define COUPOND_CLI_ADMIN_COMMANDS_H_

// couponctl's connection security (TLS, the admin and collector tokens) and the Admin commands, reload
// and status. Commands return the process exit status: 0 success, 1 failure (the reason
// on stderr), 2 usage error.

#include <string>

#include "absl/status/status.h"
#include "cli/commands.h"

namespace coupond::couponctl {

struct SecurityFlags {
  std::string tls_ca;    // PEM CA of the server's certificate ("" with TLS: system roots)
  std::string tls_cert;  // PEM client certificate (mutual TLS), with tls_key
  std::string tls_key;
  std::string tls_server_name;  // name to check the server's certificate against
  std::string admin_token_file;
  // The collector's token (report-outcome, simulate-traffic, collector-stats): sent on
  // Collector calls only.
  std::string collector_token_file;
};

// Fills `options` from the flags: TLS when any tls flag is given (for every connection
// couponctl makes: --server and --collector), the admin token when admin_token_file is,
// the collector token (edge::ReadTokenFile's rules) when collector_token_file is. Errors
// name the flag or file.
absl::Status ApplySecurityFlags(const SecurityFlags& flags, client::ClientOptions* options);

// couponctl reload: Admin.ReloadModel. Exit 0 when the store's newest version is served
// (changed or not), 1 when it was refused (the reason on stderr) or the call failed.
int Reload(const OnlineFlags& online);
// couponctl status: Admin.GetServerStatus, as text or JSON.
int Status(const OnlineFlags& online);

}  // namespace coupond::couponctl

#endif  // COUPOND_CLI_ADMIN_COMMANDS_H_
