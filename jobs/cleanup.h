// Cleanup of deprecated checkpoints: deletes their objects, records when
// (cleaned_at), and removes the record once it has been cleaned longer than
// the retention.
//
// Contract
// - RunOnce() pages through the catalog (bounded memory). For every
//   deprecated record without cleaned_at whose checkpoint no job reads
//   (CheckpointReaders): deletes the objects under "<id>/" of the store its
//   restore_path names (only when restore_path ends in "/<id>/": a path set
//   by a client that is not ours is never touched) and under "<id>/" of the
//   daemon's image store (partial uploads of failed jobs), then sets
//   cleaned_at (and drops info.cleanup_error). Held checkpoints are skipped
//   ("skipped"). A failed delete leaves the record uncleaned, stores the
//   error as info.cleanup_error and is retried next round. Records whose
//   cleaned_at is at least `retention` old (as of the start of the round, so
//   never in the round that cleaned them) are removed from the catalog.
//   With every delete, what interrupted uploads left under that prefix
//   (ObjectStore::RemoveIncomplete) goes too. In the daemon's local image
//   store, a directory named as a checkpoint id that the catalog does not
//   have (its record removed while objects stayed) is an orphan and is
//   deleted ("orphans"). Nothing else is ever deleted: no other status, no
//   other id, no empty prefix.
// - Start() runs a round every `interval` on its own thread (none when
//   interval is 0); Stop() ends an ongoing round at the next record and joins.
//   Rounds never overlap (the trigger waits for a running round).
// - set_interval() and set_retention() change both at run time (SIGHUP,
//   daemon/reload.h). A new interval restarts the wait at once: the next
//   round comes `interval` after the change, not after the old interval.
// Thread safety: every method may be called from any thread; the pointers
// passed in must outlive the Cleaner.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "api/cleanup_handlers.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "jobs/checkpoint_readers.h"
#include "store/catalog.h"
#include "store/object_store.h"
#include "store/object_uri.h"

namespace ckptd {

struct CleanerOptions {
  std::chrono::seconds interval{300};  // 0: no background rounds
  std::chrono::seconds retention{7 * 86400};
  ObjectStoreConfig store_config;  // S3 settings for s3:// restore_paths
  // Directories a file:// restore_path may name; empty: any (tests).
  std::vector<std::string> file_roots;
  size_t page = 256;  // records loaded at once
  // The daemon's image store's directory when it is local ("" for S3):
  // where orphaned checkpoint directories are looked for.
  std::string images_root;
};

class Cleaner final : public api::CleanupService {
 public:
  // `images` (the daemon's image store) and `readers` may be null.
  Cleaner(CleanerOptions opts, Catalog* catalog, ObjectStore* images, CheckpointReaders* readers,
          const Clock* clock = SystemClock::Default());
  ~Cleaner() override;

  void Start();
  void Stop();
  // Unavailable once stopped.
  Result<api::CleanupReport> RunOnce() override;
  // Changes the interval of the background rounds: a waiting loop wakes and
  // waits `interval` from now (a round in progress finishes first); 0 pauses
  // them. Any time, before or after Start().
  void set_interval(std::chrono::seconds interval);
  std::chrono::seconds interval() const;
  // Changes the retention; rounds that start afterwards use it.
  void set_retention(std::chrono::seconds retention);

 private:
  // Deletes the objects of one deprecated checkpoint.
  Status DeleteObjects(const CheckpointRecord& rec);
  void NoteError(const std::string& id, const std::string& message);
  // Deletes image directories of ids the catalog does not have.
  void SweepOrphans(api::CleanupReport* report);
  void Loop();

  CleanerOptions opts_;
  Catalog* catalog_;
  ObjectStore* images_;
  CheckpointReaders* readers_;
  const Clock* clock_;

  Mutex round_mu_;  // one round at a time
  mutable Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::chrono::seconds interval_ GUARDED_BY(mu_);
  // Bumped by every set_interval(), so that a change (even back to the same
  // value) restarts the wait.
  uint64_t interval_changes_ GUARDED_BY(mu_) = 0;
  std::atomic<int64_t> retention_s_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace ckptd
