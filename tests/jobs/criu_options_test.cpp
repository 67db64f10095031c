// The CRIU options of the jobs API with the real CRIU, each on a workload
// that needs it: the ghost-file limit, tcp_close, skip_in_flight, the
// cgroup modes, the network lock, evasive devices, an external file served
// by inherit_fd, an orphan pty master sent to a console socket, and the
// restore's LSM profile.
#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>

#include <fstream>

#include <fmt/format.h>

#include "common/fd.h"
#include "tests/jobs/jobs_fixture.h"

namespace ckptd {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
namespace ct = ckptd::criu::testing;
using JobsTest = testing::JobsFixture;

// The cgroup hierarchy the tests move workloads in: cgroup v1's pids
// controller where there is one, else the cgroup2 one.
struct Hierarchy {
  fs::path mount;           // where it is mounted
  std::string proc_prefix;  // its lines in /proc/<pid>/cgroup start with this
};

std::optional<Hierarchy> FindHierarchy() {
  std::ifstream in("/proc/self/mounts");
  std::optional<Hierarchy> v2;
  for (std::string dev, dir, type, opts, rest; in >> dev >> dir >> type >> opts && std::getline(in, rest);) {
    if (type == "cgroup" && ("," + opts + ",").find(",pids,") != std::string::npos) return Hierarchy{dir, ":pids:"};
    if (type == "cgroup2" && !v2) v2 = Hierarchy{dir, "0::"};
  }
  return v2;
}

// The cgroup of `pid` in hierarchy `h` ("/a/b"); "" when unreadable.
std::string CgroupOf(const Hierarchy& h, pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  for (std::string line; std::getline(in, line);) {
    size_t at = h.proc_prefix == "0::" ? (line.starts_with("0::") ? 0 : std::string::npos) : line.find(h.proc_prefix);
    if (at != std::string::npos) return line.substr(at + h.proc_prefix.size());
  }
  return "";
}

// iptables rules (iptables-save lines) naming TCP port `port`.
int IptablesRulesFor(int port) {
  FILE* f = popen("iptables-save 2>/dev/null", "r");
  if (!f) return -1;
  int n = 0;
  char line[4096];
  const std::string sport = "--sport " + std::to_string(port), dport = "--dport " + std::to_string(port);
  while (fgets(line, sizeof line, f))
    if (std::string_view(line).find(sport) != std::string_view::npos ||
        std::string_view(line).find(dport) != std::string_view::npos)
      ++n;
  pclose(f);
  return n;
}

int LocalPort(int listener) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  return getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len) == 0 ? ntohs(a.sin_port) : -1;
}

TEST_F(JobsTest, GhostLimitDecidesWhetherAnUnlinkedFileIsDumped) {
  auto out = work_.path() / "ghost";
  pid_t pid = targets_.Start("ghost", out, 3, {"--mib", "2"});
  ASSERT_GT(pid, 0);
  json::object refused = Checkpoint(pid);
  ASSERT_EQ(Str(refused, "state"), "failed") << json::serialize(refused);
  EXPECT_NE(Str(refused, "error").find("ghost"), std::string::npos) << Str(refused, "error");
  EXPECT_TRUE(ct::Alive(pid));
  EXPECT_NE(ct::ProcState(pid), 'T') << "target left frozen";
  auto bad = Post("/v2/jobs/checkpoint", {{"pid", pid}, {"ghost_limit", -1}});
  EXPECT_EQ(bad.status, 400);

  json::object job = Checkpoint(pid, {{"ghost_limit", 4 << 20}});
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  EXPECT_EQ(GetCheckpoint(Str(job, "checkpoint_id")).at("info").at("options").at("ghost_limit").as_int64(), 4 << 20);
  ASSERT_TRUE(ct::ReapedOrGone(pid));
  const uint64_t at_dump = ct::ReadProgress(out).n;
  ASSERT_GT(RestoredFrom(Str(job, "checkpoint_id")), 0);
  ExpectContinues(out, at_dump);  // and the file reads back the same
}

