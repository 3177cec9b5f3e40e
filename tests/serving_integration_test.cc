// Integration: the production edge of the real coupond binary on a real port. The Admin
// service and its token, TLS and mutual TLS (a throw-away CA and certificates made with
// openssl for the test), request limits, calls dropped for lack of time, the memory check
// before a second snapshot; through the client library and the real couponctl binary.

#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/coupond_client.h"
#include "core/snapshot.h"
#include "gmock/gmock.h"
#include "grpc/support/time.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/keys.h"
#include "storage/model_store.h"
#include "tests/test_util/models.h"
#include "tests/test_util/pki.h"
#include "tests/test_util/process.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond {
namespace {

using ::coupond::testing::ChildProcess;
using ::coupond::testing::ReadFileOrEmpty;
using ::coupond::testing::RunCommand;
using ::coupond::testing::StatusIs;
using ::coupond::testing::TempDir;
using ::coupond::testing::TinyModel;
using ::coupond::testing::WaitForPortFile;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "test-admin-token-0123456789abcdef";

int CountOccurrences(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

class ServingTest : public ::testing::Test {
 protected:
  // Starts coupond on this test's store with the common flags and `extra`, and waits for
  // its port. Its stdout and stderr (the log) go to ServerLog().
  void StartServer(const std::vector<std::string>& extra) {
    std::remove(dir_.Sub("port").c_str());
    server_ = std::make_unique<ChildProcess>(ServerArgs(extra), dir_.Sub("coupond.log"));
    ASSERT_TRUE(server_->spawned()) << "cannot start " << COUPOND_SERVER_BINARY;
    const int port = WaitForPortFile(dir_.Sub("port"), absl::Seconds(30));
    ASSERT_GT(port, 0) << "coupond did not report its port; its log:\n" << ServerLog();
    target_ = absl::StrCat("127.0.0.1:", port);
  }
  // Runs coupond with flags it must refuse: its exit status (its log in *log).
  int RunFailingServer(const std::vector<std::string>& extra, std::string* log) {
    return RunCommand(ServerArgs(extra), dir_.Sub("failed.log"), log, absl::Seconds(30));
  }
  std::vector<std::string> ServerArgs(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {COUPOND_SERVER_BINARY,   "--store=" + dir_.Sub("store"),
                                     "--listen=127.0.0.1:0",  "--port_file=" + dir_.Sub("port"),
                                     "--poll_interval=100ms", "--shutdown_grace=2s",
                                     "--log_level=info"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  std::string ServerLog() const { return ReadFileOrEmpty(dir_.Sub("coupond.log")); }
  // Waits until the server's log holds `text`.
  bool WaitForLog(const std::string& text, absl::Duration timeout = absl::Seconds(30)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!absl::StrContains(ServerLog(), text)) {
      if (absl::Now() >= deadline) return false;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return true;
  }
  // With --poll_interval=1h: waits for the poll made at start to find the store empty, so
  // that from then on only ReloadModel loads anything.
  void WaitForTheFirstPoll() { ASSERT_TRUE(WaitForLog("no model to serve yet")) << ServerLog(); }

  std::unique_ptr<client::CoupondClient> Client(client::ClientOptions options = {}) {
    options.target = target_;
    auto c = client::CoupondClient::Create(options);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }
  std::unique_ptr<client::CoupondClient> AdminClient(const std::string& token = kToken) {
    client::ClientOptions options;
    options.admin_token = token;
    return Client(options);
  }
  std::string TokenFile(const std::string& token = kToken) {
    const std::string path = dir_.Sub("admin.token");
    std::ofstream(path, std::ios::trunc) << token << "\n";
    chmod(path.c_str(), 0600);
    return "--admin_token_file=" + path;
  }

  core::ModelVersionInfo Publish(const core::ModelData& model) {
    auto store = storage::ModelStore::OpenForWrite(dir_.Sub("store"));
    EXPECT_TRUE(store.ok()) << store.status();
    auto info = (*store)->Publish(model);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? *info : core::ModelVersionInfo{};
  }
  // Deletes one user row of `version`, so that the version fails verification.
  void Damage(uint64_t version) {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_.Sub("store"), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Delete({}, storage::internal::UserKey(version, "u1")).ok());
    ASSERT_TRUE(db->Close().ok());
  }

  // Every active coupon, which needs a top_k.
  v1::ScoreRequest ScoreRequest(const std::string& user = "u1") {
    v1::ScoreRequest r;
    r.set_user_id(user);
    r.set_top_k(10);
    return r;
  }

  TempDir dir_;
  std::unique_ptr<ChildProcess> server_;
  std::string target_;
};

// ---------------------------------------------------------------------------------------
// Admin

TEST_F(ServingTest, AdminIsNotServedWithoutATokenFile) {
  StartServer({});
  auto admin = AdminClient();
  EXPECT_THAT(admin->GetServerStatus(), StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_THAT(admin->ReloadModel(), StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_THAT(ServerLog(), HasSubstr("Admin service (ReloadModel, GetServerStatus) not "
                                     "registered: no --admin_token_file"));
}

TEST_F(ServingTest, AdminRefusesCallsWithoutTheRightTokenAndActsOnlyWithIt) {
  StartServer({TokenFile(), "--poll_interval=1h"});
  WaitForTheFirstPoll();
  Publish(TinyModel(40, 30, 8));
  std::string wrong_last = kToken;
  wrong_last.back() = 'X';
  const std::string token = kToken;
  for (const std::string& bad : {std::string(), wrong_last, token.substr(0, token.size() - 1),
                                 token + "0", std::string("x")}) {
    auto admin = AdminClient(bad);
    EXPECT_THAT(admin->ReloadModel(),
                StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("authorization: Bearer")))
        << "token '" << bad << "'";
    EXPECT_THAT(admin->GetServerStatus(), StatusIs(absl::StatusCode::kUnauthenticated));
  }
  // None of the refused reloads loaded the published version.
  auto admin = AdminClient();
  ASSERT_OK_AND_ASSIGN(v1::GetServerStatusResponse before, admin->GetServerStatus());
  EXPECT_EQ(before.served_version(), 0u);
  EXPECT_EQ(before.loads(), 0u);
  ASSERT_OK_AND_ASSIGN(v1::ReloadModelResponse reload, admin->ReloadModel());
  EXPECT_TRUE(reload.changed());
  EXPECT_EQ(reload.served_version(), 1u);
  const std::string log = ServerLog();
  EXPECT_THAT(log, HasSubstr("refused an Admin."));
  EXPECT_THAT(log, HasSubstr("without a valid token"));
  EXPECT_THAT(log, Not(HasSubstr(kToken)));  // the token is never logged
  EXPECT_THAT(log, HasSubstr("Admin service registered on a plaintext port"));
}

TEST_F(ServingTest, ReloadModelLoadsNowAndReportsARefusedVersion) {
  StartServer({TokenFile(), "--poll_interval=1h"});
  WaitForTheFirstPoll();
  auto admin = AdminClient();
  EXPECT_THAT(admin->ReloadModel(), StatusIs(absl::StatusCode::kNotFound));  // empty store

  Publish(TinyModel(40, 30, 8));
  ASSERT_OK_AND_ASSIGN(v1::ReloadModelResponse first, admin->ReloadModel());
  EXPECT_EQ(first.previous_version(), 0u);
  EXPECT_EQ(first.served_version(), 1u);
  EXPECT_TRUE(first.changed());
  // Serving at once: no waiting for a poll.
  ASSERT_OK_AND_ASSIGN(auto health, admin->CheckHealth("coupond.v1.CouponScoring"));
  EXPECT_EQ(health, HealthCheckResponse::SERVING);
  ASSERT_OK_AND_ASSIGN(v1::ReloadModelResponse again, admin->ReloadModel());
  EXPECT_FALSE(again.changed());
  EXPECT_EQ(again.served_version(), 1u);

  ASSERT_OK_AND_ASSIGN(v1::GetServerStatusResponse status, admin->GetServerStatus());
  EXPECT_EQ(status.served_version(), 1u);
  EXPECT_EQ(status.live_snapshots(), 1u);
  EXPECT_GT(status.snapshot_bytes(), 0u);
  EXPECT_GT(status.last_load_unix_seconds(), absl::ToUnixSeconds(absl::Now()) - 120);
  EXPECT_GT(status.last_load_seconds(), 0.0);
  EXPECT_EQ(status.loads(), 1u);
  EXPECT_EQ(status.rejections(), 0u);
  EXPECT_FALSE(status.has_last_rejection());
  EXPECT_GT(status.memory_limit_bytes(), 0u);
  EXPECT_FALSE(status.memory_limit_source().empty());

  // A damaged version 2: FAILED_PRECONDITION with the verification error; version 1 serves.
  const core::ModelVersionInfo v2 = Publish(TinyModel(41, 30, 8));
  ASSERT_EQ(v2.version, 2u);
  Damage(2);
  EXPECT_THAT(admin->ReloadModel(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                             HasSubstr("rejected model version 2")));
  ASSERT_OK_AND_ASSIGN(status, admin->GetServerStatus());
  EXPECT_EQ(status.served_version(), 1u);
  EXPECT_EQ(status.rejections(), 1u);
  ASSERT_TRUE(status.has_last_rejection());
  EXPECT_EQ(status.last_rejection().version(), 2u);
  EXPECT_EQ(status.last_rejection().code(), "DATA_LOSS");
  EXPECT_THAT(status.last_rejection().reason(), HasSubstr("rejected model version 2"));
  ASSERT_OK_AND_ASSIGN(v1::ScoreResponse score, admin->Score(ScoreRequest()));
  EXPECT_EQ(score.model_version(), 1u);
  ASSERT_OK_AND_ASSIGN(health, admin->CheckHealth("coupond.v1.CouponScoring"));
  EXPECT_EQ(health, HealthCheckResponse::SERVING);

  // A good version 3 supersedes it.
  Publish(TinyModel(42, 30, 8));
  ASSERT_OK_AND_ASSIGN(v1::ReloadModelResponse third, admin->ReloadModel());
  EXPECT_EQ(third.previous_version(), 1u);
  EXPECT_EQ(third.served_version(), 3u);
}

// ---------------------------------------------------------------------------------------
// Memory check

TEST_F(ServingTest, ASecondVersionThatDoesNotFitBesideTheFirstIsRefusedAndTheFirstServes) {
  const core::ModelData model = TinyModel(3000, 50, 16);
  const core::ModelVersionInfo v1 = Publish(model);
  const uint64_t estimate = core::ModelSnapshot::EstimateMemoryBytes(v1);
  // Room for one version alone, not for two.
  const uint64_t limit = estimate * 3 / 2;
  StartServer({TokenFile(), absl::StrCat("--memory_limit_bytes=", limit)});
  auto admin = AdminClient();
  ASSERT_OK(admin->WaitUntilServing(absl::Seconds(30)));

  Publish(model);  // version 2, as large as version 1
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  v1::GetServerStatusResponse status;
  while (absl::Now() < deadline) {
    ASSERT_OK_AND_ASSIGN(status, admin->GetServerStatus());
    if (status.last_rejection().version() == 2) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_EQ(status.last_rejection().version(), 2u) << "version 2 was not refused";
  EXPECT_EQ(status.last_rejection().code(), "RESOURCE_EXHAUSTED");
  EXPECT_THAT(status.last_rejection().reason(),
              AllOf(HasSubstr("refused model version 2"), HasSubstr("memory limit"),
                    HasSubstr(absl::StrCat(limit, " bytes; --memory_limit_bytes"))));
  EXPECT_EQ(status.memory_limit_bytes(), limit);
  EXPECT_EQ(status.memory_limit_source(), "--memory_limit_bytes");
  EXPECT_EQ(status.served_version(), 1u);

  // Still serving, and honestly so.
  ASSERT_OK_AND_ASSIGN(auto health, admin->CheckHealth(""));
  EXPECT_EQ(health, HealthCheckResponse::SERVING);
  ASSERT_OK_AND_ASSIGN(v1::ScoreResponse score, admin->Score(ScoreRequest()));
  EXPECT_EQ(score.model_version(), 1u);
  EXPECT_THAT(admin->ReloadModel(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("memory limit")));

  // Refused on every poll (10 per second here), logged once: wait for several refusals.
  const absl::Time refusals_deadline = absl::Now() + absl::Seconds(30);
  do {
    ASSERT_OK_AND_ASSIGN(status, admin->GetServerStatus());
    if (status.rejections() > 3u) break;
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() < refusals_deadline);
  ASSERT_GT(status.rejections(), 3u) << "version 2 was not refused on every poll";
  EXPECT_EQ(CountOccurrences(ServerLog(), "[error] refused model version 2"), 1) << ServerLog();
}

TEST_F(ServingTest, ATinyMemoryLimitRefusesEvenTheFirstVersion) {
  StartServer({TokenFile(), "--memory_limit_bytes=1000"});
  Publish(TinyModel(40, 30, 8));
  auto admin = AdminClient();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  v1::GetServerStatusResponse status;
  while (absl::Now() < deadline && status.last_rejection().version() != 1) {
    absl::SleepFor(absl::Milliseconds(50));
    ASSERT_OK_AND_ASSIGN(status, admin->GetServerStatus());
  }
  EXPECT_EQ(status.last_rejection().code(), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(status.served_version(), 0u);
  ASSERT_OK_AND_ASSIGN(auto health, admin->CheckHealth(""));
  EXPECT_EQ(health, HealthCheckResponse::NOT_SERVING);
  EXPECT_THAT(admin->Score(ScoreRequest()), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(ServerLog(), HasSubstr("refused model version 1"));
}

// ---------------------------------------------------------------------------------------
// Limits and deadlines

TEST_F(ServingTest, AMessageOverMaxMessageBytesIsResourceExhausted) {
  Publish(TinyModel(40, 30, 8));
  StartServer({"--max_message_bytes=8192"});
  auto client = Client();
  ASSERT_OK(client->WaitUntilServing(absl::Seconds(30)));
  auto request_of = [&](int ids) {
    v1::ScoreRequest r = ScoreRequest();
    for (int i = 0; i < ids; ++i)
      r.add_coupon_ids(absl::StrCat("coupon-with-a-long-id-", 10000 + i));
    return r;
  };
  const v1::ScoreRequest small = request_of(100), large = request_of(300);
  ASSERT_LT(small.ByteSizeLong(), 8192u);
  ASSERT_GT(large.ByteSizeLong(), 8192u);
  ASSERT_OK_AND_ASSIGN(v1::ScoreResponse r, client->Score(small));
  EXPECT_EQ(r.unknown_coupon_ids_size(), 100);
  // Refused by coupond's own parse (so counted in the metrics), naming the type and limit.
  EXPECT_THAT(client->Score(large),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("over the server's limit of 8192 bytes for a "
                                 "coupond.v1.ScoreRequest")));
  EXPECT_OK(client->Score(ScoreRequest()).status());  // the server is unharmed
}

v1::AssignRequest SmallCampaign() {
  v1::AssignRequest request;
  v1::Campaign* c = request.mutable_campaign();
  c->set_campaign_id("small");
  c->set_budget(20);
  for (const char* id : {"c1", "c2", "c3"}) c->add_coupons()->set_coupon_id(id);
  return request;
}

TEST_F(ServingTest, AssignPopulationsOverMaxPopulationAreRefused) {
  Publish(TinyModel(40, 30, 8));
  StartServer({"--max_population=10"});
  auto client = Client();
  ASSERT_OK(client->WaitUntilServing(absl::Seconds(30)));
  auto no_op = [](const v1::AssignResponse&) { return absl::OkStatus(); };
  v1::AssignRequest listed = SmallCampaign();
  for (int u = 0; u < 11; ++u) listed.mutable_users()->add_user_ids(absl::StrCat("u", u));
  EXPECT_THAT(client->Assign(listed, absl::Seconds(30), no_op),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("users.user_ids: 11 users, limit 10")));
  listed.mutable_users()->mutable_user_ids()->RemoveLast();
  ASSERT_OK_AND_ASSIGN(v1::AssignSummary ten, client->Assign(listed, absl::Seconds(30), no_op));
  EXPECT_EQ(ten.users_considered(), 10u);
  // Every user of a 40-user model is over the limit too, found once resolved.
  v1::AssignRequest everyone = SmallCampaign();
  everyone.mutable_all_users();
  EXPECT_THAT(client->Assign(everyone, absl::Seconds(30), no_op),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("all_users: 40 users of model version 1, limit 10"),
                             HasSubstr("--max_population"))));
}

TEST_F(ServingTest, CallsWithoutEnoughTimeLeftAreDroppedCountedAndLogged) {
  Publish(TinyModel(40, 30, 8));
  StartServer({TokenFile(), "--min_deadline_remaining=10s"});
  client::ClientOptions hurried;
  hurried.timeout = absl::Seconds(5);  // less than the server's 10 s minimum
  hurried.admin_token = kToken;
  auto client = Client(hurried);
  ASSERT_OK(client->WaitUntilServing(absl::Seconds(30)));  // health is never dropped

  const auto kDeadline = absl::StatusCode::kDeadlineExceeded;
  EXPECT_THAT(
      client->Score(ScoreRequest()),
      StatusIs(kDeadline, HasSubstr("less than the server's --min_deadline_remaining of 10s")));
  v1::DecideRequest decide;
  decide.set_user_id("u1");
  *decide.mutable_campaign() = SmallCampaign().campaign();
  EXPECT_THAT(client->Decide(decide), StatusIs(kDeadline, HasSubstr("dropped")));
  v1::AssignRequest assign = SmallCampaign();
  assign.mutable_all_users();
  EXPECT_THAT(client->Assign(assign, absl::Seconds(5),
                             [](const v1::AssignResponse&) { return absl::OkStatus(); }),
              StatusIs(kDeadline, HasSubstr("dropped")));

  ASSERT_OK_AND_ASSIGN(v1::GetServerStatusResponse status, client->GetServerStatus());
  EXPECT_EQ(status.dropped_deadline_exceeded(), 3u);
  EXPECT_EQ(status.dropped_cancelled(), 0u);
  EXPECT_THAT(ServerLog(), HasSubstr("dropped a Score call without doing its work"));

  // With time to spare the same calls are served.
  client::ClientOptions patient = hurried;
  patient.timeout = absl::Seconds(30);
  auto served = Client(patient);
  ASSERT_OK_AND_ASSIGN(v1::ScoreResponse score, served->Score(ScoreRequest()));
  EXPECT_EQ(score.model_version(), 1u);
  EXPECT_OK(served->Decide(decide).status());

  // A deadline already past when the call starts: DEADLINE_EXCEEDED (gRPC may answer it
  // without sending it at all), and the server carries on.
  auto stub =
      v1::CouponScoring::NewStub(grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() - absl::Seconds(1)));
  v1::ScoreResponse ignored;
  EXPECT_EQ(stub->Score(&context, ScoreRequest(), &ignored).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_OK(served->Score(ScoreRequest()).status());
  ASSERT_OK_AND_ASSIGN(status, client->GetServerStatus());
  EXPECT_GE(status.dropped_deadline_exceeded(), 3u);

  // Go clients say "no deadline" with grpc-timeout: 2562047H (~292 years). It is served;
  // it used to overflow into a deadline centuries past and come back DEADLINE_EXCEEDED.
  const uint64_t dropped_before = status.dropped_deadline_exceeded();
  grpc::ClientContext far;
  far.set_deadline(gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_hours(2562047, GPR_TIMESPAN)));
  v1::ScoreResponse far_response;
  const grpc::Status far_status = stub->Score(&far, ScoreRequest(), &far_response);
  EXPECT_TRUE(far_status.ok()) << far_status.error_code() << " " << far_status.error_message();
  EXPECT_EQ(far_response.model_version(), 1u);
  ASSERT_OK_AND_ASSIGN(status, client->GetServerStatus());
  EXPECT_EQ(status.dropped_deadline_exceeded(), dropped_before);
}

// An Assign whose deadline passes mid-solve stops its solve (it does not run to the end
// for nobody) and frees its slot; while it runs, --max_concurrent_assigns=1 refuses others.
TEST_F(ServingTest, AnAssignPastItsDeadlineStopsItsSolveAndFreesItsSlot) {
  // Large enough that one solver thread takes seconds over every user and 64 coupons, and
  // under the 4 x 16,384 users from which the solver searches prices on a cached sample:
  // that phase makes no oracle calls, so it does not see a cancellation until it ends
  // (seconds under the sanitizers), whereas every full pass checks at each block.
  Publish(TinyModel(60000, 64, 16));
  StartServer({"--max_concurrent_assigns=1", "--assign_threads=1"});
  auto client = Client();
  ASSERT_OK(client->WaitUntilServing(absl::Seconds(120)));
  auto no_op = [](const v1::AssignResponse&) { return absl::OkStatus(); };
  v1::AssignRequest big;
  big.set_request_id("cancel-me");
  big.mutable_campaign()->set_campaign_id("big");
  big.mutable_campaign()->set_budget(50);
  for (int c = 0; c < 64; ++c)
    big.mutable_campaign()->add_coupons()->set_coupon_id(absl::StrCat("c", c));
  big.mutable_all_users();

  // Wait until the big solve holds the only slot, probing with small solves: the first one
  // refused shows it does. A probe that finds the slot free holds it for a moment; a big
  // call that arrives in that moment is refused, and is started again.
  v1::AssignRequest small = SmallCampaign();
  small.mutable_users()->add_user_ids("u1");
  absl::Status big_status;
  absl::Status probe;
  const absl::Time slot_deadline = absl::Now() + absl::Seconds(60);
  for (;;) {
    absl::Notification big_done;
    std::thread running([&] {
      big_status = client->Assign(big, absl::Seconds(1), no_op).status();
      big_done.Notify();
    });
    do {
      probe = client->Assign(small, absl::Seconds(30), no_op).status();
    } while (!absl::IsResourceExhausted(probe) && !big_done.HasBeenNotified());
    running.join();
    if (absl::IsResourceExhausted(probe) || !absl::IsResourceExhausted(big_status)) break;
    ASSERT_LT(absl::Now(), slot_deadline) << "the big solve never held the slot: " << big_status;
  }
  EXPECT_THAT(probe, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("already running")));
  EXPECT_THAT(big_status, StatusIs(absl::StatusCode::kDeadlineExceeded));

  // The solve ends as cancelled (not finished), and the slot comes back.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline &&
         !absl::StrContains(ServerLog(), "Assign request_id=cancel-me failed: CANCELLED")) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_THAT(ServerLog(), HasSubstr("Assign request_id=cancel-me failed: CANCELLED"));
  EXPECT_THAT(ServerLog(), Not(HasSubstr("Assign request_id=cancel-me campaign=")));
  ASSERT_OK_AND_ASSIGN(v1::AssignSummary summary, client->Assign(small, absl::Seconds(30), no_op));
  EXPECT_EQ(summary.users_considered(), 1u);
}

