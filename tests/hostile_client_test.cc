// Integration: clients the project did not write, against the real coupond binary on a
// loopback port (issue 15). Requests go out as raw bytes through grpc::GenericStub, as a
// buggy or hostile client would send them: garbage, invalid UTF-8, a truncated field, no
// message at all, a cancellation, an oversize message, Go's "no deadline" timeout and a
// 1 µs deadline. Each case checks the status the client gets (the code, and a message that
// names the request type or field) and the /metrics series it moved.

#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/coupond_client.h"
#include "gmock/gmock.h"
#include "grpc/support/time.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "gtest/gtest.h"
#include "storage/model_store.h"
#include "tests/test_util/models.h"
#include "tests/test_util/process.h"
#include "tests/test_util/scrape.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond {
namespace {

using ::coupond::testing::ChildProcess;
using ::coupond::testing::Requests;
using ::coupond::testing::Scrape;
using ::coupond::testing::ScrapeMetricsAt;
using ::coupond::testing::StatusIs;
using ::coupond::testing::TempDir;
using ::coupond::testing::TinyModel;
using ::coupond::testing::Value;
using ::coupond::testing::WaitForPortFile;
using ::coupond::testing::WaitForValueAt;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kScoreMethod[] = "/coupond.v1.CouponScoring/Score";
constexpr char kDecideMethod[] = "/coupond.v1.CouponScoring/Decide";
constexpr char kAssignMethod[] = "/coupond.v1.CouponScoring/Assign";
constexpr char kAdminToken[] = "hostile-admin-token-0123456789abcdef";
constexpr int kMaxMessageBytes = 64 << 10;

// A length-delimited field: tag (number << 3 | 2), one-byte length, bytes. Short fields only.
std::string Field(int number, const std::string& bytes) {
  return std::string(1, static_cast<char>(number << 3 | 2)) +
         std::string(1, static_cast<char>(bytes.size())) + bytes;
}

// What came back from one raw call.
struct RawReply {
  grpc::Status status;
  std::string body;  // the response message's bytes (unary, OK only)
  std::multimap<std::string, std::string> trailers;
};

class HostileClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const core::ModelData model = TinyModel(40, 30, 24);
    {
      ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForWrite(dir_.Sub("store")));
      ASSERT_OK(store->Publish(model).status());
    }
    user_ = model.user_ids[0];
    const std::string token_file = dir_.Sub("admin.token");
    std::ofstream(token_file, std::ios::trunc) << kAdminToken << "\n";
    chmod(token_file.c_str(), 0600);
    server_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{
            COUPOND_SERVER_BINARY, "--store=" + dir_.Sub("store"), "--listen=127.0.0.1:0",
            "--port_file=" + dir_.Sub("port"), "--metrics_listen=127.0.0.1:0",
            "--metrics_port_file=" + dir_.Sub("metrics_port"), "--poll_interval=100ms",
            "--shutdown_grace=2s", absl::StrCat("--max_message_bytes=", kMaxMessageBytes),
            "--admin_token_file=" + token_file, "--collector_db=" + dir_.Sub("collector"),
            "--log_level=warn"},
        dir_.Sub("log"));
    ASSERT_TRUE(server_->spawned()) << "cannot start " << COUPOND_SERVER_BINARY;
    const int port = WaitForPortFile(dir_.Sub("port"), absl::Seconds(30));
    ASSERT_GT(port, 0) << "coupond did not report its port";
    metrics_port_ = WaitForPortFile(dir_.Sub("metrics_port"), absl::Seconds(1));
    ASSERT_GT(metrics_port_, 0);
    client::ClientOptions options;
    options.target = absl::StrCat("127.0.0.1:", port);
    ASSERT_OK_AND_ASSIGN(client_, client::CoupondClient::Create(options));
    ASSERT_OK(client_->WaitUntilServing(absl::Seconds(60)));
    stub_ = std::make_unique<grpc::GenericStub>(
        grpc::CreateChannel(options.target, grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (server_ != nullptr) {
      EXPECT_EQ(server_->StopWith(SIGTERM, absl::Seconds(20)), 0);  // a clean exit
    }
    if (HasFailure()) {
      std::cerr << "coupond's log:\n" << coupond::testing::ReadFileOrEmpty(dir_.Sub("log"));
    }
  }

  // A unary call of `method` with `bytes` as its message. `admin`: with the admin token.
  // `deadline`: the call's (default: 30 s from now).
  RawReply Call(const std::string& method, const std::string& bytes, bool admin = false,
                std::optional<gpr_timespec> deadline = std::nullopt) {
    grpc::ClientContext context;
    if (deadline.has_value()) {
      context.set_deadline(*deadline);
    } else {
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    }
    if (admin) context.AddMetadata("authorization", absl::StrCat("Bearer ", kAdminToken));
    grpc::CompletionQueue cq;
    grpc::Slice slice(bytes);
    const grpc::ByteBuffer request(&slice, 1);
    std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
        stub_->PrepareUnaryCall(&context, method, request, &cq);
    call->StartCall();
    grpc::ByteBuffer response;
    RawReply reply;
    call->Finish(&response, &reply.status, this);
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    std::vector<grpc::Slice> slices;
    if (reply.status.ok() && response.Dump(&slices).ok()) {
      for (const grpc::Slice& s : slices) {
        reply.body.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
    }
    for (const auto& [key, value] : context.GetServerTrailingMetadata()) {
      reply.trailers.emplace(std::string(key.data(), key.size()),
                             std::string(value.data(), value.size()));
    }
    Drain(&cq);
    return reply;
  }

  // Starts a streaming raw Score call (30 s deadline) and waits until its headers are on the
  // wire; the caller ends it and Finish()es it on `cq`. Null, with a test failure, when the
  // start did not complete.
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> StartScoreCall(
      grpc::ClientContext* context, grpc::CompletionQueue* cq) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
        stub_->PrepareCall(context, kScoreMethod, cq);
    call->StartCall(reinterpret_cast<void*>(1));
    void* tag = nullptr;
    bool ok = false;
    if (!cq->Next(&tag, &ok) || !ok) {
      ADD_FAILURE() << "the raw Score call did not start";
      return nullptr;
    }
    return call;
  }

  // Shuts `cq` down and takes what is left in it (gRPC requires both before it is destroyed).
  static void Drain(grpc::CompletionQueue* cq) {
    cq->Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq->Next(&tag, &ok)) {
    }
  }

  Scrape WaitForValue(const std::string& series, double value) {
    return WaitForValueAt(metrics_port_, series, value);
  }

  TempDir dir_;
  std::string user_;
  std::unique_ptr<ChildProcess> server_;
  std::unique_ptr<client::CoupondClient> client_;
  std::unique_ptr<grpc::GenericStub> stub_;
  int metrics_port_ = 0;
};

