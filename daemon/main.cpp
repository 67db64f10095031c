// ckptd: the per-node checkpoint/restore daemon.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include "daemon/config.h"
#include "daemon/daemon.h"
#include "daemon/logging.h"
#include "daemon/notify.h"
#include "daemon/reload.h"

namespace {

// Socket activation (ckptd.socket): one inherited, listening TCP socket, or
// none. Returns -1 when not activated, -2 on a socket we cannot use.
int InheritedListenFd() {
  int n = sd_listen_fds(1);  // 1: unset LISTEN_* so children do not see them
  if (n <= 0) return -1;
  if (n > 1) {
    spdlog::critical("socket activation passed {} sockets; ckptd.socket should have one", n);
    return -2;
  }
  int fd = SD_LISTEN_FDS_START;
  if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
    spdlog::critical("socket activation: fd {} is not a listening stream socket", fd);
    return -2;
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  auto load = ckptd::LoadConfig(argc, argv);
  if (!load.ok()) {
    std::fprintf(stderr, "ckptd: configuration error: %s\n", load.status().message().c_str());
    return 2;
  }
  if (load->check_only) {
    std::cout << ckptd::DescribeConfig(load->config);
    return 0;
  }
  ckptd::SetupLogging(load->config);

  // SIGTERM/SIGINT/SIGHUP are taken synchronously by this thread; every
  // thread the daemon starts (the watchdog's too) inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // sd_notify: every call is a no-op when not run by systemd. Watchdog pings
  // start before Daemon::Start() (opening a large catalog may take longer
  // than WatchdogSec); a hung start-up is bounded by TimeoutStartSec instead.
  ckptd::Notifier notifier;
  // Once serving, a ping also proves that the HTTP event loop still runs
  // tasks; before that (start-up) and while stopping, being alive suffices.
  std::atomic<ckptd::Daemon*> serving_daemon{nullptr};
  notifier.StartWatchdog([&serving_daemon] {
    ckptd::Daemon* d = serving_daemon.load();
    return !d || d->Responsive();
  });
  notifier.Status("opening the catalog and starting the API");

  ckptd::Config running = load->config;
  ckptd::Daemon daemon(load->config);
  int listen_fd = InheritedListenFd();
  if (listen_fd == -2) return 1;
  if (listen_fd >= 0) daemon.set_listen_fd(listen_fd);
  // Recovery of jobs a dead daemon left may re-upload a large checkpoint
  // before the API opens: it keeps start-up's timeout moving while it works.
  daemon.set_startup_progress(
      [&notifier](const std::string& status) { notifier.ExtendStartup(std::chrono::seconds(120), status); });
  if (auto st = daemon.Start(); !st.ok()) {
    spdlog::critical("start-up failed: {}", st.ToString());
    notifier.Status("start-up failed: " + st.ToString());
    return 1;
  }
  // READY means CRIU was checked too (whatever the outcome: /healthz says it).
  notifier.Status("checking CRIU");
  if (!daemon.WaitForChecks(std::chrono::seconds(120))) spdlog::warn("the CRIU check is still running");
  // Only now: the catalog is open, the checks ran and the port answers.
  std::string serving = fmt::format("serving on port {}{}, data in {}", daemon.port(),
                                    listen_fd >= 0 ? " (socket-activated)" : "", running.data_dir);
  notifier.Ready(serving);
  serving_daemon = &daemon;

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      notifier.Reloading("reloading the configuration");
      auto outcome =
          ckptd::ReloadConfig(argc, argv, &running, [&daemon](const ckptd::Config& c) { daemon.ApplyReloadable(c); });
      if (!outcome.ok()) {
        spdlog::error("SIGHUP: configuration not reloaded, keeping the old one: {}", outcome.status().ToString());
      } else {
        spdlog::info(
            "SIGHUP: configuration reloaded; applied: {}",
            outcome->applied.empty() ? "nothing changed" : fmt::format("{}", fmt::join(outcome->applied, ", ")));
        if (!outcome->need_restart.empty())
          spdlog::warn("SIGHUP: changed settings that need a restart to take effect: {}",
                       fmt::join(outcome->need_restart, ", "));
        spdlog::debug("SIGHUP: log level is now {}", running.log_level);
      }
      notifier.Ready(serving);
      continue;
    }
    spdlog::info("received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    notifier.Stopping(fmt::format("stopping: draining requests and jobs (up to {} s)", running.shutdown_drain_s));
    break;
  }
  serving_daemon = nullptr;
  daemon.Stop();
  notifier.StopWatchdog();
  return 0;
}
