#include "gpu/orchestrator.h"

#include <algorithm>
#include <functional>
#include <thread>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace ckptd::gpu {

namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

std::vector<int> Dedup(const std::vector<int>& pids) {
  std::vector<int> out;
  for (int p : pids)
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  return out;
}

// A Conflict from the driver means the state changed under us (someone else
// locked/unlocked): re-read the state instead of failing.
bool StateRace(const Status& st) { return st.code() == Code::kConflict; }

}  // namespace

double GpuProcessReport::MsFor(std::string_view op) const {
  double ms = 0;
  for (const auto& s : steps)
    if (s.op == op) ms += s.ms;
  return ms;
}

GpuProcessReport& GpuReport::ForPid(int pid) {
  for (auto& p : processes)
    if (p.pid == pid) return p;
  processes.push_back(GpuProcessReport{});
  processes.back().pid = pid;
  return processes.back();
}

const GpuProcessReport* GpuReport::Find(int pid) const {
  for (const auto& p : processes)
    if (p.pid == pid) return &p;
  return nullptr;
}

boost::json::value GpuReport::ToJson() const {
  boost::json::array procs;
  for (const auto& p : processes) {
    boost::json::array steps;
    for (const auto& s : p.steps) {
      boost::json::object o{{"phase", s.phase}, {"op", s.op}, {"ms", s.ms}, {"ok", s.ok}};
      if (s.from) o["from"] = StateName(*s.from);
      if (s.to) o["to"] = StateName(*s.to);
      if (!s.ok) o["error"] = s.error;
      steps.push_back(std::move(o));
    }
    boost::json::object po{{"pid", p.pid}};
    po["initial_state"] = p.initial_state ? boost::json::value(StateName(*p.initial_state)) : nullptr;
    po["final_state"] = p.final_state ? boost::json::value(StateName(*p.final_state)) : nullptr;
    for (const char* op : {"lock", "checkpoint", "restore", "unlock"}) po[std::string(op) + "_ms"] = p.MsFor(op);
    po["steps"] = std::move(steps);
    procs.push_back(std::move(po));
  }
  return boost::json::object{{"driver", driver.ToJson()},
                             {"prepare_ms", prepare_ms},
                             {"resume_ms", resume_ms},
                             {"restore_ms", restore_ms},
                             {"processes", std::move(procs)}};
}

Result<GpuProcessState> GpuOrchestrator::Observe(int pid, const char* phase, GpuProcessReport* pr) {
  auto t0 = Clock::now();
  auto state = ckpt_->GetState(pid);
  GpuStep step{phase, "get-state", std::nullopt, std::nullopt, MsSince(t0), state.ok(), ""};
  if (state.ok()) {
    step.to = *state;
    if (!pr->initial_state) pr->initial_state = *state;
    pr->final_state = *state;
  } else {
    step.error = state.status().message();
  }
  pr->steps.push_back(std::move(step));
  return state;
}

Status GpuOrchestrator::Act(int pid, const char* phase, const char* op, GpuProcessState from, GpuProcessState to,
                            GpuProcessReport* pr, const std::function<Status()>& fn) {
  auto t0 = Clock::now();
  Status st = fn();
  GpuStep step{phase, op, from, std::nullopt, MsSince(t0), st.ok(), ""};
  if (st.ok()) {
    step.to = to;
    pr->final_state = to;
  } else {
    step.error = st.message();
  }
  pr->steps.push_back(std::move(step));
  return st;
}

Status GpuOrchestrator::PrepareOne(int pid, GpuProcessState target, std::chrono::milliseconds lock_timeout,
                                   GpuProcessReport* pr) {
  CKPTD_ASSIGN_OR_RETURN(GpuProcessState state, Observe(pid, "prepare", pr));
  for (int guard = 0; guard < 6; ++guard) {
    Status st;
    GpuProcessState next = state;
    if (state == target) return Status::Ok();
    switch (state) {
      case GpuProcessState::kCheckpointed:
        return Status::Ok();
      case GpuProcessState::kFailed:
        return Internal("CUDA reports the process in the failed state");
      case GpuProcessState::kRunning:
        next = GpuProcessState::kLocked;
        st = Act(pid, "prepare", "lock", state, next, pr, [&] { return ckpt_->Lock(pid, lock_timeout); });
        break;
      case GpuProcessState::kLocked:
        next = GpuProcessState::kCheckpointed;
        st = Act(pid, "prepare", "checkpoint", state, next, pr, [&] { return ckpt_->Checkpoint(pid); });
        break;
    }
    if (st.ok()) {
      state = next;
      continue;
    }
    if (!StateRace(st)) return st;
    CKPTD_ASSIGN_OR_RETURN(state, Observe(pid, "prepare", pr));
  }
  return Internal("GPU state kept changing during lock/checkpoint");
}