// ---------------------------------------------------------------------------------------
// TLS

// A throw-away PKI (tests/test_util/pki.h), made once for the suite.
using Pki = ::coupond::testing::TestPki;

class TlsTest : public ServingTest {
 protected:
  static void SetUpTestSuite() { suite_pki_.Make(); }
  static void TearDownTestSuite() { suite_pki_.Reset(); }
  void SetUp() override { ASSERT_TRUE(suite_pki_.Ready()); }

  // A TLS client trusting `ca`, optionally with a client certificate.
  std::unique_ptr<client::CoupondClient> TlsClient(const std::string& ca,
                                                   const std::string& cert = "",
                                                   const std::string& key = "",
                                                   const std::string& name = "coupond.test") {
    auto tls = client::LoadClientTls(ca, cert, key, name);
    EXPECT_TRUE(tls.ok()) << tls.status();
    client::ClientOptions options;
    options.tls = *tls;
    options.admin_token = kToken;
    return Client(options);
  }

  std::vector<std::string> TlsFlags() const {
    return {"--tls_cert=" + pki_->server_cert, "--tls_key=" + pki_->server_key};
  }

  static inline ::coupond::testing::SuitePki suite_pki_;
  static inline const Pki* const pki_ = &suite_pki_.pki();
};

TEST_F(TlsTest, ATlsServerRefusesPlaintextAndServesClientsThatTrustItsCa) {
  Publish(TinyModel(40, 30, 8));
  StartServer(TlsFlags());
  EXPECT_THAT(ServerLog(), HasSubstr("(TLS, kernel target"));

  auto trusting = TlsClient(pki_->ca);
  ASSERT_OK(trusting->WaitUntilServing(absl::Seconds(30)));
  ASSERT_OK_AND_ASSIGN(v1::ScoreResponse r, trusting->Score(ScoreRequest()));
  EXPECT_EQ(r.model_version(), 1u);

  EXPECT_THAT(Client()->CheckHealth(), StatusIs(absl::StatusCode::kUnavailable));  // plaintext
  // The certificate names coupond.test, not the address dialled.
  EXPECT_THAT(TlsClient(pki_->ca, "", "", /*name=*/"")->CheckHealth(),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(TlsClient(pki_->ca, "", "", "other.test")->CheckHealth(),
              StatusIs(absl::StatusCode::kUnavailable));
  // A client that trusts another CA.
  EXPECT_THAT(TlsClient(pki_->other_ca)->CheckHealth(), StatusIs(absl::StatusCode::kUnavailable));
  // Without a client CA the server does not ask for client certificates; one sent anyway
  // is harmless.
  EXPECT_OK(
      TlsClient(pki_->ca, pki_->other_client_cert, pki_->other_client_key)->CheckHealth().status());
}

TEST_F(TlsTest, MutualTlsAcceptsOnlyClientCertificatesFromItsCa) {
  Publish(TinyModel(40, 30, 8));
  std::vector<std::string> flags = TlsFlags();
  flags.push_back("--tls_client_ca=" + pki_->ca);
  StartServer(flags);
  EXPECT_THAT(ServerLog(), HasSubstr("mutual TLS (client certificates required)"));

  auto with_cert = TlsClient(pki_->ca, pki_->client_cert, pki_->client_key);
  ASSERT_OK(with_cert->WaitUntilServing(absl::Seconds(30)));
  EXPECT_OK(with_cert->Score(ScoreRequest()).status());

  EXPECT_THAT(TlsClient(pki_->ca)->Score(ScoreRequest()),
              StatusIs(absl::StatusCode::kUnavailable));  // no certificate
  EXPECT_THAT(
      TlsClient(pki_->ca, pki_->other_client_cert, pki_->other_client_key)->Score(ScoreRequest()),
      StatusIs(absl::StatusCode::kUnavailable));  // signed by another CA
  EXPECT_THAT(Client()->CheckHealth(), StatusIs(absl::StatusCode::kUnavailable));  // plaintext
}

TEST_F(TlsTest, CouponctlTalksMutualTlsAndAdmin) {
  std::vector<std::string> flags = TlsFlags();
  flags.push_back("--tls_client_ca=" + pki_->ca);
  flags.push_back(TokenFile());
  flags.push_back("--poll_interval=1h");
  StartServer(flags);
  WaitForTheFirstPoll();
  Publish(TinyModel(40, 30, 8));
  const std::string token_file = dir_.Sub("admin.token");
  std::ofstream(dir_.Sub("wrong.token")) << "not-the-token-but-long-enough\n";
  const std::vector<std::string> tls = {
      "--server=" + target_, "--tls_ca=" + pki_->ca, "--tls_cert=" + pki_->client_cert,
      "--tls_key=" + pki_->client_key, "--tls_server_name=coupond.test"};
  auto couponctl = [&](std::vector<std::string> args, std::string* output) {
    args.insert(args.begin(), COUPONCTL_BINARY);
    args.insert(args.end(), tls.begin(), tls.end());
    return RunCommand(args, dir_.Sub("couponctl.out"), output);
  };
  std::string out;
  EXPECT_EQ(couponctl({"reload", "--admin_token_file=" + token_file}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("loaded model version 1 (was 0)"));
  EXPECT_EQ(couponctl({"status", "--admin_token_file=" + token_file}, &out), 0) << out;
  EXPECT_THAT(out, AllOf(HasSubstr("served version    1"), HasSubstr("loads / refusals  1 / 0")));
  EXPECT_EQ(couponctl({"status", "--json", "--admin_token_file=" + token_file}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("\"served_version\": \"1\""));
  EXPECT_EQ(couponctl({"health"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("SERVING"));

  EXPECT_EQ(couponctl({"status", "--admin_token_file=" + dir_.Sub("wrong.token")}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("UNAUTHENTICATED"));
  EXPECT_EQ(couponctl({"reload"}, &out), 2) << out;  // no token file: a usage error
  EXPECT_THAT(out, HasSubstr("--admin_token_file is required"));
  EXPECT_EQ(couponctl({"status", "--admin_token_file=" + dir_.Sub("absent")}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("cannot open"));

  // Without the client certificate couponctl cannot get in.
  std::string plain;
  EXPECT_EQ(RunCommand({COUPONCTL_BINARY, "health", "--server=" + target_, "--tls_ca=" + pki_->ca,
                        "--tls_server_name=coupond.test"},
                       dir_.Sub("couponctl.out"), &plain),
            1)
      << plain;
  EXPECT_THAT(plain, HasSubstr("UNAVAILABLE"));
}

TEST_F(TlsTest, BadTlsOrTokenSettingsStopTheServerWithAClearMessage) {
  std::string log;
  EXPECT_EQ(RunFailingServer({"--tls_cert=" + pki_->server_cert}, &log), 1) << log;
  EXPECT_THAT(log, HasSubstr("tls_key: required with tls_cert"));
  EXPECT_EQ(RunFailingServer({"--tls_client_ca=" + pki_->ca}, &log), 1) << log;
  EXPECT_THAT(log, HasSubstr("tls_client_ca: client certificates need TLS"));
  EXPECT_EQ(
      RunFailingServer({"--tls_cert=" + pki_->server_key, "--tls_key=" + pki_->server_key}, &log),
      1)
      << log;
  EXPECT_THAT(log, HasSubstr("no '-----BEGIN CERTIFICATE-----' block"));
  EXPECT_EQ(RunFailingServer({"--tls_cert=" + pki_->server_cert, "--tls_key=" + dir_.Sub("absent")},
                             &log),
            1)
      << log;
  EXPECT_THAT(log, HasSubstr("tls_key '"));
  // A key that is not the certificate's: gRPC refuses the port.
  EXPECT_EQ(
      RunFailingServer({"--tls_cert=" + pki_->server_cert, "--tls_key=" + pki_->client_key}, &log),
      1)
      << log;
  EXPECT_THAT(log, HasSubstr("cannot listen"));
  EXPECT_EQ(RunFailingServer({TokenFile("too-short")}, &log), 1) << log;
  EXPECT_THAT(log, HasSubstr("the token has 9 bytes, at least 16"));
  EXPECT_THAT(log, Not(HasSubstr("too-short")));
}

}  // namespace
}  // namespace coupond
