// Releasing what a killed CRIU held of a tree's network: only the lock
// tables that hold the tree's connections in our namespace, every CRIU
// table in a namespace of the tree's own. (The real kill, with CRIU's own
// lock and sockets in repair mode, is in criu_restore_test.cpp.)
#include "criu/network_lock.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/testing/nft_util.h"

namespace ckptd::criu {
namespace {

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

std::string LockTable(const std::string& name, const std::string& element) {
  std::string e = NftRun(fmt::format("add table inet {}", name));
  if (e.empty())
    e = NftRun(fmt::format("add set inet {} conns4 {{ type ipv4_addr . inet_service . ipv4_addr . inet_service; }}",
                           name));
  if (e.empty() && !element.empty()) e = NftRun(fmt::format("add element inet {} conns4 {{ {} }}", name, element));
  return e;
}

TEST(NetworkRelease, OnlyTablesHoldingTheTreesConnectionsGo) {
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len), 0);
  pid_t child = Child([&] {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    return connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  });
  ASSERT_GT(child, 0);
  int accepted = accept(listener, reinterpret_cast<sockaddr*>(&a), &len);  // a: the child's end now
  ASSERT_GE(accepted, 0);
  sockaddr_in mine{};
  socklen_t mlen = sizeof mine;
  ASSERT_EQ(getsockname(accepted, reinterpret_cast<sockaddr*>(&mine), &mlen), 0);
  const std::string theirs = fmt::format("127.0.0.1 . {} . 127.0.0.1 . {}", ntohs(a.sin_port), ntohs(mine.sin_port));
  const std::string held = "CRIU-test-held", other = "CRIU-test-other", empty = "CRIU-test-empty";
  for (const auto& t : {held, other, empty}) NftRun("delete table inet " + t);
  ASSERT_EQ(LockTable(held, theirs), "");
  ASSERT_EQ(LockTable(other, "127.0.0.1 . 1 . 127.0.0.1 . 2"), "");
  ASSERT_EQ(LockTable(empty, ""), "");

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
