#include "daemon/config.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <toml++/toml.h>
#include <CLI/CLI.hpp>

namespace ckptd {

namespace {

ConfigSetting StringSetting(std::string key, std::string help, std::string Config::*field, bool secret = false) {
  return {std::move(key), std::move(help), secret,
          [field](Config& c, const std::string& v) {
            c.*field = v;
            return Status::Ok();
          },
          [field](const Config& c) { return c.*field; }};
}

template <typename Int>
ConfigSetting IntSetting(std::string key, std::string help, Int Config::*field, int64_t min, int64_t max) {
  std::string k = key;
  return {std::move(key), std::move(help), false,
          [field, min, max, k](Config& c, const std::string& v) -> Status {
            size_t used = 0;
            int64_t n = 0;
            try {
              n = std::stoll(v, &used);
            } catch (const std::exception&) {
              used = 0;
            }
            if (used != v.size() || v.empty()) return InvalidArgument(fmt::format("{}: '{}' is not an integer", k, v));
            if (n < min || n > max) return InvalidArgument(fmt::format("{}: {} is outside {}..{}", k, n, min, max));
            c.*field = static_cast<Int>(n);
            return Status::Ok();
          },
          [field](const Config& c) { return std::to_string(c.*field); }};
}

ConfigSetting ChoiceSetting(std::string key, std::string help, std::string Config::*field,
                            std::vector<std::string> choices) {
  std::string k = key;
  return {std::move(key), std::move(help), false,
          [field, choices, k](Config& c, const std::string& v) -> Status {
            for (const auto& ch : choices) {
              if (ch == v) {
                c.*field = v;
                return Status::Ok();
              }
            }
            return InvalidArgument(fmt::format("{}: '{}' is not one of {}", k, v, fmt::join(choices, ", ")));
          },
          [field](const Config& c) { return c.*field; }};
}

ConfigSetting Reloadable(ConfigSetting s) {
  s.reloadable = true;
  return s;
}

std::string EnvName(const std::string& key) {
  std::string e = "CKPTD_";
  for (char ch : key) e += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return e;
}

std::string FlagName(const std::string& key) {
  std::string f = "--";
  for (char ch : key) f += ch == '_' ? '-' : ch;
  return f;
}

const ConfigSetting* FindSetting(const std::string& key) {
  for (const auto& s : ConfigSettings())
    if (s.key == key) return &s;
  return nullptr;
}

}  // namespace

const std::vector<ConfigSetting>& ConfigSettings() {
  static const std::vector<ConfigSetting> settings = {
      StringSetting("listen", "API address:port (loopback by default)", &Config::listen),
      StringSetting("data_dir", "state directory: RocksDB, token, default image directory, CRIU's empty plugin dir",
                    &Config::data_dir),
      StringSetting("images_dir", "local image directory (default <data_dir>/images)", &Config::images_dir),
      StringSetting("file_roots",
                    "comma-separated directories file:// restore paths may name (the image directory always may)",
                    &Config::file_roots),
      StringSetting("images_uri", "image store: file:///dir/ or s3://bucket/prefix/ (default file://<images_dir>/)",
                    &Config::images_uri),
      StringSetting("s3_endpoint", "S3 endpoint URL (empty: AWS_ENDPOINT_URL or AWS)", &Config::s3_endpoint),
      StringSetting("s3_region", "S3 region (empty: AWS_REGION or us-east-1)", &Config::s3_region),
      StringSetting("s3_access_key", "S3 access key (empty: AWS_ACCESS_KEY_ID)", &Config::s3_access_key),
      StringSetting("s3_secret_key", "S3 secret key (empty: AWS_SECRET_ACCESS_KEY)", &Config::s3_secret_key, true),
      ChoiceSetting("s3_path_style", "auto|true|false: path-style S3 addressing", &Config::s3_path_style,
                    {"auto", "true", "false"}),
      IntSetting("s3_max_retries", "retries of one S3 request on 5xx, 429 and connection errors",
                 &Config::s3_max_retries, 0, 100),
      IntSetting("s3_retry_max_ms", "longest pause between S3 retries (backoff doubles from 100 ms, with jitter)",
                 &Config::s3_retry_max_ms, 1, 600000),
      StringSetting("staging_dir", "local dir CRIU images pass through (default <data_dir>/staging; emptied at start)",
                    &Config::staging_dir),
      IntSetting("upload_memory_bytes", "upload buffer memory of one checkpoint", &Config::upload_memory_bytes,
                 int64_t{16} << 20, int64_t{1} << 40),
      IntSetting("staging_backlog_bytes",
                 "leave_running dumps: CRIU pauses when this many image bytes wait for upload (0: never)",
                 &Config::staging_backlog_bytes, 0, int64_t{1} << 44),
      IntSetting("zstd_level",
                 "zstd level of checkpoints compressed with zstd (1: fast default; -1..-50: zstd's faster, larger "
                 "modes; up to 19: smaller, slower)",
                 &Config::zstd_level, -50, 19),
      ChoiceSetting("image_checksum", "blake3|sha256: checksum of every image's uncompressed bytes in the manifest",
                    &Config::image_checksum, {"blake3", "sha256"}),
      IntSetting("restore_parallelism", "objects a restore downloads at once", &Config::restore_parallelism, 1, 64),
      ChoiceSetting("stream_images", "true|false: upload images while CRIU writes them", &Config::stream_images,
                    {"true", "false"}),
      ChoiceSetting("page_server",
                    "auto|true|false: leave-running checkpoints take CRIU's pages over its page-server socket, "
                    "not through staging files (auto: with 4 or more CPUs)",
                    &Config::page_server, {"auto", "true", "false"}),
      StringSetting("token", "API bearer token (prefer token_file)", &Config::token, true),
      StringSetting("token_file", "file holding the API token (default <data_dir>/token; created if missing)",
                    &Config::token_file),
      Reloadable(ChoiceSetting("log_level", "trace|debug|info|warn|error (SIGHUP applies it)", &Config::log_level,
                               {"trace", "debug", "info", "warn", "error", "critical", "off"})),
      ChoiceSetting("log_format", "text|json", &Config::log_format, {"text", "json"}),
      StringSetting("criu_path", "the criu binary (>= 4.2)", &Config::criu_path),
      StringSetting("runc_path", "the runc binary (>= 1.0) for containers; it is given criu_path", &Config::runc_path),
      StringSetting("cuda_library", "CUDA driver library to dlopen", &Config::cuda_library),
      StringSetting("cuda_checkpoint_path", "cuda-checkpoint tool (fallback)", &Config::cuda_checkpoint_path),
      StringSetting("nvml_library", "NVML library to dlopen for each GPU process's device memory (\"\": not used)",
                    &Config::nvml_library),
      IntSetting("gpu_lock_timeout_ms", "ms to wait for a GPU process to lock before a checkpoint",
                 &Config::gpu_lock_timeout_ms, 1, 3600000),
      IntSetting("io_threads", "HTTP I/O threads (0: one per 4 usable CPUs, 1 to 8)", &Config::io_threads, 0, 64),
      IntSetting("handler_threads", "request handler threads", &Config::handler_threads, 1, 256),
      IntSetting("job_workers", "concurrent checkpoint/restore jobs", &Config::job_workers, 1, 64),
      IntSetting("job_queue", "jobs waiting beyond the running ones", &Config::job_queue, 0, 4096),
      IntSetting("job_retention_s", "seconds a finished job's record is kept (0: forever)", &Config::job_retention_s, 0,
                 10ll * 365 * 86400),
      // The HTTP limits apply to requests that begin after a SIGHUP
      // (api/server.h); a request being read keeps the ones it began with.
      Reloadable(IntSetting("max_body_bytes", "largest request body (agent-state routes; SIGHUP applies it)",
                            &Config::max_body_bytes, 1024, int64_t{1} << 32)),
      IntSetting("agent_ttl_s", "agent-state threads expire this many seconds after their last write (0: kept)",
                 &Config::agent_ttl_s, 0, 100ll * 365 * 86400),
      ChoiceSetting("agent_ttl_strategy", "delete|keep_latest: what an expired agent-state thread loses",
                    &Config::agent_ttl_strategy, {"delete", "keep_latest"}),
      IntSetting("agent_sweep_interval_s", "seconds between agent-state retention sweeps (0: off)",
                 &Config::agent_sweep_interval_s, 0, 30 * 86400),
      Reloadable(IntSetting("header_limit_bytes", "largest request header block (SIGHUP applies it)",
                            &Config::header_limit_bytes, 1024, 1 << 20)),
      Reloadable(IntSetting("read_timeout_s", "seconds to receive a request (SIGHUP applies it)",
                            &Config::read_timeout_s, 1, 3600)),
      Reloadable(IntSetting("idle_timeout_s", "seconds a keep-alive connection may idle (SIGHUP applies it)",
                            &Config::idle_timeout_s, 1, 3600)),
      Reloadable(IntSetting("max_connections", "concurrent connections (SIGHUP applies it)", &Config::max_connections,
                            1, 1 << 20)),
      IntSetting("db_block_cache_bytes", "RocksDB block cache for every column family", &Config::db_block_cache_bytes,
                 1 << 20, int64_t{1} << 40),
      IntSetting("db_write_buffer_bytes", "RocksDB memtables of every column family together (flushed past it)",
                 &Config::db_write_buffer_bytes, 1 << 20, int64_t{1} << 40),
      IntSetting("agent_tuple_cache_bytes",
                 "memory for recently read agent-state tuples, read again without RocksDB until their thread's next write (0: none)",
                 &Config::agent_tuple_cache_bytes, 0, int64_t{1} << 40),
      ChoiceSetting("group_commit",
                    "true|false: API writes are answered once a WAL sync shared with concurrent writers made them "
                    "durable, and no handler thread waits for it (false: each write syncs on its own thread)",
                    &Config::group_commit, {"true", "false"}),
      IntSetting("shutdown_drain_s", "seconds SIGTERM waits for running jobs", &Config::shutdown_drain_s, 0, 86400),
      Reloadable(IntSetting("cleanup_interval_s",
                            "seconds between cleanup rounds of deprecated checkpoints (0: off; SIGHUP applies it)",
                            &Config::cleanup_interval_s, 0, 30 * 86400)),
      Reloadable(IntSetting("cleanup_retention_s", "seconds a cleaned checkpoint's record is kept (SIGHUP applies it)",
                            &Config::cleanup_retention_s, 0, 10ll * 365 * 86400)),
      StringSetting("upstream_url", "mirror checkpoint lifecycles to this /v2/checkpoints service (empty: off)",
                    &Config::upstream_url),
      StringSetting("upstream_token", "upstream bearer token (prefer upstream_token_file)", &Config::upstream_token,
                    true),
      StringSetting("upstream_token_file", "file holding the upstream token", &Config::upstream_token_file),
      IntSetting("upstream_retry_max_s", "longest pause between upstream retries", &Config::upstream_retry_max_s, 1,
                 3600),
      IntSetting("upstream_timeout_s", "seconds per upstream request", &Config::upstream_timeout_s, 1, 600),
  };
  return settings;
}

std::vector<std::string> Config::FileRoots() const {
  std::vector<std::string> roots = {ImagesDir()};
  size_t start = 0;
  while (start <= file_roots.size()) {
    size_t end = file_roots.find(',', start);
    if (end == std::string::npos) end = file_roots.size();
    std::string r = file_roots.substr(start, end - start);
    r.erase(0, r.find_first_not_of(' '));
    r.erase(r.find_last_not_of(' ') + 1);
    if (!r.empty()) roots.push_back(r);
    start = end + 1;
  }
  return roots;
}

Status ApplyConfigFile(const std::string& path, Config* config) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return InvalidArgument(
        fmt::format("{}:{}:{}: {}", path, e.source().begin.line, e.source().begin.column, e.description()));
  }
  for (const auto& [k, node] : table) {
    std::string key(k.str());
    const ConfigSetting* s = FindSetting(key);
    if (!s) return InvalidArgument(fmt::format("{}: unknown setting '{}'", path, key));
    std::string value;
    // The type first: toml++'s value<int64_t>() of a float beyond int64's
    // range is undefined behaviour (found by fuzz_config_toml).
    if (node.is_string()) {
      value = *node.value<std::string>();
    } else if (node.is_integer()) {
      value = std::to_string(*node.value<int64_t>());
    } else if (node.is_boolean()) {
      value = *node.value<bool>() ? "true" : "false";
    } else {
      return InvalidArgument(fmt::format("{}: setting '{}' must be a string, integer or boolean", path, key));
    }
    CKPTD_RETURN_IF_ERROR(s->set(*config, value).WithContext(path));
  }
  config->config_file = path;
  return Status::Ok();
}

