// ckptctl: command-line client for ckptd's API.
//
//   ckptctl [--url URL] [--token T | --token-file F] [--json] list [--limit N]
//   ckptctl get ID               (info as an indented outline)
//   ckptctl deprecate ID
//   ckptctl job get|log JOB_ID
//   ckptctl checkpoint (--pid N | --container ID [--runtime-root DIR])
//           [--leave-running] [--tcp-established] [--shell-job]
//           [--file-locks] [--tcp-close] [--skip-in-flight] [--ghost-limit BYTES]
//           [--compression zstd|lz4|none] [--gpu auto|on|off]
//           [--name X] [--json] [--no-wait]
//   ckptctl restore ID|PATH [--container NEW --bundle DIR [--runtime-root DIR]]
//           [--device-map OLD=NEW,...] [--json] [--no-wait]
//
// checkpoint/restore submit a job and poll GET /v2/jobs/{id} until it ends,
// with a live progress line when stdout is a terminal; --json prints the
// final job JSON. A failed job exits 1 with its error.
//
// URL and token come from flags, then CKPTD_URL / CKPTD_TOKEN /
// CKPTD_TOKEN_FILE, then the defaults (http://127.0.0.1:8080 and the
// daemon's default token file /var/lib/ckptd/token).
// Exit codes: 0 success, 1 the API refused (message printed), 2 usage,
// 3 the daemon could not be reached.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "api/client.h"
#include "common/json_reader.h"

namespace json = boost::json;

namespace {

constexpr int kExitApiError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

struct Globals {
  std::string url = "http://127.0.0.1:8080";
  std::string token;
  std::string token_file = "/var/lib/ckptd/token";
  bool json_output = false;
};

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

std::string JsonString(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_null()) return "-";
  return json::serialize(v);
}

// Prints the API's error message and returns the exit code for it.
int ReportFailure(const ckptd::Result<ckptd::api::ClientResponse>& r) {
  if (!r.ok()) {
    std::cerr << "ckptctl: " << r.status().message() << "\n";
    return r.status().code() == ckptd::Code::kInvalidArgument ? kExitUsage : kExitUnreachable;
  }
  std::string message = r->body;
  json::error_code ec;
  auto v = json::parse(r->body, ec);
  if (!ec && v.is_object() && v.as_object().contains("message")) message = JsonString(v.at("message"));
  std::cerr << "ckptctl: HTTP " << r->status << ": " << message << "\n";
  return kExitApiError;
}

void PrintTable(const json::array& items) {
  std::printf("%-36s  %-18s  %-17s  %-10s  %-24s  %s\n", "ID", "NAME", "STATUS", "GPU", "CREATED", "RESTORE_PATH");
  for (const auto& item : items) {
    const auto& o = item.as_object();
    std::string name = JsonString(o.at("name"));
    if (name.size() > 18) name = name.substr(0, 15) + "...";
    std::string gpu = JsonString(o.at("gpu"));
    if (gpu.empty()) gpu = "-";
    std::printf("%-36s  %-18s  %-17s  %-10s  %-24s  %s\n", JsonString(o.at("id")).c_str(), name.c_str(),
                JsonString(o.at("status")).c_str(), gpu.c_str(),
                o.contains("created_at") ? JsonString(o.at("created_at")).c_str() : "-",
                o.contains("restore_path") ? JsonString(o.at("restore_path")).c_str() : "-");
  }
}

// "1.5 GiB" for byte counts.
std::string HumanBytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", b) : fmt::format("{:.1f} {}", b, units[u]);
}

// A scalar as a person reads it: strings bare, "*_bytes" also in binary
// units, "*_ms" (and the members of "timings_ms") with their unit.
std::string Scalar(std::string_view key, const json::value& v, bool in_timings) {
  std::string text = v.is_string() ? std::string(v.as_string()) : json::serialize(v);
  if (!v.is_number()) return text;
  if (key.ends_with("_bytes") || key == "size" || key == "stored_size")
    return fmt::format("{} ({})", HumanBytes(v.to_number<double>()), text);
  if (key.ends_with("_ms") || in_timings) return text + " ms";
  return text;
}

