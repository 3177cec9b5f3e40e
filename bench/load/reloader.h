// The reload publisher of the reload phase: publishes the model as a new version every
// interval while the load runs, and watches the server's answers for version changes.

#ifndef COUPOND_BENCH_LOAD_RELOADER_H_
#define COUPOND_BENCH_LOAD_RELOADER_H_

#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/coupond_client.h"
#include "core/model.h"
#include "storage/model_store.h"

namespace coupond::load_bench {

// Publishes `model` as a new version every `interval` until stopped; meanwhile polls the
// server's GetModelInfo every 20 ms and counts the version changes it answers with.
// With `staged` (--stage_versions), the versions are staged (ModelStore::Stage: encoded and
// written) in the constructor, before the measured phase, and each publish is the Commit
// alone, as a pipeline that prepares a version ahead of its release would do; otherwise
// each publish is a whole ModelStore::Publish inside the phase. With `publisher_idle`
// (--publisher_idle) the publishing thread runs under SCHED_IDLE.
class Reloader {
 public:
  Reloader(storage::ModelStore* store, const core::ModelData* model,
           const client::CoupondClient* client, absl::Duration interval, bool staged,
           int versions_needed, bool publisher_idle);
  ~Reloader() { Stop(); }
  Reloader(const Reloader&) = delete;
  Reloader& operator=(const Reloader&) = delete;

  void Stop();

  int published() const { return published_; }
  int observed() const { return observed_; }
  double mean_publish_ms() const { return published_ > 0 ? publish_ms_ / published_ : 0; }
  // Staged mode: the mean time to stage one version, outside the measured phase (0 otherwise).
  double stage_ms() const { return stage_ms_; }
  bool staged() const { return staged_mode_; }
  const absl::Status& status() const { return status_; }

 private:
  void Publish();
  void Watch();

  storage::ModelStore* const store_;
  const core::ModelData* const model_;
  const client::CoupondClient* const client_;
  const absl::Duration interval_;
  const bool publisher_idle_;
  absl::Notification stop_;
  std::thread publisher_, watcher_;
  int published_ = 0, observed_ = 0;  // written by one thread each, read after Stop()
  double publish_ms_ = 0;
  double stage_ms_ = 0;
  bool staged_mode_ = false;
  std::vector<storage::StagedVersion> staged_;  // committed in order by the publisher
  absl::Status status_;  // set in the constructor, then only by the publisher
};

}  // namespace coupond::load_bench

#endif  // COUPOND_BENCH_LOAD_RELOADER_H_