Result<ConfigLoad> LoadConfig(int argc, char** argv) {
  CLI::App app{"ckptd: checkpoint/restore daemon for Linux and CUDA processes"};
  app.set_version_flag("--version", std::string("ckptd ") + CKPTD_VERSION);
  std::optional<std::string> config_file;
  bool check_only = false;
  app.add_option("--config", config_file, "TOML configuration file (env CKPTD_CONFIG)");
  app.add_flag("--check-config", check_only, "validate and print the effective configuration, then exit");
  std::map<std::string, std::optional<std::string>> flags;
  for (const auto& s : ConfigSettings()) {
    app.add_option(FlagName(s.key), flags[s.key], s.help + " (env " + EnvName(s.key) + ")");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    std::exit(app.exit(e));
  } catch (const CLI::ParseError& e) {
    return InvalidArgument(e.what());
  }

  ConfigLoad load;
  load.check_only = check_only;
  Config& c = load.config;
  if (!config_file) {
    if (const char* e = std::getenv("CKPTD_CONFIG"); e && *e) config_file = e;
  }
  if (config_file) CKPTD_RETURN_IF_ERROR(ApplyConfigFile(*config_file, &c));
  for (const auto& s : ConfigSettings()) {
    if (const char* e = std::getenv(EnvName(s.key).c_str()); e) {
      CKPTD_RETURN_IF_ERROR(s.set(c, e).WithContext("environment " + EnvName(s.key)));
    }
  }
  for (const auto& s : ConfigSettings()) {
    if (flags[s.key]) CKPTD_RETURN_IF_ERROR(s.set(c, *flags[s.key]).WithContext("flag " + FlagName(s.key)));
  }
  return load;
}

std::string DescribeConfig(const Config& config) {
  std::string out;
  if (!config.config_file.empty()) out += "# from " + config.config_file + "\n";
  for (const auto& s : ConfigSettings()) {
    std::string v = s.get(config);
    if (s.secret && !v.empty()) v = "********";
    out += fmt::format("{} = \"{}\"\n", s.key, v);
  }
  return out;
}

int IoThreadsFor(int setting, unsigned cpus) {
  if (setting > 0) return setting;
  return std::clamp(static_cast<int>(cpus / kCpusPerIoThread), 1, kMaxAutoIoThreads);
}

bool PageServerOn(const std::string& setting, unsigned cpus) {
  if (setting == "auto") return cpus >= kPageServerAutoMinCpus;
  return setting == "true";
}

}  // namespace ckptd
