#include "daemon/daemon.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdint>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "api/agent_handlers.h"
#include "api/cedana_handlers.h"
#include "api/cleanup_handlers.h"
#include "api/meta_handlers.h"
#include "common/cpus.h"

namespace ckptd {

namespace json = boost::json;

Status ParseListen(const std::string& listen, std::string* host, uint16_t* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size())
    return InvalidArgument(fmt::format("listen '{}' must be host:port", listen));
  std::string h = listen.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  std::string p = listen.substr(colon + 1);
  if (p.find_first_not_of("0123456789") != std::string::npos || p.size() > 5 || std::stoi(p) > 65535)
    return InvalidArgument(fmt::format("listen '{}': bad port", listen));
  *host = h.empty() ? "0.0.0.0" : h;
  *port = static_cast<uint16_t>(std::stoi(p));
  return Status::Ok();
}

namespace {

// Descriptors kept for everything but connections: RocksDB's files, jobs'
// CRIU sockets and image files, the listener, logs.
constexpr uint64_t kFdHeadroom = 256;

// Raises the soft descriptor limit to the hard one (a shell's usual 1024
// would otherwise bound connections and jobs) and returns it.
uint64_t RaiseFdLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(rl.rlim_cur);
}

// The connections the descriptor limit leaves room for (at least 16).
size_t ConnectionsFitting(uint64_t fd_limit) {
  if (fd_limit == UINT64_MAX) return SIZE_MAX;
  uint64_t headroom = std::max<uint64_t>(fd_limit / 4, std::min<uint64_t>(kFdHeadroom, fd_limit / 2));
  return static_cast<size_t>(std::max<uint64_t>(16, fd_limit - headroom));
}

}  // namespace

api::ServerLimits Daemon::ServerLimitsFrom(const Config& c) const {
  api::ServerLimits l;
  l.header_limit = static_cast<size_t>(c.header_limit_bytes);
  l.read_timeout = std::chrono::seconds(c.read_timeout_s);
  l.idle_timeout = std::chrono::seconds(c.idle_timeout_s);
  l.max_connections = std::min(static_cast<size_t>(c.max_connections), max_connections_fitting_);
  if (l.max_connections < static_cast<size_t>(c.max_connections))
    spdlog::warn("max_connections {} lowered to {}: the descriptor limit is {} (raise LimitNOFILE / ulimit -n)",
                 c.max_connections, l.max_connections, fd_limit_);
  return l;
}

Daemon::Daemon(Config config) : config_(std::move(config)) {}

Daemon::~Daemon() { Stop(); }

