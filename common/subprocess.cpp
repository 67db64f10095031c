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

namespace {

struct Child {
  pid_t pid = -1;
  int out = -1, err = -1;  // our read ends; -1 when stdio is the caller's
};

// Starts argv with its stdio from `opts` (captured through pipes unless
// opts.stdio), in its own process group, with default signal handling.
Result<Child> Spawn(const std::vector<std::string>& argv, const RunOptions& opts) {
  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  if (!opts.stdio) {
    if (pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
    if (pipe2(err_pipe, O_CLOEXEC) != 0) {
      close(out_pipe[0]);
      close(out_pipe[1]);
      return ErrnoError("pipe", errno);
    }
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (opts.stdio) {
    for (int i = 0; i < 3; ++i) posix_spawn_file_actions_adddup2(&fa, (*opts.stdio)[i], i);
  } else {
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  }
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

  Child child{-1, out_pipe[0], err_pipe[0]};
  int rc = posix_spawnp(&child.pid, args[0], &fa, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  for (int fd : {out_pipe[1], err_pipe[1]})
    if (fd >= 0) close(fd);
  if (rc == 0) return child;
  for (int fd : {child.out, child.err})
    if (fd >= 0) close(fd);
  return ErrnoError(fmt::format("cannot start {}", argv[0]), rc);
}

// Past the deadline (and once `interruptible` allows, or the hold limit
// passed): SIGTERM to the child's group, SIGKILL two seconds later.
class DeadlineKiller {
 public:
  DeadlineKiller(pid_t pid, const RunOptions& o)
      : pid_(pid),
        deadline_(SteadyClock::now() + o.deadline),
        hold_until_(deadline_ + o.hold_limit),
        interruptible_(o.interruptible) {}
  void Check() {
    auto now = SteadyClock::now();
    if (!timed_out_ && now >= deadline_) {
      if (interruptible_ && now < hold_until_ && !interruptible_()) return;
      timed_out_ = true;
      kill(-pid_, SIGTERM);
      kill_at_ = now + std::chrono::seconds(2);
    }
    if (timed_out_ && now >= kill_at_) {
      kill(-pid_, SIGKILL);
      kill_at_ = SteadyClock::time_point::max();
    }
  }
  bool timed_out() const { return timed_out_; }

 private:
  pid_t pid_;
  SteadyClock::time_point deadline_;
  SteadyClock::time_point hold_until_;
  const std::function<bool()>& interruptible_;
  SteadyClock::time_point kill_at_ = SteadyClock::time_point::max();
  bool timed_out_ = false;
};

// Reads both pipes until EOF (the child, or a grandchild holding them, is
// done writing), then closes them.
void Capture(Child& c, size_t max_output, DeadlineKiller& killer, RunResult* result) {
  bool out_open = c.out >= 0, err_open = c.err >= 0;
  while (out_open || err_open) {
    killer.Check();
    pollfd fds[2];
    int nfds = 0;
    if (out_open) fds[nfds++] = {c.out, POLLIN, 0};
    if (err_open) fds[nfds++] = {c.err, POLLIN, 0};
    int n = poll(fds, nfds, 100);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < nfds && n > 0; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      bool is_out = fds[i].fd == c.out;
      if (!Drain(fds[i].fd, is_out ? &result->out : &result->err, max_output)) (is_out ? out_open : err_open) = false;
    }
  }
  for (int fd : {c.out, c.err})
    if (fd >= 0) close(fd);
}

}  // namespace

Result<RunResult> SystemProcessRunner::Run(const std::vector<std::string>& argv, const RunOptions& opts) {
  if (argv.empty()) return InvalidArgument("empty command");
  CKPTD_ASSIGN_OR_RETURN(Child child, Spawn(argv, opts));
  if (opts.on_started) opts.on_started(child.pid);
  RunResult result;
  DeadlineKiller killer(child.pid, opts);
  Capture(child, opts.max_output, killer, &result);
  // Reap the child, still honouring the deadline.
  int wstatus = 0;
  for (;;) {
    pid_t r = waitpid(child.pid, &wstatus, WNOHANG);
    if (r == child.pid) break;
    if (r < 0 && errno != EINTR) return ErrnoError("waitpid", errno);
    killer.Check();
    usleep(10000);
  }
  if (WIFEXITED(wstatus)) result.exit_code = WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) result.signal = WTERMSIG(wstatus);
  if (killer.timed_out()) {
    return DeadlineExceeded(fmt::format("{} ran past its {} ms deadline{}", argv[0], opts.deadline.count(),
                                        result.err.empty() ? "" : ": " + TailLines(result.err, 3)));
  }
  return result;
}

}  // namespace ckptd
