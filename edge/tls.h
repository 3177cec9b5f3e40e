#ifndef COUPOND_EDGE_TLS_H_
#define COUPOND_EDGE_TLS_H_

// Transport security from PEM files: the server's (plaintext, TLS, or mutual TLS) and that
// of a server process dialling another one (coupond's decision sink towards collectord).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/server_credentials.h"

namespace coupond::edge {

struct ServerTlsOptions {
  // PEM files: the server's certificate chain and its private key. Both (TLS) or neither
  // (plaintext, the default).
  std::string cert_file;
  std::string key_file;
  // PEM file of the CA certificate(s) that sign client certificates. When set, every
  // client must present a certificate that verifies against them (mutual TLS); clients
  // without one, or with one from another CA, fail the handshake. Requires cert_file.
  std::string client_ca_file;

  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

// Plaintext credentials when TLS is not enabled, SSL credentials otherwise.
// InvalidArgument when only one of cert_file/key_file is given, when client_ca_file is
// given without them, or when a file does not hold what it should (a certificate: a
// "BEGIN CERTIFICATE" block; a key: a "PRIVATE KEY" block); NotFound when a file cannot
// be read. Whether the key matches the certificate is checked by gRPC when the port is
// opened (CoupondServer::Start then fails).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsOptions& options);

// For log lines: "plaintext", "TLS" or "mutual TLS (client certificates required)".
std::string DescribeTls(const ServerTlsOptions& options);

// How a server process dials another one (e.g. coupond's --collector target). TLS is on
// when any field is set (as for couponctl's --tls_* flags); all empty (default): plaintext.
struct ChannelTlsOptions {
  // PEM file of the CA certificate(s) the server's certificate must verify against. Empty:
  // the system's roots (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH overrides them).
  std::string ca_file;
  // PEM files of this process's client certificate chain and key, for a server that
  // requires client certificates (mutual TLS). Both or neither.
  std::string cert_file;
  std::string key_file;
  // The name the server's certificate must carry when it differs from the target's host
  // (e.g. dialling an IP address). Empty (default): the target's host.
  std::string server_name;

  bool enabled() const {
    return !ca_file.empty() || !cert_file.empty() || !key_file.empty() || !server_name.empty();
  }
};

// A channel to `target` (connecting lazily) with plaintext or TLS credentials. Errors name
// the flag a field comes from, as `flag_prefix` + "tls_ca" / "tls_cert" / "tls_key"
// (e.g. prefix "collector_" for coupond's --collector_tls_ca): InvalidArgument when only one
// of cert_file/key_file is given or a file holds no PEM block of the right kind, NotFound
// when a file cannot be read, InvalidArgument for an empty target.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& target,
                                                           const ChannelTlsOptions& options,
                                                           absl::string_view flag_prefix);

// For log lines: "plaintext", "TLS" or "mutual TLS (with a client certificate)".
std::string DescribeTls(const ChannelTlsOptions& options);

}  // namespace coupond::edge

#endif  // COUPOND_EDGE_TLS_H_
