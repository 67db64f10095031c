#include "store/local_object_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include <fmt/format.h>

#include "store/local_fs.h"
#include "store/local_writer.h"

namespace ckptd {
namespace {

using localfs::Fd;
using localfs::kTmpPrefix;

// mkdir -p of the root itself (a path the operator configured).
Status MakeDirs(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    return S_ISDIR(st.st_mode) ? Status::Ok() : IOError(dir + " exists and is not a directory");
  }
  size_t slash = dir.rfind('/');
  if (slash != std::string::npos && slash > 0) CKPTD_RETURN_IF_ERROR(MakeDirs(dir.substr(0, slash)));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError("mkdir " + dir, errno);
  return Status::Ok();
}

std::string Etag(const struct stat& st) {
  return fmt::format("{:x}-{:x}", st.st_size, st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec);
}

class LocalReader final : public ObjectReader {
 public:
  LocalReader(int fd, uint64_t size, uint64_t remaining, std::string what)
      : fd_(fd), size_(size), remaining_(remaining), what_(std::move(what)) {}
  ~LocalReader() override { ::close(fd_); }

  Result<size_t> Read(std::span<char> buf) override {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), remaining_));
    if (want == 0) return size_t{0};
    for (;;) {
      ssize_t n = ::read(fd_, buf.data(), want);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError("read " + what_, errno);
      remaining_ -= static_cast<uint64_t>(n);
      return static_cast<size_t>(n);
    }
  }
  uint64_t size() const override { return size_; }

 private:
  int fd_;
  uint64_t size_, remaining_;
  std::string what_;
};

struct Entry {
  std::string sort_name;  // name, plus '/' for directories (byte order of full keys)
  bool dir;
};

