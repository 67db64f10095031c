// The systemd service-manager protocol (sd_notify(3)) for ckptd: READY=1,
// STATUS=, RELOADING=1, STOPPING=1 and WATCHDOG=1 keep-alive pings.
//
// Contract: every call is a no-op when the daemon was not started by a
// service manager (no NOTIFY_SOCKET), so the daemon runs the same by hand.
// Errors sending a notification are logged at debug and otherwise ignored:
// the protocol is advisory and a lost datagram must not stop the daemon.
//
// Thread safety: all methods may be called from any thread; the watchdog runs
// on its own thread, started by StartWatchdog() and joined by StopWatchdog()
// or the destructor. Create the Notifier after blocking signals so the
// watchdog thread inherits the mask.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

#include "common/mutex.h"

namespace ckptd {

class Notifier {
 public:
  Notifier();
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // True when NOTIFY_SOCKET is set.
  bool enabled() const { return enabled_; }

  void Status(std::string_view status);
  // READY=1 with a STATUS line; after a reload this also ends RELOADING=1.
  void Ready(std::string_view status);
  // RELOADING=1 with MONOTONIC_USEC (systemd >= 253 needs it for
  // Type=notify-reload; older managers ignore both fields).
  void Reloading(std::string_view status);
  void Stopping(std::string_view status);
  // EXTEND_TIMEOUT_USEC with a STATUS line: start-up is alive and busy
  // (recovering jobs), give it `by` more than TimeoutStartSec.
  void ExtendStartup(std::chrono::seconds by, std::string_view status);

  // When the manager asked for a watchdog (WATCHDOG_USEC, and WATCHDOG_PID
  // naming this process), pings WATCHDOG=1 every half interval until
  // StopWatchdog(). `alive` (optional) is asked before each ping; a false
  // answer skips the ping so a wedged daemon gets restarted. Returns the
  // interval pinged at, or zero when no watchdog is wanted.
  std::chrono::microseconds StartWatchdog(std::function<bool()> alive = {});
  void StopWatchdog();

 private:
  void Send(const std::string& state);

  bool enabled_ = false;
  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  // Not under mu_ (StopWatchdog joins it, and the thread takes mu_):
  // StartWatchdog and StopWatchdog come from one thread (main), not at once.
  std::thread watchdog_;
};

}  // namespace ckptd
