// Running external tools: the process-runner seam.
//
// Contract: Run() starts argv[0] (looked up in PATH when it has no slash),
// with stdin from /dev/null, captures stdout and stderr (each up to
// max_output bytes; the rest is read and dropped so the child never blocks),
// enforces the deadline (SIGTERM, then SIGKILL after a grace period, to the
// child's own process group; held back while RunOptions::interruptible says
// so, up to its hold_limit) and
// always reaps the child. It returns an error Status only when the child could
// not be started or ran past its deadline; a non-zero exit is reported in
// RunResult so callers can attach the tool's output to their own error.
// Thread safety: ProcessRunner implementations are safe to call from many
// threads at once.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace ckptd {

struct RunOptions {
  std::chrono::milliseconds deadline{std::chrono::seconds(30)};
  size_t max_output = 1 << 20;
  // Extra environment entries (NAME -> value) on top of the daemon's own.
  std::map<std::string, std::string> env;
  // When set, the child's stdin, stdout and stderr are these fds (the
  // caller's, left open) and nothing is captured: out and err stay empty.
  // For tools whose children outlive them and keep their stdio (runc restore
  // --detach hands its own to the restored container).
  std::optional<std::array<int, 3>> stdio;
  // Called on the calling thread with the child's pid (also its process
  // group) right after it started, before any wait.
  std::function<void(int pid)> on_started;
  // When set, asked (on the calling thread, every 10 to 100 ms) once the
  // deadline has passed, before the first signal: while it answers false
  // (the child is at a step a signal would make harmful to others, such as
  // a CRIU with its parasite in a tree), the signals wait, at most
  // `hold_limit` past the deadline. A child that ends meanwhile is reported
  // as it ended, not as past its deadline.
  std::function<bool()> interruptible;
  std::chrono::milliseconds hold_limit{0};
};

struct RunResult {
  int exit_code = -1;  // valid when signal == 0
  int signal = 0;      // the signal that ended the child, if any
  std::string out;     // captured stdout (truncated to max_output)
  std::string err;     // captured stderr (truncated to max_output)
  bool ok() const { return signal == 0 && exit_code == 0; }
  // "exit 3: <last lines of stderr or stdout>" for error messages.
  std::string Describe() const;
};

class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  virtual Result<RunResult> Run(const std::vector<std::string>& argv, const RunOptions& opts) = 0;
};

// fork/exec based runner used by the daemon.
class SystemProcessRunner final : public ProcessRunner {
 public:
  Result<RunResult> Run(const std::vector<std::string>& argv, const RunOptions& opts) override;
  static SystemProcessRunner* Default();
};

// The last `max_lines` non-empty lines of `text`, joined by "; ".
std::string TailLines(const std::string& text, size_t max_lines);

}  // namespace ckptd
