#include "jobs/restore_fds.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace ckptd {

namespace fs = std::filesystem;

namespace {

// The root `path` lies under and the path relative to it.
Result<std::pair<fs::path, fs::path>> Split(const std::string& path, const std::vector<std::string>& roots,
                                            std::string_view what) {
  const fs::path p = fs::path(path).lexically_normal();
  for (const auto& r : roots) {
    const fs::path root = fs::path(r).lexically_normal();
    fs::path rel = p.lexically_relative(root);
    if (rel.empty() || rel == "." || *rel.begin() == "..") continue;
    return std::make_pair(root, rel);
  }
  return InvalidArgument(fmt::format("{} {} is not under a directory of file_roots{}", what, path,
                                      roots.empty() ? " (none is configured)" : ""));
}

// openat2 of `rel` beneath `root`, never following a symlink.
Result<int> OpenBeneath(const fs::path& root, const fs::path& rel, uint64_t flags, std::string_view what) {
  int dir = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return ErrnoError(fmt::format("open {} root {}", what, root.string()), errno);
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(syscall(SYS_openat2, dir, rel.c_str(), &how, sizeof how));
  int err = errno;
  close(dir);
  if (fd >= 0) return fd;
  const std::string name = (root / rel).string();
  if (err == ENOENT) return NotFound(fmt::format("{} {}: no such file", what, name));
  if (err == ELOOP || err == EXDEV)
    return InvalidArgument(fmt::format("{} {}: a symlink on the way (not followed)", what, name));
  return ErrnoError(fmt::format("open {} {}", what, name), err);
}

}  // namespace

Status CheckUnderRoots(const std::string& path, const std::vector<std::string>& roots, std::string_view what) {
  return Split(path, roots, what).status();
}

Result<std::vector<UniqueFd>> OpenInheritFds(const std::vector<api::RestoreJobRequest::InheritFd>& fds,
                                            const std::vector<std::string>& roots) {
  std::vector<UniqueFd> out;
  for (const auto& f : fds) {
    CKPTD_ASSIGN_OR_RETURN(auto where, Split(f.path, roots, "inherit_fd path"));
    const uint64_t mode = f.mode == "r" ? O_RDONLY : f.mode == "w" ? O_WRONLY : O_RDWR;
    CKPTD_ASSIGN_OR_RETURN(int fd, OpenBeneath(where.first, where.second, mode | O_NONBLOCK | O_NOCTTY,
                                               "inherit_fd path"));
    // O_NONBLOCK only so that opening a FIFO cannot hang; the file keeps
    // the blocking mode its user expects.
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    out.emplace_back(fd);
  }
  return out;
}

Status SendConsole(const std::string& path, const std::vector<std::string>& roots, int fd) {
  CKPTD_ASSIGN_OR_RETURN(auto where, Split(path, roots, "console_socket"));
  // The socket inode itself, reached with no symlink followed; connecting
  // through our fd of it looks nothing up again.
  CKPTD_ASSIGN_OR_RETURN(int at, OpenBeneath(where.first, where.second, O_PATH, "console_socket"));
  UniqueFd inode(at);
  struct stat st {};
  if (fstat(at, &st) != 0) return ErrnoError("stat console_socket " + path, errno);
  if (!S_ISSOCK(st.st_mode)) return InvalidArgument(fmt::format("console_socket {} is not a unix socket", path));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string via = fmt::format("/proc/self/fd/{}", at);
  std::memcpy(addr.sun_path, via.c_str(), via.size() + 1);
  // Non-blocking: a listener that does not keep up fails the step instead
  // of holding it (the message is small enough for any socket buffer).
  UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (sock.get() < 0) return ErrnoError("console socket", errno);
  if (connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return ErrnoError(fmt::format("connect to console_socket {}", path), errno);
  if (SendFd(sock.get(), "orphan-pts-master", fd) < 0)
    return ErrnoError(fmt::format("send the terminal to console_socket {}", path), errno);
  return Status::Ok();
}

}  // namespace ckptd
