// Internal to the local object store: files and directories beneath a root
// descriptor, reached one component at a time with openat(O_NOFOLLOW), so
// no symlink anywhere under the root (a checkpoint directory replaced by a
// link, a link planted as an image file) is ever followed out of it.
// Thread safety: free functions and a move-only descriptor owner.
#pragma once

#include <unistd.h>

#include <string>
#include <string_view>
#include <utility>

#include "common/fd.h"
#include "common/status.h"

namespace ckptd::localfs {

inline constexpr std::string_view kTmpPrefix = ".ckptd-tmp-";

// Owns a descriptor; -1 when empty.
using Fd = ::ckptd::UniqueFd;

// "a/b" of "a/b/c"; "" for "c".
std::string_view DirOf(std::string_view key);
// "c" of "a/b/c".
std::string_view BaseOf(std::string_view key);

// The directory `rel` ("" for the root itself, else '/'-separated
// components without "." or "..") beneath `root`. With `create`, missing
// components are made (mode 0700). NotFound when a component is missing,
// or is anything but a real directory (a symlink in particular); IOError
// for other failures.
Result<Fd> OpenDir(int root, std::string_view rel, bool create);

// Removes the directory `rel` beneath `root` and then its parents, up to
// (not including) the root, for as long as each is empty.
void RemoveEmptyDirs(int root, std::string_view rel);

// fsync of a directory (after a rename in it).
Status FsyncFd(int fd, std::string_view what);

// A temporary file being written in a directory of the store.
struct TempFile {
  int dir = -1;  // borrowed: the writer owns the directory's descriptor
  std::string name;
  void Unlink() const { ::unlinkat(dir, name.c_str(), 0); }
};

}  // namespace ckptd::localfs
