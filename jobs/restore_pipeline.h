// The restore pipeline: one job's steps, each journaled through its
// JobContext.
//
//   read-manifest  the manifest (checked against the catalog's checksum when
//                  the restore names a checkpoint), under a read hold
//   download       every file streamed back, decoded and verified (size,
//                  checksum) into <staging>/restore-<job>/images before
//                  CRIU sees any of it
//   criu-restore   orphans reaped, CRIU restores the tree detached; the
//                  restored root is journaled as soon as CRIU names it.
//                  A container checkpoint is restored only as a container
//                  (request "container"): `runc restore --detach` under the
//                  new id and bundle (jobs/container_steps.h)
//   gpu-restore    the tree's GPU processes restored (device_map) and
//                  unlocked
//
// A failure after CRIU created the tree kills it (never a half-restored
// workload); a failed CRIU restore that left the dumped root's pid taken
// (when it was free before) kills that tree too. Staging is removed at the
// end either way. Recovery (jobs/recovery.h) uses KillRestoringTree and
// FinishGpuRestore.
// Thread safety: one pipeline per job, driven from one thread.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include <boost/json/value.hpp>

#include "common/fd.h"
#include "images/manifest.h"
#include "jobs/job_context.h"
#include "jobs/job_env.h"
#include "store/catalog.h"

namespace ckptd {

// The tree a restore (or a checkpoint's rollback) journaled in `j` was
// restoring, with the CRIU doing it: killed if they are there (the root
// CRIU named, or else the dumped root's pid if it appeared after the
// restore began and was free before). How many processes were signalled.
int KillRestoringTree(const Journal& j);

class RestorePipeline {
 public:
  RestorePipeline(const JobOptions& opts, const JobEnv& env, Catalog* catalog, JobContext* ctx);

  // The whole job; the result (pid, timings) is set on success.
  Status Run();
  // Recovery: CRIU restored the tree (journal.restored) but its GPU
  // processes were not restored yet: do it, or kill the tree.
  Status FinishGpuRestore();

 private:
  Status ReadManifest();
  Status Download();
  // The GPU compatibility check and device map, before anything is fetched.
  Status PlanGpu();
  Status CriuRestore();
  Status ContainerRestoreStep();
  // Sends the pty master CRIU made (orphan_pts_master) to the request's
  // console_socket. Ok when CRIU made none.
  Status DeliverConsole(const UniqueFd& master) const;
  Status JournaledRestore(int dumped_root, bool root_existed, const std::function<Result<int>()>& restore);
  Status GpuRestore();
  void Phase(JobPhase p);
  int KillHalfRestored() { return KillRestoringTree(job_.journal); }

  const JobOptions& opts_;
  const JobEnv& env_;
  Catalog* catalog_;
  JobContext* ctx_;
  const Job& job_;
  std::filesystem::path staging_, images_dir_;
  JobPhase phase_ = JobPhase::kManifest;
  CheckpointReaders::Hold hold_;
  std::unique_ptr<ObjectStore> store_;
  Manifest manifest_;
  int restored_pid_ = 0;
  GpuJobContext gpu_;
  boost::json::object container_;  // a restored container: {id, pid, bundle}
  boost::json::object timings_;
};

}  // namespace ckptd
