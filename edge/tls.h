#ifndef COUPOND_EDGE_TLS_H_
#define COUPOND_EDGE_TLS_H_

// The server's transport security: plaintext, TLS, or mutual TLS, from PEM files.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
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

}  // namespace coupond::edge

#endif  // COUPOND_EDGE_TLS_H_
