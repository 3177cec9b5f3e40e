// Integration: the real coupond binary on an ephemeral port, over a real RocksDB store,
// called through the generated client exactly as a storefront backend would.

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <thread>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "api/convert.h"
#include "client/coupond_client.h"
#include "gmock/gmock.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "storage/model_store.h"
#include "tests/test_util/extreme_values.h"
#include "tests/test_util/models.h"
#include "tests/test_util/process.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

extern char** environ;

namespace coupond {
namespace {

using ::coupond::testing::ChildProcess;
using ::coupond::testing::ReferenceLogit;
using ::coupond::testing::ReferenceProbability;
using ::coupond::testing::StatusIs;
using ::coupond::testing::TempDir;
using ::coupond::testing::TinyModel;
using ::coupond::testing::WaitForPortFile;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kService[] = "coupond.v1.CouponScoring";

// The coupond process, started with a fresh store directory and killed if the test fails.
std::unique_ptr<ChildProcess> StartCoupond(const std::string& store, const std::string& port_file) {
  return std::make_unique<ChildProcess>(std::vector<std::string>{
      COUPOND_SERVER_BINARY, "--store=" + store, "--listen=127.0.0.1:0", "--port_file=" + port_file,
      "--poll_interval=100ms", "--max_candidates=50", "--shutdown_grace=2s", "--log_level=warn"});
}

class ServerIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = TinyModel(40, 30, 24);
    model_.coupon_attributes[5].stock = 0;  // never active
    server_ = StartCoupond(dir_.Sub("store"), dir_.Sub("port"));
    ASSERT_TRUE(server_->spawned()) << "cannot start " << COUPOND_SERVER_BINARY;
    const int port = WaitForPortFile(dir_.Sub("port"), absl::Seconds(30));
    ASSERT_GT(port, 0) << "coupond did not report its port";
    target_ = absl::StrCat("127.0.0.1:", port);
    client::ClientOptions options;
    options.target = target_;
    ASSERT_OK_AND_ASSIGN(client_, client::CoupondClient::Create(options));
  }

  void PublishModel() {
    ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForWrite(dir_.Sub("store")));
    ASSERT_OK(store->Publish(model_).status());
  }

  void PublishAndWaitUntilServing() {
    PublishModel();
    ASSERT_OK(client_->WaitUntilServing(absl::Seconds(30)));
  }

  // No coupons: every active coupon, which needs a top_k (50, the server's --max_candidates
  // here, more than the model's 30 coupons).
  v1::ScoreRequest Request(const std::string& user, std::vector<std::string> coupons = {}) {
    v1::ScoreRequest r;
    r.set_user_id(user);
    for (auto& c : coupons) r.add_coupon_ids(c);
    if (coupons.empty()) r.set_top_k(50);
    return r;
  }

  TempDir dir_;
  core::ModelData model_;
  std::unique_ptr<ChildProcess> server_;
  std::string target_;
  std::unique_ptr<client::CoupondClient> client_;
};

TEST_F(ServerIntegrationTest, HealthGoesFromNotServingToServingWhenAModelArrives) {
  // The store does not even exist yet: the server runs, but says it cannot serve.
  ASSERT_OK_AND_ASSIGN(auto overall, client_->CheckHealth(""));
  EXPECT_EQ(overall, HealthCheckResponse::NOT_SERVING);
  ASSERT_OK_AND_ASSIGN(auto service, client_->CheckHealth(kService));
  EXPECT_EQ(service, HealthCheckResponse::NOT_SERVING);
  EXPECT_THAT(client_->Score(Request("u1")),
              StatusIs(absl::StatusCode::kUnavailable, StartsWith("no model version loaded")));
  EXPECT_THAT(client_->GetModelInfo(), StatusIs(absl::StatusCode::kUnavailable));

  PublishAndWaitUntilServing();
  ASSERT_OK_AND_ASSIGN(service, client_->CheckHealth(kService));
  EXPECT_EQ(service, HealthCheckResponse::SERVING);
}

TEST_F(ServerIntegrationTest, ScoresMatchTheDoublePrecisionReference) {
  PublishAndWaitUntilServing();
  for (int u : {0, 7, 39}) {
    v1::ScoreRequest request = Request(model_.user_ids[u]);
    request.set_request_id(absl::StrCat("req-", u));
    ASSERT_OK_AND_ASSIGN(v1::ScoreResponse r, client_->Score(request));
    EXPECT_EQ(r.request_id(), absl::StrCat("req-", u));
    EXPECT_EQ(r.model_version(), 1u);
    EXPECT_EQ(r.user_resolution(), v1::USER_RESOLUTION_KNOWN_USER);
    ASSERT_EQ(r.scores_size(), 29);  // 30 coupons, one out of stock
    EXPECT_EQ(r.candidates_scored(), 29u);
    double previous = 2.0;
    for (const v1::CouponScore& s : r.scores()) {
      const uint32_t c = std::stoul(s.coupon_id().substr(1));
      EXPECT_NE(c, 5u) << "an out-of-stock coupon was scored";
      EXPECT_NEAR(s.probability(), ReferenceProbability(model_, u, c), 1e-5);
      EXPECT_NEAR(s.logit(), ReferenceLogit(model_, u, c), 1e-4);
      EXPECT_LE(s.probability(), previous);  // sorted, highest first
      previous = s.probability();
    }
  }
}

