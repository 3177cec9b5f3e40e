// Issue 12, defect 4: collector writes never wait on gRPC's callback threads. With the
// collector embedded in coupond, those are the threads that serve Score: a slow disk
// under the collector (a commit delay, CollectorOptions::commit_delay_for_testing) must not
// hold Score up. Each write is answered only once its group is committed.

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "coupond/v1/collector.grpc.pb.h"
#include "coupond/v1/coupon_scoring.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "storage/model_store.h"
#include "tests/test_util/models.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::collector_reactor_test {
namespace {

using ::coupond::testing::TempDir;
using ::coupond::testing::TinyModel;

constexpr absl::Duration kCommitDelay = absl::Milliseconds(1500);

TEST(CollectorReactorTest, ScoreAnswersWhileEmbeddedCollectorWritesWaitForASlowDisk) {
  TempDir dir;
  {
    ASSERT_OK_AND_ASSIGN(auto store, storage::ModelStore::OpenForWrite(dir.Sub("store")));
    ASSERT_OK(store->Publish(TinyModel(50, 6, 8)).status());
  }
  server::ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.shutdown_grace = absl::Seconds(5);
  options.collector_db = dir.Sub("collector");
  options.collector.commit_delay_for_testing = kCommitDelay;
  ASSERT_OK_AND_ASSIGN(auto server,
                       server::CoupondServer::Start(server::NewStoreModelSource(dir.Sub("store")), options));
  const absl::Time load_deadline = absl::Now() + absl::Seconds(30);
  while (server->models().current_version() == 0) {
    ASSERT_LT(absl::Now(), load_deadline) << "the model did not load";
    absl::SleepFor(absl::Milliseconds(10));
  }
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server->port()),
                                     grpc::InsecureChannelCredentials());
  auto collector = v1::Collector::NewStub(channel);
  auto scorer = v1::CouponScoring::NewStub(channel);

  // More concurrent writes than gRPC has callback threads (a few per core): if each held
  // its thread until its commit, none would be left for Score.
  const int kWrites = 4 * static_cast<int>(std::max(4u, std::thread::hardware_concurrency()));
  std::atomic<int> answered{0};
  std::vector<grpc::Status> statuses(kWrites);
  std::vector<absl::Duration> latencies(kWrites);
  std::vector<std::thread> writers;
  const absl::Time writes_start = absl::Now();
  for (int i = 0; i < kWrites; ++i) {
    writers.emplace_back([&, i] {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
      const absl::Time start = absl::Now();
      if (i % 2 == 0) {
        v1::ReportOutcomeRequest request;
        request.set_decision_id(absl::StrCat("d", i));
        request.set_redeemed(true);
        request.set_order_value(5);
        v1::ReportOutcomeResponse response;
        statuses[i] = collector->ReportOutcome(&context, request, &response);
      } else {
        v1::LogDecisionsRequest request;
        v1::DecisionRecord* record = request.add_decisions();
        record->set_decision_id(absl::StrCat("d", i));
        record->set_user_key("u1");
        record->set_campaign_id("c");
        record->set_propensity(1.0);
        v1::LogDecisionsResponse response;
        statuses[i] = collector->LogDecisions(&context, request, &response);
      }
      latencies[i] = absl::Now() - start;
      answered.fetch_add(1);
    });
  }
  // Let the writes reach the server (they then wait for the first slow commit), then score.
  absl::SleepFor(absl::Milliseconds(300));
  v1::ScoreRequest score;
  score.set_user_id("u1");
  score.set_top_k(3);
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + kCommitDelay / 2));
    v1::ScoreResponse response;
    const absl::Time start = absl::Now();
    const grpc::Status status = scorer->Score(&context, score, &response);
    EXPECT_TRUE(status.ok()) << "Score " << i << " while " << kWrites - answered.load()
                             << " writes were pending: " << status.error_message();
    EXPECT_LT(absl::Now() - start, kCommitDelay / 2);
    EXPECT_EQ(response.scores_size(), 3);
  }
  // The writes were pending all along: none is answered before its commit.
  EXPECT_EQ(answered.load(), 0) << "writes were answered before the slow commit";
  for (std::thread& t : writers) t.join();
  for (int i = 0; i < kWrites; ++i) {
    EXPECT_TRUE(statuses[i].ok()) << "write " << i << ": " << statuses[i].error_message();
    EXPECT_GE(latencies[i], kCommitDelay - absl::Milliseconds(350)) << "write " << i;
  }
  // Group commit still merges them: a couple of delayed commits for all the writes, not
  // one each.
  EXPECT_LT(absl::Now() - writes_start, 4 * kCommitDelay);
  server->Shutdown();
}

}  // namespace
}  // namespace coupond::collector_reactor_test
