#include "edge/tls.h"

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace coupond::edge {
namespace {

// Certificates and keys are a few KiB; anything this large is not one.
constexpr size_t kMaxPemBytes = 1 << 20;

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view what,
                                    const char* marker) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(what, " '", path, "': cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  std::string pem = text.str();
  if (pem.size() > kMaxPemBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", path, "': ", pem.size(), " bytes, not a PEM file"));
  }
  if (!absl::StrContains(pem, marker)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", path, "': no '", marker, "' block (PEM expected)"));
  }
  return pem;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsOptions& options) {
  if (!options.enabled()) {
    if (!options.client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "tls_client_ca: client certificates need TLS (give tls_cert and tls_key too)");
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.cert_file.empty() || options.key_file.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.cert_file.empty() ? "tls_cert" : "tls_key", ": required with ",
                     options.cert_file.empty() ? "tls_key" : "tls_cert"));
  }
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  auto cert = ReadPem(options.cert_file, "tls_cert", "-----BEGIN CERTIFICATE-----");
  if (!cert.ok()) return cert.status();
  auto key = ReadPem(options.key_file, "tls_key", "PRIVATE KEY-----");
  if (!key.ok()) return key.status();
  pair.cert_chain = *std::move(cert);
  pair.private_key = *std::move(key);
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!options.client_ca_file.empty()) {
    auto ca = ReadPem(options.client_ca_file, "tls_client_ca", "-----BEGIN CERTIFICATE-----");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

std::string DescribeTls(const ServerTlsOptions& options) {
  if (!options.enabled()) return "plaintext";
  return options.client_ca_file.empty() ? "TLS" : "mutual TLS (client certificates required)";
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& target,
                                                           const ChannelTlsOptions& options,
                                                           absl::string_view flag_prefix) {
  if (target.empty()) return absl::InvalidArgumentError("target: empty");
  if (!options.enabled()) return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  const std::string ca_flag = absl::StrCat(flag_prefix, "tls_ca");
  const std::string cert_flag = absl::StrCat(flag_prefix, "tls_cert");
  const std::string key_flag = absl::StrCat(flag_prefix, "tls_key");
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError(
        options.cert_file.empty() ? absl::StrCat(cert_flag, ": required with ", key_flag)
                                  : absl::StrCat(key_flag, ": required with ", cert_flag));
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.ca_file.empty()) {
    auto ca = ReadPem(options.ca_file, ca_flag, "-----BEGIN CERTIFICATE-----");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
  }
  if (!options.cert_file.empty()) {
    auto cert = ReadPem(options.cert_file, cert_flag, "-----BEGIN CERTIFICATE-----");
    if (!cert.ok()) return cert.status();
    auto key = ReadPem(options.key_file, key_flag, "PRIVATE KEY-----");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  grpc::ChannelArguments args;
  if (!options.server_name.empty()) args.SetSslTargetNameOverride(options.server_name);
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(ssl), args);
}

std::string DescribeTls(const ChannelTlsOptions& options) {
  if (!options.enabled()) return "plaintext";
  return options.cert_file.empty() ? "TLS" : "mutual TLS (with a client certificate)";
}

}  // namespace coupond::edge
