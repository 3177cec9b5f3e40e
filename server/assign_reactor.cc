#include "server/assign_reactor.h"

#include <thread>

#include "absl/time/clock.h"
#include "api/convert.h"
#include "server/status_util.h"
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

AssignReactor::AssignReactor(std::string request_id, std::unique_ptr<core::CampaignPlan> plan,
                             core::AssignmentOptions options, uint32_t chunk_size,
                             AssignJobs* jobs)
    : request_id_(std::move(request_id)),
      plan_(std::move(plan)),
      options_(options),
      chunk_size_(chunk_size),
      jobs_(jobs) {
  // Detached: the thread's last action is a StartWrite or Finish on this reactor, after
  // which it touches nothing; OnDone (and the delete) can only follow those calls.
  std::thread([this] { Solve(); }).detach();
}

void AssignReactor::Solve() {
  const absl::Time start = absl::Now();
  absl::StatusOr<core::AssignmentResult> result =
      core::SolveAssignment(plan_->coupons(), plan_->spec().budget, *plan_, options_);
  solve_seconds_ = absl::ToDoubleSeconds(absl::Now() - start);
  if (!result.ok()) {
    spdlog::info("Assign request_id={} failed after {:.3f} s: {}", request_id_, solve_seconds_,
                 result.status().ToString());
    Finish(ToGrpcStatus(result.status()));
    return;
  }
  result_ = *std::move(result);
  spdlog::info("Assign request_id={} campaign='{}' users={} assignments={} value={:.2f} "
               "spend={:.2f} gap={:.2e} took {:.3f} s",
               request_id_, plan_->spec().campaign_id, plan_->num_users(),
               result_.assignments.size(), result_.primal_value, result_.expected_spend,
               result_.relative_gap, solve_seconds_);
  WriteNext();
}

void AssignReactor::WriteNext() {
  if (summary_sent_) {
    Finish(grpc::Status::OK);
    return;
  }
  message_.Clear();
  message_.set_request_id(request_id_);
  const size_t end = std::min(result_.assignments.size(), next_ + chunk_size_);
  message_.mutable_assignments()->Reserve(static_cast<int>(end - next_));
  for (; next_ < end; ++next_) {
    const core::AssignedCoupon& a = result_.assignments[next_];
    v1::Assignment* out = message_.add_assignments();
    out->set_user_id(std::string(plan_->user_id(a.user)));
    out->set_coupon_id(plan_->coupons()[a.coupon].id);
    out->set_probability(a.probability);
  }
  if (next_ == result_.assignments.size()) {
    // The summary travels with the last chunk (or alone, for an empty assignment).
    *message_.mutable_summary() = api::SummaryToProto(result_, *plan_, solve_seconds_);
    summary_sent_ = true;
  }
  StartWrite(&message_);
}

void AssignReactor::OnWriteDone(bool ok) {
  if (!ok) {
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away during the stream"));
    return;
  }
  WriteNext();
}

void AssignReactor::OnCancel() {
  if (plan_ != nullptr) plan_->Cancel();  // the solve stops at its next oracle call
}

void AssignReactor::OnDone() {
  if (jobs_ != nullptr) jobs_->Done();
  delete this;
}

}  // namespace coupond::server