// tcp_close: an established connection is dumped without its state (no
// tcp_established) and comes back closed; the workload sees it lost.
TEST_F(JobsTest, TcpCloseDumpsAConnectionAndRestoresItClosed) {
  auto out = work_.path() / "tcp";
  pid_t pid = -1;
  int lfd = ConnectedTcpWorkload(out, &pid);
  ASSERT_GE(lfd, 0);
  json::object job = Checkpoint(pid, {{"tcp_close", true}});
  close(lfd);
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  EXPECT_TRUE(GetCheckpoint(Str(job, "checkpoint_id")).at("info").at("options").at("tcp_close").as_bool());
  ASSERT_TRUE(ct::ReapedOrGone(pid));
  pid_t restored = RestoredFrom(Str(job, "checkpoint_id"));
  ASSERT_GT(restored, 0);
  bool lost = false;
  for (int i = 0; i < 250 && !lost; ++i) {
    auto p = ct::ReadProgress(out);
    lost = p.valid && !p.ok;
    if (!lost) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(lost) << "the restored connection is not closed";
  EXPECT_TRUE(ct::Alive(restored));
}


// The CRIU external key ("file[mnt_id:inode]", hex) of the file at `path`
// as `pid` holds it open; "" when it holds none.
std::string ExternalFileKey(pid_t pid, const fs::path& path) {
  const fs::path proc = "/proc/" + std::to_string(pid);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(proc / "fd", ec)) {
    if (fs::read_symlink(e.path(), ec) != path) continue;
    std::ifstream info(proc / "fdinfo" / e.path().filename());
    for (std::string k, v; info >> k >> v;) {
      if (k != "mnt_id:") continue;
      struct stat st {};
      if (stat(path.c_str(), &st) != 0) return "";
      return fmt::format("file[{:x}:{:x}]", std::stoul(v), static_cast<uint64_t>(st.st_ino));
    }
  }
  return "";
}

// JobsTest on a daemon whose file_roots is the test's work directory.
class RestoreFdsTest : public JobsTest {
 protected:
  Config MakeConfig() override {
    Config c = JobsTest::MakeConfig();
    c.file_roots = work_.path().string();
    return c;
  }
};

// soft: the tree comes back in its own cgroup, made again when it is gone;
// the mode is recorded with the checkpoint and applied again at restore.
// ignore (the restore's own choice here): it comes back in the daemon's.
TEST_F(JobsTest, CgroupModeDecidesWhereTheTreeComesBack) {
  auto h = FindHierarchy();
  ASSERT_TRUE(h.has_value()) << "no cgroup hierarchy mounted";
  const std::string name = "/ckptd-test-" + std::to_string(getpid());
  const fs::path dir = h->mount / name.substr(1);
  fs::create_directories(dir);
  auto out = work_.path() / "counter";
  pid_t pid = targets_.Start("counter", out, 3);
  ASSERT_GT(pid, 0);
  { std::ofstream(dir / "cgroup.procs") << pid << "\n"; }
  ASSERT_EQ(CgroupOf(*h, pid), name);

  json::object job = Checkpoint(pid, {{"manage_cgroups_mode", "soft"}});
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  const std::string id = Str(job, "checkpoint_id");
  auto options = GetCheckpoint(id).at("info").at("options").as_object();
  EXPECT_EQ(Str(options, "manage_cgroups_mode"), "soft");
  EXPECT_EQ(options.at("manage_cgroups"), json::value(true));
  ASSERT_TRUE(ct::ReapedOrGone(pid));
  std::error_code ec;
  ASSERT_TRUE(fs::remove(dir, ec)) << ec.message();

  pid_t back = RestoredFrom(id);
  ASSERT_GT(back, 0);
  EXPECT_EQ(CgroupOf(*h, back), name) << "soft restores into the dumped cgroup, made again";
  ExpectContinues(out, 1);
  ct::KillTree(back);
  ASSERT_TRUE(ct::ReapedOrGone(back));

  pid_t here = RestoredFrom(id, {{"manage_cgroups_mode", "ignore"}});
  ASSERT_GT(here, 0);
  EXPECT_EQ(CgroupOf(*h, here), CgroupOf(*h, getpid())) << "ignore leaves it in the daemon's cgroup";
  ct::KillTree(here);
  ASSERT_TRUE(ct::ReapedOrGone(here));
  fs::remove(dir, ec);
}

