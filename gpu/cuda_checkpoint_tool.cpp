#include "gpu/cuda_checkpoint_tool.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>

namespace ckptd::gpu {

namespace {

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

bool ContainsNoCase(std::string_view hay, std::string_view needle) {
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  return lower(hay).find(lower(needle)) != std::string::npos;
}

std::string JoinArgv(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

}  // namespace

Result<std::string> FindExecutable(const std::string& name) {
  auto is_exec = [](const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0;
  };
  if (name.empty()) return NotFound("no cuda-checkpoint path configured");
  if (name.find('/') != std::string::npos) {
    if (is_exec(name)) return name;
    return NotFound(name + ": not an executable file");
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    if (is_exec(candidate)) return candidate;
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return NotFound(name + ": not found in PATH");
}

Result<std::unique_ptr<CudaCheckpointTool>> CudaCheckpointTool::Probe(const GpuConfig& config, ProcessRunner* runner) {
  auto found = FindExecutable(config.tool_path);
  if (!found.ok()) {
    return Unavailable("GPU checkpointing unavailable: cuda-checkpoint: " + found.status().message());
  }
  std::unique_ptr<CudaCheckpointTool> tool(new CudaCheckpointTool(*found, config, runner));
  auto help = tool->RunTool({"--help"}, std::chrono::milliseconds(0), false);
  if (!help.ok()) {
    return Unavailable("GPU checkpointing unavailable: " + help.status().message());
  }
  // "Version 580.65.06. Copyright ..." -> "580.65.06"
  tool->info_.backend = "cuda-checkpoint";
  const std::string& text = help->out.empty() ? help->err : help->out;
  size_t v = text.find("Version ");
  if (v != std::string::npos) {
    size_t start = v + 8;
    size_t end = text.find_first_of(" \t\r\n", start);
    std::string ver = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    while (!ver.empty() && ver.back() == '.') ver.pop_back();
    tool->info_.version = ver;
  }
  return tool;
}

Result<RunResult> CudaCheckpointTool::RunTool(std::vector<std::string> args, std::chrono::milliseconds extra_deadline,
                                              bool lock_action) {
  std::vector<std::string> argv;
  argv.reserve(args.size() + 1);
  argv.push_back(path_);
  for (auto& a : args) argv.push_back(std::move(a));
  RunOptions opts;
  opts.deadline = config_.tool_deadline + extra_deadline;
  opts.max_output = 64 * 1024;
  for (const auto& [k, v] : config_.tool_env) opts.env[k] = v;
  std::string cmd = JoinArgv(argv);
  auto res = runner_->Run(argv, opts);
  if (!res.ok()) return res.status().WithContext(cmd);
  if (!res->ok()) {
    std::string msg = cmd + ": " + res->Describe();
    // The tool prints the driver's error string; a timed-out lock reads
    // "... timed out" / "timeout".
    std::string text = res->err + res->out;
    if (lock_action && (ContainsNoCase(text, "timed out") || ContainsNoCase(text, "timeout"))) {
      return DeadlineExceeded(std::move(msg));
    }
    if (ContainsNoCase(text, "illegal state")) return Conflict(std::move(msg));
    return Internal(std::move(msg));
  }
  return res;
}

Result<GpuProcessState> CudaCheckpointTool::GetState(int pid) {
  CKPTD_ASSIGN_OR_RETURN(RunResult r,
                         RunTool({"--get-state", "--pid", std::to_string(pid)}, std::chrono::milliseconds(0), false));
  std::string word = Trim(r.out);
  // Be lenient about a trailing line or prefix: take the last word.
  size_t sp = word.find_last_of(" \t\n");
  if (sp != std::string::npos) word = word.substr(sp + 1);
  auto state = ParseState(word);
  if (!state.ok()) {
    return Internal(fmt::format("{} --get-state --pid {}: unexpected output \"{}\"", path_, pid, Trim(r.out)));
  }
  return state;
}

Status CudaCheckpointTool::Lock(int pid, std::chrono::milliseconds timeout) {
  std::vector<std::string> args = {"--action", "lock", "--pid", std::to_string(pid)};
  if (timeout.count() > 0) {
    args.push_back("--timeout");
    args.push_back(std::to_string(timeout.count()));
  }
  auto r = RunTool(std::move(args), timeout.count() > 0 ? timeout : std::chrono::milliseconds(0), true);
  return r.status();
}

Status CudaCheckpointTool::Checkpoint(int pid) {
  return RunTool({"--action", "checkpoint", "--pid", std::to_string(pid)}, std::chrono::milliseconds(0), false)
      .status();
}

Status CudaCheckpointTool::Restore(int pid, const DeviceMap& device_map) {
  std::vector<std::string> args = {"--action", "restore", "--pid", std::to_string(pid)};
  if (!device_map.empty()) {
    args.push_back("--device-map");
    args.push_back(FormatDeviceMap(device_map));
  }
  return RunTool(std::move(args), std::chrono::milliseconds(0), false).status();
}

Status CudaCheckpointTool::Unlock(int pid) {
  return RunTool({"--action", "unlock", "--pid", std::to_string(pid)}, std::chrono::milliseconds(0), false).status();
}

}  // namespace ckptd::gpu
