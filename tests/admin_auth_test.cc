// The Admin service's token: how the file is read and checked, and how a call's
// "authorization" metadata is judged. (Served over a real port in serving_integration_test.)

#include <sys/stat.h>

#include <fstream>
#include <map>
#include <string>

#include "edge/bearer_token.h"
#include "gmock/gmock.h"
#include "grpcpp/support/string_ref.h"
#include "gtest/gtest.h"
#include "server/admin_service.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::server {
namespace {

using ::coupond::testing::StatusIs;
using ::coupond::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "0123456789abcdef0123456789abcdef";

TEST(ConstantTimeEqualsTest, EqualOnlyForTheSameBytes) {
  EXPECT_TRUE(edge::ConstantTimeEquals(kToken, kToken));
  EXPECT_TRUE(edge::ConstantTimeEquals("", ""));
  EXPECT_FALSE(edge::ConstantTimeEquals("", kToken));
  EXPECT_FALSE(edge::ConstantTimeEquals(kToken, ""));
  const std::string token = kToken;
  EXPECT_FALSE(edge::ConstantTimeEquals(token.substr(0, 31), token));  // a prefix
  EXPECT_FALSE(edge::ConstantTimeEquals(token + "0", token));          // one more byte
  EXPECT_FALSE(edge::ConstantTimeEquals(token + token, token));        // repeated
  std::string last = token;
  last.back() = 'g';
  EXPECT_FALSE(edge::ConstantTimeEquals(last, token));  // the last byte
  std::string first = token;
  first.front() = '1';
  EXPECT_FALSE(edge::ConstantTimeEquals(first, token));  // the first byte
  // A presented value that repeats the token's first byte cannot pass by wrapping around.
  EXPECT_FALSE(edge::ConstantTimeEquals("0", "00"));
  EXPECT_TRUE(edge::ConstantTimeEquals("00", "00"));
}

class BearerTest : public ::testing::Test {
 protected:
  absl::Status Check(std::initializer_list<std::pair<std::string, std::string>> entries) {
    storage_.assign(entries.begin(), entries.end());
    std::multimap<grpc::string_ref, grpc::string_ref> metadata;
    for (const auto& [k, v] : storage_) metadata.emplace(k, v);
    return CheckBearerToken(metadata, kToken);
  }
  std::vector<std::pair<std::string, std::string>> storage_;
};

TEST_F(BearerTest, AcceptsTheTokenAsABearerCredential) {
  const std::string token = kToken;
  EXPECT_OK(Check({{"authorization", "Bearer " + token}}));
  EXPECT_OK(Check({{"authorization", "bearer " + token}}));  // the scheme is case-insensitive
  EXPECT_OK(Check({{"x-other", "1"}, {"authorization", "Bearer " + token}}));
}

TEST_F(BearerTest, RefusesEverythingElseWithoutEchoingIt) {
  const std::string token = kToken;
  const auto kUnauthenticated = absl::StatusCode::kUnauthenticated;
  EXPECT_THAT(Check({}), StatusIs(kUnauthenticated, HasSubstr("authorization: Bearer <token>")));
  EXPECT_THAT(Check({{"authorization", token}}), StatusIs(kUnauthenticated));  // no scheme
  EXPECT_THAT(Check({{"authorization", "Basic " + token}}), StatusIs(kUnauthenticated));
  EXPECT_THAT(Check({{"authorization", "Bearer"}}), StatusIs(kUnauthenticated));
  EXPECT_THAT(Check({{"authorization", "Bearer "}}), StatusIs(kUnauthenticated));
  EXPECT_THAT(Check({{"authorization", "Bearer " + token.substr(1)}}), StatusIs(kUnauthenticated));
  EXPECT_THAT(Check({{"authorization", "Bearer " + token + " "}}), StatusIs(kUnauthenticated));
  EXPECT_THAT(Check({{"authorization", "Bearer  " + token}}), StatusIs(kUnauthenticated));
  EXPECT_THAT(Check({{"authorization", "Bearer wrong-token-of-some-length"}}),
              StatusIs(kUnauthenticated, Not(HasSubstr("wrong-token"))));
  // Two authorization entries are ambiguous: refused even if one of them is right.
  EXPECT_THAT(Check({{"authorization", "Bearer " + token}, {"authorization", "Bearer x"}}),
              StatusIs(kUnauthenticated));
  EXPECT_THAT(Check({{"x-authorization", "Bearer " + token}}), StatusIs(kUnauthenticated));
}

class TokenFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& content) {
    const std::string path = dir_.Sub("token");
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
    chmod(path.c_str(), 0600);
    return path;
  }
  TempDir dir_;
};

TEST_F(TokenFileTest, ReadsTheTokenWithoutSurroundingWhitespace) {
  const std::string token = kToken;
  EXPECT_OK(ReadAdminTokenFile(Write(token + "\n")));
  EXPECT_EQ(*ReadAdminTokenFile(Write(token + "\n")), token);
  EXPECT_EQ(*ReadAdminTokenFile(Write("  " + token + "\r\n\n")), token);
  EXPECT_EQ(*ReadAdminTokenFile(Write(token)), token);
}

TEST_F(TokenFileTest, RefusesMissingShortAndNonAsciiTokens) {
  EXPECT_THAT(ReadAdminTokenFile(dir_.Sub("absent")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("cannot open")));
  EXPECT_THAT(ReadAdminTokenFile(Write("")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("0 bytes, at least 16")));
  EXPECT_THAT(ReadAdminTokenFile(Write("\n\n")), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ReadAdminTokenFile(Write("short-token\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("11 bytes")));
  EXPECT_THAT(ReadAdminTokenFile(Write("0123456789 abcdef0123")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("byte 10")));
  EXPECT_THAT(ReadAdminTokenFile(Write("0123456789abcdef\xc3\xa9")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("visible ASCII")));
  EXPECT_THAT(ReadAdminTokenFile(Write(std::string(5000, 'x'))),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("limit 4096")));
}

}  // namespace
}  // namespace coupond::server
