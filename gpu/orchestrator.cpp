#include "gpu/orchestrator.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <system_error>
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

// fn(i) for every i in [0, n), on up to `width` threads at once (0: n),
// this one included; returns when all are done. When no thread can be
// started the remaining work runs here.
void RunEach(size_t n, int width, const std::function<void(size_t)>& fn) {
  const size_t threads = width <= 0 ? n : std::min(n, static_cast<size_t>(width));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < n; i = next++) fn(i);
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(work);
    } catch (const std::system_error&) {
      break;
    }
  }
  work();
  for (auto& th : pool) th.join();
}

// The first failure (with `what` and its pid as context) and the others
// appended; Ok when all are.
Status FirstWithOthers(const std::vector<int>& pids, const std::vector<Status>& results, std::string_view what) {
  Status first;
  std::string others;
  for (size_t i = 0; i < pids.size(); ++i) {
    if (results[i].ok()) continue;
    if (first.ok()) {
      first = results[i].WithContext(fmt::format("{} of pid {}", what, pids[i]));
    } else {
      others += fmt::format("; pid {}: {}", pids[i], results[i].message());
    }
  }
  if (first.ok()) return first;
  return Status(first.code(), first.message() + others);
}

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
    if (p.device_memory_bytes) po["device_memory_bytes"] = *p.device_memory_bytes;
    po["steps"] = std::move(steps);
    procs.push_back(std::move(po));
  }
  boost::json::object phases;
  for (const auto& [name, ms] : phase_ms) phases[name] = ms;
  boost::json::object out{{"driver", driver.ToJson()}, {"prepare_ms", prepare_ms}, {"phase_ms", std::move(phases)},
                          {"resume_ms", resume_ms},    {"restore_ms", restore_ms}, {"processes", std::move(procs)}};
  if (!device_memory_source.empty()) {
    uint64_t total = 0;
    for (const auto& p : processes) total += p.device_memory_bytes.value_or(0);
    out["device_memory_source"] = device_memory_source;
    out["device_memory_bytes"] = total;
  }
  return out;
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

std::vector<Status> GpuOrchestrator::RunPhase(const std::vector<int>& pids, const char* phase, const char* op,
                                              GpuReport* report, const PerProcess& fn) {
  // Every entry first: ForPid may grow the vector, the threads take pointers.
  for (int pid : pids) report->ForPid(pid);
  std::vector<GpuProcessReport*> prs;
  for (int pid : pids) prs.push_back(&report->ForPid(pid));
  std::vector<Status> results(pids.size());
  auto t0 = Clock::now();
  RunEach(pids.size(), opts_.max_parallel, [&](size_t i) { results[i] = fn(pids[i], prs[i]); });
  report->phase_ms[fmt::format("{}/{}", phase, op)] += MsSince(t0);
  return results;
}

Status GpuOrchestrator::BringTo(int pid, GpuProcessState target, const DeviceMap& map, const char* phase,
                                GpuProcessReport* pr) {
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
          if (target == GpuProcessState::kLocked) return Status::Ok();
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

std::vector<Status> GpuOrchestrator::BringAllToRunning(const std::vector<int>& pids, const DeviceMap& map,
                                                       const char* phase, bool stop_on_restore_failure,
                                                       GpuReport* report) {
  std::vector<Status> results = RunPhase(pids, phase, "restore", report, [&](int pid, GpuProcessReport* pr) {
    return BringTo(pid, GpuProcessState::kLocked, map, phase, pr);
  });
  bool any_failed = std::any_of(results.begin(), results.end(), [](const Status& st) { return !st.ok(); });
  if (any_failed && stop_on_restore_failure) return results;
  std::vector<int> restored;
  for (size_t i = 0; i < pids.size(); ++i)
    if (results[i].ok()) restored.push_back(pids[i]);
  std::vector<Status> unlocked = RunPhase(restored, phase, "unlock", report, [&](int pid, GpuProcessReport* pr) {
    return BringTo(pid, GpuProcessState::kRunning, map, phase, pr);
  });
  for (size_t i = 0, j = 0; i < pids.size(); ++i)
    if (results[i].ok()) results[i] = unlocked[j++];
  return results;
}

Status GpuOrchestrator::Prepare(const std::vector<int>& pids, GpuProcessState target,
                                std::chrono::milliseconds lock_timeout, GpuReport* report) {
  report->driver = ckpt_->DriverInfo();
  auto t0 = Clock::now();
  const std::vector<int> all = Dedup(pids);
  const bool locking = target == GpuProcessState::kLocked;
  std::vector<Status> results = RunPhase(all, "prepare", locking ? "lock" : "checkpoint", report,
                                         [&](int pid, GpuProcessReport* pr) {
                                           return PrepareOne(pid, target, lock_timeout, pr);
                                         });
  Status failed = FirstWithOthers(all, results, locking ? "GPU lock" : "GPU lock/checkpoint");
  if (failed.ok()) {
    report->prepare_ms += MsSince(t0);
    return failed;
  }
  // All or nothing: never leave some ranks locked.
  Status rollback = FirstWithOthers(all, BringAllToRunning(all, {}, "rollback", false, report), "rollback");
  report->prepare_ms += MsSince(t0);
  std::string msg = failed.message();
  if (rollback.ok()) {
    msg += fmt::format(" (rolled back {} process(es) to running)", all.size());
  } else {
    msg += "; rollback failed: " + rollback.message();
  }
  return Status(failed.code(), std::move(msg));
}

Status GpuOrchestrator::LockAll(const std::vector<int>& pids, std::chrono::milliseconds lock_timeout,
                                GpuReport* report) {
  GpuReport local;
  return Prepare(pids, GpuProcessState::kLocked, lock_timeout, report ? report : &local);
}

Status GpuOrchestrator::CheckpointAll(const std::vector<int>& pids, GpuReport* report) {
  GpuReport local;
  return Prepare(pids, GpuProcessState::kCheckpointed, std::chrono::milliseconds(0), report ? report : &local);
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
  const std::vector<int> all = Dedup(pids);
  Status st = FirstWithOthers(all, BringAllToRunning(all, {}, "resume", false, report), "GPU resume");
  report->resume_ms = MsSince(t0);
  return st;
}

Status GpuOrchestrator::RestoreAfterCriu(const std::vector<int>& pids, const DeviceMap& device_map, GpuReport* report) {
  GpuReport local;
  if (!report) report = &local;
  report->driver = ckpt_->DriverInfo();
  auto t0 = Clock::now();
  const std::vector<int> all = Dedup(pids);
  Status st = FirstWithOthers(all, BringAllToRunning(all, device_map, "restore", true, report), "GPU restore");
  report->restore_ms = MsSince(t0);
  return st;
}

}  // namespace ckptd::gpu