// A file the tree holds, made external at the dump, is served at restore by
// a file the request names (inherit_fd): the restored workload writes there.
TEST_F(RestoreFdsTest, InheritFdHandsTheRestoredTreeAnotherFile) {
  const fs::path held = work_.path() / "held", other = work_.path() / "other";
  { std::ofstream(held) << ""; }
  auto out = work_.path() / "counter";
  pid_t pid = targets_.Start("counter", out, 3, {"--hold", held.string()});
  ASSERT_GT(pid, 0);
  const std::string key = ExternalFileKey(pid, held);
  ASSERT_FALSE(key.empty());
  json::object job = Checkpoint(pid, {{"external", json::array{json::value(key)}}});
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  const std::string id = Str(job, "checkpoint_id");
  ASSERT_TRUE(ct::ReapedOrGone(pid));
  const uint64_t at_dump = ct::ReadProgress(out).n;
  const auto held_size = fs::file_size(held);
  // CRIU checks the served file's size against the dumped one: a copy.
  fs::copy_file(held, other, fs::copy_options::overwrite_existing);

  json::object without = Restore(id);
  EXPECT_EQ(Str(without, "state"), "failed") << "CRIU needs the external file: " << json::serialize(without);
  auto entry = [&](const fs::path& p) {
    return json::array{json::object{{"key", key}, {"path", p.string()}, {"mode", "w"}}};
  };
  auto outside = Post("/v2/jobs/restore", {{"checkpoint_id", id}, {"inherit_fd", entry("/etc/hostname")}});
  EXPECT_EQ(outside.status, 400) << json::serialize(outside.body);
  EXPECT_NE(json::serialize(outside.body).find("file_roots"), std::string::npos) << json::serialize(outside.body);
  fs::create_symlink(other, work_.path() / "link");
  json::object via_link = Restore(id, {{"inherit_fd", entry(work_.path() / "link")}});
  EXPECT_EQ(Str(via_link, "state"), "failed");
  EXPECT_NE(Str(via_link, "error").find("symlink"), std::string::npos) << Str(via_link, "error");

  ASSERT_GT(RestoredFrom(id, {{"inherit_fd", entry(other)}}), 0);
  ExpectContinues(out, at_dump);
  EXPECT_GT(fs::file_size(other), held_size) << "the restored workload does not write to the inherited file";
  EXPECT_EQ(fs::file_size(held), held_size) << "it still writes to the file it held";
}