Status Daemon::Start() {
  fd_limit_ = RaiseFdLimit();
  max_connections_fitting_ = ConnectionsFitting(fd_limit_);
  api::ServerOptions so;
  CKPTD_RETURN_IF_ERROR(ParseListen(config_.listen, &so.address, &so.port));
  const unsigned cpus = UsableCpus();
  so.io_threads = IoThreadsFor(config_.io_threads, cpus);
  spdlog::info("{} HTTP I/O thread(s) (io_threads = {}, {} usable CPUs)", so.io_threads, config_.io_threads, cpus);
  so.handler_threads = config_.handler_threads;
  so.limits = ServerLimitsFrom(config_);
  so.listen_fd = listen_fd_;
  const char* inline_help = "requests of agent routes answered on an I/O thread, or handed to the handler pool "
                            "because answering there would have waited on the disk, a stall or a lock";
  so.inline_answered = metrics_.GetCounter("ckptd_http_inline_requests_total", inline_help, {{"outcome", "answered"}});
  so.inline_pooled = metrics_.GetCounter("ckptd_http_inline_requests_total", inline_help, {{"outcome", "pooled"}});

  DbOptions dbo;
  dbo.block_cache_bytes = static_cast<uint64_t>(config_.db_block_cache_bytes);
  dbo.group_commit = config_.group_commit == "true";
  dbo.write_buffer_bytes = static_cast<uint64_t>(config_.db_write_buffer_bytes);
  CKPTD_ASSIGN_OR_RETURN(db_, Db::Open(config_.DbDir(), dbo));
  catalog_ = std::make_unique<Catalog>(db_.get(), SystemClock::Default());
  CKPTD_RETURN_IF_ERROR(catalog_->Init());
  daemon_metrics_ = std::make_unique<DaemonMetrics>(&metrics_);
  CKPTD_RETURN_IF_ERROR(daemon_metrics_->Attach(catalog_.get(), db_.get()));
  // Observes the catalog, so it is in place before anything writes to it.
  UpstreamOptions uo{config_.upstream_url, config_.upstream_token, config_.upstream_token_file,
                     config_.upstream_retry_max_s, config_.upstream_timeout_s};
  CKPTD_ASSIGN_OR_RETURN(mirror_, UpstreamMirror::Create(uo, db_.get(), catalog_.get()));
  if (mirror_) mirror_->Start();

  CKPTD_ASSIGN_OR_RETURN(token_, api::LoadOrCreateToken(config_.token, config_.TokenFile(), true));
  if (token_.created) {
    spdlog::info("created a new API token in {} (mode 0600)", token_.path);
  } else if (!token_.path.empty()) {
    spdlog::info("API token from {}", token_.path);
  }
  auth_ = std::make_unique<api::Authenticator>(token_.token);

  api::RegisterMetaRoutes(&router_, [this] { return Health(); });
  api::RegisterMetricsRoute(&router_, [this] { return metrics_.Render(); });
  readers_ = std::make_unique<CheckpointReaders>();
  api::RegisterCedanaRoutes(&router_, catalog_.get(), readers_.get());
  agent_store_ = std::make_unique<AgentStore>(db_.get(), SystemClock::Default(),
                                              static_cast<size_t>(config_.agent_tuple_cache_bytes));
  CKPTD_RETURN_IF_ERROR(agent_store_->SetDefaultRetention(
      {config_.agent_ttl_s,
       config_.agent_ttl_strategy == "delete" ? AgentPruneStrategy::kDelete : AgentPruneStrategy::kKeepLatest}));
  metrics_.AddCollector([this] {
    const AgentTupleCache& cache = agent_store_->tuple_cache();
    metrics_.GetCounter("ckptd_agent_tuple_cache_hits_total", "agent get-tuple and list items answered from memory")
        ->RaiseTo(static_cast<double>(cache.hits()));
    metrics_.GetCounter("ckptd_agent_tuple_cache_misses_total", "agent get-tuple and list items read from RocksDB")
        ->RaiseTo(static_cast<double>(cache.misses()));
    metrics_.GetGauge("ckptd_agent_tuple_cache_bytes", "memory the agent tuple cache holds")
        ->Set(static_cast<double>(cache.bytes()));
  });
  agent_sweeper_ = std::make_unique<PeriodicTask>(std::chrono::seconds(config_.agent_sweep_interval_s), [this] {
    auto swept = agent_store_->Sweep();
    if (!swept.ok()) {
      spdlog::warn("agent-state retention sweep: {}", swept.status().ToString());
    } else if (swept->threads) {
      spdlog::info("agent-state retention: {} threads expired ({} checkpoints, {} writes, {} blobs removed)",
                   swept->threads, swept->removed.checkpoints, swept->removed.writes, swept->removed.blobs);
    }
  });
  agent_sweeper_->Start();
  // Remembered so that a reload can change max_body_bytes on these routes.
  agent_routes_first_ = router_.routes().size();
  api::RegisterAgentRoutes(&router_, agent_store_.get(), static_cast<size_t>(config_.max_body_bytes));
  agent_routes_last_ = router_.routes().size();
  jobs_ = std::make_unique<JobSystem>();
  CKPTD_RETURN_IF_ERROR(jobs_->Start(config_, db_.get(), catalog_.get(), readers_.get(), &metrics_, startup_progress_));
  jobs_->RegisterRoutes(&router_);
  metrics_.AddCollector([this] {
    if (!jobs_) return;
    auto flag = [](const json::value& v, const char* key) {
      const auto* o = v.if_object();
      const auto* b = o ? o->if_contains(key) : nullptr;
      return b && b->is_bool() && b->as_bool() ? 1.0 : 0.0;
    };
    metrics_.GetGauge("ckptd_criu_available", "1 when CRIU was found, new enough and passed its check")
        ->Set(flag(jobs_->CriuHealth(), "ok"));
    metrics_.GetGauge("ckptd_gpu_available", "1 when GPU checkpointing (driver API or tool) is usable")
        ->Set(flag(jobs_->GpuHealth(), "available"));
  });
  CleanerOptions co;
  co.interval = std::chrono::seconds(config_.cleanup_interval_s);
  co.retention = std::chrono::seconds(config_.cleanup_retention_s);
  co.store_config = StoreConfigFrom(config_);
  co.file_roots = config_.FileRoots();
  co.images_root = jobs_->images_root();
  cleaner_ = std::make_unique<Cleaner>(co, catalog_.get(), jobs_->images(), readers_.get());
  cleaner_->Start();
  api::RegisterCleanupRoutes(&router_, cleaner_.get());

  server_ = std::make_unique<api::HttpServer>(so, &router_, auth_.get(), daemon_metrics_->RequestObserver());
  CKPTD_RETURN_IF_ERROR(server_->Start());
  running_ = true;
  spdlog::info("ckptd {} listening on {}:{} (data in {})", CKPTD_VERSION, so.address, server_->port(),
               config_.data_dir);
  return Status::Ok();
}