TEST_F(ServerIntegrationTest, UnknownUserGetsThePopulationPriorAndUnknownCouponsAreReported) {
  PublishAndWaitUntilServing();
  v1::ScoreRequest request = Request("stranger", {"c3", "nope", "c5", "c1"});
  request.set_top_k(1);
  ASSERT_OK_AND_ASSIGN(v1::ScoreResponse r, client_->Score(request));
  EXPECT_FALSE(r.request_id().empty());  // generated by the server
  EXPECT_EQ(r.user_resolution(), v1::USER_RESOLUTION_POPULATION_PRIOR);
  EXPECT_THAT(r.unknown_coupon_ids(), ElementsAre("nope"));
  EXPECT_THAT(r.inactive_coupon_ids(), ElementsAre("c5"));
  EXPECT_EQ(r.candidates_scored(), 2u);
  ASSERT_EQ(r.scores_size(), 1);
  const double p1 = ReferenceProbability(model_, -1, 1), p3 = ReferenceProbability(model_, -1, 3);
  EXPECT_EQ(r.scores(0).coupon_id(), p1 >= p3 ? "c1" : "c3");
  EXPECT_NEAR(r.scores(0).probability(), std::max(p1, p3), 1e-6);
}

TEST_F(ServerIntegrationTest, BadRequestsAreInvalidArgumentNamingTheField) {
  PublishAndWaitUntilServing();
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_THAT(client_->Score(Request("")), StatusIs(kInvalid, StartsWith("user_id")));
  EXPECT_THAT(client_->Score(Request(std::string(1000, 'u'))),
              StatusIs(kInvalid, StartsWith("user_id")));
  EXPECT_THAT(client_->Score(Request("u1", {"c1", "c2", "c1"})),
              StatusIs(kInvalid, StartsWith("coupon_ids[2]: duplicate")));
  EXPECT_THAT(client_->Score(Request("u1", {"c1", ""})),
              StatusIs(kInvalid, StartsWith("coupon_ids[1]: empty")));
  std::vector<std::string> many;
  for (int i = 0; i < 51; ++i) many.push_back(absl::StrCat("c", i));
  EXPECT_THAT(client_->Score(Request("u1", many)),
              StatusIs(kInvalid, StartsWith("coupon_ids: 51 candidates, limit 50")));
  v1::ScoreRequest r = Request("u1");
  r.set_as_of_unix_seconds(-5);
  EXPECT_THAT(client_->Score(r), StatusIs(kInvalid, StartsWith("as_of_unix_seconds")));
  r = Request("u1");
  r.set_request_id(std::string(200, 'r'));
  EXPECT_THAT(client_->Score(r), StatusIs(kInvalid, StartsWith("request_id")));
  // Neither coupon_ids nor campaign_id: the whole catalogue, which needs a bounded top_k
  // (1..--max_candidates, 50 here). Issue 15: top_k 0 returned every active coupon.
  r = Request("u1");
  r.set_top_k(0);
  EXPECT_THAT(client_->Score(r), StatusIs(kInvalid, StartsWith("top_k: required (1..50)")));
  r.set_top_k(51);
  EXPECT_THAT(client_->Score(r), StatusIs(kInvalid, StartsWith("top_k: 51 is out of range [0, 50]")));
  r.set_top_k(3);
  ASSERT_OK_AND_ASSIGN(v1::ScoreResponse three, client_->Score(r));
  EXPECT_EQ(three.scores_size(), 3);
  EXPECT_EQ(three.candidates_scored(), 29u);
  // The server is unharmed.
  EXPECT_OK(client_->Score(Request("u1")).status());
}

TEST_F(ServerIntegrationTest, GetModelInfoDescribesTheServedVersion) {
  PublishAndWaitUntilServing();
  ASSERT_OK_AND_ASSIGN(v1::GetModelInfoResponse r, client_->GetModelInfo());
  EXPECT_EQ(r.model().version(), 1u);
  EXPECT_EQ(r.model().dimension(), 24u);
  EXPECT_EQ(r.model().num_users(), 40u);
  EXPECT_EQ(r.model().num_coupons(), 30u);
  EXPECT_EQ(r.model().checksum().size(), 16u);
  EXPECT_EQ(r.model().description(), "tiny test model");
  EXPECT_GT(r.model().loaded_unix_seconds(), 0);
}

