// The daemon's configuration: one table of settings, four layers.
//
// Precedence: command-line flags > environment (CKPTD_<KEY>) > config file
// (TOML, --config or CKPTD_CONFIG) > built-in defaults. Every setting has the
// same name in all layers: key `data_dir` is `--data-dir`, `CKPTD_DATA_DIR`
// and `data_dir = "..."` in the file. The defaults run a working daemon with
// no flags at all (RocksDB and images under /var/lib/ckptd, API on
// 127.0.0.1:8080, a token created on first start).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace ckptd {

struct Config {
  std::string config_file;  // where the file layer came from, if any
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "/var/lib/ckptd";
  std::string images_dir;  // default: <data_dir>/images
  // Image storage (images/image_streamer.h): where checkpoint images go.
  // Directories (comma-separated) that file:// restore paths may name, on
  // top of the image directory.
  std::string file_roots;
  std::string images_uri;                     // file:///dir/ or s3://bucket/prefix/; default file://<images_dir>/
  std::string s3_endpoint;                    // http(s)://host:port; empty: AWS (or AWS_ENDPOINT_URL)
  std::string s3_region;                      // empty: AWS_REGION or us-east-1
  std::string s3_access_key;                  // empty: AWS_ACCESS_KEY_ID
  std::string s3_secret_key;                  // empty: AWS_SECRET_ACCESS_KEY
  std::string s3_path_style = "auto";         // auto | true | false
  int s3_max_retries = 5;                     // retries of one S3 request (5xx, 429, connection errors)
  int64_t s3_retry_max_ms = 5000;             // longest pause between S3 retries (exponential from 100 ms)
  std::string staging_dir;                    // default <data_dir>/staging; ckptd owns (empties) it
  int64_t upload_memory_bytes = 256ll << 20;  // upload buffers of one checkpoint
  int64_t staging_backlog_bytes = 2ll << 30;  // CRIU paused this far ahead of the upload (0: never)
  int64_t zstd_level = 1;                     // zstd level of "zstd" checkpoints (negative: faster)
  std::string image_checksum = "blake3";      // blake3 | sha256: manifest checksum of each image
  int restore_parallelism = 4;                // objects downloaded at once
  std::string stream_images = "true";         // upload while CRIU writes (false: after)
  std::string page_server = "auto";  // leave-running: pages over CRIU's page-server socket (auto | true | false)
  std::string token;                 // inline token (prefer token_file)
  std::string token_file;            // default: <data_dir>/token
  std::string log_level = "info";
  std::string log_format = "text";  // text | json
  std::string criu_path = CKPTD_CRIU_DEFAULT;
  std::string runc_path = "runc";  // containers: the runc binary (>= 1.0), given criu_path as --criu
  std::string cuda_library = "libcuda.so.1";
  std::string cuda_checkpoint_path = "cuda-checkpoint";
  std::string nvml_library = "libnvidia-ml.so.1";  // each GPU process's device memory; "" = not used
  int64_t gpu_lock_timeout_ms = 10000;  // GPU lock (cuCheckpointProcessLock) timeout per process
  int io_threads = 0;  // 0: IoThreadsFor() picks by the CPUs
  int handler_threads = 8;
  int job_workers = 2;
  int job_queue = 16;
  int64_t job_retention_s = 7 * 86400;  // finished job records kept this long (0: forever)
  int64_t max_body_bytes = 64 << 20;    // agent-state routes
  // Agent-state retention (store/agent_store.h): a thread expires this long
  // after its last write (0: kept), unless it has a TTL of its own.
  int64_t agent_ttl_s = 0;
  std::string agent_ttl_strategy = "delete";  // delete | keep_latest
  int64_t agent_sweep_interval_s = 300;       // between sweeps; 0: only POST /checkpoints/sweep
  int64_t header_limit_bytes = 16 << 10;
  int64_t read_timeout_s = 30;
  int64_t idle_timeout_s = 60;
  int64_t max_connections = 1024;
  int64_t db_block_cache_bytes = 32ll << 20;   // RocksDB block cache (store/db.h)
  int64_t db_write_buffer_bytes = 64ll << 20;  // RocksDB memtables, all together
  int64_t agent_tuple_cache_bytes = 64ll << 20;  // recently read agent tuples in memory (0: none)
  std::string group_commit = "true";           // clients' writes share WAL syncs (false: one fsync each)
  int64_t shutdown_drain_s = 60;
  // Cleanup of deprecated checkpoints (jobs/cleanup.h).
  int64_t cleanup_interval_s = 300;         // between rounds; 0: only POST /v2/cleanup
  int64_t cleanup_retention_s = 7 * 86400;  // record kept this long after cleaning
  // Federation (federation/upstream_mirror.h): off while upstream_url is empty.
  std::string upstream_url;           // http://host:port[/prefix] of a /v2/checkpoints service
  std::string upstream_token;         // its bearer token, inline (prefer upstream_token_file)
  std::string upstream_token_file;    // file holding that token
  int64_t upstream_retry_max_s = 60;  // longest pause between retries
  int64_t upstream_timeout_s = 10;    // per request

