// ckptd_workload: a small program with modes, checkpointed and restored by
// the CRIU tests and the daemon's integration tests.
//
//   ckptd_workload MODE --out FILE [options]
//     counter                 count every ~20 ms
//     files                   two threads share a pipe; the reader appends
//                             each record to FILE.data (one long-held fd) and
//                             checks the data file's size matches its count
//     tcp --port P            talk to a loopback TCP echo peer: send a
//                             sequence number, expect it back
//     fork --children N       N children count too, each into FILE.<i>
//                             (i = 0..N-1); the parent counts into FILE
//     memory --mib M          fill M MiB (first half a repeating pattern,
//                             second half pseudo-random) and re-verify it
//     ghost --mib M           hold FILE.ghost (M MiB of a pattern) open after
//                             unlinking it, and re-read and verify it
//   common options:
//     --gpu-lib PATH          dlopen PATH at start and keep it mapped
//     --log FILE              stdout/stderr go there (default /dev/null)
//     --interval-ms N         tick (default 20)
//     --hold PATH             open PATH read-write at start and keep it open
//                             (a terminal becomes the session's: the
//                             workload leads it); counter writes a byte to
//                             it every tick (a failed write is "bad")
//     --listen-port P         listen on 127.0.0.1:P at start and never accept:
//                             connections made to it wait in its queue
//     --ramfs DIR             enter a mount namespace of its own (private
//                             propagation) and mount a ramfs on DIR there
//     --bind SRC:DST          the same, with a bind mount of SRC on DST
//                             (before --out is opened: it may lie in DST);
//                             with either, it runs itself again once the
//                             mounts are made
//
// Progress file format: FILE always holds exactly one 25-byte line,
//   "%020llu ok \n"  or  "%020llu bad\n",
// rewritten in place (pwrite at offset 0, same length) on every tick through
// an fd kept open for the whole run, so a reader never sees a torn length and
// the fd's position/identity are part of what CRIU must restore. The number
// is the mode's progress counter (ticks, echoes verified, records verified,
// verification rounds); it only grows. Once "bad", it stays bad, and the
// reason goes to the --log file. Exit status: 2 for usage/setup errors.
//
// Detaching (so CRIU can dump it without shell_job): at start the workload
// calls setsid() (it must not be a process-group leader: start it with
// fork+exec, never as the leader of a job), closes every inherited fd above
// 2, and points stdin at /dev/null and stdout/stderr at --log or /dev/null.
// Tests start it with fork()+execv() and keep it as a direct child, so they
// can reap it before restoring to the same PID. SIGTERM/SIGKILL end it.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Args {
  std::string mode;
  std::string out;
  std::string log;
  std::string gpu_lib;
  std::string hold;
  int listen_port = 0;
  std::string ramfs;
  std::string bind;
  int port = 0;
  int children = 2;
  int mib = 16;
  int interval_ms = 20;
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr, "ckptd_workload: %s\nusage: ckptd_workload counter|files|tcp|fork|memory|ghost --out FILE "
                       "[--port P] [--children N] [--mib M] [--gpu-lib PATH] [--log FILE] [--interval-ms N] "
                       "[--hold PATH] [--listen-port P] [--ramfs DIR] [--bind SRC:DST]\n",
               why);
  std::exit(2);
}

Args Parse(int argc, char** argv) {
  if (argc < 2) Usage("no mode");
  Args a;
  a.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) Usage(("missing value for " + k).c_str());
    std::string v = argv[++i];
    if (k == "--out") a.out = v;
    else if (k == "--log") a.log = v;
    else if (k == "--gpu-lib") a.gpu_lib = v;
    else if (k == "--hold") a.hold = v;
    else if (k == "--listen-port") a.listen_port = std::atoi(v.c_str());
    else if (k == "--ramfs") a.ramfs = v;
    else if (k == "--bind") a.bind = v;
    else if (k == "--port") a.port = std::atoi(v.c_str());
    else if (k == "--children") a.children = std::atoi(v.c_str());
    else if (k == "--mib") a.mib = std::atoi(v.c_str());
    else if (k == "--interval-ms") a.interval_ms = std::atoi(v.c_str());
    else Usage(("unknown option " + k).c_str());
  }
  if (a.out.empty()) Usage("--out is required");
  if (a.interval_ms <= 0) Usage("bad --interval-ms");
  return a;
}

