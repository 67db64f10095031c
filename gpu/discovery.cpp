#include "gpu/discovery.h"

#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "common/fd.h"

namespace ckptd::gpu {

namespace {

constexpr size_t kMaxEvidence = 4;

// Reads a whole procfs file. ENOENT/ESRCH (process gone, before the open
// or after it) -> *gone = true.
Status ReadProcFile(const std::string& path, std::string* out, bool* gone) {
  if (ReadFileTo(path, out)) return Status::Ok();
  const int e = errno;
  if (e == ENOENT || e == ESRCH) {
    *gone = true;
    return Status::Ok();
  }
  return ErrnoError("read " + path, e);
}

// Entries of a directory; a vanished directory yields an empty list.
Status ListDir(const std::string& path, std::vector<std::string>* names, bool* gone) {
  DIR* d = opendir(path.c_str());
  if (!d) {
    if (errno == ENOENT || errno == ESRCH) {
      *gone = true;
      return Status::Ok();
    }
    return ErrnoError("opendir " + path, errno);
  }
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names->push_back(std::move(n));
  }
  closedir(d);
  return Status::Ok();
}

void AddEvidence(std::vector<std::string>* evidence, std::string item) {
  if (!evidence || evidence->size() >= kMaxEvidence) return;
  for (const auto& e : *evidence)
    if (e == item) return;
  evidence->push_back(std::move(item));
}

}  // namespace

bool IsGpuPath(std::string_view path) {
  if (path.rfind("/dev/nvidia", 0) == 0) return true;
  size_t slash = path.rfind('/');
  std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
  return base.rfind("libcuda.so", 0) == 0;
}

Result<bool> ProcessUsesGpu(int pid, const DiscoveryOptions& opts, std::vector<std::string>* evidence) {
  std::string base = fmt::format("{}/{}", opts.proc_root, pid);
  std::string maps;
  bool gone = false;
  CKPTD_RETURN_IF_ERROR(ReadProcFile(base + "/maps", &maps, &gone));
  if (gone) return false;
  bool found = false;
  // Each line: address perms offset dev inode [path]; the path starts at the
  // first '/' after the inode column.
  std::istringstream lines(maps);
  std::string line;
  while (std::getline(lines, line)) {
    size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    // " (deleted)" suffix still names the file.
    if (IsGpuPath(path)) {
      found = true;
      AddEvidence(evidence, "maps:" + path);
    }
  }
  if (opts.check_fds) {
    std::vector<std::string> fds;
    bool fd_gone = false;
    Status st = ListDir(base + "/fd", &fds, &fd_gone);
    // fds may be unreadable for reasons maps is not (e.g. a zombie); maps
    // already answered, so an fd error only loses extra evidence.
    if (st.ok()) {
      char buf[4096];
      for (const auto& fd : fds) {
        ssize_t n = readlink((base + "/fd/" + fd).c_str(), buf, sizeof buf - 1);
        if (n <= 0) continue;
        std::string target(buf, static_cast<size_t>(n));
        if (IsGpuPath(target)) {
          found = true;
          AddEvidence(evidence, "fd:" + target);
        }
      }
    }
  }
  return found;
}

Result<std::vector<int>> ListProcessTree(int root_pid, const DiscoveryOptions& opts) {
  if (root_pid <= 0) return InvalidArgument(fmt::format("invalid pid {}", root_pid));
  std::string root_dir = fmt::format("{}/{}", opts.proc_root, root_pid);
  if (access(root_dir.c_str(), F_OK) != 0) {
    return NotFound(fmt::format("process {} not found in {}", root_pid, opts.proc_root));
  }
  std::vector<int> order;
  std::set<int> seen;
  std::deque<int> queue{root_pid};
  seen.insert(root_pid);
  while (!queue.empty()) {
    int pid = queue.front();
    queue.pop_front();
    order.push_back(pid);
    if (order.size() > opts.max_processes) {
      return Internal(fmt::format("process tree of {} has more than {} processes", root_pid, opts.max_processes));
    }
    std::string task_dir = fmt::format("{}/{}/task", opts.proc_root, pid);
    std::vector<std::string> tids;
    bool gone = false;
    CKPTD_RETURN_IF_ERROR(ListDir(task_dir, &tids, &gone));
    if (gone) continue;
    for (const auto& tid : tids) {
      std::string children;
      bool tgone = false;
      CKPTD_RETURN_IF_ERROR(ReadProcFile(task_dir + "/" + tid + "/children", &children, &tgone));
      if (tgone) continue;
      std::istringstream ss(children);
      int child;
      while (ss >> child) {
        if (child > 0 && seen.insert(child).second) queue.push_back(child);
      }
    }
  }
  return order;
}

Result<std::vector<GpuProcessInfo>> FindGpuProcesses(int root_pid, const DiscoveryOptions& opts) {
  CKPTD_ASSIGN_OR_RETURN(std::vector<int> tree, ListProcessTree(root_pid, opts));
  std::vector<GpuProcessInfo> out;
  for (int pid : tree) {
    GpuProcessInfo info;
    info.pid = pid;
    auto uses = ProcessUsesGpu(pid, opts, &info.evidence);
    if (!uses.ok()) return uses.status().WithContext(fmt::format("GPU discovery in tree of {}", root_pid));
    if (*uses) out.push_back(std::move(info));
  }
  return out;
}

}  // namespace ckptd::gpu
