// SIGTERM to the real ckptd binary while it dumps a process (leave_running):
// the daemon exits 0, the target keeps running (never left frozen), and the
// catalog record is
// consistent afterwards (ready when the drain let the job
// finish, deprecated when it did not).
#include <signal.h>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "api/client.h"
#include "daemon/daemon.h"
#include "tests/testing/criu_test_util.h"
#include "tests/testing/daemon_fixture.h"
#include "tests/testing/daemon_process.h"

namespace ckptd {
namespace {

namespace json = boost::json;
namespace ct = ckptd::criu::testing;

struct Case {
  const char* drain_s;
  const char* expected_status;  // after the restart
};

void PrintTo(const Case& c, std::ostream* os) { *os << "drain " << c.drain_s << " s"; }

class SigtermTest : public ::testing::TestWithParam<Case> {};

TEST_P(SigtermTest, DuringACheckpoint) {
  if (geteuid() != 0) GTEST_SKIP() << "CRIU needs root";
  testing::TempDir dir;
  testing::DaemonChild::Options o;
  o.args = {"--shutdown-drain-s", GetParam().drain_s};
  o.log = dir.File("ckptd.log");
  o.timeout = std::chrono::seconds(30);
  testing::DaemonChild child;
  ASSERT_GE(child.Start(dir.path(), o), 0) << testing::ReadFileText(o.log);
  testing::DaemonProcess* d = child.process();
  api::HttpClient* client = child.client();

  auto out = dir.path() / "memory";
  pid_t target = ct::StartWorkload("memory", out, {"--mib", "768"});
  ASSERT_GT(target, 0);
  ASSERT_TRUE(ct::WaitProgress(out, 1, std::chrono::seconds(60)));

  auto sub = client->Send("POST", "/v2/jobs/checkpoint", json::serialize(json::object{{"pid", target}, {"leave_running", true}}));
  ASSERT_TRUE(sub.ok());
  ASSERT_EQ(sub->status, 202) << sub->body;
  auto submitted = json::parse(sub->body);
  std::string job_id(submitted.at("job_id").as_string());
  std::string ckpt_id(submitted.at("checkpoint_id").as_string());

  // SIGTERM once CRIU is at work on the target.
  std::string phase;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    auto j = client->Send("GET", "/v2/jobs/" + job_id);
    ASSERT_TRUE(j.ok());
    phase = std::string(json::parse(j->body).at("phase").as_string());
    if (phase != "queued" && phase != "info") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  d->Signal(SIGTERM);
  auto rc = d->Wait(std::chrono::seconds(150));
  ASSERT_TRUE(rc.has_value()) << "ckptd did not exit after SIGTERM\n" << d->Log();
  EXPECT_EQ(*rc, 0) << d->Log();
  std::printf("SIGTERM in phase %s; drain %s s\n", phase.c_str(), GetParam().drain_s);

  // The target runs on, not stopped, its memory intact.
  EXPECT_TRUE(ct::Alive(target));
  EXPECT_NE(ct::ProcState(target), 'T');
  uint64_t n = ct::ReadProgress(out).n;
  EXPECT_TRUE(ct::WaitProgress(out, n + 1, std::chrono::seconds(60))) << "target stopped making progress";
  EXPECT_TRUE(ct::ReadProgress(out).ok);

  // Restarted on the same data: the record is in a final state.
  Daemon again(testing::TestConfig(dir.path()));
  ASSERT_TRUE(again.Start().ok());
  auto rec = again.catalog()->Get(ckpt_id);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  std::string status(StatusName(rec->status));
  if (phase == "done" || phase == "ready") {
    EXPECT_EQ(status, "ready");  // it finished before the signal
  } else {
    EXPECT_EQ(status, GetParam().expected_status) << json::serialize(rec->info);
  }
  if (status == "ready") {
    EXPECT_TRUE(rec->restore_path.has_value());
  } else {
    EXPECT_TRUE(rec->info.as_object().contains("error"));
  }
  again.Stop();
  ct::KillTree(target);
}

INSTANTIATE_TEST_SUITE_P(Drain, SigtermTest,
                         ::testing::Values(Case{"120", "ready"}, Case{"0", "deprecated"}),
                         [](const auto& tp) { return std::string("drain_") + tp.param.drain_s + "s"; });

}  // namespace
}  // namespace ckptd
