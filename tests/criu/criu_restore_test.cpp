// Dump + restore round trips of ckptd_workload with the real CRIU.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "criu/criu_driver.h"
#include "tests/testing/criu_fixture.h"
#include "tests/testing/criu_test_util.h"
#include "tests/testing/nft_util.h"
#include "tests/testing/test_util.h"

namespace ckptd::criu {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using namespace ckptd::criu::testing;

class CriuRestoreTest : public CriuFixture {
 protected:
  // Dumps `pid` (killing it, as CRIU does without leave_running), reaps the
  // original and returns the progress it had reached.
  uint64_t DumpAndReap(pid_t pid, const fs::path& images, const fs::path& out, DumpOptions o = {}) {
    o.pid = pid;
    o.images_dir = images;
    o.deadline = 120s;
    std::vector<pid_t> tree = TreeOf(pid);
    auto r = driver_->Dump(o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return 0;
    ReapDumped(pid, tree);
    return ReadProgress(out).n;
  }

  // The counter continues from where it was dumped: no reset, increasing.
  void ExpectContinues(const fs::path& out, uint64_t at_dump) {
    ASSERT_TRUE(WaitProgress(out, at_dump + 10)) << "no progress after restore from " << at_dump;
    uint64_t last = 0;
    for (int i = 0; i < 20; ++i) {
      Progress p = ReadProgress(out);
      ASSERT_TRUE(p.valid && p.ok);
      EXPECT_GE(p.n, at_dump);
      EXPECT_GE(p.n, last);
      last = p.n;
      std::this_thread::sleep_for(25ms);
    }
    EXPECT_GT(last, at_dump + 10);
  }

  static RestoreOptions RestoreOf(const fs::path& images) {
    RestoreOptions ro;
    ro.images_dir = images;
    ro.deadline = 60s;
    return ro;
  }
  // A copy of the pid namespace's init restored while the original runs:
  // pid 1 of a namespace of its own, both alive. The copy is killed at
  // TearDown.
  void ExpectCopyBesideOriginal(pid_t copy, pid_t original_init) {
    cleanup_.push_back(copy);
    EXPECT_NE(copy, original_init);
    EXPECT_EQ(InnermostPid(copy), 1);
    EXPECT_TRUE(Alive(original_init));
    EXPECT_TRUE(Alive(copy));
  }
};

TEST_F(CriuRestoreTest, CounterContinuesAfterRestore) {
  auto out = tmp_.path() / "counter";
  pid_t pid = StartTarget("counter", out, 10);
  ASSERT_GT(pid, 0);
  uint64_t at_dump = DumpAndReap(pid, tmp_.Sub("img"), out);
  ASSERT_GT(at_dump, 0u);
  // Dead means dead: nothing moves.
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(ReadProgress(out).n, at_dump);
  pid_t restored = RestoreSamePid(pid, tmp_.path() / "img");
  ASSERT_GT(restored, 0);
  ExpectContinues(out, at_dump);
}

TEST_F(CriuRestoreTest, FilesAndPipeSurvive) {
  auto out = tmp_.path() / "files";
  pid_t pid = StartTarget("files", out, 10);
  ASSERT_GT(pid, 0);
  uint64_t at_dump = DumpAndReap(pid, tmp_.Sub("img"), out);
  pid_t restored = RestoreSamePid(pid, tmp_.path() / "img");
  ASSERT_GT(restored, 0);
  ExpectContinues(out, at_dump);
  // Every record made it into the data file exactly once.
  Progress p = ReadProgress(out);
  EXPECT_GE(fs::file_size(out.string() + ".data"), p.n * 16);
}

TEST_F(CriuRestoreTest, ForkedChildrenContinue) {
  auto out = tmp_.path() / "fork";
  pid_t pid = StartTarget("fork", out, 10, {"--children", "3"});
  ASSERT_GT(pid, 0);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(WaitProgress(out.string() + "." + std::to_string(i), 5));
  std::vector<pid_t> kids = ChildrenOf(pid);
  ASSERT_EQ(kids.size(), 3u);
  std::vector<uint64_t> child_at_dump(3);
  uint64_t at_dump = DumpAndReap(pid, tmp_.Sub("img"), out);
  for (int i = 0; i < 3; ++i) child_at_dump[i] = ReadProgress(out.string() + "." + std::to_string(i)).n;
  pid_t restored = RestoreSamePid(pid, tmp_.path() / "img");
  ASSERT_GT(restored, 0);
  std::vector<pid_t> kids_after = ChildrenOf(restored);
  std::sort(kids.begin(), kids.end());
  std::sort(kids_after.begin(), kids_after.end());
  EXPECT_EQ(kids_after, kids);  // same tree, same pids
  ExpectContinues(out, at_dump);
  for (int i = 0; i < 3; ++i) ExpectContinues(out.string() + "." + std::to_string(i), child_at_dump[i]);
}

TEST_F(CriuRestoreTest, MemoryContentIsIntact) {
  auto out = tmp_.path() / "memory";
  pid_t pid = StartTarget("memory", out, 2, {"--mib", "64"}, 30s);
  ASSERT_GT(pid, 0);
  uint64_t at_dump = DumpAndReap(pid, tmp_.Sub("img"), out);
  pid_t restored = RestoreSamePid(pid, tmp_.path() / "img");
  ASSERT_GT(restored, 0);
  // Two more full verification rounds of all 64 MiB, all "ok".
  ASSERT_TRUE(WaitProgress(out, at_dump + 2, 30s));
  EXPECT_TRUE(ReadProgress(out).ok);
}

TEST_F(CriuRestoreTest, LeaveRunningKeepsOriginalUnchanged) {
  auto out = tmp_.path() / "counter";
  pid_t pid = StartTarget("counter", out, 5);
  ASSERT_GT(pid, 0);
  DumpOptions o = DumpOf(pid, tmp_.Sub("img"), 60s, true);
  auto r = driver_->Dump(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(fs::exists(o.images_dir / "inventory.img"));
  EXPECT_TRUE(fs::exists(r->log_path));
  ExpectRunsOn(pid, out, 10);
}

// Without soft-dirty tracking (a kernel without CONFIG_MEM_SOFT_DIRTY, as
// on these VMs) the driver refuses iterative dumps up front (CRIU would
// BUG() half-way) and the target is untouched.
TEST_F(CriuRestoreTest, PreDumpRefusedWithoutSoftDirty) {
  auto features = driver_->FeatureCheck();
  ASSERT_TRUE(features.ok()) << features.status().ToString();
  if (features->mem_track) GTEST_SKIP() << "this kernel has soft-dirty tracking: PreDumpThenDumpWithParent runs instead";
  auto out = tmp_.path() / "memory";
  pid_t pid = StartTarget("memory", out, 1, {"--mib", "16"}, 30s);
  ASSERT_GT(pid, 0);
  auto p = driver_->PreDump(DumpOf(pid, tmp_.Sub("pre1"), 60s));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Code::kUnavailable) << p.status().ToString();
  EXPECT_TRUE(WaitProgress(out, ReadProgress(out).n + 2, 10s));
  DumpOptions tracked;
  tracked.pid = pid;
  tracked.images_dir = tmp_.Sub("tracked");
  tracked.track_mem = true;
  EXPECT_EQ(driver_->Dump(tracked).status().code(), Code::kUnavailable);
  EXPECT_TRUE(WaitProgress(out, ReadProgress(out).n + 2, 10s));
}

// Iterative dump: a pre-dump with memory tracking, then a dump on top of it
// (parent_img), restored.
TEST_F(CriuRestoreTest, PreDumpThenDumpWithParent) {
  auto features = driver_->FeatureCheck();
  ASSERT_TRUE(features.ok()) << features.status().ToString();
  if (!features->mem_track)
    GTEST_SKIP() << "this kernel has no soft-dirty memory tracking (CONFIG_MEM_SOFT_DIRTY; "
                    "criu check --feature mem_dirty_track fails): pre-dumps cannot run here";
  auto out = tmp_.path() / "memory";
  pid_t pid = StartTarget("memory", out, 1, {"--mib", "16"}, 30s);
  ASSERT_GT(pid, 0);
  auto p = driver_->PreDump(DumpOf(pid, tmp_.Sub("pre1"), 60s));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0);  // pre-dump leaves it running
  DumpOptions o;
  o.track_mem = true;
  o.parent_img = "../pre1";
  uint64_t at_dump = DumpAndReap(pid, tmp_.Sub("final"), out, o);
  EXPECT_TRUE(fs::is_symlink(tmp_.path() / "final" / "parent"));
  pid_t restored = RestoreSamePid(pid, tmp_.path() / "final");
  ASSERT_GT(restored, 0);
  ASSERT_TRUE(WaitProgress(out, at_dump + 2, 30s));
}

// An echo peer on loopback, in this process.
class EchoPeer {
 public:
  EchoPeer() {
    uint16_t port = 0;
    listen_fd_ = ckptd::testing::ListenLoopback(&port);
    if (listen_fd_ < 0) ADD_FAILURE() << "listen: " << strerror(errno);
    port_ = port;
    thread_ = std::thread([this] { Run(); });
  }
  ~EchoPeer() {
    stop_ = true;
    thread_.join();
    close(listen_fd_);
  }
  int port() const { return port_; }
  uint64_t echoed() const { return echoed_; }
  int accepted() const { return accepted_; }
  bool failed() const { return failed_; }

