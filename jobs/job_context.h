// The narrow view a pipeline (jobs/checkpoint_pipeline.h,
// jobs/restore_pipeline.h) has of the job it runs: the job as submitted,
// progress reporting, the step journal, and the result. The engine's
// JobRun (jobs/job_run.h) implements it.
//
// Contract
// - Begin(step, facts) applies `facts` to the journal, appends the step's
//   intent and stores the record synced; only then does it reach the crash
//   point "<step>:before". A step with an external effect must not start
//   when Begin failed.
// - End(step, outcome) reaches the crash point "<step>:after" first, then
//   appends the outcome (done, or failed with the error) and stores it.
// - Note(point, facts) stores facts learnt inside a step, then reaches the
//   crash point `point` ("" for none).
// - Conclude(outcome, step, commit) ends the job in the same write as a
//   catalog change: `commit` gets a BatchExtra that adds the job's final
//   record (succeeded with the result set so far, `step` journaled done;
//   or failed with the outcome's message) and makes the catalog change with
//   it. Only when that write succeeds does the job take that state; then
//   the crash point "<step>:after" is reached. So a checkpoint is never
//   `ready` while its job is unfinished, nor deprecated while its job runs.
// Thread safety: job() and the journal calls belong to the pipeline's
// thread; Progress() and cancelled() may be called from its helper threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "common/proc.h"
#include "common/status.h"
#include "jobs/job.h"
#include "store/catalog.h"

namespace ckptd {

class JobContext {
 public:
  virtual ~JobContext() = default;
  // The job as the pipeline sees it (request, ids, journal so far).
  virtual const Job& job() const = 0;
  virtual void SetPhase(JobPhase phase) = 0;
  // `bytes` more moved; an error (the daemon shuts down) stops the pipeline.
  virtual Status Progress(uint64_t bytes) = 0;
  virtual bool cancelled() const = 0;

  virtual Status Begin(Step step, const std::function<void(Journal&)>& facts = {}) = 0;
  virtual Status End(Step step, const Status& outcome = Status::Ok()) = 0;
  virtual Status Note(std::string_view point, const std::function<void(Journal&)>& facts) = 0;

  virtual void SetResult(boost::json::object result, int pid = 0) = 0;
  using CatalogCommit = std::function<Status(const Catalog::BatchExtra& job_record)>;
  virtual Status Conclude(const Status& outcome, Step step, const CatalogCommit& commit) = 0;
  // A step inside a phase took `seconds` (freeze, gpu_lock, ...).
  virtual void ObserveStep(std::string_view step, double seconds) = 0;
  // The GPU steps of a GPU report (gpu_lock, gpu_checkpoint, ...).
  virtual void ObserveGpuSteps(const boost::json::value& report) = 0;
};

// Runs `fn` as the journaled step `step`: Begin, fn, End with its outcome.
inline Status RunStep(JobContext* ctx, Step step, const std::function<Status()>& fn,
                      const std::function<void(Journal&)>& facts = {}) {
  CKPTD_RETURN_IF_ERROR(ctx->Begin(step, facts));
  Status st = fn();
  Status end = ctx->End(step, st);
  return st.ok() ? end : st;
}

// A callback for a tool's start (CRIU, runc) that notes its pid at
// `point`, as the journal's `criu`, so that a restart can kill it. Best
// effort: a tool the journal misses still dies with the daemon.
inline std::function<void(int)> NoteToolStarted(JobContext* ctx, std::string point) {
  return [ctx, point = std::move(point)](int pid) {
    ctx->Note(point, [&](Journal& j) { j.criu = Identify(pid); }).IgnoreError();
  };
}

}  // namespace ckptd
