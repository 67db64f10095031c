// The daemon's wiring: opens RocksDB, loads the token, builds the router
// with every handler group, starts the HTTP server; Stop() drains and closes
// in reverse order. main() and the in-process tests both use this class.
//
// Thread safety: Start() and Stop() from one thread; everything else the
// daemon owns is safe for the server's threads.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/json/value.hpp>

#include "api/auth.h"
#include "api/router.h"
#include "api/server.h"
#include "common/metrics.h"
#include "common/periodic.h"
#include "common/status.h"
#include "daemon/config.h"
#include "daemon/daemon_metrics.h"
#include "daemon/job_system.h"
#include "federation/upstream_mirror.h"
#include "jobs/checkpoint_readers.h"
#include "jobs/cleanup.h"
#include "store/agent_store.h"
#include "store/catalog.h"
#include "store/db.h"

namespace ckptd {

class Daemon {
 public:
  explicit Daemon(Config config);
  ~Daemon();

  Status Start();
  void Stop();
  // Accept on this already listening socket (systemd socket activation)
  // instead of binding `listen`; call before Start(). The server owns it.
  void set_listen_fd(int fd) { listen_fd_ = fd; }
  // Called during Start() while interrupted jobs are recovered (at least
  // every 10 s while it takes); call before Start().
  void set_startup_progress(std::function<void(const std::string&)> fn) { startup_progress_ = std::move(fn); }

  // Applies the reloadable settings of `config` (daemon/reload.h) to the
  // running daemon: the HTTP limits (max_body_bytes to the agent-state
  // routes), the cleanup interval and retention. The log level is the
  // caller's (process-wide). Between Start() and Stop(), from the thread
  // that calls them; safe while the server serves. config() keeps the
  // start-up values.
  void ApplyReloadable(const Config& config);

  uint16_t port() const;
  // Waits up to `timeout` for the start-up checks that run in the
  // background (CRIU's probe); true when they are done.
  bool WaitForChecks(std::chrono::milliseconds timeout) const;
  // The HTTP event loop answers (for the systemd watchdog).
  bool Responsive() const;
  const Config& config() const { return config_; }  // as started
  const std::string& token() const { return token_.token; }
  Catalog* catalog() { return catalog_.get(); }
  const api::Router& router() const { return router_; }
  boost::json::value Health() const;

  Db* db() { return db_.get(); }
  MetricsRegistry* metrics() { return &metrics_; }
  JobSystem* job_system() { return jobs_.get(); }
  CheckpointReaders* checkpoint_readers() { return readers_.get(); }
  Cleaner* cleaner() { return cleaner_.get(); }
  UpstreamMirror* upstream_mirror() { return mirror_.get(); }  // null when federation is off
  api::Router* mutable_router() { return &router_; }

 private:
  Config config_;
  api::TokenSource token_;
  // Declared before everything that records into them, so they go last.
  MetricsRegistry metrics_;
  std::unique_ptr<DaemonMetrics> daemon_metrics_;
  std::unique_ptr<Db> db_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<UpstreamMirror> mirror_;  // federation; outlives all catalog writers
  std::unique_ptr<AgentStore> agent_store_;
  std::unique_ptr<PeriodicTask> agent_sweeper_;  // retention sweeps of agent_store_
  std::unique_ptr<CheckpointReaders> readers_;  // restore jobs' holds; outlives jobs_
  std::unique_ptr<JobSystem> jobs_;             // checkpoint/restore jobs, CRIU probe, reaper
  std::unique_ptr<Cleaner> cleaner_;            // deprecated checkpoints' objects and records
  std::unique_ptr<api::Authenticator> auth_;
  api::Router router_;
  // routes()[first, last) of router_ whose body limit is max_body_bytes.
  size_t agent_routes_first_ = 0, agent_routes_last_ = 0;
  std::unique_ptr<api::HttpServer> server_;
  bool running_ = false;
  int listen_fd_ = -1;
  // The descriptor limit (raised to the hard limit at Start) and the
  // connections it leaves room for: max_connections is capped to that.
  uint64_t fd_limit_ = 0;
  size_t max_connections_fitting_ = SIZE_MAX;
  api::ServerLimits ServerLimitsFrom(const Config& c) const;
  std::function<void(const std::string&)> startup_progress_;
};

// Parses "host:port" ("[::1]:8080" for IPv6).
Status ParseListen(const std::string& listen, std::string* host, uint16_t* port);

}  // namespace ckptd