// JSON as an indented outline: "key: value", nested objects below their
// key, arrays of scalars on one line, other arrays as "- " items.
void PrintTree(const json::value& v, int indent, bool in_timings = false) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  auto scalar_array = [](const json::array& a) {
    return std::all_of(a.begin(), a.end(), [](const json::value& e) { return !e.is_object() && !e.is_array(); });
  };
  if (v.is_object()) {
    for (const auto& [k, child] : v.as_object()) {
      const bool nested = child.is_object() ? !child.as_object().empty()
                                            : child.is_array() && !scalar_array(child.as_array());
      if (!nested) {
        std::string text = child.is_array() ? json::serialize(child) : Scalar(k, child, in_timings);
        if (child.is_object()) text = "{}";
        std::printf("%s%s: %s\n", pad.c_str(), std::string(k).c_str(), text.c_str());
        continue;
      }
      std::printf("%s%s:\n", pad.c_str(), std::string(k).c_str());
      PrintTree(child, indent + 2, k == "timings_ms");
    }
  } else if (v.is_array()) {
    for (const auto& e : v.as_array()) {
      std::printf("%s-\n", pad.c_str());
      PrintTree(e, indent + 2, in_timings);
    }
  } else {
    std::printf("%s%s\n", pad.c_str(), Scalar("", v, in_timings).c_str());
  }
}

void PrintDetails(const json::object& o) {
  for (const char* key : {"id", "name", "status", "gpu", "platform", "checksum", "restore_path", "created_at",
                          "updated_at", "cleaned_at"}) {
    if (o.contains(key)) std::printf("%-13s %s\n", (std::string(key) + ":").c_str(), JsonString(o.at(key)).c_str());
  }
  if (o.contains("info") && !o.at("info").is_null()) {
    std::printf("info:\n");
    PrintTree(o.at("info"), 2);
  }
  if (o.contains("history")) {
    for (const auto& h : o.at("history").as_array()) {
      std::printf("%-13s %s -> %s at %s\n", "transition:", JsonString(h.at("from")).c_str(),
                  JsonString(h.at("to")).c_str(), JsonString(h.at("at")).c_str());
    }
  }
}

// CRIU options of processes, as flags; only those given go into the body.
struct CriuFlags {
  std::string cgroup_mode, network_lock, lsm_profile, console_socket;
  bool evasive_devices = false, orphan_pts_master = false;
  std::vector<std::string> enable_fs, external, inherit_fd;

  void AddCommon(CLI::App* cmd) {
    cmd->add_option("--manage-cgroups-mode", cgroup_mode,
                    "cgroups: ignore (restore into the daemon's), soft, full, strict (CRIU --manage-cgroups)")
        ->check(CLI::IsMember({"ignore", "soft", "full", "strict"}));
    cmd->add_option("--network-lock", network_lock, "how CRIU locks TCP connections: nftables (default), iptables, skip")
        ->check(CLI::IsMember({"nftables", "iptables", "skip"}));
    cmd->add_option("--external", external, "a CRIU --external entry (repeatable)");
  }
  void AddCheckpoint(CLI::App* cmd) {
    AddCommon(cmd);
    cmd->add_flag("--evasive-devices", evasive_devices, "record a device opened by a path that is gone by another path");
    cmd->add_option("--enable-fs", enable_fs, "a filesystem type CRIU may dump as an auto mount (repeatable)");
    cmd->add_flag("--orphan-pts-master", orphan_pts_master,
                  "dump a terminal whose master is outside the tree (its restore needs --console-socket)");
  }
  void AddRestore(CLI::App* cmd) {
    AddCommon(cmd);
    cmd->add_option("--lsm-profile", lsm_profile, "apparmor:<profile> or selinux:<context> for the restored tasks");
    cmd->add_option("--inherit-fd", inherit_fd,
                    "KEY=PATH[:r|w|rw]: serve the images' resource KEY (file[MNT:INODE]) by the file PATH, under "
                    "file_roots (repeatable)");
    cmd->add_option("--console-socket", console_socket,
                    "unix socket the new terminal's master is sent to (orphan_pts_master checkpoints)");
  }
  // "KEY=PATH[:MODE]" into the API's {"key", "path", "mode"}; false when
  // malformed.
  bool InheritFdsJson(json::array* out) const {
    for (const auto& e : inherit_fd) {
      auto eq = e.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == e.size()) return false;
      std::string path = e.substr(eq + 1), mode = "rw";
      if (auto colon = path.rfind(':'); colon != std::string::npos) {
        std::string m = path.substr(colon + 1);
        if (m == "r" || m == "w" || m == "rw") {
          mode = m;
          path.resize(colon);
        }
      }
      out->push_back(json::object{{"key", e.substr(0, eq)}, {"path", path}, {"mode", mode}});
    }
    return true;
  }
  void Apply(json::object* body) const {
    if (!cgroup_mode.empty()) (*body)["manage_cgroups_mode"] = cgroup_mode;
    if (!network_lock.empty()) (*body)["network_lock"] = network_lock;
    if (!lsm_profile.empty()) (*body)["lsm_profile"] = lsm_profile;
    if (evasive_devices) (*body)["evasive_devices"] = true;
    if (orphan_pts_master) (*body)["orphan_pts_master"] = true;
    if (!console_socket.empty()) (*body)["console_socket"] = console_socket;
    json::array fds;
    if (InheritFdsJson(&fds) && !fds.empty()) (*body)["inherit_fd"] = std::move(fds);
    if (!enable_fs.empty()) (*body)["enable_fs"] = ckptd::ToJsonArray(enable_fs);
    if (!external.empty()) (*body)["external"] = ckptd::ToJsonArray(external);
  }
};

