#include "store/local_fs.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

#include <fmt/format.h>

namespace ckptd::localfs {

std::string_view DirOf(std::string_view key) {
  size_t slash = key.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : key.substr(0, slash);
}

std::string_view BaseOf(std::string_view key) {
  size_t slash = key.rfind('/');
  return slash == std::string_view::npos ? key : key.substr(slash + 1);
}

Result<Fd> OpenDir(int root, std::string_view rel, bool create) {
  Fd dir(::fcntl(root, F_DUPFD_CLOEXEC, 0));
  if (dir.get() < 0) return ErrnoError("dup", errno);
  while (!rel.empty()) {
    size_t slash = rel.find('/');
    std::string part(rel.substr(0, slash));
    rel = slash == std::string_view::npos ? std::string_view() : rel.substr(slash + 1);
    if (part.empty()) continue;
    for (int attempt = 0;; ++attempt) {
      int fd = ::openat(dir.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd >= 0) {
        dir = Fd(fd);
        break;
      }
      int err = errno;
      if (err == ENOENT && create && attempt < 3) {
        if (::mkdirat(dir.get(), part.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError("mkdir " + part, errno);
        continue;  // a concurrent delete may remove it again: retry
      }
      // ELOOP / ENOTDIR: a symlink or a file where a directory should be.
      if (err == ENOENT || err == ELOOP || err == ENOTDIR) return NotFound(fmt::format("no directory '{}'", part));
      return ErrnoError("open directory " + part, err);
    }
  }
  return dir;
}

void RemoveEmptyDirs(int root, std::string_view rel) {
  while (!rel.empty()) {
    auto parent = OpenDir(root, DirOf(rel), false);
    std::string name(BaseOf(rel));
    if (!parent.ok() || ::unlinkat(parent->get(), name.c_str(), AT_REMOVEDIR) != 0) return;
    rel = DirOf(rel);
  }
}

Status FsyncFd(int fd, std::string_view what) {
  if (::fsync(fd) != 0) return ErrnoError(fmt::format("fsync {}", what), errno);
  return Status::Ok();
}

}  // namespace ckptd::localfs
