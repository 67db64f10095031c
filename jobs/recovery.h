// Start-up recovery: settles every job a dead daemon (crash, OOM kill,
// kill -9) left queued or running, from its step journal (jobs/journal.h),
// before the API opens.
//
// For every such job, first what must never stay so:
// - a CRIU the dead daemon started (journal.criu, same start time) is
//   killed with its process group; the target tree is sent SIGCONT and
//   waited for until no task of it is traced (the kernel detaches the
//   tracees of a dead tracer); when it runs on, what the killed CRIU held
//   of its network (sockets in repair mode, the lock table) is released
//   (criu/network_lock.h);
// - GPU processes journaled as about to be locked, if still alive, are
//   brought back to running (get-state, restore, unlock).
// Then the job's outcome, by checkpoint job:
// - its checkpoint is `ready`: the job succeeded;
// - CRIU had written every image (journal.images_complete) of a dump that
//   ends the tree (not leave-running): what is left of the tree is killed,
//   the upload is finished from staging and the checkpoint marked ready;
//   if that fails, the tree is restored from staging as the in-process
//   rollback would (a half-restored tree of an interrupted rollback is
//   killed first); if that fails too, the job stays unfinished (phase
//   "recovery", staging kept) for the next start;
// - otherwise the target runs on: objects removed, checkpoint deprecated
//   "interrupted", job failed (one write).
// By restore job: a half-restored tree (CRIU restore begun, not done) is
// killed and the job fails; a tree restored whose GPU processes were not
// is finished (or killed when that fails); a completed restore succeeds.
// Finally staging entries no unsettled job and no kept rollback copy
// needs, and incomplete uploads in the image store, are removed.
//
// Every action is logged with job, checkpoint and pid, and counted in
// ckptd_recovery_actions_total{action}.
// Thread safety: Run() once, from one thread, before any job runs.
#pragma once

#include <functional>
#include <set>
#include <string>

#include "common/status.h"
#include "jobs/job_env.h"
#include "jobs/job_metrics.h"
#include "jobs/job_run.h"
#include "store/catalog.h"
#include "store/job_store.h"

namespace ckptd {

// Hears what recovery is doing ("recovering job <id> (checkpoint of pid
// 42): 30 s"): at each job and every 10 s while one takes. The daemon
// turns it into systemd's EXTEND_TIMEOUT_USEC, so re-uploading a large
// checkpoint does not run into TimeoutStartSec.
using RecoveryProgress = std::function<void(const std::string& status)>;

class Recovery {
 public:
  Recovery(const JobOptions& opts, const JobEnv& env, Catalog* catalog, JobStore* store, JobMetrics* metrics,
           RecoveryProgress progress = {});

  Status Run();

 private:
  // What a job settles to; false when it must wait for the next start.
  bool Checkpoint(JobRun* run);
  bool Restore(JobRun* run);
  // CRIU killed, the target tree running and untraced.
  void ReleaseTree(JobRun* run);
  bool ContainerDumpEnded(const Job& job) const;
  bool FinishDump(JobRun* run);
  void Act(const JobRun& run, std::string_view action, const std::string& what);
  void SweepStaging(const std::set<std::string>& keep);

  const JobOptions& opts_;
  const JobEnv& env_;
  Catalog* catalog_;
  JobStore* store_;
  JobMetrics* metrics_;
  RecoveryProgress progress_;
};

}  // namespace ckptd