void Detach(const Args& a) {
  // New session: no controlling terminal, own process group, so CRIU needs
  // no shell_job. Fails only for a group leader, which tests never start.
  if (setsid() < 0) std::fprintf(stderr, "ckptd_workload: setsid: %s\n", std::strerror(errno));
  // Nothing inherited beyond stdio (test-runner pipes, sockets...).
  for (int fd = 3; fd < 1024; ++fd) close(fd);
  int in = open("/dev/null", O_RDONLY);
  int out = a.log.empty() ? open("/dev/null", O_WRONLY) : open(a.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (in < 0 || out < 0) std::exit(2);
  dup2(in, 0);
  dup2(out, 1);
  dup2(out, 2);
  if (in > 2) close(in);
  if (out > 2) close(out);
  setvbuf(stdout, nullptr, _IOLBF, 0);
}

void SleepMs(int ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// The one-line progress file (see the header comment).
class Progress {
 public:
  explicit Progress(const std::string& path) {
    fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      std::fprintf(stderr, "open %s: %s\n", path.c_str(), std::strerror(errno));
      std::exit(2);
    }
  }
  void Report(uint64_t n) { Write(n); }
  void Bad(uint64_t n, const std::string& why) {
    if (!bad_) std::fprintf(stderr, "bad at %" PRIu64 ": %s\n", n, why.c_str());
    bad_ = true;
    Write(n);
  }
  bool bad() const { return bad_; }

 private:
  void Write(uint64_t n) {
    char line[32];
    int len = std::snprintf(line, sizeof line, "%020" PRIu64 " %s\n", n, bad_ ? "bad" : "ok ");
    if (pwrite(fd_, line, static_cast<size_t>(len), 0) != len) {
      std::fprintf(stderr, "write progress: %s\n", std::strerror(errno));
    }
  }
  int fd_ = -1;
  bool bad_ = false;
};

// --ramfs and --bind: a mount namespace of its own with those mounts.
bool OwnMounts(const Args& a) {
  if (a.ramfs.empty() && a.bind.empty()) return true;
  if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    std::fprintf(stderr, "mount namespace: %s\n", std::strerror(errno));
    return false;
  }
  if (!a.ramfs.empty() && mount("ckptd-test", a.ramfs.c_str(), "ramfs", 0, nullptr) != 0) {
    std::fprintf(stderr, "ramfs on %s: %s\n", a.ramfs.c_str(), std::strerror(errno));
    return false;
  }
  if (a.bind.empty()) return true;
  const size_t colon = a.bind.find(':');
  const std::string src = a.bind.substr(0, colon), dst = colon == std::string::npos ? "" : a.bind.substr(colon + 1);
  if (dst.empty() || mount(src.c_str(), dst.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    std::fprintf(stderr, "bind %s: %s\n", a.bind.c_str(), std::strerror(errno));
    return false;
  }
  return true;
}

int g_held = -1;  // --hold's fd

[[noreturn]] void Counter(const Args& a, const std::string& out) {
  Progress p(out);
  for (uint64_t n = 1;; ++n) {
    if (g_held >= 0 && write(g_held, "x", 1) != 1)
      p.Bad(n, std::string("write to the held file: ") + std::strerror(errno));
    else
      p.Report(n);
    SleepMs(a.interval_ms);
  }
}

// A writer thread pushes fixed-size records through a pipe; the reader checks
// their sequence and appends them to a data file held open all along.
[[noreturn]] void Files(const Args& a) {
  Progress p(a.out);
  int pipefd[2];
  if (pipe(pipefd) != 0) std::exit(2);
  std::string data_path = a.out + ".data";
  int data = open(data_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
  if (data < 0) std::exit(2);
  std::thread writer([&] {
    for (uint64_t seq = 1;; ++seq) {
      uint64_t rec[2] = {seq, seq ^ 0x5a5a5a5a5a5a5a5aULL};
      if (write(pipefd[1], rec, sizeof rec) != sizeof rec) {
        std::fprintf(stderr, "pipe write: %s\n", std::strerror(errno));
        SleepMs(a.interval_ms);
      }
      SleepMs(a.interval_ms);
    }
  });
  writer.detach();
  uint64_t expect = 1;
  for (;;) {
    uint64_t rec[2];
    size_t got = 0;
    while (got < sizeof rec) {
      ssize_t n = read(pipefd[0], reinterpret_cast<char*>(rec) + got, sizeof rec - got);
      if (n > 0) got += static_cast<size_t>(n);
      else if (n < 0 && errno == EINTR) continue;
      else {
        p.Bad(expect - 1, "pipe read failed");
        SleepMs(a.interval_ms);
      }
    }
    if (rec[0] != expect || rec[1] != (expect ^ 0x5a5a5a5a5a5a5a5aULL)) {
      p.Bad(expect - 1, "pipe record out of sequence: got " + std::to_string(rec[0]) + " want " + std::to_string(expect));
      continue;
    }
    if (write(data, rec, sizeof rec) != sizeof rec) p.Bad(expect - 1, "data write failed");
    struct stat st{};
    if (fstat(data, &st) != 0 || static_cast<uint64_t>(st.st_size) != expect * sizeof rec) {
      p.Bad(expect - 1, "data file size " + std::to_string(st.st_size) + " != " + std::to_string(expect * sizeof rec));
    }
    p.Report(expect);
    ++expect;
  }
}

bool SendAll(int fd, const void* buf, size_t len) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool RecvAll(int fd, void* buf, size_t len) {
  char* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = recv(fd, p, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

[[noreturn]] void Tcp(const Args& a) {
  if (a.port <= 0) Usage("tcp needs --port");
  Progress p(a.out);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(a.port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "connect 127.0.0.1:%d: %s\n", a.port, std::strerror(errno));
    std::exit(2);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  for (uint64_t seq = 1;; ++seq) {
    uint64_t echo = 0;
    if (!SendAll(fd, &seq, sizeof seq) || !RecvAll(fd, &echo, sizeof echo)) {
      p.Bad(seq - 1, std::string("connection lost: ") + std::strerror(errno));
      for (;;) SleepMs(1000);
    }
    if (echo != seq) p.Bad(seq - 1, "echo " + std::to_string(echo) + " != " + std::to_string(seq));
    else p.Report(seq);
    SleepMs(a.interval_ms);
  }
}

// An open file with no name left: CRIU dumps its contents ("ghost file")
// when they fit ghost_limit, and refuses the dump otherwise.
[[noreturn]] void Ghost(const Args& a) {
  if (a.mib <= 0) Usage("ghost needs --mib M > 0");
  Progress p(a.out);
  const std::string path = a.out + ".ghost";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) std::exit(2);
  std::vector<uint64_t> block(1 << 17);  // 1 MiB
  for (int m = 0; m < a.mib; ++m) {
    for (size_t i = 0; i < block.size(); ++i) block[i] = (static_cast<uint64_t>(m) << 32) | i;
    if (pwrite(fd, block.data(), 1 << 20, static_cast<off_t>(m) << 20) != 1 << 20) std::exit(2);
  }
  if (unlink(path.c_str()) != 0) std::exit(2);
  for (uint64_t n = 1;; ++n) {
    bool same = true;
    for (int m = 0; m < a.mib && same; ++m) {
      same = pread(fd, block.data(), 1 << 20, static_cast<off_t>(m) << 20) == 1 << 20;
      for (size_t i = 0; i < block.size() && same; ++i) same = block[i] == ((static_cast<uint64_t>(m) << 32) | i);
    }
    if (same)
      p.Report(n);
    else
      p.Bad(n - 1, "the unlinked file's contents changed");
    SleepMs(a.interval_ms);
  }
}

[[noreturn]] void Fork(const Args& a) {
  if (a.children <= 0) Usage("fork needs --children N > 0");
  for (int i = 0; i < a.children; ++i) {
    pid_t pid = fork();
    if (pid < 0) std::exit(2);
    if (pid == 0) Counter(a, a.out + "." + std::to_string(i));
  }
  Progress p(a.out);
  for (uint64_t n = 1;; ++n) {
    int st;
    pid_t dead = waitpid(-1, &st, WNOHANG);
    if (dead > 0) p.Bad(n, "child " + std::to_string(dead) + " ended");
    p.Report(n);
    SleepMs(a.interval_ms);
  }
}

// Deterministic content: the first half repeats a short per-page pattern
// (compresses well), the second half is xorshift output keyed by offset.
uint64_t Expected(uint64_t word_index, uint64_t half_words) {
  if (word_index < half_words) return 0x0101010101010101ULL * ((word_index / 512) % 251);
  uint64_t x = word_index * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

[[noreturn]] void Memory(const Args& a) {
  if (a.mib <= 0) Usage("memory needs --mib M > 0");
  Progress p(a.out);
  const uint64_t words = static_cast<uint64_t>(a.mib) * (1 << 20) / sizeof(uint64_t);
  std::vector<uint64_t> mem(words);
  for (uint64_t i = 0; i < words; ++i) mem[i] = Expected(i, words / 2);
  for (uint64_t round = 1;; ++round) {
    for (uint64_t i = 0; i < words; ++i) {
      if (mem[i] != Expected(i, words / 2)) {
        p.Bad(round - 1, "memory differs at byte offset " + std::to_string(i * 8));
        break;
      }
    }
    if (!p.bad()) p.Report(round);
    SleepMs(std::max(a.interval_ms, 100));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args a = Parse(argc, argv);
  if ((!a.ramfs.empty() || !a.bind.empty()) && !getenv("CKPTD_WORKLOAD_OWN_MOUNTS")) {
    // Mounts first, then run again from within them: a program mapped from
    // the old namespace's mounts is one CRIU cannot dump.
    // By its path, looked up in the new namespace (/proc/self/exe would
    // lead back to the old mount).
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || !OwnMounts(a) || setenv("CKPTD_WORKLOAD_OWN_MOUNTS", "1", 1) != 0) return 2;
    self[n] = '\0';
    execv(self, argv);
    std::fprintf(stderr, "re-exec: %s\n", std::strerror(errno));
    return 2;
  }
  Detach(a);
  if (!a.gpu_lib.empty()) {
    // Kept mapped for the life of the process: GPU discovery looks for it in
    // /proc/<pid>/maps.
    void* h = dlopen(a.gpu_lib.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
      std::fprintf(stderr, "dlopen %s: %s\n", a.gpu_lib.c_str(), dlerror());
      return 2;
    }
  }
  if (!a.hold.empty() && (g_held = open(a.hold.c_str(), O_RDWR | O_CLOEXEC)) < 0) {
    std::fprintf(stderr, "open %s: %s\n", a.hold.c_str(), std::strerror(errno));
    return 2;
  }
  if (a.listen_port > 0) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(a.listen_port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(s, 8) != 0) {
      std::fprintf(stderr, "listen on port %d: %s\n", a.listen_port, std::strerror(errno));
      return 2;
    }
  }
  std::printf("ckptd_workload %s pid %d\n", a.mode.c_str(), static_cast<int>(getpid()));
  if (a.mode == "counter") Counter(a, a.out);
  if (a.mode == "files") Files(a);
  if (a.mode == "tcp") Tcp(a);
  if (a.mode == "fork") Fork(a);
  if (a.mode == "memory") Memory(a);
  if (a.mode == "ghost") Ghost(a);
  Usage(("unknown mode " + a.mode).c_str());
}