TEST_F(ServerIntegrationTest, ReflectionListsTheService) {
  auto channel = grpc::CreateChannel(target_, grpc::InsecureChannelCredentials());
  auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  auto stream = stub->ServerReflectionInfo(&context);
  grpc::reflection::v1alpha::ServerReflectionRequest list;
  list.set_list_services("");
  ASSERT_TRUE(stream->Write(list));
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::vector<std::string> services;
  for (const auto& s : response.list_services_response().service()) services.push_back(s.name());
  EXPECT_THAT(services, Contains(kService));

  // grpcurl also needs the descriptors: ask for the file that defines the service.
  grpc::reflection::v1alpha::ServerReflectionRequest file;
  file.set_file_containing_symbol(kService);
  ASSERT_TRUE(stream->Write(file));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_GT(response.file_descriptor_response().file_descriptor_proto_size(), 0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

v1::AssignRequest Campaign(double budget) {
  v1::AssignRequest request;
  request.set_request_id("plan-1");
  v1::Campaign* c = request.mutable_campaign();
  c->set_campaign_id("spring");
  c->set_budget(budget);
  for (const char* id : {"c1", "c2", "c3", "c5"}) c->add_coupons()->set_coupon_id(id);
  c->mutable_coupons(1)->set_stock(3);
  request.mutable_all_users();
  request.set_chunk_size(4);
  return request;
}

TEST_F(ServerIntegrationTest, AssignStreamsAFeasibleAssignmentAndItsSummary) {
  PublishAndWaitUntilServing();
  const v1::AssignRequest request = Campaign(/*budget=*/20.0);
  std::vector<v1::AssignResponse> messages;
  std::vector<v1::Assignment> assignments;
  ASSERT_OK_AND_ASSIGN(
      v1::AssignSummary summary,
      client_->Assign(request, absl::Seconds(60), [&](const v1::AssignResponse& m) {
        messages.push_back(m);
        EXPECT_EQ(m.request_id(), "plan-1");
        EXPECT_LE(m.assignments_size(), 4);
        assignments.insert(assignments.end(), m.assignments().begin(), m.assignments().end());
        return absl::OkStatus();
      }));
  EXPECT_EQ(summary.model_version(), 1u);
  EXPECT_EQ(summary.users_considered(), 40u);
  EXPECT_EQ(summary.assignments(), assignments.size());
  EXPECT_GT(assignments.size(), 0u);
  // The proto's contract: full chunks of assignments, then one message with only the summary.
  ASSERT_EQ(messages.size(), (assignments.size() + 3) / 4 + 1);
  for (size_t i = 0; i + 1 < messages.size(); ++i) {
    EXPECT_FALSE(messages[i].has_summary()) << i;
    EXPECT_EQ(messages[i].assignments_size(),
              std::min<int>(4, static_cast<int>(assignments.size() - 4 * i)))
        << i;
  }
  EXPECT_TRUE(messages.back().has_summary());
  EXPECT_EQ(messages.back().assignments_size(), 0);
  // Feasible: spend within budget (recomputed from the model), stock kept, one per user,
  // the out-of-stock coupon c5 never given.
  double spend = 0;
  std::map<std::string, int> per_coupon;
  std::set<std::string> users;
  for (const v1::Assignment& a : assignments) {
    const int u = std::stoi(a.user_id().substr(1));
    const int c = std::stoi(a.coupon_id().substr(1));
    EXPECT_NEAR(a.probability(), ReferenceProbability(model_, u, c), 1e-5);
    spend += a.probability() * model_.coupon_attributes[c].face_value;
    ++per_coupon[a.coupon_id()];
    EXPECT_TRUE(users.insert(a.user_id()).second) << "two coupons for " << a.user_id();
  }
  EXPECT_LE(spend, 20.0 + 1e-6);
  EXPECT_NEAR(spend, summary.expected_spend(), 1e-6);
  EXPECT_LE(per_coupon["c2"], 3);
  EXPECT_EQ(per_coupon.count("c5"), 0u);
  EXPECT_GE(summary.dual_bound(), summary.expected_value() - 1e-9);
  EXPECT_EQ(summary.prices().campaign_id(), "spring");
}

TEST_F(ServerIntegrationTest, AssignRejectsBadCampaignsAndHandlesDegenerateOnes) {
  PublishAndWaitUntilServing();
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  auto no_op = [](const v1::AssignResponse&) { return absl::OkStatus(); };
  v1::AssignRequest r = Campaign(-1);
  EXPECT_THAT(client_->Assign(r, absl::Seconds(30), no_op),
              StatusIs(kInvalid, StartsWith("campaign.budget")));
  r = Campaign(10);
  r.mutable_campaign()->add_coupons()->set_coupon_id("c1");
  EXPECT_THAT(client_->Assign(r, absl::Seconds(30), no_op),
              StatusIs(kInvalid, StartsWith("campaign.coupons[4].coupon_id: duplicate")));
  r = Campaign(10);
  r.mutable_campaign()->mutable_coupons(0)->set_coupon_id("unknown");
  EXPECT_THAT(client_->Assign(r, absl::Seconds(30), no_op),
              StatusIs(kInvalid, StartsWith("campaign.coupons[0].coupon_id: 'unknown' is not in")));
  r = Campaign(10);
  r.mutable_campaign()->set_max_coupons_per_user(0);
  EXPECT_THAT(client_->Assign(r, absl::Seconds(30), no_op),
              StatusIs(kInvalid, StartsWith("campaign.max_coupons_per_user")));
  r = Campaign(10);
  r.mutable_campaign()->clear_coupons();
  EXPECT_THAT(client_->Assign(r, absl::Seconds(30), no_op),
              StatusIs(kInvalid, StartsWith("campaign.coupons")));
  r = Campaign(10);
  r.mutable_all_users()->add_segments("no-such-segment");
  EXPECT_THAT(client_->Assign(r, absl::Seconds(30), no_op),
              StatusIs(kInvalid, StartsWith("all_users.segments[0]: 'no-such-segment' is not a segment")));
  r = Campaign(10);
  r.clear_all_users();
  EXPECT_THAT(client_->Assign(r, absl::Seconds(30), no_op),
              StatusIs(kInvalid, StartsWith("population: required")));
  // Budget 0 with paid coupons: an empty assignment, not an error: the summary alone.
  int messages = 0;
  ASSERT_OK_AND_ASSIGN(v1::AssignSummary zero,
                       client_->Assign(Campaign(0), absl::Seconds(30),
                                       [&messages](const v1::AssignResponse& m) {
                                         ++messages;
                                         EXPECT_TRUE(m.has_summary());
                                         EXPECT_EQ(m.assignments_size(), 0);
                                         return absl::OkStatus();
                                       }));
  EXPECT_EQ(messages, 1);
  EXPECT_EQ(zero.assignments(), 0u);
  EXPECT_EQ(zero.expected_spend(), 0.0);
}

// Issue 15: value_weight = 1e308 returned OK with expected_value and dual_bound "Infinity".
// Every extreme number is now INVALID_ARGUMENT naming the field, through the real service;
// the largest allowed values give a finite summary and finite decisions.
TEST_F(ServerIntegrationTest, ExtremeNumbersAreRefusedAndTheLargestAllowedStayFinite) {
  PublishAndWaitUntilServing();
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  auto no_op = [](const v1::AssignResponse&) { return absl::OkStatus(); };
  v1::AssignRequest r = Campaign(10);
  r.mutable_campaign()->mutable_coupons(0)->set_value_weight(1e308);
  EXPECT_THAT(client_->Assign(r, absl::Seconds(30), no_op),
              StatusIs(kInvalid, StartsWith("campaign.coupons[0].value_weight: 1e+308 is out of "
                                            "range [0, 1e+06]")));
  for (double v : coupond::testing::ExtremeDoubles()) {
    r = Campaign(10);
    r.mutable_campaign()->mutable_coupons(2)->set_value_weight(v);
    EXPECT_THAT(client_->Assign(r, absl::Seconds(30), no_op),
                StatusIs(kInvalid, StartsWith("campaign.coupons[2].value_weight: ")))
        << v;
    r = Campaign(v);
    EXPECT_THAT(client_->Assign(r, absl::Seconds(30), no_op),
                StatusIs(kInvalid, StartsWith("campaign.budget: ")))
        << v;
    r = Campaign(10);
    r.mutable_solver()->set_tolerance(v);
    EXPECT_THAT(client_->Assign(r, absl::Seconds(30), no_op),
                StatusIs(kInvalid, StartsWith("solver.tolerance: ")))
        << v;
    v1::DecideRequest decide;
    decide.set_user_id("u3");
    *decide.mutable_campaign() = Campaign(10).campaign();
    decide.mutable_prices()->set_budget_price(v);
    EXPECT_THAT(client_->Decide(decide), StatusIs(kInvalid, StartsWith("prices.budget_price: ")))
        << v;
    decide.mutable_prices()->set_budget_price(0);
    (*decide.mutable_prices()->mutable_stock_prices())["c2"] = v;
    EXPECT_THAT(client_->Decide(decide),
                StatusIs(kInvalid, StartsWith("prices.stock_prices['c2']: ")))
        << v;
  }
  for (int64_t v : coupond::testing::ExtremeInt64s()) {
    r = Campaign(10);
    r.mutable_campaign()->mutable_coupons(0)->set_stock(v);
    EXPECT_THAT(client_->Assign(r, absl::Seconds(30), no_op),
                StatusIs(kInvalid, StartsWith("campaign.coupons[0].stock: ")))
        << v;
    r = Campaign(10);
    r.mutable_campaign()->set_as_of_unix_seconds(v);
    EXPECT_THAT(client_->Assign(r, absl::Seconds(30), no_op),
                StatusIs(kInvalid, StartsWith("campaign.as_of_unix_seconds: ")))
        << v;
  }

  // The largest values of every range: a finite summary, finite decisions.
  r = Campaign(1e12);
  r.mutable_campaign()->set_max_coupons_per_user(1000);
  for (v1::CampaignCoupon& c : *r.mutable_campaign()->mutable_coupons()) {
    c.set_value_weight(1e6);
    c.set_stock(1'000'000'000'000);
  }
  r.mutable_solver()->set_tolerance(1.0);
  ASSERT_OK_AND_ASSIGN(v1::AssignSummary summary, client_->Assign(r, absl::Seconds(60), no_op));
  EXPECT_GT(summary.expected_value(), 1e6);
  for (double v : {summary.expected_redemptions(), summary.expected_value(),
                   summary.expected_spend(), summary.dual_bound(), summary.relative_gap(),
                   summary.prices().budget_price()}) {
    EXPECT_TRUE(std::isfinite(v)) << summary.DebugString();
  }
  v1::DecideRequest decide;
  decide.set_user_id("u3");
  *decide.mutable_campaign() = r.campaign();
  decide.mutable_campaign()->set_budget(1e12);
  decide.mutable_prices()->set_budget_price(1e12);
  (*decide.mutable_prices()->mutable_stock_prices())["c1"] = 1e12;
  ASSERT_OK_AND_ASSIGN(v1::DecideResponse expensive, client_->Decide(decide));
  decide.mutable_prices()->Clear();
  ASSERT_OK_AND_ASSIGN(v1::DecideResponse free, client_->Decide(decide));
  ASSERT_GT(free.chosen_size(), 0);
  for (const v1::DecideResponse* d : {&expensive, &free}) {
    EXPECT_TRUE(std::isfinite(d->propensity())) << d->DebugString();
    for (const v1::CouponDecision& c : d->chosen()) {
      EXPECT_TRUE(std::isfinite(c.score()) && std::isfinite(c.probability())) << c.DebugString();
    }
  }
}

// Issue 15: Decide and Score disagreed in the 8th digit for the same user and coupon (float
// and double sigmoids). Both now compute p with one function: the same bits, for known
// users and a new one, whether Score names the coupons or scores the whole catalogue.
TEST_F(ServerIntegrationTest, DecideAndScoreGiveBitEqualProbabilities) {
  PublishAndWaitUntilServing();
  const std::vector<std::string> coupons = {"c1", "c2", "c3", "c7", "c11", "c29"};
  v1::DecideRequest decide;
  v1::Campaign* campaign = decide.mutable_campaign();
  campaign->set_campaign_id("same-bits");
  campaign->set_budget(1000);
  campaign->set_max_coupons_per_user(static_cast<uint32_t>(coupons.size()));
  for (const std::string& id : coupons) campaign->add_coupons()->set_coupon_id(id);
  int compared = 0;
  for (const char* user : {"u0", "u3", "u17", "u39", "a-new-user"}) {
    decide.set_user_id(user);
    // Prices 0, weights 1: every coupon's score is its probability > 0, so all are chosen.
    ASSERT_OK_AND_ASSIGN(v1::DecideResponse decided, client_->Decide(decide));
    ASSERT_EQ(decided.chosen_size(), static_cast<int>(coupons.size())) << user;
    ASSERT_OK_AND_ASSIGN(v1::ScoreResponse listed, client_->Score(Request(user, coupons)));
    ASSERT_OK_AND_ASSIGN(v1::ScoreResponse everything, client_->Score(Request(user)));
    for (const v1::ScoreResponse* scored : {&listed, &everything}) {
      std::map<std::string, double> score_p;
      for (const v1::CouponScore& s : scored->scores()) score_p[s.coupon_id()] = s.probability();
      for (const v1::CouponDecision& c : decided.chosen()) {
        ASSERT_EQ(score_p.count(c.coupon_id()), 1u) << c.coupon_id();
        EXPECT_EQ(c.probability(), score_p[c.coupon_id()])  // bit-equal
            << user << " " << c.coupon_id() << ": Decide " << c.probability() << " vs Score "
            << score_p[c.coupon_id()];
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, 5 * 6 * 2);
}

TEST_F(ServerIntegrationTest, DecideUsesTheCampaignPrices) {
  PublishAndWaitUntilServing();
  v1::DecideRequest request;
  request.set_user_id("u3");
  *request.mutable_campaign() = Campaign(10).campaign();
  // Price 0: the user gets its highest value coupon among the eligible ones.
  ASSERT_OK_AND_ASSIGN(v1::DecideResponse free, client_->Decide(request));
  ASSERT_EQ(free.chosen_size(), 1);
  double best = -1;
  std::string best_id;
  for (int c : {1, 2, 3}) {
    const double p = ReferenceProbability(model_, 3, c);
    if (p > best) best = p, best_id = absl::StrCat("c", c);
  }
  EXPECT_EQ(free.chosen(0).coupon_id(), best_id);
  EXPECT_NEAR(free.chosen(0).probability(), best, 1e-6);
  // A budget price that makes every coupon cost more than it brings: nothing.
  request.mutable_prices()->set_budget_price(1.0);
  ASSERT_OK_AND_ASSIGN(v1::DecideResponse none, client_->Decide(request));
  EXPECT_EQ(none.chosen_size(), 0);
  request.mutable_prices()->set_budget_price(-1.0);
  EXPECT_THAT(client_->Decide(request), StatusIs(absl::StatusCode::kInvalidArgument,
                                                 StartsWith("prices.budget_price")));
  request.mutable_prices()->set_budget_price(0);
  (*request.mutable_prices()->mutable_stock_prices())["zz"] = 1.0;
  EXPECT_THAT(client_->Decide(request), StatusIs(absl::StatusCode::kInvalidArgument,
                                                 StartsWith("prices.stock_prices['zz']")));
}

// Cold start: a new user with attributes is placed in a segment and scored with its prior;
// the response names the segment, counts the ignored attributes, and marks coupons whose
// vectors were predicted from their attributes. Decide takes the same attributes.
TEST_F(ServerIntegrationTest, ColdStartUserWithAttributesGetsItsSegmentPrior) {
  const uint32_t d = model_.dimension;
  model_.segment_features = {{"log_exposures", 0.5f, 1.5f},
                             {"AGE_DESC=25-34", 0.0f, 2.0f},
                             {"AGE_DESC=45-54", 0.0f, 2.0f}};
  for (int s = 0; s < 2; ++s) {
    core::SegmentData seg;
    seg.name = absl::StrCat("segment-", s);
    // segment-0 is the 25-34s, segment-1 the 45-54s.
    seg.centroid = {0.0f, s == 0 ? 0.5f : 0.0f, s == 1 ? 0.5f : 0.0f};
    seg.prior_bias = s == 0 ? -0.4f : 0.6f;
    for (uint32_t k = 0; k < d; ++k) seg.prior_factors.push_back(0.05f * (s == 0 ? -1.0f : 1.0f));
    model_.segments.push_back(std::move(seg));
  }
  model_.coupon_predicted_from_attributes.assign(model_.num_coupons(), 0);
  model_.coupon_predicted_from_attributes[2] = 1;
  PublishAndWaitUntilServing();

  v1::ScoreRequest request = Request("new-household", {"c1", "c2", "c3"});
  (*request.mutable_user_attributes())["age_desc"] = "45-54";
  (*request.mutable_user_attributes())["income_desc"] = "50-74K";  // unknown to the model
  ASSERT_OK_AND_ASSIGN(v1::ScoreResponse r, client_->Score(request));
  EXPECT_EQ(r.user_resolution(), v1::USER_RESOLUTION_SEGMENT_PRIOR);
  EXPECT_EQ(r.segment(), "segment-1");
  EXPECT_EQ(r.ignored_user_attributes(), 1u);
  ASSERT_EQ(r.scores_size(), 3);
  core::ModelData as_user = model_;  // user u0 carrying segment-1's prior
  as_user.user_bias[0] = model_.segments[1].prior_bias;
  std::copy(model_.segments[1].prior_factors.begin(), model_.segments[1].prior_factors.end(),
            as_user.user_factors.begin());
  for (const v1::CouponScore& s : r.scores()) {
    const uint32_t c = std::stoul(s.coupon_id().substr(1));
    EXPECT_NEAR(s.probability(), ReferenceProbability(as_user, 0, c), 1e-5) << s.coupon_id();
    EXPECT_EQ(s.predicted_from_attributes(), c == 2) << s.coupon_id();
  }

  (*request.mutable_user_attributes())["age_desc"] = "25-34";
  ASSERT_OK_AND_ASSIGN(r, client_->Score(request));
  EXPECT_EQ(r.segment(), "segment-0");
  // Nothing the model knows: the population prior, no segment.
  request.mutable_user_attributes()->erase("age_desc");
  ASSERT_OK_AND_ASSIGN(r, client_->Score(request));
  EXPECT_EQ(r.user_resolution(), v1::USER_RESOLUTION_POPULATION_PRIOR);
  EXPECT_EQ(r.segment(), "");
  EXPECT_EQ(r.ignored_user_attributes(), 1u);
  // A known user's attributes are not read.
  v1::ScoreRequest known = Request("u4", {"c1"});
  (*known.mutable_user_attributes())["age_desc"] = "45-54";
  ASSERT_OK_AND_ASSIGN(r, client_->Score(known));
  EXPECT_EQ(r.user_resolution(), v1::USER_RESOLUTION_KNOWN_USER);
  EXPECT_EQ(r.segment(), "");
  EXPECT_EQ(r.ignored_user_attributes(), 0u);
  // Malformed attributes are the caller's mistake.
  (*known.mutable_user_attributes())["AGE_DESC"] = "25-34";
  EXPECT_THAT(client_->Score(known),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("user_attributes: names")));

  // Decide: the same placement.
  v1::DecideRequest decide;
  decide.set_user_id("new-household");
  *decide.mutable_campaign() = Campaign(10).campaign();
  (*decide.mutable_user_attributes())["AGE_DESC"] = "45-54";
  ASSERT_OK_AND_ASSIGN(v1::DecideResponse chosen, client_->Decide(decide));
  EXPECT_EQ(chosen.user_resolution(), v1::USER_RESOLUTION_SEGMENT_PRIOR);
  ASSERT_EQ(chosen.chosen_size(), 1);
  const uint32_t c = std::stoul(chosen.chosen(0).coupon_id().substr(1));
  EXPECT_NEAR(chosen.chosen(0).probability(), ReferenceProbability(as_user, 0, c), 1e-5);
  decide.clear_user_attributes();
  ASSERT_OK_AND_ASSIGN(chosen, client_->Decide(decide));
  EXPECT_EQ(chosen.user_resolution(), v1::USER_RESOLUTION_POPULATION_PRIOR);
}

// A campaign stored with the model: the server loads it on its poll, Decide by campaign_id
// answers exactly as Decide with the same campaign and prices inline, and a price update
// (a new record) takes over without a restart.
TEST_F(ServerIntegrationTest, DecideWithAStoredCampaignFollowsItsPriceUpdates) {
  PublishAndWaitUntilServing();
  const v1::Campaign campaign = Campaign(10).campaign();
  v1::CampaignPrices prices;
  prices.set_model_version(1);
  prices.set_budget_price(0.01);
  (*prices.mutable_stock_prices())["c2"] = 0.001;
  auto store_campaign = [&](const v1::CampaignPrices& p) {
    ASSERT_OK_AND_ASSIGN(std::string payload, api::EncodeStoredCampaign(campaign, p));
    ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForWrite(dir_.Sub("store")));
    ASSERT_OK(store->PublishCampaign(campaign.campaign_id(), payload).status());
  };
  auto wait_for_record = [&](uint64_t sequence) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      absl::StatusOr<v1::ListCampaignsResponse> list = client_->ListCampaigns();
      if (list.ok() && list->campaigns_size() == 1 && list->campaigns(0).sequence() == sequence) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  };

  v1::DecideRequest by_id;
  by_id.set_user_id("u3");
  by_id.set_campaign_id("spring");
  EXPECT_THAT(client_->Decide(by_id),
              StatusIs(absl::StatusCode::kNotFound, StartsWith("campaign_id: no stored campaign 'spring'")));

  store_campaign(prices);
  ASSERT_TRUE(wait_for_record(1)) << "the server did not load the stored campaign";
  ASSERT_OK_AND_ASSIGN(v1::ListCampaignsResponse list, client_->ListCampaigns());
  EXPECT_EQ(list.campaigns(0).campaign_id(), "spring");
  EXPECT_EQ(list.campaigns(0).num_coupons(), 4u);
  EXPECT_EQ(list.campaigns(0).budget(), 10.0);
  EXPECT_EQ(list.campaigns(0).budget_price(), 0.01);

  v1::DecideRequest inline_request;
  inline_request.set_user_id("u3");
  *inline_request.mutable_campaign() = campaign;
  *inline_request.mutable_prices() = prices;
  for (const char* user : {"u3", "u17", "new-user"}) {
    by_id.set_user_id(user);
    inline_request.set_user_id(user);
    ASSERT_OK_AND_ASSIGN(v1::DecideResponse stored, client_->Decide(by_id));
    ASSERT_OK_AND_ASSIGN(v1::DecideResponse given, client_->Decide(inline_request));
    EXPECT_EQ(stored.campaign_id(), "spring");
    EXPECT_EQ(stored.campaign_sequence(), 1u);
    EXPECT_EQ(stored.prices_model_version(), 1u);
    EXPECT_EQ(given.campaign_sequence(), 0u);
    ASSERT_EQ(stored.chosen_size(), given.chosen_size()) << user;
    for (int i = 0; i < stored.chosen_size(); ++i) {
      EXPECT_EQ(stored.chosen(i).coupon_id(), given.chosen(i).coupon_id());
      EXPECT_EQ(stored.chosen(i).score(), given.chosen(i).score());
    }
  }

  // A price update that makes every coupon cost more than it brings: nothing for anyone.
  v1::CampaignPrices expensive = prices;
  expensive.set_budget_price(1.0);
  store_campaign(expensive);
  ASSERT_TRUE(wait_for_record(2)) << "the server did not pick up the price update";
  by_id.set_user_id("u3");
  ASSERT_OK_AND_ASSIGN(v1::DecideResponse after, client_->Decide(by_id));
  EXPECT_EQ(after.campaign_sequence(), 2u);
  EXPECT_EQ(after.chosen_size(), 0);

  // Either the stored campaign or an inline one, not both.
  v1::DecideRequest both = inline_request;
  both.set_campaign_id("spring");
  EXPECT_THAT(client_->Decide(both),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("campaign_id:")));
  v1::DecideRequest neither;
  neither.set_user_id("u3");
  EXPECT_THAT(client_->Decide(neither),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("campaign:")));
}