 private:
  void Run() {
    int conn = -1;
    while (!stop_) {
      pollfd p{conn >= 0 ? conn : listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      if (conn < 0) {
        conn = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (conn >= 0) ++accepted_;
        continue;
      }
      char buf[4096];
      ssize_t n = recv(conn, buf, sizeof buf, 0);
      if (n <= 0) {
        // The workload never closes: an EOF or reset here means CRIU (or
        // the test) broke the connection.
        failed_ = true;
        close(conn);
        conn = -1;
        continue;
      }
      if (send(conn, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) failed_ = true;
      echoed_ += static_cast<uint64_t>(n);
    }
    if (conn >= 0) close(conn);
  }
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> echoed_{0};
  std::atomic<int> accepted_{0};
  std::atomic<bool> failed_{false};
  std::thread thread_;
};

TEST_F(CriuRestoreTest, EstablishedTcpConnectionSurvives) {
  EchoPeer peer;
  auto out = tmp_.path() / "tcp";
  pid_t pid = StartTarget("tcp", out, 10, {"--port", std::to_string(peer.port())});
  ASSERT_GT(pid, 0);
  DumpOptions o;
  o.tcp_established = true;
  const std::set<std::string> locks = ckptd::testing::CriuLockTables();
  uint64_t at_dump = DumpAndReap(pid, tmp_.Sub("img"), out, o);
  ASSERT_GT(at_dump, 0u);
  EXPECT_FALSE(peer.failed()) << "CRIU's dump reset or closed the connection";
  // The dumped connection stays locked until the restore takes it back.
  EXPECT_EQ(ckptd::testing::CriuLockTables().size(), locks.size() + 1) << "no nftables lock on the connection";
  RestoreOptions ro;
  ro.tcp_established = true;
  pid_t restored = RestoreSamePid(pid, tmp_.path() / "img", ro);
  ASSERT_GT(restored, 0);
  EXPECT_EQ(ckptd::testing::CriuLockTables(), locks) << "the restore left CRIU's lock";
  ExpectContinues(out, at_dump);
  EXPECT_EQ(peer.accepted(), 1) << "the workload reconnected instead of resuming";
  EXPECT_FALSE(peer.failed());
}

// A CRIU killed while it holds an established connection (at post-dump:
// the socket in repair mode, the connection locked): the driver keeps the
// tree stopped, takes the socket out of repair mode, removes the lock, and
// the connection carries data again.
TEST_F(CriuRestoreTest, KilledTcpDumpLeavesNoLockAndTheConnectionFlows) {
  EchoPeer peer;
  auto out = tmp_.path() / "tcp";
  pid_t pid = StartTarget("tcp", out, 10, {"--port", std::to_string(peer.port())});
  ASSERT_GT(pid, 0);
  const std::set<std::string> locks = ckptd::testing::CriuLockTables();
  DumpOptions o;
  o.pid = pid;
  o.images_dir = tmp_.Sub("img");
  o.deadline = 3s;
  o.leave_running = true;
  o.tcp_established = true;
  std::atomic<pid_t> criu{0};
  o.on_criu_started = [&](pid_t p) { criu = p; };
  bool locked = false;
  o.notify = [&](const std::string& script, int) {
    if (script != "post-dump") return Status::Ok();
    locked = ckptd::testing::CriuLockTables().size() > locks.size();
    // Hold CRIU here until the deadline has it killed.
    for (int i = 0; i < 1500 && ProcState(criu) != 'Z' && ProcState(criu) != 0; ++i)
      std::this_thread::sleep_for(20ms);
    return Status::Ok();
  };
  auto r = driver_->Dump(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kDeadlineExceeded) << r.status().ToString();
  EXPECT_TRUE(locked) << "CRIU did not lock the connection: the test proves nothing";
  EXPECT_EQ(ckptd::testing::CriuLockTables(), locks) << "the killed CRIU's lock is still there";
  uint64_t n = ReadProgress(out).n;
  EXPECT_TRUE(WaitProgress(out, n + 5)) << "the connection does not carry data again: "
                                        << ckptd::testing::ReadFileText(out.string());
  EXPECT_FALSE(peer.failed());
}

TEST_F(CriuRestoreTest, RestoredTreeIsNotTheCallersChild) {
  auto out = tmp_.path() / "counter";
  pid_t pid = StartTarget("counter", out, 5);
  ASSERT_GT(pid, 0);
  uint64_t at_dump = DumpAndReap(pid, tmp_.Sub("img"), out);
  // Restore from a forked helper (not a subreaper): were the tree attached to
  // the caller, its parent would be the helper.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t helper = fork();
  if (helper == 0) {
    close(fds[0]);
    int result[2] = {-1, -1};
    auto d = CriuDriver::Create(driver_->config());
    if (d.ok()) {
      auto r = (*d)->Restore(RestoreOf(tmp_.path() / "img"));
      if (r.ok()) result[0] = r->pid, result[1] = ParentOf(r->pid);
      d->reset();  // _exit skips destructors: remove its private plugin dir
    }
    (void)!write(fds[1], result, sizeof result);
    _exit(0);
  }
  close(fds[1]);
  int result[2] = {-1, -1};
  ASSERT_EQ(read(fds[0], result, sizeof result), static_cast<ssize_t>(sizeof result));
  close(fds[0]);
  ReapChild(helper);
  ASSERT_GT(result[0], 0) << "restore in helper failed";
  cleanup_.push_back(result[0]);
  EXPECT_EQ(result[0], pid);
  EXPECT_NE(result[1], helper) << "restored root is the caller's child";
  ExpectContinues(out, at_dump);
}

// A tree that is the init of its own pid namespace can be restored while the
// original still runs: CRIU restores it into a new pid namespace.
// (No `unshare --kill-child`: CRIU restores the parent-death signal, and the
// restored root would get it as soon as CRIU, its parent, exits.)
TEST_F(CriuRestoreTest, PidNamespaceRestoreWhileOriginalRuns) {
  auto out = tmp_.path() / "counter";
  pid_t unshare = -1;
  std::string why;
  pid_t init = StartCounterInOwnPidNs(out, false, &unshare, &why);
  cleanup_.push_back(unshare);
  ASSERT_GT(init, 0) << why;
  DumpOptions o = DumpOf(init, tmp_.Sub("img"), 60s, true);
  auto d = driver_->Dump(o);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  uint64_t at_dump = ReadProgress(out).n;
  RestoreOptions ro = RestoreOf(o.images_dir);
  auto r = driver_->Restore(ro);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectCopyBesideOriginal(r->pid, init);
  // Both write the same file; stop the original, the copy must go on.
  EXPECT_EQ(CopyCountsOnAfterOriginalDies(unshare, init, out, at_dump), "");
}

// The same with `--mount-proc`: the tree also has a mount namespace of its
// own (with a private /proc). CRIU dumps it (the mounts it shares with us as
// external ones) and needs a root to restore it; RestoreRootFor() says "/"
// (the namespace's root is ours) and with it the copy runs, in a new pid and
// mount namespace, while the original still does.
TEST_F(CriuRestoreTest, PidAndMountNamespaceRestoreWhileOriginalRuns) {
  auto out = tmp_.path() / "counter";
  pid_t unshare = -1;
  std::string why;
  pid_t init = StartCounterInOwnPidNs(out, true, &unshare, &why);
  cleanup_.push_back(unshare);
  ASSERT_GT(init, 0) << why;
  auto root = RestoreRootFor(init);
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  EXPECT_EQ(*root, "/");
  DumpOptions o = DumpOf(init, tmp_.Sub("img"), 60s, true);
  o.auto_ext_mounts = true;  // /dev/shm and the like stay the daemon's
  auto d = driver_->Dump(o);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(Alive(init));
  for (const auto& e : fs::directory_iterator(o.images_dir))
    EXPECT_FALSE(e.path().filename().string().starts_with("tmpfs-")) << "tmpfs dumped: " << e.path();
  uint64_t at_dump = ReadProgress(out).n;

  RestoreOptions ro = RestoreOf(o.images_dir);
  // Without the root the driver refuses before CRIU runs (CRIU 4.2.1 would
  // crash: "mnt: BUG at criu/mount.c:48").
  auto refused = driver_->Restore(ro);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kInvalidArgument) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("mount namespace"), std::string::npos) << refused.status().ToString();