// Random bytes on every coupond.v1 method: INVALID_ARGUMENT naming the request type (gRPC
// 1.51's callback API answered UNIMPLEMENTED with an empty message), counted as such.
TEST_F(HostileClientTest, GarbageIsInvalidArgumentNamingTheRequestTypeOnEveryMethod) {
  struct Method {
    std::string path;
    std::string request_type;
    bool admin;
  };
  const std::vector<Method> methods = {
      {kScoreMethod, "coupond.v1.ScoreRequest", false},
      {"/coupond.v1.CouponScoring/GetModelInfo", "coupond.v1.GetModelInfoRequest", false},
      {kAssignMethod, "coupond.v1.AssignRequest", false},
      {kDecideMethod, "coupond.v1.DecideRequest", false},
      {"/coupond.v1.CouponScoring/ListCampaigns", "coupond.v1.ListCampaignsRequest", false},
      {"/coupond.v1.Admin/ReloadModel", "coupond.v1.ReloadModelRequest", true},
      {"/coupond.v1.Admin/GetServerStatus", "coupond.v1.GetServerStatusRequest", true},
      {"/coupond.v1.Collector/LogDecisions", "coupond.v1.LogDecisionsRequest", false},
      {"/coupond.v1.Collector/ReportOutcome", "coupond.v1.ReportOutcomeRequest", false},
      {"/coupond.v1.Collector/GetCollectorStats", "coupond.v1.GetCollectorStatsRequest", false},
  };
  // Field number 0 with wire type 7, then bytes that were never protobuf.
  const std::string garbage = "\x07\xff\xfe garbage \x01\x02\x03";
  for (const Method& m : methods) {
    const RawReply reply = Call(m.path, garbage, m.admin);
    EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << m.path;
    EXPECT_THAT(reply.status.error_message(),
                AllOf(HasSubstr(absl::StrCat("request body is not a valid ", m.request_type)),
                      HasSubstr("invalid field number 0 at byte 0")))
        << m.path;
  }
  for (const Method& m : methods) {
    const Scrape scrape = WaitForValue(Requests(m.path, "INVALID_ARGUMENT"), 1);
    EXPECT_EQ(Value(scrape, Requests(m.path, "UNIMPLEMENTED")), -1) << m.path;
  }
  // The server is unharmed.
  v1::ScoreRequest fine;
  fine.set_user_id(user_);
  fine.set_top_k(5);  // the catalogue: top_k is required
  EXPECT_OK(client_->Score(fine).status());
}