// The entries of the directory `dir` that can hold keys > after starting
// with prefix: regular files and real directories (never symlinks), sorted
// in key order.
Result<std::vector<Entry>> ListDir(int dir, const std::string& rel_dir, std::string_view prefix,
                                   std::string_view after) {
  DIR* d = ::fdopendir(::fcntl(dir, F_DUPFD_CLOEXEC, 0));
  if (d == nullptr) return ErrnoError("opendir " + rel_dir, errno);
  ::rewinddir(d);  // a dup shares the offset an earlier listing left at the end
  std::vector<Entry> entries;
  errno = 0;
  while (struct dirent* de = ::readdir(d)) {
    std::string_view name = de->d_name;
    if (name == "." || name == ".." || name.starts_with(kTmpPrefix)) continue;
    struct stat st;
    if (::fstatat(::dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // raced a delete
    bool is_dir = S_ISDIR(st.st_mode);
    if (!is_dir && !S_ISREG(st.st_mode)) continue;
    std::string rel = rel_dir.empty() ? std::string(name) : rel_dir + "/" + std::string(name);
    std::string key_or_dir = is_dir ? rel + "/" : rel;
    // Prune subtrees that cannot hold a matching key, and keys <= after.
    size_t common = std::min(key_or_dir.size(), prefix.size());
    if (key_or_dir.compare(0, common, prefix.substr(0, common)) != 0) continue;
    if (!is_dir && key_or_dir.size() < prefix.size()) continue;
    if (!after.empty()) {
      if (!is_dir && key_or_dir <= after) continue;
      if (is_dir && !(std::string_view(after).starts_with(key_or_dir)) && key_or_dir < after) continue;
    }
    entries.push_back({std::string(name) + (is_dir ? "/" : ""), is_dir});
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return ErrnoError("readdir " + rel_dir, err);
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.sort_name < b.sort_name; });
  return entries;
}

// Depth-first walk in key order from the directory `dir` (key prefix
// rel_dir), appending keys > after (and starting with prefix) until out has
// max entries. Subdirectories are opened with O_NOFOLLOW: a symlink is never
// walked. Memory: one directory listing per level.
Status Walk(int dir, const std::string& rel_dir, std::string_view prefix, std::string_view after, size_t max,
            std::vector<ObjectInfo>* out, bool* more) {
  CKPTD_ASSIGN_OR_RETURN(std::vector<Entry> entries, ListDir(dir, rel_dir, prefix, after));
  for (const Entry& e : entries) {
    std::string name = e.dir ? e.sort_name.substr(0, e.sort_name.size() - 1) : e.sort_name;
    std::string rel = rel_dir.empty() ? name : rel_dir + "/" + name;
    if (e.dir) {
      Fd sub(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub.get() < 0) continue;  // raced a delete or a swap for a link
      CKPTD_RETURN_IF_ERROR(Walk(sub.get(), rel, prefix, after, max, out, more));
      if (*more) return Status::Ok();
    } else {
      if (out->size() == max) {
        *more = true;
        return Status::Ok();
      }
      struct stat st;
      if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
      out->push_back({rel, static_cast<uint64_t>(st.st_size), Etag(st)});
    }
  }
  return Status::Ok();
}

// Unlinks temp files under the directory `dir`, depth first, removing the
// subdirectories that leaves empty.
Status SweepTemps(int dir, const std::string& where, int depth, size_t* removed) {
  CKPTD_ASSIGN_OR_RETURN(std::vector<Entry> entries, ListDir(dir, where, "", ""));
  // ListDir leaves temp files out: look for them separately.
  DIR* d = ::fdopendir(::fcntl(dir, F_DUPFD_CLOEXEC, 0));
  if (d == nullptr) return ErrnoError("opendir " + where, errno);
  ::rewinddir(d);
  while (struct dirent* de = ::readdir(d)) {
    struct stat st;
    if (!std::string_view(de->d_name).starts_with(kTmpPrefix)) continue;
    if (::fstatat(::dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    if (::unlinkat(::dirfd(d), de->d_name, 0) == 0) ++*removed;
  }
  ::closedir(d);
  Status result;
  for (const Entry& e : entries) {
    if (!e.dir || depth > 64) continue;  // keys are never this deep
    std::string name = e.sort_name.substr(0, e.sort_name.size() - 1);
    Fd sub(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (sub.get() < 0) continue;
    Status st = SweepTemps(sub.get(), where + "/" + name, depth + 1, removed);
    if (!st.ok() && result.ok()) result = st;
    ::unlinkat(dir, name.c_str(), AT_REMOVEDIR);  // only when empty
  }
  return result;
}

}  // namespace

Result<std::unique_ptr<LocalObjectStore>> LocalObjectStore::Open(std::string root) {
  if (root.empty() || root.front() != '/')
    return InvalidArgument("local object store root '" + root + "' is not absolute");
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  CKPTD_RETURN_IF_ERROR(MakeDirs(root).WithContext("local object store"));
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("local object store: open " + root, errno);
  return std::unique_ptr<LocalObjectStore>(new LocalObjectStore(std::move(root), fd));
}

LocalObjectStore::~LocalObjectStore() { ::close(root_fd_); }

std::string LocalObjectStore::Describe() const { return "file://" + root_ + "/"; }

Result<std::unique_ptr<ObjectWriter>> LocalObjectStore::NewWriter(std::string_view key, const WriteOptions&) {
  CKPTD_RETURN_IF_ERROR(ValidateKey(key));
  return NewLocalWriter(root_fd_, key, Describe(), io_);
}

bool LocalObjectStore::CanLinkFrom(const std::filesystem::path& dir) const {
  struct stat root {};
  struct stat other {};
  return ::fstat(root_fd_, &root) == 0 && ::stat(dir.c_str(), &other) == 0 && S_ISDIR(other.st_mode) &&
         root.st_dev == other.st_dev;
}

Status LocalObjectStore::LinkFile(std::string_view key, const std::filesystem::path& path) {
  CKPTD_RETURN_IF_ERROR(ValidateKey(key));
  return LinkLocalFile(root_fd_, key, path, Describe());
}

Result<UniqueFd> LocalObjectStore::OpenObject(std::string_view key, uint64_t* size) const {
  CKPTD_RETURN_IF_ERROR(ValidateKey(key));
  auto not_found = [&] { return NotFound(fmt::format("{}: object '{}' not found", Describe(), key)); };
  auto dir = localfs::OpenDir(root_fd_, localfs::DirOf(key), false);
  if (!dir.ok()) return dir.status().code() == Code::kNotFound ? not_found() : dir.status();
  std::string base(localfs::BaseOf(key));
  UniqueFd fd(::openat(dir->get(), base.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR || errno == ELOOP) return not_found();
    return ErrnoError(fmt::format("{}: open '{}'", Describe(), key), errno);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return not_found();
  *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

Result<std::unique_ptr<ObjectReader>> LocalObjectStore::NewReader(std::string_view key, const ReadOptions& opts) {
  uint64_t size = 0;
  CKPTD_ASSIGN_OR_RETURN(UniqueFd fd, OpenObject(key, &size));
  uint64_t offset = std::min(opts.offset, size);
  uint64_t remaining = size - offset;
  if (opts.length) remaining = std::min(remaining, *opts.length);
  if (offset > 0 && ::lseek(fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0)
    return ErrnoError(fmt::format("{}: seek '{}'", Describe(), key), errno);
  return std::unique_ptr<ObjectReader>(
      new LocalReader(fd.release(), size, remaining, fmt::format("{}: '{}'", Describe(), key)));
}

Status LocalObjectStore::LinkObjectAs(std::string_view key, const std::filesystem::path& dest) {
  uint64_t size = 0;
  CKPTD_ASSIGN_OR_RETURN(UniqueFd fd, OpenObject(key, &size));
  // Through /proc/self/fd: the inode opened beneath the root (linkat(2)).
  const std::string proc_path = fmt::format("/proc/self/fd/{}", fd.get());
  if (::linkat(AT_FDCWD, proc_path.c_str(), AT_FDCWD, dest.c_str(), AT_SYMLINK_FOLLOW) != 0) {
    int err = errno;
    std::string what = fmt::format("{}: link '{}' as {}", Describe(), key, dest.string());
    return err == EEXIST ? AlreadyExists(what + ": it exists") : ErrnoError(what, err);
  }
  return Status::Ok();
}

Result<ObjectInfo> LocalObjectStore::Head(std::string_view key) {
  CKPTD_RETURN_IF_ERROR(ValidateKey(key));
  auto not_found = [&] { return NotFound(fmt::format("{}: object '{}' not found", Describe(), key)); };
  auto dir = localfs::OpenDir(root_fd_, localfs::DirOf(key), false);
  if (!dir.ok()) return dir.status().code() == Code::kNotFound ? not_found() : dir.status();
  struct stat st;
  std::string base(localfs::BaseOf(key));
  if (::fstatat(dir->get(), base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return not_found();
    return ErrnoError(fmt::format("{}: stat '{}'", Describe(), key), errno);
  }
  if (!S_ISREG(st.st_mode)) return not_found();
  return ObjectInfo{std::string(key), static_cast<uint64_t>(st.st_size), Etag(st)};
}

Result<ListPage> LocalObjectStore::List(std::string_view prefix, std::string_view page_token, int max_keys) {
  CKPTD_RETURN_IF_ERROR(ValidatePrefix(prefix));
  size_t max = static_cast<size_t>(std::clamp(max_keys, 1, 1000));
  ListPage page;
  bool more = false;
  // Start at the deepest directory the prefix names fully.
  std::string start_dir;
  size_t slash = prefix.rfind('/');
  if (slash != std::string_view::npos) start_dir = std::string(prefix.substr(0, slash));
  auto dir = localfs::OpenDir(root_fd_, start_dir, false);
  if (!dir.ok()) return dir.status().code() == Code::kNotFound ? Result<ListPage>(page) : dir.status();
  CKPTD_RETURN_IF_ERROR(
      Walk(dir->get(), start_dir, prefix, page_token, max, &page.objects, &more).WithContext(Describe()));
  if (more && !page.objects.empty()) page.next_token = page.objects.back().key;
  return page;
}

Status LocalObjectStore::Delete(std::string_view key) {
  CKPTD_RETURN_IF_ERROR(ValidateKey(key));
  std::string_view dir_rel = localfs::DirOf(key);
  auto dir = localfs::OpenDir(root_fd_, dir_rel, false);
  if (!dir.ok()) return dir.status().code() == Code::kNotFound ? Status::Ok() : dir.status();
  std::string base(localfs::BaseOf(key));
  // unlinkat never follows: a symlink under the key goes, not its target.
  if (::unlinkat(dir->get(), base.c_str(), 0) != 0 && errno != ENOENT && errno != ENOTDIR)
    return ErrnoError(fmt::format("{}: delete '{}'", Describe(), key), errno);
  localfs::RemoveEmptyDirs(root_fd_, dir_rel);
  return Status::Ok();
}

Status LocalObjectStore::RemoveIncomplete(std::string_view prefix) {
  CKPTD_RETURN_IF_ERROR(ValidatePrefix(prefix));
  if (!prefix.empty() && prefix.back() != '/')
    return InvalidArgument(fmt::format("RemoveIncomplete: prefix '{}' is not a directory", prefix));
  std::string_view rel = prefix.empty() ? prefix : prefix.substr(0, prefix.size() - 1);
  auto dir = localfs::OpenDir(root_fd_, rel, false);
  if (!dir.ok()) return dir.status().code() == Code::kNotFound ? Status::Ok() : dir.status();
  size_t removed = 0;
  Status st = SweepTemps(dir->get(), std::string(rel), 0, &removed);
  dir->Reset();
  localfs::RemoveEmptyDirs(root_fd_, rel);  // the prefix's own directory, when that emptied it
  return st.WithContext(Describe());
}

}  // namespace ckptd
