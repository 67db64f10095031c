#include "criu/swrk.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/fd.h"

extern char** environ;

namespace ckptd::criu {

namespace {

using Clock = std::chrono::steady_clock;

// The fd number CRIU gets its end of the socketpair on.
constexpr int kCriuSocketFd = 3;
// CRIU's messages are small (options, versions); anything bigger is a bug.
constexpr size_t kMaxMessage = 1 << 20;

// Environment for CRIU: ours, minus variables that would let CRIU pick up
// plugins or configuration the daemon does not control.
std::vector<std::string> CriuEnvironment(const std::string& plugin_dir) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view entry(*e);
    if (entry.starts_with("CRIU_LIBS_DIR=") || entry.starts_with("CRIU_CONFIG_FILE=")) continue;
    env.emplace_back(entry);
  }
  env.push_back("CRIU_LIBS_DIR=" + plugin_dir);
  return env;
}

// Interrupts CRIU at the deadline, then kills it after the grace, unless
// told the child is gone. Inside the unsafe window (SwrkConfig) the
// deadline waits for the window to close, at most `unsafe_grace`. `exited`
// is set by the reaping thread between "the child has exited" (still a
// zombie, so its pid cannot be reused) and the actual reap, so a signal
// never hits a stranger.
class Watchdog {
 public:
  Watchdog(pid_t pid, Clock::time_point deadline, const SwrkConfig& config)
      : pid_(pid),
        deadline_(deadline),
        grace_(config.kill_grace),
        unsafe_grace_(config.unsafe_grace),
        before_kill_(config.before_kill),
        thread_([this] { Run(); }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  // Called once the child is a zombie; after this the watchdog never signals.
  void MarkExited() {
    std::lock_guard lock(mu_);
    exited_ = true;
  }
  bool fired() {
    std::lock_guard lock(mu_);
    return fired_;
  }
  // Opens the unsafe window; false (and nothing opened) once the deadline
  // has passed: CRIU must then be told to stop, not let in.
  bool EnterUnsafe() {
    std::lock_guard lock(mu_);
    if (fired_) return false;
    unsafe_ = true;
    return true;
  }
  void LeaveUnsafe() {
    {
      std::lock_guard lock(mu_);
      unsafe_ = false;
    }
    cv_.notify_all();
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    auto gone = [this] { return done_ || exited_; };
    if (cv_.wait_until(lock, deadline_, gone)) return;
    fired_ = true;  // every notification from now on is answered "stop"
    if (unsafe_) {
      spdlog::warn("criu swrk pid {}: deadline passed while CRIU may be inside the target; stopping it when it is out",
                   pid_);
      if (!cv_.wait_until(lock, deadline_ + unsafe_grace_, [&] { return gone() || !unsafe_; })) {
        spdlog::error("criu swrk pid {}: still inside the target {} ms after the deadline; interrupting anyway", pid_,
                      unsafe_grace_.count());
      } else if (gone() || cv_.wait_for(lock, grace_, gone)) {
        return;  // told to stop at the window's end, CRIU wound down
      }
    }
    if (before_kill_) before_kill_();
    // SIGALRM is CRIU's own timeout signal: its handler (cr-dump.c, dump
    // and pre-dump) makes the system call in progress fail with EINTR, and
    // CRIU undoes what it did as after any error, then answers. Where CRIU
    // has no handler (restore, probes, before its dump began), SIGALRM ends
    // it at once.
    spdlog::warn("criu swrk pid {}: deadline passed, sending SIGALRM (CRIU's interrupt)", pid_);
    kill(pid_, SIGALRM);
    if (cv_.wait_for(lock, grace_, gone)) return;
    spdlog::warn("criu swrk pid {}: still running after SIGALRM, sending SIGKILL", pid_);
    // CRIU is a session (and group) leader: take its helpers with it.
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
  }

  const pid_t pid_;
  const Clock::time_point deadline_;
  const std::chrono::milliseconds grace_;
  const std::chrono::milliseconds unsafe_grace_;
  const std::function<void()> before_kill_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  bool exited_ = false;
  bool fired_ = false;
  bool unsafe_ = false;
  std::thread thread_;
};

Status SendMessage(int fd, const rpc::criu_req& req) {
  std::string wire;
  if (!req.SerializeToString(&wire)) return Internal("cannot serialize criu_req");
  for (;;) {
    ssize_t n = send(fd, wire.data(), wire.size(), MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(wire.size())) return Status::Ok();
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("send to criu", errno);
    return IOError("short send to criu");
  }
}

enum class RecvState { kMessage, kClosed, kTimeout };

// Waits up to `wait` for one packet; SEQPACKET keeps message boundaries, so
// one recv is one protobuf message (size learnt with MSG_PEEK|MSG_TRUNC).
// An fd sent with it lands in *passed_fd (-1 when none).
Result<RecvState> RecvMessage(int fd, std::chrono::milliseconds wait, std::string* out, int* passed_fd) {
  *passed_fd = -1;
  pollfd p{fd, POLLIN, 0};
  int r = poll(&p, 1, static_cast<int>(wait.count()));
  if (r < 0 && errno == EINTR) return RecvState::kTimeout;
  if (r < 0) return ErrnoError("poll criu socket", errno);
  if (r == 0) return RecvState::kTimeout;
  ssize_t size = recv(fd, nullptr, 0, MSG_PEEK | MSG_TRUNC);
  if (size < 0 && errno == EINTR) return RecvState::kTimeout;
  if (size < 0 && errno == ECONNRESET) return RecvState::kClosed;
  if (size < 0) return ErrnoError("recv from criu", errno);
  if (size == 0) {
    // Either EOF or an empty packet; a real recv tells them apart.
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    if (n <= 0) return RecvState::kClosed;
    return Internal("empty message from criu");
  }
  if (static_cast<size_t>(size) > kMaxMessage) return Internal(fmt::format("criu message of {} bytes", size));
  out->resize(static_cast<size_t>(size));
  ssize_t n = RecvWithFd(fd, out, passed_fd);
  if (n < 0) return ErrnoError("recv from criu", errno);
  return RecvState::kMessage;
}

static_assert(kCriuPageServerFd == kCriuSocketFd + 1);

// The child's side of SpawnCriu, between fork and exec: async-signal-safe
// calls only (no allocation: everything was prepared by the parent).
[[noreturn]] void ExecCriu(const char* path, char* const* argv, char* const* envp, int null_fd, int err_fd,
                           int criu_end, int ps_fd, const int* inherited, size_t n_inherited, pid_t parent) {
  // Default dispositions, nothing blocked: CRIU starts as from a shell.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // Own session: terminal signals aimed at the daemon do not reach CRIU,
  // and the watchdog can kill CRIU's helpers as a group.
  setsid();
  // CRIU never outlives the daemon (here: the thread that waits for it)
  // while it may hold a tree frozen; a stopped CRIU is killed too.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);  // the daemon died before the prctl
  // Move every fd above the numbers they go to, then into place.
  int in = fcntl(null_fd, F_DUPFD, 16), err = fcntl(err_fd, F_DUPFD, 16);
  int sock = fcntl(criu_end, F_DUPFD, 16);
  int ps = ps_fd >= 0 ? fcntl(ps_fd, F_DUPFD, 16) : -1;
  int moved[kMaxInheritedFds];
  const int above = kCriuFirstInheritedFd + static_cast<int>(kMaxInheritedFds);
  for (size_t i = 0; i < n_inherited; ++i)
    if ((moved[i] = fcntl(inherited[i], F_DUPFD, above)) < 0) _exit(127);
  if (in < 0 || err < 0 || dup2(in, 0) < 0 || dup2(err, 1) < 0 || dup2(err, 2) < 0 || sock < 0 ||
      dup2(sock, kCriuSocketFd) < 0 || (ps_fd >= 0 && (ps < 0 || dup2(ps, kCriuPageServerFd) < 0)))
    _exit(127);
  for (size_t i = 0; i < n_inherited; ++i)
    if (dup2(moved[i], kCriuFirstInheritedFd + static_cast<int>(i)) < 0) _exit(127);
  // Below the inherited fds, the page-server slot is empty without one.
  if (ps_fd < 0 && n_inherited > 0) close(kCriuPageServerFd);
  // Nothing else of the daemon's leaks into CRIU (and from it into restored
  // trees): listening sockets, RocksDB files, other jobs' image fds.
  int first_closed = n_inherited > 0 ? kCriuFirstInheritedFd + static_cast<int>(n_inherited)
                     : ps_fd >= 0    ? kCriuPageServerFd + 1
                                     : kCriuSocketFd + 1;
  syscall(SYS_close_range, first_closed, ~0U, 0);
  execve(path, argv, envp);
  _exit(127);
}

Result<pid_t> SpawnCriu(const SwrkConfig& config, int criu_end) {
  if (access(config.criu_path.c_str(), X_OK) != 0) {
    int err = errno;
    return Unavailable(fmt::format("criu binary {}: {}", config.criu_path, std::strerror(err)));
  }
  std::string err_path = config.stderr_path.empty() ? "/dev/null" : config.stderr_path.string();
  UniqueFd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  UniqueFd err_fd(::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (null_fd.get() < 0 || err_fd.get() < 0) return ErrnoError("open criu's stdio (" + err_path + ")", errno);
  if (config.inherited_fds.size() > kMaxInheritedFds)
    return InvalidArgument(fmt::format("{} fds for criu to inherit; at most {}", config.inherited_fds.size(),
                                       kMaxInheritedFds));

  std::vector<std::string> env = CriuEnvironment(config.plugin_dir);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string fd_arg = std::to_string(kCriuSocketFd);
  std::vector<char*> argv = {const_cast<char*>(config.criu_path.c_str()), const_cast<char*>("swrk"), fd_arg.data(),
                             nullptr};
  const pid_t parent = getpid();
  // No handler of the daemon may run in the child between fork and exec.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = fork();
  if (pid == 0)
    ExecCriu(config.criu_path.c_str(), argv.data(), envp.data(), null_fd.get(), err_fd.get(), criu_end, config.page_server_fd,
             config.inherited_fds.data(), config.inherited_fds.size(), parent);
  int err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return Unavailable(fmt::format("cannot start {} swrk: {}", config.criu_path, std::strerror(err)));
  return pid;
}

// Answers a notification; an error of the callback (or an earlier one), or
// a deadline passed, makes the answer negative so that CRIU aborts. Keeps
// the watchdog's unsafe window in step with CRIU's phase.
Status AnswerNotify(int fd, const rpc::criu_resp& resp, const NotifyCallback& notify, const SwrkConfig& config,
                    Watchdog* watchdog, SwrkOutcome* out) {
  std::string script = resp.has_notify() ? resp.notify().script() : std::string();
  int pid = resp.has_notify() ? resp.notify().pid() : 0;
  out->notifications.push_back(script);
  // CRIU waits for this answer: out of the target until it has it.
  if (!config.unsafe_until.empty() && script == config.unsafe_until) watchdog->LeaveUnsafe();
  // The callback runs also after the deadline: what it records (a
  // restore's root, a dump's written images) is true all the same.
  if (out->callback_status.ok() && notify) {
    Status st = notify(script, pid);
    if (!st.ok()) {
      out->callback_status = st;
      out->callback_script = script;
    }
  }
  bool go_on = out->callback_status.ok() && !watchdog->fired();
  if (go_on && !config.unsafe_from.empty() && script == config.unsafe_from) go_on = watchdog->EnterUnsafe();
  rpc::criu_req answer;
  answer.set_type(rpc::NOTIFY);
  answer.set_notify_success(go_on);
  return SendMessage(fd, answer);
}

}  // namespace

std::string DescribeWaitStatus(int st) {
  if (WIFEXITED(st)) return fmt::format("exit {}", WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return fmt::format("signal {}", WTERMSIG(st));
  return fmt::format("wait status {:#x}", st);
}

Result<SwrkOutcome> RunSwrk(const SwrkConfig& config, const rpc::criu_req& request, Clock::time_point deadline,
                            const NotifyCallback& notify) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return ErrnoError("socketpair", errno);
  auto spawned = SpawnCriu(config, sv[1]);
  close(sv[1]);
  if (!spawned.ok()) {
    close(sv[0]);
    return spawned.status();
  }
  const int fd = sv[0];
  SwrkOutcome out;
  out.criu_pid = *spawned;
  if (config.on_spawned) config.on_spawned(out.criu_pid);
  Status local_error;
  {
    Watchdog watchdog(out.criu_pid, deadline, config);
    local_error = SendMessage(fd, request);
    // A killed CRIU closes the socket; but helpers it forked may keep their
    // copy, so stop waiting for messages once the kill grace has passed too.
    const auto unsafe_grace = config.unsafe_from.empty() ? std::chrono::milliseconds(0) : config.unsafe_grace;
    const auto give_up = deadline + unsafe_grace + 2 * config.kill_grace + std::chrono::seconds(1);
    std::string wire;
    while (local_error.ok() && !out.response) {
      if (Clock::now() >= give_up) break;
      int passed_fd = -1;
      auto got = RecvMessage(fd, std::chrono::milliseconds(200), &wire, &passed_fd);
      if (!got.ok()) {
        local_error = got.status();
        break;
      }
      if (*got == RecvState::kTimeout) continue;
      if (*got == RecvState::kClosed) break;
      rpc::criu_resp resp;
      const bool parsed = resp.ParseFromString(wire);
      UniqueFd passed(passed_fd);
      if (passed.get() >= 0 && parsed && resp.type() == rpc::NOTIFY && resp.has_notify())
        out.received_fds.emplace_back(resp.notify().script(), std::move(passed));
      if (!parsed) {
        out.protocol_error = "unparsable criu_resp";
        break;
      }
      if (resp.type() == rpc::NOTIFY) {
        Status st = AnswerNotify(fd, resp, notify, config, &watchdog, &out);
        if (!st.ok()) {
          // CRIU went away while we were in the callback (likely killed at
          // the deadline); the wait below tells.
          spdlog::debug("criu notify answer: {}", st.ToString());
          break;
        }
        continue;
      }
      out.response = std::move(resp);
    }
    // Closing our end ends CRIU's service loop (a pre-dump waits for a next
    // request otherwise) and unblocks it if it is writing to us.
    close(fd);
    siginfo_t info{};
    while (waitid(P_PID, out.criu_pid, &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
    }
    watchdog.MarkExited();
    out.deadline_passed = watchdog.fired();
  }
  while (waitpid(out.criu_pid, &out.wait_status, 0) < 0 && errno == EINTR) {
  }
  // Local socket trouble almost always means CRIU died early; the caller
  // reports it together with CRIU's exit status, stderr and log.
  if (!local_error.ok() && out.protocol_error.empty()) out.protocol_error = local_error.message();
  return out;
}

}  // namespace ckptd::criu
