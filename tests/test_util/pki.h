#ifndef COUPOND_TESTS_TEST_UTIL_PKI_H_
#define COUPOND_TESTS_TEST_UTIL_PKI_H_

// A throw-away PKI for TLS tests, made with the openssl command line at test time: a CA, a
// server certificate for the name "coupond.test" (deliberately not 127.0.0.1, so that
// tests exercise the name override), a client certificate from the same CA, and a second
// CA with a client certificate of its own. EC P-256 keys, valid for two days.

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/test_util/process.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::testing {

// PEM file paths.
struct TestPki {
  std::string ca, server_cert, server_key, client_cert, client_key;
  std::string other_ca, other_client_cert, other_client_key;
};

namespace pki_internal {

// "" when `args` exits 0; otherwise what failed, with its output.
inline std::string RunOpenssl(const std::vector<std::string>& args, const std::string& dir) {
  std::string output;
  const int status = RunCommand(args, dir + "/openssl.log", &output);
  if (status == 0) return "";
  return absl::StrCat(args[0], " ", args[1], " exited with ", status, ": ", output);
}

inline std::string MakeCa(const std::string& dir, const std::string& name) {
  return RunOpenssl({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", dir + "/" + name + ".key",
                     "-out", dir + "/" + name + ".pem", "-days", "2", "-subj", "/CN=" + name,
                     "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                     "keyUsage=critical,keyCertSign,cRLSign"},
                    dir);
}

inline std::string MakeLeaf(const std::string& dir, const std::string& ca, const std::string& name,
                            const std::string& extensions) {
  const std::string base = dir + "/" + name;
  std::ofstream(base + ".ext") << extensions;
  std::string error = RunOpenssl(
      {"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-keyout", base + ".key", "-out", base + ".csr", "-subj", "/CN=" + name},
      dir);
  if (!error.empty()) return error;
  return RunOpenssl({"openssl", "x509", "-req", "-in", base + ".csr", "-CA", dir + "/" + ca + ".pem",
                     "-CAkey", dir + "/" + ca + ".key", "-CAcreateserial", "-out", base + ".pem",
                     "-days", "2", "-extfile", base + ".ext"},
                    dir);
}

}  // namespace pki_internal

// Makes the PKI's files in `dir` and fills `pki` with their paths. "" on success, else what
// failed (openssl missing, or a command that failed, with its output).
inline std::string MakeTestPki(const std::string& dir, TestPki* pki) {
  using pki_internal::MakeCa;
  using pki_internal::MakeLeaf;
  for (const std::string& error :
       {MakeCa(dir, "ca"), MakeCa(dir, "other-ca"),
        MakeLeaf(dir, "ca", "server", "subjectAltName=DNS:coupond.test\nextendedKeyUsage=serverAuth\n"),
        MakeLeaf(dir, "ca", "client", "extendedKeyUsage=clientAuth\n"),
        MakeLeaf(dir, "other-ca", "other-client", "extendedKeyUsage=clientAuth\n")}) {
    if (!error.empty()) return error;
  }
  pki->ca = dir + "/ca.pem";
  pki->server_cert = dir + "/server.pem";
  pki->server_key = dir + "/server.key";
  pki->client_cert = dir + "/client.pem";
  pki->client_key = dir + "/client.key";
  pki->other_ca = dir + "/other-ca.pem";
  pki->other_client_cert = dir + "/other-client.pem";
  pki->other_client_key = dir + "/other-client.key";
  return "";
}

// One TestPki per test suite, in a directory of its own: Make() from SetUpTestSuite,
// Reset() from TearDownTestSuite, and ASSERT_TRUE(Ready()) in SetUp, which fails each test
// with openssl's reason when the certificates could not be made. Not thread-safe (gtest
// calls the three from one thread).
class SuitePki {
 public:
  void Make() {
    dir_ = std::make_unique<TempDir>();
    error_ = MakeTestPki(dir_->path(), &pki_);
  }
  void Reset() {
    pki_ = TestPki();
    error_.clear();
    dir_.reset();
  }
  const TestPki& pki() const { return pki_; }
  ::testing::AssertionResult Ready() const {
    if (dir_ != nullptr && error_.empty()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "cannot make test certificates with openssl (scripts/install-deps.sh installs "
              "it): "
           << (dir_ == nullptr ? "SuitePki::Make was not called" : error_);
  }

 private:
  std::unique_ptr<TempDir> dir_;
  TestPki pki_;
  std::string error_;
};

}  // namespace coupond::testing

#endif  // COUPOND_TESTS_TEST_UTIL_PKI_H_
