// The checkpoint pipeline: one job's steps, each journaled (jobs/journal.h)
// through its JobContext, from the catalog record to `ready`.
//
//   describe        info (platform, cmdline, options) -> updated_info
//   gpu-lock        the tree's GPU processes locked (all or none)
//   gpu-checkpoint  their device memory copied to host (all or none)
//   dump            CRIU (for a container: `runc checkpoint`, after the
//                   container's config and rootfs diff are saved,
//                   jobs/container_steps.h) dumps the tree into
//                   <staging>/<id>/images while
//                   the image streamer (and, leave-running, the page
//                   uploader) ship the images to "<id>/<file>"
//                   (possibly_uploaded before the first byte)
//   gpu-resume      leave-running: GPU processes back to running
//   upload          what was not streamed; every object Head-confirmed
//   manifest        "<id>/manifest.json", last, confirmed
//   ready           info completed; ready + the job's success in one write
//
// On a failure at any step: the GPU processes go back to running and the
// tree is resumed if it still runs; if the dump had ended it (not
// leave-running), rollback restores it from the staging images; then the
// objects are removed and the checkpoint deprecated with the error in the
// same write as the job's failure. When even the rollback fails the
// staging images are kept (the error says where).
//
// Recovery (jobs/recovery.h) reuses the pieces: FinishFromStaging when CRIU
// had written every image and ended the tree, RollbackFromStaging when that
// cannot finish, Abandon otherwise.
// Thread safety: one pipeline per job, driven from one thread.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "common/mutex.h"
#include "images/image_streamer.h"
#include "images/image_transfer.h"
#include "images/manifest.h"
#include "images/page_uploader.h"
#include "jobs/container_steps.h"
#include "jobs/job_context.h"
#include "jobs/job_env.h"
#include "store/catalog.h"
#include "store/codec.h"

namespace ckptd {

class CheckpointPipeline {
 public:
  // Everything must outlive the pipeline.
  CheckpointPipeline(const JobOptions& opts, const JobEnv& env, Catalog* catalog, JobContext* ctx);
  ~CheckpointPipeline();

  // The whole job; the job is concluded (succeeded or failed) when it returns.
  Status Run();

  // Recovery: CRIU wrote every image and the tree is gone; upload the staged
  // images again from scratch, write the manifest, mark ready.
  Status FinishFromStaging();
  // The dumped tree back from the staging images (and its GPU processes
  // restored); the restored root's pid.
  Result<int> RollbackFromStaging();
  // The objects removed, the checkpoint deprecated with `err` and the job
  // concluded failed, in one write; staging removed unless keep_staging.
  Status Abandon(const Status& err, bool keep_staging = false);
  // The GPU processes of the journal back to running (journaled gpu-resume).
  Status ResumeGpu();

 private:
  Status Describe();
  Status GpuPrepare();
  Status Dump();
  Status DumpContainer(criu::DumpOptions* d);
  Result<int> RollbackContainer();
  Status GpuResumeAfterDump();
  Status Upload();
  Status WriteManifest();
  Status MarkReady();
  Status OnFailure(const Status& st);

  void Phase(JobPhase p);
  Status StartUploaders(criu::DumpOptions* d);
  void StopUploaders();
  Status CollectStreamed(std::vector<ManifestFile>* out);
  Status ConfirmObjects(const std::vector<ManifestFile>& files);
  Status FirstByte();
  Manifest BaseManifest() const;
  Status UpdateInfo(const boost::json::object& extra);
  ProgressFn Progress();

  const JobOptions& opts_;
  const JobEnv& env_;
  Catalog* catalog_;
  JobContext* ctx_;
  const Job& job_;
  const std::string id_;
  const int pid_;
  std::filesystem::path staging_, images_dir_;
  JobPhase phase_ = JobPhase::kInfo;
  CodecOptions codec_;
  std::string criu_version_;
  boost::json::object options_;  // the dump options as recorded (journal.options)
  GpuJobContext gpu_;
  // A container's state at describe (checkpoints of a container only).
  std::optional<runc::ContainerState> container_;
  bool gpu_held_ = false;  // GPU processes locked or checkpointed by this job
  bool dumped_ = false;
  // FirstByte() runs on the streamer's and the page uploader's threads.
  Mutex first_byte_mu_;
  bool uploading_ GUARDED_BY(first_byte_mu_) = false;
  std::unique_ptr<ImageStreamer> streamer_;
  std::unique_ptr<PageUploader> pages_;
  std::optional<std::chrono::steady_clock::time_point> frozen_from_, frozen_until_;
  Manifest manifest_;
  std::string checksum_;
  uint64_t stored_bytes_ = 0;
  boost::json::object timings_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace ckptd
