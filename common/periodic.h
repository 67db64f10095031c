// Runs a function every `interval` on a thread of its own, until Stop().
// The first run comes one interval after Start(); runs never overlap; a run
// in progress when Stop() is called finishes first (Stop() joins). An
// interval of zero starts no thread.
// Thread safety: Start() and Stop() from one owner thread; the destructor
// stops.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

#include "common/mutex.h"

namespace ckptd {

class PeriodicTask {
 public:
  PeriodicTask(std::chrono::milliseconds interval, std::function<void()> fn)
      : interval_(interval), fn_(std::move(fn)) {}
  ~PeriodicTask() { Stop(); }
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

  void Start() {
    if (interval_.count() <= 0 || thread_.joinable()) return;
    thread_ = std::thread([this] { Loop(); });
  }

  void Stop() {
    {
      MutexLock lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    UniqueLock lock(mu_);
    for (;;) {
      cv_.wait_for(lock, interval_, [&]() REQUIRES(mu_) { return stop_; });
      if (stop_) return;
      lock.unlock();
      fn_();
      lock.lock();
    }
  }

  const std::chrono::milliseconds interval_;
  const std::function<void()> fn_;
  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace ckptd