// A terminal whose master is outside the tree: dumped with
// orphan_pts_master; the restore gives the tree a new pty and sends its
// master to console_socket, where the restored workload's output arrives.
TEST_F(RestoreFdsTest, OrphanPtsMasterSendsTheNewTerminalToTheConsoleSocket) {
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0) << std::strerror(errno);
  ASSERT_EQ(grantpt(master), 0);
  ASSERT_EQ(unlockpt(master), 0);
  const std::string slave = ptsname(master);
  auto out = work_.path() / "counter";
  pid_t pid = targets_.Start("counter", out, 3, {"--hold", slave});
  ASSERT_GT(pid, 0);
  json::object refused = Checkpoint(pid, {{"leave_running", true}});
  EXPECT_EQ(Str(refused, "state"), "failed") << "a pty slave without its master: " << json::serialize(refused);
  json::object job = Checkpoint(pid, {{"orphan_pts_master", true}});
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  const std::string id = Str(job, "checkpoint_id");
  ASSERT_TRUE(ct::ReapedOrGone(pid));
  close(master);

  json::object no_console = Restore(id);
  EXPECT_EQ(Str(no_console, "state"), "failed");
  EXPECT_NE(Str(no_console, "error").find("console_socket"), std::string::npos) << Str(no_console, "error");

  const fs::path sock_path = work_.path() / "console.sock";
  int lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock_path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(bind(lsock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  ASSERT_EQ(listen(lsock, 1), 0);
  ASSERT_GT(RestoredFrom(id, {{"console_socket", sock_path.string()}}), 0);
  int conn = accept4(lsock, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(conn, 0) << std::strerror(errno);
  std::string name(64, '\0');
  int new_master = -1;
  ASSERT_GT(RecvWithFd(conn, &name, &new_master), 0) << std::strerror(errno);
  EXPECT_EQ(name, "orphan-pts-master");
  ASSERT_GE(new_master, 0) << "no fd came with the message";
  // The restored workload writes to its terminal every tick.
  pollfd p{new_master, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1) << "nothing arrives on the new terminal";
  char buf[64];
  EXPECT_GT(read(new_master, buf, sizeof buf), 0);
  close(new_master);
  close(conn);
  close(lsock);
}

// A device node opened by a path that now leads to another node of the same
// device (a tmpfs mounted over its directory holds one): CRIU refuses it,
// unless evasive_devices lets it record the path.
TEST_F(JobsTest, EvasiveDevicesDumpADeviceWhosePathLeadsElsewhere) {
  const fs::path dir = work_.path() / "devdir", node = dir / "null-node";
  fs::create_directories(dir);
  ASSERT_EQ(mknod(node.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0) << std::strerror(errno);
  auto out = work_.path() / "counter";
  pid_t pid = targets_.Start("counter", out, 3, {"--hold", node.string()});
  ASSERT_GT(pid, 0);
  ASSERT_EQ(mount("ckptd-test", dir.c_str(), "tmpfs", 0, "size=64k"), 0) << std::strerror(errno);
  struct Unmount {
    fs::path at;
    ~Unmount() { umount2(at.c_str(), MNT_DETACH); }
  } unmount{dir};
  ASSERT_EQ(mknod(node.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0) << std::strerror(errno);

  json::object refused = Checkpoint(pid);
  ASSERT_EQ(Str(refused, "state"), "failed") << json::serialize(refused);
  EXPECT_NE(Str(refused, "error").find("Unaccessible path"), std::string::npos) << Str(refused, "error");
  EXPECT_TRUE(ct::Alive(pid));
  EXPECT_NE(ct::ProcState(pid), 'T') << "target left frozen";

  json::object job = Checkpoint(pid, {{"evasive_devices", true}});
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  EXPECT_EQ(GetCheckpoint(Str(job, "checkpoint_id")).at("info").at("options").at("evasive_devices"), json::value(true));
  ASSERT_TRUE(ct::ReapedOrGone(pid));
  const uint64_t at_dump = ct::ReadProgress(out).n;
  ASSERT_GT(RestoredFrom(Str(job, "checkpoint_id")), 0);
  ExpectContinues(out, at_dump);  // its writes to the device go on
}

// network_lock "iptables": CRIU blocks the dumped connection with iptables
// rules (seen between dump and restore), and the restore, applying the
// recorded lock again, takes them away.
TEST_F(JobsTest, IptablesNetworkLockIsRecordedAndUndoneAtRestore) {
  auto out = work_.path() / "tcp";
  pid_t pid = -1;
  int lfd = ConnectedTcpWorkload(out, &pid);
  ASSERT_GE(lfd, 0);
  const int port = LocalPort(lfd);
  ASSERT_EQ(IptablesRulesFor(port), 0);
  json::object job = Checkpoint(pid, {{"tcp_established", true}, {"network_lock", "iptables"}});
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  const std::string id = Str(job, "checkpoint_id");
  EXPECT_EQ(Str(GetCheckpoint(id).at("info").at("options").as_object(), "network_lock"), "iptables");
  ASSERT_TRUE(ct::ReapedOrGone(pid));
  EXPECT_GT(IptablesRulesFor(port), 0) << "the dumped connection is not locked by iptables";

  pid_t restored = RestoredFrom(id);
  ASSERT_GT(restored, 0);
  EXPECT_EQ(IptablesRulesFor(port), 0) << "the restore left CRIU's iptables lock";
  EXPECT_TRUE(ct::Alive(restored));
  close(lfd);
}

// A listening socket of the tree with a connection waiting in its queue
// (connected, never accepted) is refused by CRIU, unless skip_in_flight
// leaves the waiting connection out.
TEST_F(JobsTest, SkipInFlightLeavesAWaitingConnectionOut) {
  // A free loopback port for the workload to listen on.
  int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const int port = LocalPort(probe);
  close(probe);
  auto out = work_.path() / "counter";
  pid_t pid = targets_.Start("counter", out, 3, {"--listen-port", std::to_string(port)});
  ASSERT_GT(pid, 0);
  a.sin_port = htons(static_cast<uint16_t>(port));
  int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);

  json::object refused = Checkpoint(pid);
  ASSERT_EQ(Str(refused, "state"), "failed") << json::serialize(refused);
  EXPECT_NE(Str(refused, "error").find("In-flight connection"), std::string::npos) << Str(refused, "error");
  EXPECT_TRUE(ct::Alive(pid));
  EXPECT_NE(ct::ProcState(pid), 'T') << "target left frozen";

  json::object job = Checkpoint(pid, {{"skip_in_flight", true}});
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  EXPECT_EQ(GetCheckpoint(Str(job, "checkpoint_id")).at("info").at("options").at("skip_in_flight"), json::value(true));
  ASSERT_TRUE(ct::ReapedOrGone(pid));
  const uint64_t at_dump = ct::ReadProgress(out).n;
  ASSERT_GT(RestoredFrom(Str(job, "checkpoint_id")), 0);
  ExpectContinues(out, at_dump);
  close(client);
}

// A filesystem CRIU does not know (ramfs, mounted in the workload's own
// mount namespace) fails the dump, unless enable_fs names it: then CRIU
// records the mount and mounts one of that type again at restore.
TEST_F(JobsTest, EnableFsDumpsAMountOfAnUnknownFilesystem) {
  const fs::path mnt = work_.path() / "ramfs";
  fs::create_directories(mnt);
  auto out = work_.path() / "counter";
  pid_t pid = targets_.Start("counter", out, 3, {"--ramfs", mnt.string()});
  ASSERT_GT(pid, 0);
  ASSERT_NE(fs::read_symlink("/proc/" + std::to_string(pid) + "/ns/mnt"), fs::read_symlink("/proc/self/ns/mnt"));

  json::object refused = Checkpoint(pid);
  ASSERT_EQ(Str(refused, "state"), "failed") << json::serialize(refused);
  EXPECT_NE(Str(refused, "error").find("unsupported"), std::string::npos) << Str(refused, "error");
  EXPECT_TRUE(ct::Alive(pid));
  EXPECT_NE(ct::ProcState(pid), 'T') << "target left frozen";

  json::object job = Checkpoint(pid, {{"enable_fs", json::array{"ramfs"}}});
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  const std::string id = Str(job, "checkpoint_id");
  EXPECT_EQ(json::serialize(GetCheckpoint(id).at("info").at("options").at("enable_fs")), R"(["ramfs"])");
  ASSERT_TRUE(ct::ReapedOrGone(pid));
  const uint64_t at_dump = ct::ReadProgress(out).n;
  pid_t restored = RestoredFrom(id);
  ASSERT_GT(restored, 0);
  ExpectContinues(out, at_dump);
  std::ifstream mounts("/proc/" + std::to_string(restored) + "/mounts");
  std::string all((std::istreambuf_iterator<char>(mounts)), {});
  EXPECT_NE(all.find(mnt.string() + " ramfs"), std::string::npos) << all;
}

// A bind mount of the workload's own mount namespace, made external at the
// dump (external "mnt[DST]:data"), is bound from another directory at
// restore (the restore's external "mnt[data]:SRC2"): the restored workload
// counts on in the copy there, not in the original.
TEST_F(RestoreFdsTest, RestoreExternalMountBindsAnotherDirectory) {
  const fs::path src1 = work_.path() / "src1", src2 = work_.path() / "src2", dst = work_.path() / "dst";
  for (const auto& d : {src1, src2, dst}) fs::create_directories(d);
  // It counts into dst/counter in its namespace: src1/counter here.
  pid_t pid = ct::StartWorkload("counter", dst / "counter", {"--bind", src1.string() + ":" + dst.string()});
  ASSERT_GT(pid, 0);
  targets_.Add(pid);
  ASSERT_TRUE(ct::WaitProgress(src1 / "counter", 3)) << "the bind mount is not there";
  json::object job = Checkpoint(pid, {{"external", json::array{json::value("mnt[" + dst.string() + "]:data")}}});
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  ASSERT_TRUE(ct::ReapedOrGone(pid));
  const uint64_t at_dump = ct::ReadProgress(src1 / "counter").n;
  // The copy holds what the workload has open there (counter, its log).
  fs::copy(src1, src2, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  auto outside = Post("/v2/jobs/restore", {{"checkpoint_id", Str(job, "checkpoint_id")},
                                           {"external", json::array{json::value("mnt[data]:/etc")}}});
  EXPECT_EQ(outside.status, 400) << "a host directory outside file_roots: " << json::serialize(outside.body);
  ASSERT_GT(RestoredFrom(Str(job, "checkpoint_id"), {{"external", json::array{json::value("mnt[data]:" + src2.string())}}}),
            0);
  ExpectContinues(src2 / "counter", at_dump);
  EXPECT_EQ(ct::ReadProgress(src1 / "counter").n, at_dump) << "the restored workload writes to the old directory";
}

// An LSM profile CRIU cannot apply (no such LSM, or no such profile): CRIU
// refuses it and says so in the job's error; the checkpoint stays
// restorable without it.
TEST_F(JobsTest, LsmProfileReachesCriu) {
  auto out = work_.path() / "counter";
  pid_t pid = -1;
  json::object job = CheckpointNew(&pid, "counter", out, 3);
  ASSERT_FALSE(job.empty());
  const std::string id = Str(job, "checkpoint_id");
  ASSERT_TRUE(ct::ReapedOrGone(pid));
  // Without AppArmor CRIU refuses any apparmor label; with it, this
  // profile does not exist: either way CRIU fails, naming the LSM.
  json::object failed = Restore(id, {{"lsm_profile", "apparmor:ckptd-test-no-such-profile"}});
  ASSERT_EQ(Str(failed, "state"), "failed") << json::serialize(failed);
  const std::string error = Str(failed, "error");
  EXPECT_TRUE(error.find("LSM") != std::string::npos || error.find("apparmor") != std::string::npos) << error;
  EXPECT_EQ(Str(GetCheckpoint(id), "status"), "ready");
  ASSERT_GT(RestoredFrom(id), 0);
}

}  // namespace
}  // namespace ckptd
