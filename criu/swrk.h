// One `criu swrk` conversation: spawn CRIU with one end of a SOCK_SEQPACKET
// socketpair, send one request, answer every notification, read the final
// response, close, reap. Internal to criu/; the public API is criu_driver.h.
//
// Contract:
// - RunSwrk() always reaps the child it started, whatever happens.
// - A watchdog thread enforces `deadline`: SIGALRM to CRIU (its own
//   interrupt: a dump fails at the system call in progress and undoes its
//   work), then SIGKILL to CRIU's process group (CRIU runs in its own
//   session) after `kill_grace`; inside the unsafe window (SwrkConfig) it
//   first waits for the window to end. Once the deadline has passed, every
//   notification is answered "stop" (the callback still runs). A
//   response CRIU still sends is kept: it may be a success (the interrupt
//   came after the last step that could fail).
// - CRIU gets SIGKILL as its parent-death signal: it dies with the thread
//   that runs RunSwrk (in practice, with the daemon), so a CRIU the daemon
//   stopped for backpressure, or one waiting for an answer, never holds a
//   tree after the daemon is gone; the kernel then detaches the tree.
//   The child is never signalled after it has been reaped (no pid reuse race).
// - It returns an error Status only when CRIU could not be started
//   (kUnavailable, or socketpair failing); everything else, including socket
//   errors (protocol_error), is in SwrkOutcome for the caller to judge.
// - The notify callback runs on the calling thread; its first error is kept
//   and answered with notify_success=false (later notifications are answered
//   with false too, so CRIU winds down).
// Thread safety: RunSwrk is reentrant; concurrent calls spawn separate CRIUs.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/status.h"
#include "criu/options.h"
#include "criu/rpc.pb.h"

namespace ckptd::criu {

// The fd number CRIU gets SwrkConfig::page_server_fd on.
inline constexpr int kCriuPageServerFd = 4;
// The first fd number of SwrkConfig::inherited_fds in CRIU (at most
// kMaxInheritedFds, options.h).
inline constexpr int kCriuFirstInheritedFd = kCriuPageServerFd + 1;

struct SwrkConfig {
  std::string criu_path;
  // Exported to CRIU as CRIU_LIBS_DIR: the only directory it loads plugins
  // from. Must be set (an empty directory disables plugins).
  std::string plugin_dir;
  // CRIU's stdout/stderr go here (errors it prints before its log is open);
  // empty: /dev/null.
  std::filesystem::path stderr_path;
  std::chrono::milliseconds kill_grace{std::chrono::seconds(2)};
  // CRIU is never signalled from the answer to the `unsafe_from`
  // notification until the `unsafe_until` one arrives: in a dump, its
  // parasite may be in the target then. A deadline passing inside waits
  // for `unsafe_until`, answered "stop" so that CRIU winds down itself
  // (signalled only if it has not gone `kill_grace` later), or signals
  // anyway `unsafe_grace` after the deadline. Empty: no such window.
  std::string unsafe_from;
  std::string unsafe_until;
  std::chrono::milliseconds unsafe_grace{std::chrono::seconds(60)};
  // A socket CRIU gets as fd kCriuPageServerFd (criu_opts.ps.fd: the dump
  // sends its pages there, criu/page_server.h); -1: none.
  int page_server_fd = -1;
  // Fds of the caller CRIU inherits, as kCriuFirstInheritedFd, +1, ... in
  // this order (a restore's inherit_fd entries name those numbers).
  std::vector<int> inherited_fds;
  // Called with CRIU's pid once it is spawned (before the request is sent).
  std::function<void(pid_t)> on_spawned;
  // Called by the watchdog when the deadline passed, just before it
  // signals CRIU (from the watchdog's thread).
  std::function<void()> before_kill;
};

struct SwrkOutcome {
  std::optional<rpc::criu_resp> response;  // the final (non-NOTIFY) answer
  std::vector<std::string> notifications;  // scripts notified, in order
  Status callback_status;                  // first error of the callback
  std::string callback_script;             // the script it failed on
  bool deadline_passed = false;            // the watchdog signalled CRIU
  int wait_status = 0;                     // from waitpid
  int criu_pid = 0;
  std::string protocol_error;  // malformed or unexpected message
  // Fds CRIU sent with a notification (the orphan-pts-master's pty
  // master), by script name.
  std::vector<std::pair<std::string, UniqueFd>> received_fds;
};

Result<SwrkOutcome> RunSwrk(const SwrkConfig& config, const rpc::criu_req& request,
                            std::chrono::steady_clock::time_point deadline, const NotifyCallback& notify);

// "exit 1", "signal 9" for messages.
std::string DescribeWaitStatus(int wait_status);

}  // namespace ckptd::criu