// A stored campaign that names a coupon the served model does not have is the store's
// inconsistency, not the caller's mistake: FAILED_PRECONDITION naming the campaign.
TEST_F(ServerIntegrationTest, AStoredCampaignThatNoLongerFitsTheModelIsAFailedPrecondition) {
  PublishAndWaitUntilServing();
  v1::Campaign campaign = Campaign(10).campaign();
  campaign.set_campaign_id("gone");
  campaign.add_coupons()->set_coupon_id("c-retired");
  v1::CampaignPrices prices;
  ASSERT_OK_AND_ASSIGN(std::string payload, api::EncodeStoredCampaign(campaign, prices));
  {
    ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForWrite(dir_.Sub("store")));
    ASSERT_OK(store->PublishCampaign("gone", payload).status());
  }
  v1::DecideRequest request;
  request.set_user_id("u1");
  request.set_campaign_id("gone");
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  absl::StatusOr<v1::DecideResponse> response = client_->Decide(request);
  while (absl::IsNotFound(response.status()) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
    response = client_->Decide(request);
  }
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kFailedPrecondition,
                                 HasSubstr("stored campaign 'gone' (record 1) does not fit model version 1")));
}

// Score by a stored campaign's id scores the campaign's coupons exactly as listing them
// would, under each model version served: the coupons are looked up once per record and
// version, and again after a swap (here, a version whose biases all differ).
TEST_F(ServerIntegrationTest, ScoreByStoredCampaignEqualsListingItsCouponsAcrossReloads) {
  PublishAndWaitUntilServing();
  v1::Campaign campaign = Campaign(10).campaign();  // c1 c2 c3 c5 (c5: never active)
  campaign.add_coupons()->set_coupon_id("c-retired");
  campaign.add_coupons()->set_coupon_id("c29");
  ASSERT_OK_AND_ASSIGN(std::string payload,
                       api::EncodeStoredCampaign(campaign, v1::CampaignPrices()));
  v1::ScoreRequest by_id = Request("u7");
  by_id.set_campaign_id("spring");
  by_id.set_top_k(3);
  EXPECT_THAT(client_->Score(by_id),
              StatusIs(absl::StatusCode::kNotFound, StartsWith("campaign_id: no stored campaign 'spring'")));
  {
    ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForWrite(dir_.Sub("store")));
    ASSERT_OK(store->PublishCampaign("spring", payload).status());
  }
  v1::ScoreRequest listed = Request("u7", {"c1", "c2", "c3", "c5", "c-retired", "c29"});
  listed.set_top_k(3);
  auto score_when = [&](uint64_t version) -> absl::StatusOr<v1::ScoreResponse> {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    absl::StatusOr<v1::ScoreResponse> r = client_->Score(by_id);
    while ((!r.ok() || r->model_version() != version) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
      r = client_->Score(by_id);
    }
    return r;
  };
  for (uint64_t version : {1u, 2u}) {
    if (version == 2) {
      model_.global_bias += 0.5;
      for (float& b : model_.coupon_bias) b = -b;
      PublishModel();
    }
    ASSERT_OK_AND_ASSIGN(v1::ScoreResponse stored, score_when(version));
    ASSERT_OK_AND_ASSIGN(v1::ScoreResponse given, client_->Score(listed));
    ASSERT_EQ(given.model_version(), version);
    EXPECT_EQ(stored.campaign_id(), "spring");
    EXPECT_EQ(stored.campaign_sequence(), 1u);
    EXPECT_EQ(given.campaign_id(), "");
    EXPECT_THAT(stored.unknown_coupon_ids(), ElementsAre("c-retired"));
    EXPECT_THAT(stored.inactive_coupon_ids(), ElementsAre("c5"));
    EXPECT_EQ(stored.candidates_scored(), 4u);
    ASSERT_EQ(stored.scores_size(), 3);
    ASSERT_EQ(given.scores_size(), 3);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(stored.scores(i).coupon_id(), given.scores(i).coupon_id()) << version;
      EXPECT_EQ(stored.scores(i).logit(), given.scores(i).logit());
      const uint32_t c = std::stoul(stored.scores(i).coupon_id().substr(1));
      EXPECT_NEAR(stored.scores(i).probability(), ReferenceProbability(model_, 7, c), 1e-5);
    }
  }
  // The campaign's coupons or a list, not both.
  v1::ScoreRequest both = listed;
  both.set_campaign_id("spring");
  EXPECT_THAT(client_->Score(both),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("campaign_id: set together")));
}

