// The fixture of the job tests that run the real CRIU on ckptd_workload
// through the HTTP API of an in-process daemon: the daemon, the targets it
// checkpoints (killed at TearDown) and helpers for the usual steps.
// Needs root (skips without: CRIU cannot run).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "tests/testing/criu_test_util.h"
#include "tests/testing/daemon_fixture.h"

namespace ckptd::testing {

namespace ct = ckptd::criu::testing;

class JobsFixture : public DaemonFixture {
 protected:
  JobsFixture() : DaemonFixture(When::kByTest, "ckptd-jobs-test") {}
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "CRIU needs root";
    StartDaemon();
  }
  void TearDown() override {
    targets_.KillAll();
    DaemonFixture::TearDown();
  }
  std::string Images() const { return dir_.File("images"); }
  std::string Staging() const { return dir_.File("staging"); }
  // The counter keeps going from `from` (never below it, grows by 5).
  static void ExpectContinues(const std::filesystem::path& out, uint64_t from) {
    auto first = ct::ReadProgress(out);
    ASSERT_TRUE(first.valid);
    EXPECT_GE(first.n, from) << "counter reset after restore";
    EXPECT_TRUE(ct::WaitProgress(out, from + 5)) << "counter does not advance after restore";
    auto later = ct::ReadProgress(out);
    EXPECT_TRUE(later.ok);
    EXPECT_GE(later.n, from + 5);
  }

  // targets_.Start(mode, out, min_n, args, timeout) into *pid, then a
  // checkpoint of it with `extra` that must succeed: the finished job;
  // empty when the workload did not start or the job failed.
  boost::json::object CheckpointNew(pid_t* pid, const std::string& mode, const std::filesystem::path& out, uint64_t min_n,
                             boost::json::object extra = {}, const std::vector<std::string>& args = {},
                             std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    *pid = targets_.Start(mode, out, min_n, args, timeout);
    EXPECT_GT(*pid, 0) << mode << " did not start";
    if (*pid <= 0) return {};
    boost::json::object job = Checkpoint(*pid, std::move(extra));
    EXPECT_EQ(Str(job, "state"), "succeeded") << boost::json::serialize(job);
    return Str(job, "state") == "succeeded" ? job : boost::json::object{};
  }

  // Restores checkpoint `id` (with `extra` in the request), which must succeed: the restored root,
  // killed at TearDown; -1 when the job failed.
  pid_t RestoredFrom(const std::string& id, boost::json::object extra = {}) {
    boost::json::object rj = Restore(id, std::move(extra));
    EXPECT_EQ(Str(rj, "state"), "succeeded") << boost::json::serialize(rj);
    if (Str(rj, "state") != "succeeded") return -1;
    auto restored = static_cast<pid_t>(rj.at("pid").as_int64());
    targets_.Add(restored);
    return restored;
  }

  // The tcp workload connected to a loopback listener that never accepts
  // (the handshake completes in its backlog), once it waits for the echo:
  // an established connection. Returns the listener (the caller closes
  // it) and the workload's pid in *pid, killed at TearDown; -1 on failure.
  int ConnectedTcpWorkload(const std::filesystem::path& out, pid_t* pid) {
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (lfd < 0 || bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(lfd, 4) != 0 ||
        getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "loopback listener: " << std::strerror(errno);
      if (lfd >= 0) close(lfd);
      return -1;
    }
    *pid = ct::StartWorkload("tcp", out, {"--port", std::to_string(ntohs(a.sin_port))});
    targets_.Add(*pid);
    for (int i = 0; i < 200 && ct::ProcState(*pid) != 'S'; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return lfd;
  }

  ct::TempDir work_{"ckptd-jobs-work"};
  ct::Targets targets_;
};

}  // namespace ckptd::testing