TEST_F(HostileClientTest, InvalidUtf8AndTruncatedFieldsAreInvalidArgumentNamingTheField) {
  // user_id (field 2) with a lone lead byte: proto3 strings must be UTF-8.
  RawReply reply = Call(kScoreMethod, Field(2, "u\xC3\x28"));
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(reply.status.error_message(),
              AllOf(HasSubstr("request body is not a valid coupond.v1.ScoreRequest"),
                    HasSubstr("user_id: not valid UTF-8")));
  // The second coupon id (field 3) cut off by the end of the body.
  std::string truncated = Field(2, user_) + Field(3, "c1") + Field(3, "c22");
  truncated.resize(truncated.size() - 2);
  reply = Call(kScoreMethod, truncated);
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(reply.status.error_message(),
              AllOf(HasSubstr("coupond.v1.ScoreRequest"),
                    HasSubstr("coupon_ids[1]: length 3 runs past the end of the body")));
  // Nested: DecideRequest.campaign (3) -> Campaign.coupons[0] -> CampaignCoupon.coupon_id.
  const int coupons = v1::Campaign::descriptor()->FindFieldByName("coupons")->number();
  reply = Call(kDecideMethod, Field(2, user_) + Field(3, Field(coupons, Field(1, "c\xFF"))));
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(reply.status.error_message(),
              AllOf(HasSubstr("coupond.v1.DecideRequest"),
                    HasSubstr("campaign.coupons[0].coupon_id: not valid UTF-8")));
  Scrape scrape = WaitForValue(Requests(kScoreMethod, "INVALID_ARGUMENT"), 2);
  scrape = WaitForValue(Requests(kDecideMethod, "INVALID_ARGUMENT"), 1);
  EXPECT_EQ(Value(scrape, Requests(kScoreMethod, "UNIMPLEMENTED")), -1);
  // protobuf logs each invalid UTF-8 string at ERROR; coupond keeps those at debug level (a
  // client could flood the log with them).
  EXPECT_THAT(coupond::testing::ReadFileOrEmpty(dir_.Sub("log")),
              Not(HasSubstr("invalid UTF-8")));

  // A valid body parses; a validation error carries the request id in a trailer.
  v1::ScoreRequest request;
  request.set_request_id("hostile-1");
  request.set_user_id(user_);
  request.set_top_k(5);  // the catalogue: top_k is required
  reply = Call(kScoreMethod, request.SerializeAsString());
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
  v1::ScoreResponse response;
  ASSERT_TRUE(response.ParseFromString(reply.body));
  EXPECT_EQ(response.request_id(), "hostile-1");
  EXPECT_EQ(response.model_version(), 1u);
  EXPECT_GT(response.scores_size(), 0);
  request.clear_user_id();
  reply = Call(kScoreMethod, request.SerializeAsString());
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(reply.status.error_message(), HasSubstr("user_id"));
  EXPECT_EQ(reply.trailers.count("coupond-request-id"), 1u);
  EXPECT_EQ(reply.trailers.find("coupond-request-id")->second, "hostile-1");
  scrape = WaitForValue(Requests(kScoreMethod, "INVALID_ARGUMENT"), 3);
  EXPECT_EQ(Value(scrape, Requests(kScoreMethod, "OK")), 1);
}

// A unary call whose client half-closes without sending a message.
TEST_F(HostileClientTest, ACallWithoutAMessageIsInvalidArgument) {
  grpc::ClientContext context;
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call = StartScoreCall(&context, &cq);
  ASSERT_NE(call, nullptr);
  void* tag = nullptr;
  bool ok = false;
  call->WritesDone(reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("request body missing: the call ended without a coupond.v1.ScoreRequest"));
  Drain(&cq);
  const Scrape scrape = WaitForValue(Requests(kScoreMethod, "INVALID_ARGUMENT"), 1);
  EXPECT_EQ(Value(scrape, Requests(kScoreMethod, "UNIMPLEMENTED")), -1);
}

// The client starts a call (its headers are on the wire once StartCall completes), then
// cancels it before sending the message: CANCELLED, not UNIMPLEMENTED (what gRPC's
// handler answered to the missing message, which nobody received).
TEST_F(HostileClientTest, AClientCancellationCountsAsCancelled) {
  grpc::ClientContext context;
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call = StartScoreCall(&context, &cq);
  ASSERT_NE(call, nullptr);
  void* tag = nullptr;
  bool ok = false;
  context.TryCancel();
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  Drain(&cq);
  const Scrape scrape = WaitForValue(Requests(kScoreMethod, "CANCELLED"), 1);
  EXPECT_EQ(Value(scrape, Requests(kScoreMethod, "UNIMPLEMENTED")), -1);
  EXPECT_EQ(Value(scrape, Requests(kScoreMethod, "INVALID_ARGUMENT")), -1);
}