void Daemon::Stop() {
  if (!running_) return;
  running_ = false;
  // No new cleanup rounds; a running one ends at its next record.
  if (cleaner_) cleaner_->Stop();
  if (agent_sweeper_) agent_sweeper_->Stop();
  // Jobs drain first (new job requests are answered 503 meanwhile); the job
  // system itself goes only after the server, whose handlers may use it.
  if (jobs_) jobs_->Drain(std::chrono::seconds(config_.shutdown_drain_s));
  server_->Stop(std::chrono::seconds(10));
  // Answers waiting for a WAL sync post to the server's sessions: they run
  // (into a stopped server) before the server goes.
  db_->WaitForSyncs();
  cleaner_.reset();  // uses the job system's image store
  jobs_.reset();
  server_.reset();
  readers_.reset();  // after the jobs holding it and the deprecate handler
  agent_sweeper_.reset();
  agent_store_.reset();
  mirror_.reset();  // after every catalog writer; undelivered rows stay
  catalog_.reset();
  db_.reset();
  spdlog::info("ckptd stopped");
}

void Daemon::ApplyReloadable(const Config& config) {
  if (!running_) return;
  router_.SetBodyLimit(agent_routes_first_, agent_routes_last_, static_cast<size_t>(config.max_body_bytes));
  server_->SetLimits(ServerLimitsFrom(config));
  // Only on a change: setting the interval restarts the cleaner's wait, and
  // an unrelated reload must not keep postponing the next round.
  auto interval = std::chrono::seconds(config.cleanup_interval_s);
  if (cleaner_->interval() != interval) cleaner_->set_interval(interval);
  cleaner_->set_retention(std::chrono::seconds(config.cleanup_retention_s));
}

uint16_t Daemon::port() const { return server_ ? server_->port() : 0; }

bool Daemon::WaitForChecks(std::chrono::milliseconds timeout) const {
  return jobs_ && jobs_->WaitForCriuProbe(timeout);
}

bool Daemon::Responsive() const { return server_ && server_->Responsive(std::chrono::seconds(2)); }

json::value Daemon::Health() const {
  return json::object{{"status", "ok"},
                      {"version", CKPTD_VERSION},
                      {"criu", jobs_ ? jobs_->CriuHealth() : json::value(nullptr)},
                      {"gpu", jobs_ ? jobs_->GpuHealth() : json::value(nullptr)},
                      {"upstream", UpstreamHealth(mirror_.get())}};
}

}  // namespace ckptd
