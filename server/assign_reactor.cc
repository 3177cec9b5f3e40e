#include "server/assign_reactor.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "api/convert.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"
#include "edge/raw_call.h"
#include "server/heap_memory.h"
#include "spdlog/spdlog.h"

namespace coupond::server {

bool AssignJobs::TryStart() {
  absl::MutexLock lock(&mu_);
  if (running_ >= max_) return false;
  ++running_;
  return true;
}

void AssignJobs::Done() {
  absl::MutexLock lock(&mu_);
  --running_;
}

void AssignJobs::WaitForNone() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* running) { return *running == 0; }, &running_));
}

AssignReactor::AssignReactor(const grpc::Status& error) { Finish(error); }

AssignReactor::AssignReactor(std::string request_id, v1::AssignRequest request,
                             std::shared_ptr<const core::ModelSnapshot> model,
                             const Options& options, AssignJobs* jobs)
    : request_id_(std::move(request_id)),
      request_(std::move(request)),
      model_(std::move(model)),
      options_(options),
      jobs_(jobs) {
  // Detached: the thread's last action is a StartWrite or Finish on this reactor, after
  // which it touches nothing; OnDone (and the delete) can only follow those calls.
  std::thread([this] { Run(); }).detach();
}

absl::Status AssignReactor::PlanAndSolve() {
  absl::StatusOr<core::Population> population = api::PopulationFromProto(request_);
  if (!population.ok()) return population.status();
  core::CampaignSpec spec = api::CampaignFromProto(request_.campaign(), options_.now_unix_seconds);
  if (options_.user_keyer != nullptr) {
    // Keyed here, on the solve thread: 10 million HMACs take seconds.
    COUPOND_RETURN_IF_ERROR(options_.user_keyer->KeyAll(&population->user_ids));
    for (core::CampaignCouponSpec& c : spec.coupons) {
      COUPOND_RETURN_IF_ERROR(options_.user_keyer->KeyAll(&c.eligible_user_ids));
    }
  }
  absl::StatusOr<std::unique_ptr<core::CampaignPlan>> plan =
      core::CampaignPlan::Create(model_, spec, *std::move(population));
  if (!plan.ok()) return plan.status();
  if ((*plan)->num_users() > options_.max_population) {
    // An explicit list this long was refused by validation; this is all_users on a model
    // (or segments) larger than the server plans at once.
    return absl::ResourceExhaustedError(absl::StrCat(
        "all_users: ", (*plan)->num_users(), " users of model version ", model_->info().version,
        ", limit ", options_.max_population,
        " per Assign (--max_population); plan a segment or an explicit list"));
  }
  const core::AssignmentOptions solver = api::SolverOptionsFromProto(
      request_.solver(), (*plan)->spec().max_coupons_per_user, options_.solver_threads);
  if (absl::Status s = core::ValidateAssignmentInput((*plan)->coupons(), (*plan)->spec().budget,
                                                     solver);
      !s.ok()) {
    return s;
  }
  const core::CampaignPlan* p = plan->get();
  {
    absl::MutexLock lock(&mu_);
    plan_ = *std::move(plan);
    if (cancelled_) plan_->Cancel();
  }
  const absl::Time start = absl::Now();
  absl::StatusOr<core::AssignmentResult> result =
      core::SolveAssignment(p->coupons(), p->spec().budget, *p, solver);
  solve_seconds_ = absl::ToDoubleSeconds(absl::Now() - start);
  if (!result.ok()) return result.status();
  result_ = *std::move(result);
  plan_for_writes_ = p;
  spdlog::info("Assign request_id={} campaign='{}' users={} assignments={} value={:.2f} "
               "spend={:.2f} gap={:.2e} took {:.3f} s",
               request_id_, p->spec().campaign_id, p->num_users(), result_.assignments.size(),
               result_.primal_value, result_.expected_spend, result_.relative_gap,
               solve_seconds_);
  return absl::OkStatus();
}

void AssignReactor::Run() {
  const absl::Status status = PlanAndSolve();
  // The slot bounds concurrent solves, not streams: free it before the client can see any
  // result, so that a client's next call never finds its own finished call still counted.
  jobs_->Done();
  if (!status.ok()) {
    spdlog::info("Assign request_id={} failed: {}", request_id_, status.ToString());
    Finish(common::ToGrpcStatus(status));
    return;
  }
  WriteNext();
}

void AssignReactor::WriteNext() {
  if (summary_sent_) {
    Finish(grpc::Status::OK);
    return;
  }
  message_.Clear();
  message_.set_request_id(request_id_);
  if (next_ < result_.assignments.size()) {
    const size_t end = std::min(result_.assignments.size(), next_ + options_.chunk_size);
    message_.mutable_assignments()->Reserve(static_cast<int>(end - next_));
    for (; next_ < end; ++next_) {
      const core::AssignedCoupon& a = result_.assignments[next_];
      v1::Assignment* out = message_.add_assignments();
      // An explicit population is answered with the caller's own ids (the plan holds keys
      // when ids are keyed); every user of the model has only its key.
      if (options_.user_keyer != nullptr && request_.has_users()) {
        out->set_user_id(request_.users().user_ids(static_cast<int>(a.user)));
      } else {
        out->set_user_id(std::string(plan_for_writes_->user_id(a.user)));
      }
      out->set_coupon_id(plan_for_writes_->coupons()[a.coupon].id);
      out->set_probability(a.probability);
    }
  } else {
    // After the last chunk (or alone, for an empty assignment): the summary, by itself.
    *message_.mutable_summary() = api::SummaryToProto(result_, *plan_for_writes_, solve_seconds_);
    summary_sent_ = true;
  }
  if (absl::Status s = edge::SerializeResponseBody(message_, &wire_); !s.ok()) {
    Finish(common::ToGrpcStatus(s));
    return;
  }
  StartWrite(&wire_);
}

void AssignReactor::OnWriteDone(bool ok) {
  if (!ok) {
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away during the stream"));
    return;
  }
  WriteNext();
}

void AssignReactor::OnCancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (plan_ != nullptr) plan_->Cancel();  // the solve stops at its next oracle call
}

void AssignReactor::OnDone() {
  // Only after a call that was worked on: one refused before any work allocated little,
  // and a flood of refusals must not become a flood of trims.
  const bool release = options_.release_memory_after && jobs_ != nullptr;
  delete this;  // frees the request, the plan and the result: the call's working set
  // On a thread of its own: after a 300,000-user call it takes 10-30 ms (the pages are
  // handed back one range at a time), too long to hold a gRPC callback thread.
  if (release) std::thread(ReleaseFreeHeapMemory).detach();
}

}  // namespace coupond::server
