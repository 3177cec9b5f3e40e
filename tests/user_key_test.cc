// Pseudonymous user keys (core/user_key.h): a known HMAC-SHA256 vector, stability, keys
// passing through, merging a user present raw and keyed, and bad secrets.

#include "core/user_key.h"

#include <fstream>
#include <string>

#include "edge/secret_files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "learn/training_data.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::core {
namespace {

using ::coupond::testing::IsOk;
using ::coupond::testing::StatusIs;
using ::testing::HasSubstr;

TEST(UserKeyTest, IsTheTruncatedHmacSha256OfTheId) {
  // The expected value is the first 32 hex digits of
  //   printf 'u0000042' | openssl dgst -sha256 -hmac 'coupond-test-secret-32-bytes!!!!'
  auto keyer = UserKeyer::Create("coupond-test-secret-32-bytes!!!!");
  ASSERT_THAT(keyer.status(), IsOk());
  const std::string key = *keyer->Key("u0000042");
  EXPECT_EQ(key.substr(0, 3), "k1:");
  EXPECT_EQ(key.size(), 35u);
  EXPECT_EQ(key, "k1:13132ea769724c5430ea88225e8817fe");
  EXPECT_TRUE(IsUserKey(key));
  EXPECT_EQ(*keyer->Key(key), key);  // a key passes through
  EXPECT_NE(*keyer->Key("u0000043"), key);
  auto other = UserKeyer::Create("another-secret-of-enough-bytes!!");
  ASSERT_THAT(other.status(), IsOk());
  EXPECT_NE(*other->Key("u0000042"), key);  // keyed: another secret, another key
  EXPECT_FALSE(IsUserKey("k1:0123"));
  EXPECT_FALSE(IsUserKey("k1:0123456789ABCDEF0123456789abcdef"));  // upper case is not ours
  EXPECT_TRUE(IsUserKey("k1:0123456789abcdef0123456789abcdef"));
  EXPECT_EQ(keyer->Key("")->size(), 35u);  // the empty id has a key too
}

TEST(UserKeyTest, ShortSecretsAndMissingFilesAreRefused) {
  EXPECT_THAT(UserKeyer::Create("short").status(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least 16")));
  EXPECT_THAT(edge::ReadSecretFile("/nonexistent/key", "user id key file").status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("user id key file '/nonexistent/key'")));
  coupond::testing::TempDir dir;
  std::ofstream(dir.Sub("short")) << "fifteen-bytes!!\n";
  EXPECT_THAT(edge::ReadSecretFile(dir.Sub("short"), "user id key file").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least 16")));
  std::ofstream(dir.Sub("key")) << "coupond-test-secret-32-bytes!!!!\n";
  auto secret = edge::ReadSecretFile(dir.Sub("key"), "user id key file");
  ASSERT_THAT(secret.status(), IsOk());
  auto from_file = UserKeyer::Create(*secret);
  ASSERT_THAT(from_file.status(), IsOk());
  auto direct = UserKeyer::Create("coupond-test-secret-32-bytes!!!!");
  EXPECT_EQ(*from_file->Key("x"), *direct->Key("x"));  // the trailing newline is not part of it
}

TEST(UserKeyTest, TrainingDataMergesAUserPresentRawAndKeyed) {
  auto keyer = UserKeyer::Create("coupond-test-secret-32-bytes!!!!");
  ASSERT_THAT(keyer.status(), IsOk());
  learn::TrainingData data;
  data.user_ids = {"alice", *keyer->Key("alice"), "bob"};
  data.coupon_ids = {"c1"};
  data.campaign_ids = {"k"};
  data.user_features.names = {"age=30", "city=x"};
  data.user_features.AddRow(std::vector<uint32_t>{0});
  data.user_features.AddRow(std::vector<uint32_t>{1});
  data.user_features.AddRow(std::vector<uint32_t>{});
  data.coupon_features.AddRow(std::vector<uint32_t>{});
  data.coupon_attributes.resize(1);
  for (uint32_t u : {0u, 1u, 2u}) {
    learn::Example e;
    e.user = u;
    data.examples.push_back(e);
  }
  ASSERT_THAT(PseudonymiseUsers(*keyer, &data), IsOk());
  ASSERT_EQ(data.user_ids.size(), 2u);
  EXPECT_EQ(data.user_ids[0], *keyer->Key("alice"));
  EXPECT_EQ(data.user_ids[1], *keyer->Key("bob"));
  EXPECT_EQ(data.examples[0].user, 0u);
  EXPECT_EQ(data.examples[1].user, 0u);
  EXPECT_EQ(data.examples[2].user, 1u);
  EXPECT_THAT(std::vector<uint32_t>(data.user_features.row(0).begin(), data.user_features.row(0).end()),
              ::testing::ElementsAre(0u, 1u));
  for (const std::string& id : data.user_ids) EXPECT_TRUE(IsUserKey(id));
}

TEST(UserKeyTest, AModelWithAUserPresentRawAndKeyedIsRefused) {
  auto keyer = UserKeyer::Create("coupond-test-secret-32-bytes!!!!");
  ASSERT_THAT(keyer.status(), IsOk());
  ModelData model;
  model.user_ids = {"alice", "bob"};
  ASSERT_THAT(PseudonymiseUsers(*keyer, &model), IsOk());
  EXPECT_EQ(model.user_ids[0], *keyer->Key("alice"));
  model.user_ids = {"alice", *keyer->Key("alice")};
  EXPECT_THAT(PseudonymiseUsers(*keyer, &model),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("user_ids[1]: has the same key as user_ids[0]")));
}

}  // namespace
}  // namespace coupond::core
