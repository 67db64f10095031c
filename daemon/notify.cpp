#include "daemon/notify.h"

#include <time.h>

#include <cstdlib>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

namespace ckptd {

namespace {

// STATUS= is one line; a newline would start a new (bogus) assignment.
std::string OneLine(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c == '\n') c = ' ';
  return out;
}

}  // namespace

Notifier::Notifier() {
  const char* sock = std::getenv("NOTIFY_SOCKET");
  enabled_ = sock != nullptr && *sock != '\0';
}

Notifier::~Notifier() { StopWatchdog(); }

void Notifier::Send(const std::string& state) {
  if (!enabled_) return;
  // unset_environment=0: the watchdog thread and later calls read the same
  // variables; nothing we spawn should talk to the manager as us anyway
  // (CRIU and restored processes get their own environment).
  int r = sd_notify(0, state.c_str());
  if (r < 0) spdlog::debug("sd_notify({}): {}", state, std::strerror(-r));
}

void Notifier::Status(std::string_view status) { Send("STATUS=" + OneLine(status)); }

void Notifier::Ready(std::string_view status) { Send("READY=1\nSTATUS=" + OneLine(status)); }

void Notifier::Reloading(std::string_view status) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t usec = static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  Send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS={}", usec, OneLine(status)));
}

void Notifier::ExtendStartup(std::chrono::seconds by, std::string_view status) {
  Send(fmt::format("EXTEND_TIMEOUT_USEC={}\nSTATUS={}", by.count() * 1000000, OneLine(status)));
}

void Notifier::Stopping(std::string_view status) { Send("STOPPING=1\nSTATUS=" + OneLine(status)); }

std::chrono::microseconds Notifier::StartWatchdog(std::function<bool()> alive) {
  if (!enabled_ || watchdog_.joinable()) return std::chrono::microseconds(0);
  uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is us.
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::chrono::microseconds(0);
  auto period = std::chrono::microseconds(usec / 2);
  {
    MutexLock lock(mu_);
    stop_ = false;
  }
  watchdog_ = std::thread([this, period, alive = std::move(alive)] {
    UniqueLock lock(mu_);
    while (!stop_) {
      lock.unlock();
      if (!alive || alive()) {
        Send("WATCHDOG=1");
      } else {
        spdlog::warn("watchdog: liveness check failed, not pinging");
      }
      lock.lock();
      cv_.wait_for(lock, period, [this]() REQUIRES(mu_) { return stop_; });
    }
  });
  spdlog::debug("watchdog: pinging every {} ms", period.count() / 1000);
  return period;
}

void Notifier::StopWatchdog() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
}

}  // namespace ckptd