// Over --max_message_bytes: RESOURCE_EXHAUSTED from coupond's own parse, so that it is
// counted (gRPC's own refusal, before any interceptor, was counted nowhere). Far over it,
// past gRPC's limit (edge::GrpcReceiveLimit: the limit + 1 MiB here), gRPC refuses it.
TEST_F(HostileClientTest, AnOversizeMessageIsResourceExhaustedAndCounted) {
  RawReply reply = Call(kScoreMethod, std::string(kMaxMessageBytes + 1, 'x'));
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(reply.status.error_message(),
              HasSubstr(absl::StrCat("request body of ", kMaxMessageBytes + 1,
                                     " bytes is over the server's limit of ", kMaxMessageBytes,
                                     " bytes for a coupond.v1.ScoreRequest")));
  const std::string log_decisions = "/coupond.v1.Collector/LogDecisions";
  reply = Call(log_decisions, std::string(2 * kMaxMessageBytes, 'x'));
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(reply.status.error_message(), HasSubstr("coupond.v1.LogDecisionsRequest"));
  Scrape scrape = WaitForValue(Requests(kScoreMethod, "RESOURCE_EXHAUSTED"), 1);
  scrape = WaitForValue(Requests(log_decisions, "RESOURCE_EXHAUSTED"), 1);

  reply = Call(kScoreMethod, std::string(kMaxMessageBytes + (2 << 20), 'x'));
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // A valid request just under the limit is served.
  v1::ScoreRequest big;
  big.set_user_id(user_);
  big.set_top_k(5);  // the catalogue: top_k is required
  big.set_request_id(std::string(100, 'r'));
  big.mutable_user_attributes()->insert({"note", std::string(kMaxMessageBytes - 300, 'n')});
  ASSERT_LE(big.ByteSizeLong(), static_cast<size_t>(kMaxMessageBytes));
  reply = Call(kScoreMethod, big.SerializeAsString());
  EXPECT_NE(reply.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << reply.status.error_message();
}

// Go clients say "no deadline" with grpc-timeout: 2562047H (about 292 years): served, and
// counted OK (it used to overflow into a deadline centuries past).
TEST_F(HostileClientTest, GoNoDeadlineTimeoutIsServedAndCountedOk) {
  v1::ScoreRequest request;
  request.set_user_id(user_);
  request.set_top_k(5);  // the catalogue: top_k is required
  const RawReply reply =
      Call(kScoreMethod, request.SerializeAsString(), /*admin=*/false,
           gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_hours(2562047, GPR_TIMESPAN)));
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_code() << " " << reply.status.error_message();
  v1::ScoreResponse response;
  ASSERT_TRUE(response.ParseFromString(reply.body));
  EXPECT_EQ(response.model_version(), 1u);
  const Scrape scrape = WaitForValue(Requests(kScoreMethod, "OK"), 1);
  EXPECT_EQ(Value(scrape, Requests(kScoreMethod, "DEADLINE_EXCEEDED")), -1);
}

// An Assign with a 1 µs deadline: DEADLINE_EXCEEDED for the client, and counted as such
// (it used to be counted CANCELLED). The client may give up before its headers leave, in
// which case the server never sees the call: repeat until the server has counted one.
TEST_F(HostileClientTest, AnAssignWithAOneMicrosecondDeadlineCountsAsDeadlineExceeded) {
  v1::AssignRequest request;
  request.mutable_campaign()->set_campaign_id("hurry");
  request.mutable_campaign()->set_budget(10);
  request.mutable_campaign()->add_coupons()->set_coupon_id("c1");
  request.mutable_all_users();
  auto no_op = [](const v1::AssignResponse&) { return absl::OkStatus(); };
  const std::string series = Requests(kAssignMethod, "DEADLINE_EXCEEDED");
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  Scrape scrape;
  int calls = 0;
  while (absl::Now() < give_up && Value(scrape, series) < 1) {
    EXPECT_THAT(client_->Assign(request, absl::Microseconds(1), no_op),
                StatusIs(absl::StatusCode::kDeadlineExceeded));
    ++calls;
    scrape = ScrapeMetricsAt(metrics_port_);
  }
  EXPECT_GE(Value(scrape, series), 1) << "after " << calls << " calls";
  EXPECT_EQ(Value(scrape, Requests(kAssignMethod, "CANCELLED")), -1);
  // The server is unharmed: the same Assign with time to spare is served.
  EXPECT_OK(client_->Assign(request, absl::Seconds(30), no_op).status());
  scrape = WaitForValue(Requests(kAssignMethod, "OK"), 1);
  EXPECT_EQ(Value(scrape, Requests(kAssignMethod, "CANCELLED")), -1);
}

}  // namespace
}  // namespace coupond
