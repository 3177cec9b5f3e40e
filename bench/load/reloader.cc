#include "bench/load/reloader.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "coupond/v1/coupon_scoring.pb.h"

namespace coupond::load_bench {

Reloader::Reloader(storage::ModelStore* store, const core::ModelData* model,
                   const client::CoupondClient* client, absl::Duration interval, bool staged,
                   int versions_needed, bool publisher_idle)
    : store_(store),
      model_(model),
      client_(client),
      interval_(interval),
      publisher_idle_(publisher_idle) {
  if (staged) {
    absl::StatusOr<core::ModelVersionInfo> latest = store_->LatestVersion();
    uint64_t next = latest.ok() ? latest->version + 1 : 1;
    const absl::Time t0 = absl::Now();
    for (int i = 0; i < versions_needed && status_.ok(); ++i) {
      storage::PublishOptions options;
      options.version = next++;
      absl::StatusOr<storage::StagedVersion> version = store_->Stage(*model_, options);
      if (version.ok()) {
        staged_.push_back(std::move(*version));
      } else {
        status_ = version.status();
      }
    }
    stage_ms_ = absl::ToDoubleMilliseconds(absl::Now() - t0) /
                std::max<double>(1, static_cast<double>(staged_.size()));
    staged_mode_ = true;
  }
  publisher_ = std::thread([this] { Publish(); });
  watcher_ = std::thread([this] { Watch(); });
}

void Reloader::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (publisher_.joinable()) publisher_.join();
  if (watcher_.joinable()) watcher_.join();
  staged_.clear();  // versions not committed: their files are removed
}

void Reloader::Publish() {
  // The publisher stands for the offline pipeline, which runs on another machine in
  // production; on this shared machine it takes idle CPU only (--publisher_idle).
  if (publisher_idle_) {
    const sched_param param{};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) != 0) {
      std::fprintf(stderr, "load_bench: cannot make the publisher SCHED_IDLE\n");
    }
  }
  size_t next_staged = 0;
  while (status_.ok() && !stop_.WaitForNotificationWithTimeout(interval_)) {
    const absl::Time t0 = absl::Now();
    absl::StatusOr<core::ModelVersionInfo> info;
    if (staged_mode_) {
      if (next_staged == staged_.size()) return;  // all committed; the phase runs on
      info = store_->Commit(std::move(staged_[next_staged++]));
    } else {
      info = store_->Publish(*model_);
    }
    if (!info.ok()) {
      status_ = info.status();
      return;
    }
    publish_ms_ += absl::ToDoubleMilliseconds(absl::Now() - t0);
    ++published_;
  }
}

void Reloader::Watch() {
  uint64_t version = 0;
  while (!stop_.WaitForNotificationWithTimeout(absl::Milliseconds(20))) {
    absl::StatusOr<v1::GetModelInfoResponse> info = client_->GetModelInfo();
    if (!info.ok()) continue;
    if (version != 0 && info->model().version() != version) ++observed_;
    version = info->model().version();
  }
}

}  // namespace coupond::load_bench
