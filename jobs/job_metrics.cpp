#include "jobs/job_metrics.h"

#include <string>

namespace ckptd {

namespace {
constexpr const char* kPhaseHistogram = "ckptd_job_phase_duration_seconds";
constexpr const char* kPhaseHelp = "Time spent in each job phase";
}  // namespace

void JobMetrics::Running(JobKind kind, double delta) {
  if (!r_) return;
  r_->GetGauge("ckptd_jobs_running", "Jobs running now by kind", {{"kind", std::string(KindName(kind))}})->Add(delta);
}

void JobMetrics::Finished(JobKind kind, JobState state) {
  if (!r_) return;
  r_->GetCounter("ckptd_jobs_total", "Finished jobs by kind and result",
                 {{"kind", std::string(KindName(kind))}, {"result", std::string(StateName(state))}})
      ->Inc();
}

void JobMetrics::Bytes(JobKind kind, uint64_t n) {
  if (!r_) return;
  bool ckpt = kind == JobKind::kCheckpoint;
  r_->GetCounter(ckpt ? "ckptd_bytes_uploaded_total" : "ckptd_bytes_restored_total",
                 ckpt ? "Image bytes stored by checkpoint jobs (before compression)"
                      : "Image bytes read back by restore jobs (after decompression)")
      ->Inc(static_cast<double>(n));
}

void JobMetrics::Phase(JobKind kind, JobPhase phase, double seconds) {
  if (phase == JobPhase::kQueued) return;
  Step(kind, PhaseName(phase), seconds);
}

void JobMetrics::Step(JobKind kind, std::string_view step, double seconds) {
  if (!r_) return;
  r_->GetHistogram(kPhaseHistogram, kPhaseHelp, {{"kind", std::string(KindName(kind))}, {"phase", std::string(step)}})
      ->Observe(seconds);
}

void JobMetrics::GpuSteps(JobKind kind, const boost::json::value& report) {
  const auto* r = report.if_object();
  const auto* procs = r ? r->if_contains("processes") : nullptr;
  if (!procs || !procs->is_array() || procs->as_array().empty()) return;
  for (const char* step : {"lock", "checkpoint", "restore", "unlock"}) {
    std::string key = std::string(step) + "_ms";
    double ms = 0;
    bool seen = false;
    for (const auto& p : procs->as_array()) {
      const auto* v = p.is_object() ? p.as_object().if_contains(key) : nullptr;
      if (v && v->is_number()) {
        ms += v->to_number<double>();
        seen = true;
      }
    }
    if (seen) Step(kind, std::string("gpu_") + step, ms / 1000.0);
  }
}

void JobMetrics::Recovery(std::string_view action) {
  if (!r_) return;
  r_->GetCounter("ckptd_recovery_actions_total",
                 "What start-up recovery did for jobs a dead daemon left unfinished, by action",
                 {{"action", std::string(action)}})
      ->Inc();
}

}  // namespace ckptd
