// ckptd: the per-node checkpoint/restore daemon.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include <spdlog/spdlog.h>

#include "daemon/config.h"
#include "daemon/daemon.h"
#include "daemon/logging.h"

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

  // SIGTERM/SIGINT are taken synchronously by this thread; every thread the
  // daemon starts inherits the blocked mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  ckptd::Daemon daemon(load->config);
  if (auto st = daemon.Start(); !st.ok()) {
    spdlog::critical("start-up failed: {}", st.ToString());
    return 1;
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  daemon.Stop();
  return 0;
}