  ro.root = *root;
  ro.auto_ext_mounts = true;
  auto r = driver_->Restore(ro);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectCopyBesideOriginal(r->pid, init);
  // A mount namespace of its own, neither ours nor the original's...
  auto ns = [](pid_t p) { return fs::read_symlink(fmt::format("/proc/{}/ns/mnt", p)).string(); };
  EXPECT_NE(ns(r->pid), ns(getpid()));
  EXPECT_NE(ns(r->pid), ns(init));
  // ...whose /proc is the new pid namespace's: its pid 1 is the copy.
  std::ifstream cmdline(fmt::format("/proc/{}/root/proc/1/cmdline", r->pid));
  std::string first_arg;
  std::getline(cmdline, first_arg, '\0');
  EXPECT_EQ(first_arg, WorkloadPath());
  // The external mounts are ours again: the same /dev/shm superblock.
  struct stat ours{}, its{};
  ASSERT_EQ(stat("/dev/shm", &ours), 0);
  ASSERT_EQ(stat(fmt::format("/proc/{}/root/dev/shm", r->pid).c_str(), &its), 0);
  EXPECT_EQ(its.st_dev, ours.st_dev);
  auto copy_root = RestoreRootFor(r->pid);
  ASSERT_TRUE(copy_root.ok()) << copy_root.status().ToString();
  EXPECT_EQ(*copy_root, "/");

  // Both write the same file; stop the original, the copy must go on.
  EXPECT_EQ(CopyCountsOnAfterOriginalDies(unshare, init, out, at_dump), "");
}

// A process in our own mount namespace needs no root.
TEST_F(CriuRestoreTest, RestoreRootForOwnMountNamespaceIsEmpty) {
  auto root = RestoreRootFor(getpid());
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  EXPECT_EQ(*root, "");
  auto gone = RestoreRootFor(999999999);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), Code::kNotFound) << gone.status().ToString();
}

}  // namespace
}  // namespace ckptd::criu
