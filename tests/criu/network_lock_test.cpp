// Releasing what a killed CRIU held of a tree's network: only the lock
// tables that hold the tree's connections in our namespace, every CRIU
// table in a namespace of the tree's own. (The real kill, with CRIU's own
// lock and sockets in repair mode, is in criu_restore_test.cpp.)
#include "criu/network_lock.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

#include <gtest/gtest.h>

#include "tests/testing/nft_util.h"
#include "tests/testing/test_util.h"

namespace ckptd::criu {
namespace {

using ckptd::testing::AddCriuLockTable;
using ckptd::testing::CriuLockTables;
using ckptd::testing::NftRun;

// A child that runs `setup` then waits; its pid, once `setup` is done.
pid_t Child(const std::function<bool()>& setup) {
  int ready[2];
  if (pipe(ready) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(ready[0]);
    if (!setup()) _exit(1);
    (void)!write(ready[1], "x", 1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char c = 0;
  bool ok = read(ready[0], &c, 1) == 1;
  close(ready[0]);
  if (!ok && pid > 0) waitpid(pid, nullptr, 0);
  return ok ? pid : -1;
}

void End(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

TEST(NetworkRelease, OnlyTablesHoldingTheTreesConnectionsGo) {
  uint16_t port = 0;
  int listener = ckptd::testing::ListenLoopback(&port);
  ASSERT_GE(listener, 0);
  pid_t child = Child([&] { return ckptd::testing::ConnectLoopback(port) >= 0; });
  ASSERT_GT(child, 0);
  int accepted = accept(listener, nullptr, nullptr);
  ASSERT_GE(accepted, 0);
  const std::string theirs = ckptd::testing::Conns4ElementOf(accepted);
  ASSERT_FALSE(theirs.empty());
  const std::string held = "CRIU-test-held", other = "CRIU-test-other", empty = "CRIU-test-empty";
  for (const auto& t : {held, other, empty}) NftRun("delete table inet " + t);
  ASSERT_EQ(AddCriuLockTable(held, theirs), "");
  ASSERT_EQ(AddCriuLockTable(other, "127.0.0.1 . 1 . 127.0.0.1 . 2"), "");
  ASSERT_EQ(AddCriuLockTable(empty), "");

  auto r = ReleaseNetworkAfterKill(child);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tables, std::vector<std::string>{held});
  EXPECT_EQ(r->sockets, 0) << "no socket was in repair mode";
  auto left = CriuLockTables();
  EXPECT_FALSE(left.contains(held));
  EXPECT_TRUE(left.contains(other)) << "another tree's lock was removed";
  EXPECT_TRUE(left.contains(empty));
  for (const auto& t : {other, empty}) NftRun("delete table inet " + t);
  End(child);
  close(accepted);
  close(listener);
  EXPECT_EQ(ReleaseNetworkAfterKill(child).status().code(), Code::kNotFound);
}

TEST(NetworkRelease, EveryCriuTableInTheTreesOwnNamespaceGoes) {
  pid_t child = Child([] { return unshare(CLONE_NEWNET) == 0; });
  ASSERT_GT(child, 0);
  ASSERT_EQ(NftRun("add table inet CRIU-test-own", child), "");
  ASSERT_EQ(NftRun("add chain inet CRIU-test-own input { type filter hook input priority 0; policy drop; }", child),
            "");
  ASSERT_EQ(NftRun("add table inet someone-elses", child), "");
  EXPECT_FALSE(CriuLockTables().contains("CRIU-test-own")) << "made in the child's namespace, not ours";
  auto r = ReleaseNetworkAfterKill(child);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tables, std::vector<std::string>{"CRIU-test-own"});
  EXPECT_TRUE(CriuLockTables(child).empty());
  EXPECT_EQ(NftRun("list table inet someone-elses", child), "") << "a table not CRIU's was removed";
  End(child);
}

}  // namespace
}  // namespace ckptd::criu