  // Derived paths, with defaults filled in.
  std::string ImagesDir() const { return images_dir.empty() ? data_dir + "/images" : images_dir; }
  // The image directory plus file_roots.
  std::vector<std::string> FileRoots() const;
  std::string ImagesUri() const { return images_uri.empty() ? "file://" + ImagesDir() + "/" : images_uri; }
  // Restored containers' stdout and stderr: <data_dir>/containers/<id>.log.
  std::string ContainerLogDir() const { return data_dir + "/containers"; }
  // The tools' logs of failed jobs (every job's with log_level "debug").
  std::string JobLogDir() const { return data_dir + "/job-logs"; }
  std::string StagingDir() const { return staging_dir.empty() ? data_dir + "/staging" : staging_dir; }
  std::string TokenFile() const { return token_file.empty() ? data_dir + "/token" : token_file; }
  std::string DbDir() const { return data_dir + "/db"; }
};

struct ConfigSetting {
  std::string key;
  std::string help;
  bool secret = false;
  std::function<Status(Config&, const std::string&)> set;
  std::function<std::string(const Config&)> get;
  // SIGHUP applies it at run time (daemon/reload.h); other settings need a
  // restart to change. Marking one means wiring it in ApplyReload (the log
  // level) or Daemon::ApplyReloadable (everything else).
  bool reloadable = false;
};
const std::vector<ConfigSetting>& ConfigSettings();

struct ConfigLoad {
  Config config;
  bool check_only = false;  // --check-config
};
// Parses argv and the environment (and the file they name). --help and
// --version print and exit(0) from within CLI11.
Result<ConfigLoad> LoadConfig(int argc, char** argv);
// Applies the TOML file at `path` onto `config` (unknown keys are errors).
Status ApplyConfigFile(const std::string& path, Config* config);
// page_server = "auto" turns it on with this many usable CPUs or more: the
// socket's pipeline (receive, checksum, compress) and CRIU then each have a
// core, and CRIU's dump, with the tree frozen, runs at its own pace.
inline constexpr unsigned kPageServerAutoMinCpus = 4;
// Whether leave-running checkpoints take the pages over CRIU's page-server
// socket, for the setting ("auto", "true", "false") on `cpus` CPUs.
bool PageServerOn(const std::string& setting, unsigned cpus);

// The HTTP I/O threads to run for the setting on `cpus` usable CPUs: the
// setting itself, or for 0 one per kCpusPerIoThread CPUs (1 to
// kMaxAutoIoThreads). Each I/O thread wakes for its own connections only,
// and on 2 CPUs one thread answered the agent workload as fast or faster,
// with 14 to 32% less CPU per call, than two (README, Configuration).
inline constexpr unsigned kCpusPerIoThread = 4;
inline constexpr int kMaxAutoIoThreads = 8;
int IoThreadsFor(int setting, unsigned cpus);

// "key = value" lines of the effective configuration, secrets masked.
std::string DescribeConfig(const Config& config);

}  // namespace ckptd
