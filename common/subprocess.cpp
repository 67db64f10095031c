#include "common/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

extern char** environ;

namespace ckptd {

namespace {

using SteadyClock = std::chrono::steady_clock;

// Reads what is available on fd into out (bounded); returns false at EOF.
bool Drain(int fd, std::string* out, size_t max) {
  char buf[16384];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n > 0) {
    size_t room = out->size() < max ? max - out->size() : 0;
    out->append(buf, std::min<size_t>(room, static_cast<size_t>(n)));
    return true;
  }
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  return false;
}

}  // namespace

std::string RunResult::Describe() const {
  std::string why = signal ? fmt::format("killed by signal {}", signal) : fmt::format("exit {}", exit_code);
  std::string tail = TailLines(err.empty() ? out : err, 5);
  return tail.empty() ? why : why + ": " + tail;
}

std::string TailLines(const std::string& text, size_t max_lines) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(std::move(line));
    start = end + 1;
  }
  std::string joined;
  size_t first = lines.size() > max_lines ? lines.size() - max_lines : 0;
  for (size_t i = first; i < lines.size(); ++i) {
    if (!joined.empty()) joined += "; ";
    joined += lines[i];
  }
  return joined;
}

SystemProcessRunner* SystemProcessRunner::Default() {
  static SystemProcessRunner runner;
  return &runner;
}

Result<RunResult> SystemProcessRunner::Run(const std::vector<std::string>& argv, const RunOptions& opts) {
  if (argv.empty()) return InvalidArgument("empty command");
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return ErrnoError("pipe", errno);
  }

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The child starts with default signal dispositions and an empty mask, even
  // though the daemon blocks SIGTERM/SIGINT in its threads.
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  // Its own process group, so a deadline kill reaches grandchildren that
  // would otherwise keep the output pipes open.
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);

  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    if (!opts.env.count(name)) env_store.push_back(std::move(entry));
  }
  for (const auto& [k, v] : opts.env) env_store.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &fa, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return ErrnoError(fmt::format("cannot start {}", argv[0]), rc);
  }

  RunResult result;
  auto deadline = SteadyClock::now() + opts.deadline;
  bool out_open = true, err_open = true, timed_out = false;
  auto kill_deadline = SteadyClock::time_point::max();
  // Past the deadline: SIGTERM, then SIGKILL two seconds later.
  auto enforce_deadline = [&] {
    auto now = SteadyClock::now();
    if (!timed_out && now >= deadline) {
      timed_out = true;
      kill(-pid, SIGTERM);
      kill_deadline = now + std::chrono::seconds(2);
    }
    if (timed_out && now >= kill_deadline) {
      kill(-pid, SIGKILL);
      kill_deadline = SteadyClock::time_point::max();
    }
  };
  while (out_open || err_open) {
    enforce_deadline();
    pollfd fds[2];
    int nfds = 0;
    if (out_open) fds[nfds++] = {out_pipe[0], POLLIN, 0};
    if (err_open) fds[nfds++] = {err_pipe[0], POLLIN, 0};
    int n = poll(fds, nfds, 100);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < nfds && n > 0; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      bool is_out = fds[i].fd == out_pipe[0];
      if (!Drain(fds[i].fd, is_out ? &result.out : &result.err, opts.max_output)) {
        (is_out ? out_open : err_open) = false;
      }
    }
  }
  close(out_pipe[0]);
  close(err_pipe[0]);

  // Pipes closed: the child (or a grandchild holding them) is done writing.
  // Reap it, still honouring the deadline.
  int wstatus = 0;
  for (;;) {
    pid_t r = waitpid(pid, &wstatus, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return ErrnoError("waitpid", errno);
    enforce_deadline();
    usleep(10000);
  }
  if (WIFEXITED(wstatus)) result.exit_code = WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) result.signal = WTERMSIG(wstatus);
  if (timed_out) {
    return DeadlineExceeded(fmt::format("{} ran past its {} ms deadline{}", argv[0], opts.deadline.count(),
                                        result.err.empty() ? "" : ": " + TailLines(result.err, 3)));
  }
  return result;
}

}  // namespace ckptd