// Hot reload under traffic: 50 new versions while two clients score continuously. No call
// may fail, every response must come whole from the version it names, and afterwards only
// one snapshot may remain in memory.
TEST_F(ServerIntegrationTest, ReloadsFiftyVersionsUnderTrafficWithoutAFailedRequest) {
  // Version v has global bias base + 0.01 v, so a response proves which model made it.
  const double base = model_.global_bias;
  auto version_model = [&](uint64_t v) {
    core::ModelData m = model_;
    m.global_bias = base + 0.01 * static_cast<double>(v);
    return m;
  };
  ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForWrite(dir_.Sub("store")));
  ASSERT_OK(store->Publish(version_model(1)).status());
  ASSERT_OK(client_->WaitUntilServing(absl::Seconds(30)));

  std::atomic<bool> stop{false};
  std::atomic<int> calls{0}, failures{0}, wrong{0};
  auto traffic = [&](int user) {
    uint64_t last_version = 0;
    while (!stop.load()) {
      v1::ScoreRequest request = Request(model_.user_ids[user], {"c0", "c7"});
      absl::StatusOr<v1::ScoreResponse> r = client_->Score(request);
      ++calls;
      if (!r.ok()) {
        ++failures;
        continue;
      }
      const uint64_t v = r->model_version();
      // Versions never go backwards for one client, and the numbers match version v.
      if (v < last_version || r->scores_size() != 2) ++wrong;
      last_version = v;
      for (const v1::CouponScore& s : r->scores()) {
        const uint32_t c = std::stoul(s.coupon_id().substr(1));
        const double expected = ReferenceLogit(model_, user, c) + 0.01 * static_cast<double>(v);
        if (std::abs(s.logit() - expected) > 1e-4) ++wrong;
      }
    }
  };
  std::thread a(traffic, 3), b(traffic, 11);
  // Each version is published once the server serves the one before, so that every one of
  // the 50 is swapped in under traffic; each wait is bounded by one shared deadline. (No
  // ASSERT while the traffic threads run: a failure stops the loop, then they are joined.)
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  uint64_t served = 1;
  for (uint64_t v = 2; v <= 51 && served == v - 1; ++v) {
    if (absl::Status s = store->Publish(version_model(v)).status(); !s.ok()) {
      ADD_FAILURE() << "publishing version " << v << ": " << s;
      break;
    }
    while (served != v && absl::Now() < deadline) {
      auto info = client_->GetModelInfo();
      if (info.ok()) served = info->model().version();
      if (served != v) absl::SleepFor(absl::Milliseconds(20));
    }
  }
  stop = true;
  a.join();
  b.join();
  EXPECT_EQ(served, 51u);
  EXPECT_GT(calls.load(), 50);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  // The poller frees a swapped-out snapshot within ~10 ms of its last reader letting go.
  ASSERT_OK_AND_ASSIGN(v1::GetModelInfoResponse info, client_->GetModelInfo());
  for (const absl::Time until = absl::Now() + absl::Seconds(10);
       info.live_snapshots() != 1 && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(20));
    ASSERT_OK_AND_ASSIGN(info, client_->GetModelInfo());
  }
  EXPECT_EQ(info.live_snapshots(), 1u) << "old snapshots were not freed";
  EXPECT_GT(info.snapshot_bytes(), 0u);
}

TEST_F(ServerIntegrationTest, SigtermShutsDownGracefully) {
  PublishAndWaitUntilServing();
  EXPECT_EQ(server_->StopWith(SIGTERM, absl::Seconds(20)), 0);
  EXPECT_THAT(client_->Score(Request("u1")), StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace coupond