Status GpuOrchestrator::BringToRunning(int pid, const DeviceMap& map, const char* phase, GpuProcessReport* pr) {
  int failures = 0;
  Status last;
  auto state = Observe(pid, phase, pr);
  for (int guard = 0; guard < 8 + 2 * opts_.resume_attempts; ++guard) {
    if (!state.ok()) {
      last = state.status();
    } else {
      Status st;
      switch (*state) {
        case GpuProcessState::kRunning:
          return Status::Ok();
        case GpuProcessState::kFailed:
          return Internal("CUDA reports the process in the failed state; it cannot be resumed");
        case GpuProcessState::kCheckpointed:
          st = Act(pid, phase, "restore", *state, GpuProcessState::kLocked, pr,
                   [&] { return ckpt_->Restore(pid, map); });
          if (st.ok()) state = GpuProcessState::kLocked;
          break;
        case GpuProcessState::kLocked:
          st = Act(pid, phase, "unlock", *state, GpuProcessState::kRunning, pr, [&] { return ckpt_->Unlock(pid); });
          if (st.ok()) state = GpuProcessState::kRunning;
          break;
      }
      if (st.ok()) continue;
      last = st;
      if (StateRace(st)) {
        state = Observe(pid, phase, pr);
        continue;
      }
    }
    if (++failures >= opts_.resume_attempts) break;
    std::this_thread::sleep_for(opts_.retry_backoff);
    state = Observe(pid, phase, pr);
  }
  return last.ok() ? Internal("GPU state kept changing during restore/unlock") : last;
}

Status GpuOrchestrator::Prepare(const std::vector<int>& pids, GpuProcessState target,
                                std::chrono::milliseconds lock_timeout, bool rollback_all, GpuReport* report) {
  report->driver = ckpt_->DriverInfo();
  auto t0 = Clock::now();
  std::vector<int> examined;
  const std::vector<int> all = Dedup(pids);
  for (int pid : all) {
    examined.push_back(pid);
    Status st = PrepareOne(pid, target, lock_timeout, &report->ForPid(pid));
    if (st.ok()) continue;

    // Never leave a process frozen: bring everything we looked at back.
    const std::vector<int>& back = rollback_all ? all : examined;
    std::string rollback_errors;
    for (auto it = back.rbegin(); it != back.rend(); ++it) {
      Status rb = BringToRunning(*it, {}, "rollback", &report->ForPid(*it));
      if (!rb.ok()) {
        rollback_errors += fmt::format("{}pid {}: {}", rollback_errors.empty() ? "" : "; ", *it, rb.message());
      }
    }
    report->prepare_ms += MsSince(t0);
    std::string msg = fmt::format("GPU {} of pid {}: {}",
                                  target == GpuProcessState::kLocked ? "lock" : "lock/checkpoint", pid, st.message());
    if (rollback_errors.empty()) {
      msg += fmt::format(" (rolled back {} process(es) to running)", back.size());
    } else {
      msg += "; rollback failed: " + rollback_errors;
    }
    return Status(st.code(), std::move(msg));
  }
  report->prepare_ms += MsSince(t0);
  return Status::Ok();
}

Status GpuOrchestrator::LockAll(const std::vector<int>& pids, std::chrono::milliseconds lock_timeout,
                                GpuReport* report) {
  GpuReport local;
  return Prepare(pids, GpuProcessState::kLocked, lock_timeout, false, report ? report : &local);
}

Status GpuOrchestrator::CheckpointAll(const std::vector<int>& pids, GpuReport* report) {
  GpuReport local;
  // Every process is locked by now: a failure must unlock all of them.
  return Prepare(pids, GpuProcessState::kCheckpointed, std::chrono::milliseconds(0), true, report ? report : &local);
}

Status GpuOrchestrator::PrepareForDump(const std::vector<int>& pids, std::chrono::milliseconds lock_timeout,
                                       GpuReport* report) {
  GpuReport local;
  if (!report) report = &local;
  CKPTD_RETURN_IF_ERROR(LockAll(pids, lock_timeout, report));
  return CheckpointAll(pids, report);
}

Status GpuOrchestrator::ResumeAfterDump(const std::vector<int>& pids, GpuReport* report) {
  GpuReport local;
  if (!report) report = &local;
  report->driver = ckpt_->DriverInfo();
  auto t0 = Clock::now();
  Status first;
  std::string others;
  for (int pid : Dedup(pids)) {
    Status st = BringToRunning(pid, {}, "resume", &report->ForPid(pid));
    if (st.ok()) continue;
    if (first.ok()) {
      first = st.WithContext(fmt::format("GPU resume of pid {}", pid));
    } else {
      others += fmt::format("; pid {}: {}", pid, st.message());
    }
  }
  report->resume_ms = MsSince(t0);
  if (first.ok()) return first;
  return Status(first.code(), first.message() + others);
}

Status GpuOrchestrator::RestoreAfterCriu(const std::vector<int>& pids, const DeviceMap& device_map, GpuReport* report) {
  GpuReport local;
  if (!report) report = &local;
  report->driver = ckpt_->DriverInfo();
  auto t0 = Clock::now();
  for (int pid : Dedup(pids)) {
    Status st = BringToRunning(pid, device_map, "restore", &report->ForPid(pid));
    if (!st.ok()) {
      report->restore_ms = MsSince(t0);
      return st.WithContext(fmt::format("GPU restore of pid {}", pid));
    }
  }
  report->restore_ms = MsSince(t0);
  return Status::Ok();
}

}  // namespace ckptd::gpu
