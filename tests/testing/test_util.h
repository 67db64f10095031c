// Helpers every test may use: a temporary directory that removes itself,
// reproducible random bytes, whole-file reads and writes, a free loopback
// port and a shell command's output.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

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

// Runs `command` with /bin/sh; stdout+stderr and the exit status (-1 when
// it did not exit normally).
struct CommandResult {
  int status = -1;
  std::string output;
};
CommandResult RunCommand(const std::string& command);

}  // namespace ckptd::testing