// Polls the job until it ends; prints progress on a TTY. Returns the exit code.
int WaitForJob(ckptd::api::HttpClient* client, const std::string& job_id, bool json_output) {
  const bool tty = isatty(STDOUT_FILENO) == 1;
  bool drew = false;
  for (;;) {
    auto r = client->Send("GET", "/v2/jobs/" + job_id);
    if (!r.ok() || r->status != 200) {
      if (drew) std::printf("\n");
      return ReportFailure(r);
    }
    json::value v = json::parse(r->body);
    const auto& o = v.as_object();
    std::string state = JsonString(o.at("state"));
    if (state == "succeeded" || state == "failed") {
      if (drew) std::printf("\r\033[K");
      std::fflush(stdout);
      if (json_output) std::cout << r->body << "\n";
      if (state == "failed") {
        std::cerr << "ckptctl: job " << job_id << " failed: " << JsonString(o.at("error")) << "\n";
        return kExitApiError;
      }
      if (!json_output) {
        const auto& res = o.at("result");
        if (JsonString(o.at("kind")) == "checkpoint") {
          std::cout << "checkpoint " << JsonString(o.at("checkpoint_id")) << " ready\n"
                    << "restore_path: " << JsonString(res.at("restore_path")) << "\n";
        } else if (auto* c = res.as_object().if_contains("container")) {
          std::cout << "restored as container " << JsonString(c->at("id")) << " (pid " << JsonString(res.at("pid"))
                    << ")\n";
        } else {
          std::cout << "restored as pid " << JsonString(res.at("pid")) << "\n";
        }
      }
      return 0;
    }
    if (tty && !json_output) {
      double mib = static_cast<double>(o.at("bytes_written").to_number<uint64_t>()) / (1 << 20);
      double secs = static_cast<double>(o.at("elapsed_ms").to_number<int64_t>()) / 1000.0;
      std::printf("\r\033[K%s %s: %s, %.1f MiB, %.1f s", JsonString(o.at("kind")).c_str(), job_id.substr(0, 8).c_str(),
                  JsonString(o.at("phase")).c_str(), mib, secs);
      std::fflush(stdout);
      drew = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// Submits a job; --no-wait prints the ids, otherwise waits for it.
int SubmitJob(ckptd::api::HttpClient* client, const std::string& target, const json::object& body, bool json_output,
              bool no_wait) {
  auto r = client->Send("POST", target, json::serialize(body));
  if (!r.ok() || r->status != 202) return ReportFailure(r);
  json::value v = json::parse(r->body);
  std::string job_id = JsonString(v.at("job_id"));
  if (no_wait) {
    if (json_output) {
      std::cout << r->body << "\n";
    } else {
      std::cout << "job " << job_id;
      if (v.as_object().contains("checkpoint_id"))
        std::cout << " (checkpoint " << JsonString(v.at("checkpoint_id")) << ")";
      std::cout << " submitted\n";
    }
    return 0;
  }
  return WaitForJob(client, job_id, json_output);
}

}  // namespace

int main(int argc, char** argv) {
  Globals g;
  g.url = EnvOr("CKPTD_URL", g.url);
  g.token = EnvOr("CKPTD_TOKEN", g.token);
  g.token_file = EnvOr("CKPTD_TOKEN_FILE", g.token_file);

  CLI::App app{"ckptctl: talk to the ckptd checkpoint daemon"};
  app.set_version_flag("--version", std::string("ckptctl ") + CKPTD_VERSION);
  app.add_option("--url", g.url, "daemon URL (env CKPTD_URL)");
  app.add_option("--token", g.token, "API token (env CKPTD_TOKEN)");
  app.add_option("--token-file", g.token_file, "file holding the API token (env CKPTD_TOKEN_FILE)");
  app.add_flag("--json", g.json_output, "print the API's JSON instead of a table");
  app.require_subcommand(1);

  int limit = 0;
  auto* list = app.add_subcommand("list", "list checkpoints in creation order");
  list->add_option("--limit", limit, "at most N checkpoints")->check(CLI::Range(1, 1000));
  std::string id;
  auto* get = app.add_subcommand("get", "show one checkpoint");
  get->add_option("id", id, "checkpoint id")->required();
  auto* deprecate = app.add_subcommand("deprecate", "mark a checkpoint deprecated (cleanup removes its images)");
  deprecate->add_option("id", id, "checkpoint id")->required();
  auto* job = app.add_subcommand("job", "one job: its record, or the tools' logs it kept");
  job->require_subcommand(1);
  auto* job_get = job->add_subcommand("get", "the job's record (JSON)");
  job_get->add_option("id", id, "job id")->required();
  auto* job_log = job->add_subcommand("log", "CRIU's and runc's logs of a failed job");
  job_log->add_option("id", id, "job id")->required();

  int pid = 0;
  bool leave_running = false, tcp_established = false, shell_job = false, file_locks = false, no_wait = false;
  std::string compression = "zstd", gpu = "auto", name;
  auto* checkpoint = app.add_subcommand("checkpoint", "checkpoint a process tree (a job; waits for it)");
  std::string container, runtime_root = "/run/runc", bundle;
  auto* pid_opt = checkpoint->add_option("--pid", pid, "root of the tree")->check(CLI::PositiveNumber);
  auto* ctr_opt = checkpoint->add_option("--container", container, "a runc container's id (instead of --pid)");
  pid_opt->excludes(ctr_opt);
  checkpoint->add_option("--runtime-root", runtime_root,
                         "runc's root: /run/runc (default), containerd /run/containerd/runc/<namespace>, "
                         "Docker /run/docker/runtime-runc/moby");
  checkpoint->add_flag("--leave-running", leave_running, "keep the tree running after the dump");
  checkpoint->add_flag("--tcp-established", tcp_established, "dump established TCP connections");
  checkpoint->add_flag("--shell-job", shell_job, "the tree is attached to a terminal/session");
  checkpoint->add_flag("--file-locks", file_locks, "dump file locks");
  bool tcp_close = false, skip_in_flight = false;
  uint32_t ghost_limit = 0;
  checkpoint->add_flag("--tcp-close", tcp_close, "dump established TCP connections without state; restore them closed");
  checkpoint->add_flag("--skip-in-flight", skip_in_flight, "ignore TCP connections still being set up");
  checkpoint->add_option("--ghost-limit", ghost_limit,
                         "largest unlinked-but-open file dumped into the images, bytes (default CRIU's 1 MiB)");
  CriuFlags criu_flags;
  criu_flags.AddCheckpoint(checkpoint);
  checkpoint->add_option("--compression", compression, "image compression")
      ->check(CLI::IsMember({"zstd", "lz4", "none"}));
  checkpoint->add_option("--gpu", gpu, "GPU processes: auto (if any), on (required), off (skip)")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  checkpoint->add_option("--name", name, "checkpoint name");
  checkpoint->add_flag("--json", g.json_output, "print the final job JSON");
  checkpoint->add_flag("--no-wait", no_wait, "print the job id and return");

  std::string source, device_map;
  auto* restore = app.add_subcommand("restore", "restore a checkpoint (a job; waits for it)");
  restore->add_option("source", source, "checkpoint id, or a restore_path (file://... or s3://...)")->required();
  restore->add_option("--device-map", device_map, "GPU UUID pairs OLD=NEW,... for the GPU restore");
  auto* rctr = restore->add_option("--container", container, "restore a container checkpoint as this new container id");
  auto* rbundle = restore->add_option("--bundle", bundle, "the new container's OCI bundle directory");
  rctr->needs(rbundle);
  rbundle->needs(rctr);
  restore->add_option("--runtime-root", runtime_root, "runc's root for the new container (default /run/runc)");
  criu_flags.AddRestore(restore);
  restore->add_flag("--json", g.json_output, "print the final job JSON");
  restore->add_flag("--no-wait", no_wait, "print the job id and return");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }

  if (*checkpoint && pid == 0 && container.empty()) {
    std::cerr << "ckptctl: checkpoint needs --pid or --container\n";
    return kExitUsage;
  }
  if (g.token.empty()) {
    std::ifstream in(g.token_file);
    if (!in) {
      std::cerr << "ckptctl: no token: pass --token, set CKPTD_TOKEN, or make " << g.token_file
                << " readable (--token-file)\n";
      return kExitUsage;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    g.token = ss.str();
    while (!g.token.empty() && std::isspace(static_cast<unsigned char>(g.token.back()))) g.token.pop_back();
  }
  auto client = ckptd::api::HttpClient::Create(g.url, g.token);
  if (!client.ok()) {
    std::cerr << "ckptctl: " << client.status().message() << "\n";
    return kExitUsage;
  }

  if (*list) {
    std::string target = "/v2/checkpoints" + (limit ? "?limit=" + std::to_string(limit) : std::string());
    auto r = (*client)->Send("GET", target);
    if (!r.ok() || r->status != 200) return ReportFailure(r);
    if (g.json_output) {
      std::cout << r->body << "\n";
    } else {
      PrintTable(json::parse(r->body).as_array());
    }
    return 0;
  }
  if (*get) {
    auto r = (*client)->Send("GET", "/v2/checkpoints/" + id);
    if (!r.ok() || r->status != 200) return ReportFailure(r);
    if (g.json_output) {
      std::cout << r->body << "\n";
    } else {
      PrintDetails(json::parse(r->body).as_object());
    }
    return 0;
  }
  if (*checkpoint) {
    json::object body{{"leave_running", leave_running}, {"tcp_established", tcp_established}, {"shell_job", shell_job},
                      {"file_locks", file_locks},       {"compression", compression},         {"gpu", gpu}};
    if (!name.empty()) body["name"] = name;
    if (tcp_close) body["tcp_close"] = true;
    if (skip_in_flight) body["skip_in_flight"] = true;
    if (ghost_limit > 0) body["ghost_limit"] = ghost_limit;
    criu_flags.Apply(&body);
    if (!container.empty())
      body["container"] = json::object{{"id", container}, {"runtime_root", runtime_root}};
    else
      body["pid"] = pid;
    return SubmitJob(client->get(), "/v2/jobs/checkpoint", body, g.json_output, no_wait);
  }
  if (*restore) {
    json::object body;
    if (source.find("://") != std::string::npos) {
      body["restore_path"] = source;
    } else {
      body["checkpoint_id"] = source;
    }
    if (!device_map.empty()) {
      json::array pairs;
      std::stringstream in(device_map);
      std::string pair;
      while (std::getline(in, pair, ',')) {
        auto eq = pair.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == pair.size()) {
          std::cerr << "ckptctl: --device-map wants OLD=NEW[,OLD=NEW...], not '" << pair << "'\n";
          return kExitUsage;
        }
        pairs.push_back(json::object{{"from", pair.substr(0, eq)}, {"to", pair.substr(eq + 1)}});
      }
      body["device_map"] = std::move(pairs);
    }
    if (!container.empty())
      body["container"] = json::object{{"id", container}, {"bundle", bundle}, {"runtime_root", runtime_root}};
    json::array fds;
    if (!criu_flags.InheritFdsJson(&fds)) {
      std::cerr << "ckptctl: --inherit-fd wants KEY=PATH[:r|w|rw]\n";
      return kExitUsage;
    }
    criu_flags.Apply(&body);
    return SubmitJob(client->get(), "/v2/jobs/restore", body, g.json_output, no_wait);
  }
  if (*job) {
    const bool log = job_log->parsed();
    auto r = (*client)->Send("GET", "/v2/jobs/" + id + (log ? "/log" : ""));
    if (!r.ok() || r->status != 200) return ReportFailure(r);
    std::cout << r->body;
    if (!log || (!r->body.empty() && r->body.back() != '\n')) std::cout << "\n";
    return 0;
  }
  if (*deprecate) {
    auto r = (*client)->Send("PATCH", "/v2/checkpoints/deprecate/" + id);
    if (!r.ok() || r->status != 200) return ReportFailure(r);
    if (g.json_output) {
      std::cout << json::serialize(json::object{{"id", r->body}, {"status", "deprecated"}}) << "\n";
    } else {
      std::cout << "deprecated " << r->body << "\n";
    }
    return 0;
  }
  return kExitUsage;
}
