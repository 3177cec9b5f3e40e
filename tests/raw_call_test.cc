// Raw-buffer request parsing (edge/raw_call.h): what a body that is not a valid request is
// answered with, and the field the answer names. The same calls against the real server are
// in hostile_client_test.cc.

#include <string>

#include "coupond/v1/collector.pb.h"
#include "coupond/v1/coupon_scoring.pb.h"
#include "edge/raw_call.h"
#include "gmock/gmock.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"

namespace coupond::edge {
namespace {

using ::coupond::testing::StatusIs;
using ::testing::HasSubstr;

grpc::ByteBuffer Body(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// A length-delimited field: tag (field << 3 | 2), length, bytes. Short fields only.
std::string Field(int number, const std::string& bytes) {
  return std::string(1, static_cast<char>(number << 3 | 2)) +
         std::string(1, static_cast<char>(bytes.size())) + bytes;
}

TEST(RawCallTest, ParsesAValidBodyAndSerializesBack) {
  v1::ScoreRequest sent;
  sent.set_request_id("r-1");
  sent.set_user_id("u1");
  sent.add_coupon_ids("c1");
  sent.set_top_k(3);
  grpc::ByteBuffer body;
  ASSERT_OK(SerializeResponseBody(sent, &body));
  v1::ScoreRequest got;
  got.set_user_id("stale");  // cleared first
  ASSERT_OK(ParseRequestBody(body, 1 << 20, &got));
  EXPECT_EQ(got.SerializeAsString(), sent.SerializeAsString());
  EXPECT_EQ(RequestIdOf(got), "r-1");
  v1::LogDecisionsRequest no_id;  // field 1 is not a request id
  no_id.add_decisions()->set_decision_id("d");
  EXPECT_EQ(RequestIdOf(no_id), "");
}

TEST(RawCallTest, NoBodyIsInvalidArgumentNamingTheType) {
  v1::ScoreRequest request;
  EXPECT_THAT(ParseRequestBody(grpc::ByteBuffer(), 1 << 20, &request),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("request body missing: the call ended without a "
                                 "coupond.v1.ScoreRequest message")));
  // An empty body is a valid (empty) message, not a missing one.
  EXPECT_OK(ParseRequestBody(Body(""), 1 << 20, &request));
}

TEST(RawCallTest, AnOversizeBodyIsResourceExhaustedBeforeParsing) {
  v1::ScoreRequest request;
  EXPECT_THAT(ParseRequestBody(Body(std::string(101, 'x')), 100, &request),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("request body of 101 bytes is over the server's limit of 100 "
                                 "bytes for a coupond.v1.ScoreRequest")));
  EXPECT_EQ(GrpcReceiveLimit(4 << 20), 8 << 20);
  EXPECT_EQ(GrpcReceiveLimit(1000), 1000 + (1 << 20));
  EXPECT_EQ(GrpcReceiveLimit(size_t{3} << 30), INT32_MAX);
}

TEST(RawCallTest, BadBodiesAreInvalidArgumentNamingTheTypeAndTheField) {
  v1::ScoreRequest score;
  // Invalid UTF-8 in a proto3 string.
  EXPECT_THAT(ParseRequestBody(Body(Field(2, "u\xC3\x28")), 1 << 20, &score),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("request body is not a valid coupond.v1.ScoreRequest (5 bytes): "
                                 "user_id: not valid UTF-8 (byte 1 of 3")));
  // A field cut off by the end of the body.
  std::string truncated = Field(2, "u1") + Field(3, "c1") + Field(3, "c22");
  truncated.resize(truncated.size() - 2);
  EXPECT_THAT(ParseRequestBody(Body(truncated), 1 << 20, &score),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("coupon_ids[1]: length 3 runs past the end of the body (1 "
                                 "bytes left): truncated")));
  // Garbage: field number 0 (wire type 7).
  EXPECT_THAT(ParseRequestBody(Body("\x07garbage"), 1 << 20, &score),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("coupond.v1.ScoreRequest (8 bytes): invalid field number 0")));
  // A tag cut off mid-varint.
  EXPECT_THAT(ParseRequestBody(Body("\xFF\xFF"), 1 << 20, &score),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("truncated tag at byte 0")));
}

TEST(RawCallTest, NamesNestedAndRepeatedFieldsByPath) {
  // DecideRequest.campaign (3) .coupons (repeated, field 4 of Campaign) [1] .coupon_id (1).
  v1::DecideRequest decide;
  v1::Campaign campaign;
  campaign.set_campaign_id("spring");
  campaign.add_coupons()->set_coupon_id("ok");
  std::string bytes = campaign.SerializeAsString();
  const int coupons = v1::Campaign::descriptor()->FindFieldByName("coupons")->number();
  bytes += Field(coupons, Field(1, "\xFF"));
  const std::string body = Field(3, bytes);
  EXPECT_THAT(ParseRequestBody(Body(body), 1 << 20, &decide),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("campaign.coupons[1].coupon_id: not valid UTF-8")));
  EXPECT_EQ(DescribeWireProblem(*v1::DecideRequest::descriptor(), Field(2, "fine")), "");
  // Valid UTF-8 of every length passes: 2, 3 and 4 bytes.
  EXPECT_EQ(DescribeWireProblem(*v1::ScoreRequest::descriptor(),
                                Field(2, "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80")),
            "");
  // Overlong, surrogate and beyond U+10FFFF are not UTF-8.
  for (const char* bad : {"\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82"}) {
    EXPECT_THAT(DescribeWireProblem(*v1::ScoreRequest::descriptor(), Field(2, bad)),
                HasSubstr("user_id: not valid UTF-8"))
        << bad;
  }
}

// The walk reads hostile bytes: bounded nesting, unclosed groups, and a large body whose one
// bad field is at the end (named without building a name for every field before it).
TEST(RawCallTest, TheWireWalkIsBoundedOnHostileBodies) {
  const google::protobuf::Descriptor& type = *v1::ScoreRequest::descriptor();
  // Start-group tags of field 1, nested past protobuf's limit of 100.
  EXPECT_THAT(DescribeWireProblem(type, std::string(150, '\x0B')),
              HasSubstr("nested deeper than 100 messages"));
  EXPECT_THAT(DescribeWireProblem(type, "\x0B\x10\x01"), HasSubstr("group not closed"));
  EXPECT_EQ(DescribeWireProblem(type, "\x0B\x10\x01\x0C"), "");  // a closed unknown group
  EXPECT_THAT(DescribeWireProblem(type, "\x0C"), HasSubstr("end-group tag without its start"));
  std::string many;
  for (int i = 0; i < 200000; ++i) many += Field(3, "c1");
  many += Field(3, "\xC3");
  EXPECT_EQ(DescribeWireProblem(type, many),
            "coupon_ids[200000]: not valid UTF-8 (byte 0 of 1; proto3 strings must be UTF-8)");
}

}  // namespace
}  // namespace coupond::edge
