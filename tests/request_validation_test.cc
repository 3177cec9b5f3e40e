// Request validation: every malformed field is INVALID_ARGUMENT naming the field; valid
// edge cases (unknown ids, the largest top_k) pass through; every number outside its
// documented range (the extreme values of tests/test_util/extreme_values.h) is refused.

#include "server/request_validation.h"

#include <cmath>
#include <functional>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/extreme_values.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::server {
namespace {

using ::coupond::testing::ExtremeDoubles;
using ::coupond::testing::ExtremeInt64s;
using ::coupond::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

v1::ScoreRequest Valid() {
  v1::ScoreRequest r;
  r.set_user_id("u1");
  r.add_coupon_ids("c1");
  r.add_coupon_ids("c2");
  return r;
}

TEST(ValidateScoreRequestTest, AcceptsValidRequests) {
  const RequestLimits limits;
  EXPECT_OK(ValidateScoreRequest(Valid(), limits));
  v1::ScoreRequest r = Valid();
  r.set_top_k(limits.max_candidates);  // the most, with a list
  EXPECT_OK(ValidateScoreRequest(r, limits));
  r.clear_coupon_ids();  // every active coupon, with a top_k
  r.set_request_id(std::string(128, 'r'));
  EXPECT_OK(ValidateScoreRequest(r, limits));
  r.set_user_id("never-seen-user");  // unknown users are a scoring matter, not invalid
  EXPECT_OK(ValidateScoreRequest(r, limits));
}

TEST(ValidateScoreRequestTest, UserIdIsRequiredAndBounded) {
  v1::ScoreRequest r = Valid();
  r.clear_user_id();
  EXPECT_THAT(ValidateScoreRequest(r, {}), StatusIs(kInvalid, StartsWith("user_id: required")));
  r.set_user_id(std::string(257, 'u'));
  EXPECT_THAT(ValidateScoreRequest(r, {}),
              StatusIs(kInvalid, StartsWith("user_id: 257 bytes, limit 256")));
}

TEST(ValidateScoreRequestTest, CouponIdsMustBeNonEmptyShortAndUnique) {
  v1::ScoreRequest r = Valid();
  r.add_coupon_ids("");
  EXPECT_THAT(ValidateScoreRequest(r, {}), StatusIs(kInvalid, StartsWith("coupon_ids[2]: empty")));
  r = Valid();
  r.add_coupon_ids(std::string(300, 'c'));
  EXPECT_THAT(ValidateScoreRequest(r, {}), StatusIs(kInvalid, StartsWith("coupon_ids[2]: 300 bytes")));
  r = Valid();
  r.add_coupon_ids("c1");
  EXPECT_THAT(ValidateScoreRequest(r, {}),
              StatusIs(kInvalid, StartsWith("coupon_ids[2]: duplicate of coupon_ids[0] ('c1')")));
}

TEST(ValidateScoreRequestTest, DuplicateEchoIsShortAndPrintable) {
  v1::ScoreRequest r = Valid();
  const std::string weird = std::string("\x01\x02", 2) + std::string(200, 'z');
  r.add_coupon_ids(weird);
  r.add_coupon_ids(weird);
  const absl::Status s = ValidateScoreRequest(r, {});
  EXPECT_THAT(s, StatusIs(kInvalid, HasSubstr("'??zzz")));
  EXPECT_LT(s.message().size(), 150u);
}

TEST(ValidateScoreRequestTest, TooManyCandidates) {
  RequestLimits limits;
  limits.max_candidates = 3;
  v1::ScoreRequest r = Valid();
  r.add_coupon_ids("c3");
  EXPECT_OK(ValidateScoreRequest(r, limits));
  r.add_coupon_ids("c4");
  EXPECT_THAT(ValidateScoreRequest(r, limits),
              StatusIs(kInvalid, StartsWith("coupon_ids: 4 candidates, limit 3")));
}

// A stored campaign's coupons replace the list: both at once is ambiguous.
TEST(ValidateScoreRequestTest, CampaignIdExcludesTheListAndIsBounded) {
  v1::ScoreRequest r = Valid();
  r.set_campaign_id("spring");
  EXPECT_THAT(ValidateScoreRequest(r, {}),
              StatusIs(kInvalid, StartsWith("campaign_id: set together with 2 coupon_ids")));
  r.clear_coupon_ids();
  EXPECT_OK(ValidateScoreRequest(r, {}));
  // Whether it names a loaded campaign is the server's NOT_FOUND, not a validation matter.
  r.set_campaign_id("no such campaign, and not even a valid id");
  EXPECT_OK(ValidateScoreRequest(r, {}));
  r.set_campaign_id(std::string(129, 'c'));
  EXPECT_THAT(ValidateScoreRequest(r, {}),
              StatusIs(kInvalid, StartsWith("campaign_id: 129 bytes, limit 128")));
}

TEST(ValidateScoreRequestTest, RequestIdAndTimeAreChecked) {
  v1::ScoreRequest r = Valid();
  r.set_request_id(std::string(129, 'r'));
  EXPECT_THAT(ValidateScoreRequest(r, {}), StatusIs(kInvalid, StartsWith("request_id")));
  r = Valid();
  r.set_as_of_unix_seconds(-1);
  EXPECT_THAT(ValidateScoreRequest(r, {}), StatusIs(kInvalid, StartsWith("as_of_unix_seconds")));
}

// With neither coupon_ids nor campaign_id the candidates are the whole catalogue: the
// caller must bound the response with top_k (issue 15: top_k 0 returned every coupon).
TEST(ValidateScoreRequestTest, TopKIsRequiredForTheWholeCatalogueAndBoundedEverywhere) {
  const RequestLimits limits;  // max_candidates 10,000
  v1::ScoreRequest r = Valid();
  r.clear_coupon_ids();
  EXPECT_THAT(ValidateScoreRequest(r, limits),
              StatusIs(kInvalid, StartsWith("top_k: required (1..10000) when neither coupon_ids "
                                            "nor campaign_id is given")));
  for (uint32_t k : {1u, 10000u}) {
    r.set_top_k(k);
    EXPECT_OK(ValidateScoreRequest(r, limits)) << k;
  }
  for (uint32_t k : {10001u, 4'294'967'295u}) {
    r.set_top_k(k);
    EXPECT_THAT(ValidateScoreRequest(r, limits),
                StatusIs(kInvalid, StartsWith(absl::StrCat("top_k: ", k,
                                                           " is out of range [0, 10000]"))));
  }
  // 0 ("all") stays valid where the candidates are bounded anyway.
  r = Valid();
  r.set_top_k(0);
  EXPECT_OK(ValidateScoreRequest(r, limits));
  r.clear_coupon_ids();
  r.set_campaign_id("spring");
  EXPECT_OK(ValidateScoreRequest(r, limits));
  r.set_top_k(10001);
  EXPECT_THAT(ValidateScoreRequest(r, limits), StatusIs(kInvalid, StartsWith("top_k: 10001")));
  // The bound follows the server's --max_candidates.
  RequestLimits tight;
  tight.max_candidates = 3;
  r = Valid();
  r.clear_coupon_ids();
  r.set_top_k(4);
  EXPECT_THAT(ValidateScoreRequest(r, tight),
              StatusIs(kInvalid, StartsWith("top_k: 4 is out of range [0, 3]")));
}

TEST(ValidateScoreRequestTest, AsOfTimeIsBoundedToYear9999) {
  v1::ScoreRequest r = Valid();
  r.set_as_of_unix_seconds(253'402'300'799);  // 9999-12-31T23:59:59Z
  EXPECT_OK(ValidateScoreRequest(r, {}));
  std::vector<int64_t> bad = ExtremeInt64s();
  bad.push_back(253'402'300'800);
  for (int64_t t : bad) {
    r.set_as_of_unix_seconds(t);
    EXPECT_THAT(ValidateScoreRequest(r, {}),
                StatusIs(kInvalid, StartsWith(absl::StrCat("as_of_unix_seconds: ", t,
                                                           " is out of range [0, 253402300799]"))));
  }
}

TEST(ValidateGetModelInfoRequestTest, ChecksRequestId) {
  v1::GetModelInfoRequest r;
  EXPECT_OK(ValidateGetModelInfoRequest(r, {}));
  r.set_request_id(std::string(500, 'x'));
  EXPECT_THAT(ValidateGetModelInfoRequest(r, {}), StatusIs(kInvalid, StartsWith("request_id")));
}

// user_attributes (cold start): bounded, names non-empty, without '=', unique ignoring case.
// Empty values, unknown names and values, "NaN" are not errors: the scorer ignores and
// counts what the model does not know.
TEST(ValidateUserAttributesTest, AcceptsWhatTheScorerCanIgnore) {
  v1::ScoreRequest r = Valid();
  auto& a = *r.mutable_user_attributes();
  a["age_desc"] = "45-54";
  a["income_desc"] = "";          // unknown value: ignored by the scorer
  a["shoe_size"] = "NaN";         // unknown name and a NaN-looking value: ignored too
  a[std::string(256, 'n')] = std::string(256, 'v');  // at the limits
  EXPECT_OK(ValidateScoreRequest(r, {}));
  for (int i = 0; a.size() < 64; ++i) a[absl::StrCat("k", i)] = "v";
  EXPECT_OK(ValidateScoreRequest(r, {}));
}

TEST(ValidateUserAttributesTest, RejectsMalformedAttributesNamingTheField) {
  auto check = [](const std::function<void(v1::ScoreRequest*)>& edit, const std::string& prefix) {
    v1::ScoreRequest r = Valid();
    edit(&r);
    EXPECT_THAT(ValidateScoreRequest(r, {}), StatusIs(kInvalid, StartsWith(prefix)));
  };
  check([](v1::ScoreRequest* r) { (*r->mutable_user_attributes())[""] = "x"; },
        "user_attributes['']: empty name");
  check([](v1::ScoreRequest* r) { (*r->mutable_user_attributes())[std::string(257, 'n')] = "x"; },
        "user_attributes['nnnn");
  check([](v1::ScoreRequest* r) { (*r->mutable_user_attributes())["age"] = std::string(257, 'v'); },
        "user_attributes['age']: value is 257 bytes, limit 256");
  check([](v1::ScoreRequest* r) { (*r->mutable_user_attributes())["age=45"] = "54"; },
        "user_attributes['age=45']: name contains '='");
  check(
      [](v1::ScoreRequest* r) {
        (*r->mutable_user_attributes())["AGE_DESC"] = "45-54";
        (*r->mutable_user_attributes())["age_desc"] = "25-34";
      },
      "user_attributes: names 'AGE_DESC' and 'age_desc' differ only in case");
  check(
      [](v1::ScoreRequest* r) {
        for (int i = 0; i < 65; ++i) {
          const std::string key = absl::StrCat("k", i);
          r->mutable_user_attributes()->insert({key, std::string("v")});
        }
      },
      "user_attributes: 65 entries, limit 64");
  v1::ScoreRequest r = Valid();
  (*r.mutable_user_attributes())[std::string(257, 'n')] = "x";
  EXPECT_THAT(ValidateScoreRequest(r, {}), StatusIs(kInvalid, HasSubstr("name is 257 bytes")));
  RequestLimits tight;
  tight.max_user_attributes = 1;
  r = Valid();
  (*r.mutable_user_attributes())["a"] = "1";
  (*r.mutable_user_attributes())["b"] = "2";
  EXPECT_THAT(ValidateScoreRequest(r, tight),
              StatusIs(kInvalid, StartsWith("user_attributes: 2 entries, limit 1")));
}

TEST(ValidateUserAttributesTest, DecideChecksThemToo) {
  v1::DecideRequest r;
  r.set_user_id("u1");
  r.set_campaign_id("spring");
  (*r.mutable_user_attributes())["age"] = "45-54";
  EXPECT_OK(ValidateDecideRequest(r, {}));
  (*r.mutable_user_attributes())[""] = "x";
  EXPECT_THAT(ValidateDecideRequest(r, {}),
              StatusIs(kInvalid, StartsWith("user_attributes['']: empty name")));
}

}  // namespace
}  // namespace coupond::server

namespace coupond::server {
namespace {

TEST(ValidateAssignRequestTest, SolverPassesAndToleranceAreBounded) {
  RequestLimits limits;
  v1::AssignRequest request;
  request.mutable_all_users();
  request.mutable_solver()->set_max_iterations(1000);
  EXPECT_TRUE(ValidateAssignRequest(request, limits).ok());
  request.mutable_solver()->set_max_iterations(2147483647);
  const absl::Status huge = ValidateAssignRequest(request, limits);
  EXPECT_EQ(huge.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(huge.message().substr(0, 22), "solver.max_iterations:");
  request.mutable_solver()->set_max_iterations(0);
  // A relative gap: [0, 1], not subnormal.
  for (double ok : {0.0, 1e-4, 1.0}) {
    request.mutable_solver()->set_tolerance(ok);
    EXPECT_OK(ValidateAssignRequest(request, limits)) << ok;
  }
  std::vector<double> bad = ExtremeDoubles();
  bad.push_back(1.5);
  for (double t : bad) {
    request.mutable_solver()->set_tolerance(t);
    EXPECT_THAT(ValidateAssignRequest(request, limits),
                StatusIs(kInvalid, StartsWith("solver.tolerance: ")))
        << t;
  }
  request.mutable_solver()->set_tolerance(1e308);
  EXPECT_THAT(ValidateAssignRequest(request, limits),
              StatusIs(kInvalid, StartsWith("solver.tolerance: 1e+308 is out of range [0, 1]")));
  request.mutable_solver()->set_tolerance(1e-310);
  EXPECT_THAT(ValidateAssignRequest(request, limits),
              StatusIs(kInvalid, StartsWith("solver.tolerance: 1e-310 is subnormal")));
}

// chunk_size 0 is the server's default; a huge one would put a population in one message.
TEST(ValidateAssignRequestTest, ChunkSizeIsBounded) {
  RequestLimits limits;
  v1::AssignRequest request;
  request.mutable_all_users();
  request.set_chunk_size(0);
  EXPECT_OK(ValidateAssignRequest(request, limits));
  request.set_chunk_size(limits.max_assign_chunk_size);
  EXPECT_OK(ValidateAssignRequest(request, limits));
  request.set_chunk_size(limits.max_assign_chunk_size + 1);
  EXPECT_THAT(ValidateAssignRequest(request, limits),
              StatusIs(kInvalid, StartsWith("chunk_size: 100001 assignments per message, limit 100000")));
  request.set_chunk_size(4'294'967'295u);
  EXPECT_THAT(ValidateAssignRequest(request, limits), StatusIs(kInvalid, StartsWith("chunk_size:")));
}

TEST(ValidateDecideRequestTest, EitherAStoredCampaignOrAnInlineOne) {
  RequestLimits limits;
  v1::DecideRequest request;
  request.set_user_id("u1");
  EXPECT_EQ(ValidateDecideRequest(request, limits).message().substr(0, 9), "campaign:");
  request.set_campaign_id("spring");
  EXPECT_TRUE(ValidateDecideRequest(request, limits).ok());
  request.mutable_campaign()->set_budget(1);
  EXPECT_EQ(ValidateDecideRequest(request, limits).message().substr(0, 12), "campaign_id:");
  request.clear_campaign();
  request.set_campaign_id(std::string(129, 'x'));
  EXPECT_EQ(ValidateDecideRequest(request, limits).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace coupond::server
