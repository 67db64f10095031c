// Helpers every test may use: a temporary directory that removes itself,
// reproducible random bytes, whole-file reads and writes, a free loopback
// port, a shell command's output and a child that says when it is ready.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ckptd::testing {

// A fresh directory tag.XXXXXX under `parent` ($TMPDIR by default),
// removed with everything in it on destruction. Aborts when it cannot be
// made.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "ckptd-test",
                   const std::filesystem::path& parent = std::filesystem::temp_directory_path());
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // path()/name as a string; nothing is created.
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  // path()/name, created (with its parents) as a directory.
  std::filesystem::path Sub(const std::string& name) const;

 private:
  std::filesystem::path path_;
};

// n incompressible bytes, the same for the same seed.
std::string RandomBytes(size_t n, uint64_t seed);

// The whole file ("" when it cannot be read).
std::string ReadFileText(const std::string& path);
// Replaces the file's content.
void WriteFileText(const std::string& path, const std::string& text);

// A port that was free a moment ago on 127.0.0.1.
uint16_t FreePort();
// A TCP connection to 127.0.0.1:port (close-on-exec); -1 when it fails.
int ConnectLoopback(uint16_t port);
// A listening TCP socket on 127.0.0.1 at a free port (close-on-exec), the
// port in *port; -1 when it fails.
int ListenLoopback(uint16_t* port);

// Runs `command` with /bin/sh; stdout+stderr and the exit status (-1 when
// it did not exit normally).
struct CommandResult {
  int status = -1;
  std::string output;
};
CommandResult RunCommand(const std::string& command);

// A child started from argv (argv[0] a path) in a session and process group
// of its own (so CRIU can dump its tree without shell_job), its stdout on a
// pipe: the constructor returns once `ready` lines starting
// with "ready " were read from it, or at `timeout`, or when it closed its
// stdout. The destructor kills the whole group and reaps the child, unless
// Release() handed it to the caller. pid() is -1 when it could not start.
class ReadyChild {
 public:
  explicit ReadyChild(const std::vector<std::string>& argv, size_t ready = 1,
                      std::chrono::milliseconds timeout = std::chrono::minutes(2));
  ~ReadyChild();
  ReadyChild(const ReadyChild&) = delete;
  ReadyChild& operator=(const ReadyChild&) = delete;
  pid_t pid() const { return pid_; }
  // The "ready ..." lines read, in order, without their newline.
  const std::vector<std::string>& ready_lines() const { return lines_; }
  // The second word of each ready line ("ready <pid> ...").
  std::vector<pid_t> ready_pids() const;
  // The caller now kills and reaps the child.
  pid_t Release();

 private:
  pid_t pid_ = -1;
  std::vector<std::string> lines_;
};

}  // namespace ckptd::testing
