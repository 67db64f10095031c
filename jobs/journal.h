// The durable step journal of one job: before a step with an external
// effect the job writes the step's intent with everything recovery needs
// (which processes it is about to touch, where its images are), after it
// the outcome. The journal lives in the job's record (jobs/job.h), which
// every write stores synced, so a daemon that dies at any instant finds at
// its next start what it was doing and what it had done (jobs/recovery.h).
//
// Steps, in the order a job takes them:
//   checkpoint: create, describe, gpu-lock, gpu-checkpoint, dump,
//               gpu-resume, upload, manifest, ready; on a failure after a
//               dump that ended the tree: rollback
//   restore:    read-manifest, download, criu-restore, gpu-restore
//   both:       recover (recovery's own actions on the job)
// Facts noted inside a step (no entry of their own): CRIU's pid
// ("<step>:criu-started"), CRIU's word that every image is written
// ("dump:images-written"), the restored root ("<step>:root-known").
// Thread safety: value types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "common/proc.h"
#include "common/status.h"

namespace ckptd {

enum class Step {
  kCreate,
  kDescribe,
  kGpuLock,
  kGpuCheckpoint,
  kDump,
  kGpuResume,
  kUpload,
  kManifest,
  kReady,
  kRollback,
  kReadManifest,
  kDownload,
  kCriuRestore,
  kGpuRestore,
  kRecover,
};
std::string_view StepName(Step s);
std::optional<Step> ParseStep(std::string_view name);

enum class StepOutcome { kIntent, kDone, kFailed };

struct JournalEntry {
  Step step = Step::kCreate;
  StepOutcome outcome = StepOutcome::kIntent;
  int64_t at_ms = 0;
  std::string error;  // kFailed: why
};

struct Journal {
  std::vector<JournalEntry> entries;

  // What recovery needs, filled in by the steps as they begin.
  std::string staging;            // the job's staging directory
  std::optional<ProcRef> target;  // checkpoint: the tree's root
  std::vector<ProcRef> tree;      // checkpoint: the tree when the dump began
  std::vector<ProcRef> gpu;       // GPU processes about to be (or) locked
  // Their pids in the tree root's PID namespace (PidSeenFrom), which a
  // restore keeps while host pids change (containers); empty: not known.
  std::vector<int> gpu_ns;
  std::optional<ProcRef> criu;    // the CRIU of the step running now
  bool images_complete = false;   // CRIU said every image is written (post-dump)
  bool staging_kept = false;      // the job ended but its staging holds the only copy of a tree
  boost::json::value options;     // checkpoint: the dump options as recorded (restore_root, ...)
  // restore and rollback: the tree CRIU is restoring
  int dumped_root = 0;              // the root's pid in the images
  bool root_existed = false;        // that pid was taken before the restore began
  uint64_t restore_began = 0;       // BootTicksNow() when CRIU restore began
  std::optional<ProcRef> restored;  // the restored root, once CRIU named it
  boost::json::value gpu_device_map;  // the GPU restore's device map ([{"from","to"}]; null: none)

  // The step has an intent entry / a kDone entry.
  bool Began(Step s) const;
  bool Done(Step s) const;
  // The last step begun that has no outcome yet.
  std::optional<Step> Open() const;
  // "dump (intent)" style summary of the last entry, for logs.
  std::string Last() const;

  boost::json::value ToJson() const;
  static Result<Journal> FromJson(const boost::json::value& v);
};

}  // namespace ckptd
