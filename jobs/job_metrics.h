// The job engine's metrics, one place: jobs running and finished by kind
// and result, bytes moved, time per phase and per step inside a phase
// (freeze, gpu_lock, ...), and recovery actions at start-up.
// Thread safety: any thread (MetricsRegistry is thread-safe); a null
// registry makes every call a no-op.
#pragma once

#include <string_view>

#include <boost/json/value.hpp>

#include "common/metrics.h"
#include "jobs/job.h"

namespace ckptd {

class JobMetrics {
 public:
  explicit JobMetrics(MetricsRegistry* registry) : r_(registry) {}

  void Running(JobKind kind, double delta);
  void Finished(JobKind kind, JobState state);
  void Bytes(JobKind kind, uint64_t n);
  void Phase(JobKind kind, JobPhase phase, double seconds);
  void Step(JobKind kind, std::string_view step, double seconds);
  // The GPU steps of a GpuReport JSON (summed over its processes).
  void GpuSteps(JobKind kind, const boost::json::value& report);
  // One recovery action ("kill-criu", "resume-tree", "gpu-resume", ...).
  void Recovery(std::string_view action);

 private:
  MetricsRegistry* r_;
};

}  // namespace ckptd
