// File descriptors: one owner (UniqueFd), and passing them over unix
// sockets (SCM_RIGHTS).
// Thread safety: UniqueFd is a value type; the functions are stateless.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace ckptd {

// Owns a descriptor and closes it when destroyed; -1 when empty.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& o) noexcept;
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  // Gives the descriptor up: the caller owns it now.
  int release();
  void Reset();

 private:
  int fd_;
};

// Reads `fd` to its end into *out (appended). False with errno set when a
// read fails: a procfs file of a process that is gone fails with ESRCH
// even after it was opened. (Not an ifstream: libstdc++'s filebuf throws
// on a read error, and an istreambuf_iterator lets that through.)
bool ReadToEnd(int fd, std::string* out);
// Opens `path` read-only and close-on-exec (plus `extra_flags`, such as
// O_NOFOLLOW) and reads it to its end into *out (appended; a read that
// fails midway may leave part of it). False with errno set when the open
// or a read fails.
bool ReadFileTo(const std::string& path, std::string* out, int extra_flags = 0);

// Sends `data` (not empty) and `fd` in one message; -1 with errno set on
// failure, as sendmsg. Never raises SIGPIPE.
ssize_t SendFd(int sock, std::string_view data, int fd);

// Receives one message into `buf` (resized to what came) and the first fd
// it carries into *fd (-1 when none; CLOEXEC); any further fds are closed.
// -1 with errno set on failure, as recvmsg.
ssize_t RecvWithFd(int sock, std::string* buf, int* fd);

}  // namespace ckptd
