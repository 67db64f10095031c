// SIGHUP reload of what can change at run time (daemon/reload.h):
// - ReloadConfig/ApplyReload: which keys are applied and which need a
//   restart, what `running` holds afterwards, that a bad file changes nothing;
// - the real binary with a config file that the test edits between SIGHUPs:
//   body and header limits seen over real HTTP (a body accepted before is
//   413 after, and back), and a new cleanup interval waking a cleaner that
//   sleeps on a long one.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <set>

#include "api/client.h"
#include "daemon/reload.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/test_util.h"

namespace ckptd::testing {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// ReloadConfig reads argv and the environment; the argv it is given.
struct Argv {
  explicit Argv(std::vector<std::string> args) : args_(std::move(args)) {
    args_.insert(args_.begin(), "ckptd");
    for (auto& a : args_) ptrs_.push_back(a.data());
    ptrs_.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(args_.size()); }
  char** argv() { return ptrs_.data(); }

 private:
  std::vector<std::string> args_;
  std::vector<char*> ptrs_;
};

TEST(ReloadConfigTest, TheReloadableSettingsAreTheRuntimeLimitsCleanupAndLogLevel) {
  std::set<std::string> reloadable;
  for (const auto& s : ConfigSettings())
    if (s.reloadable) reloadable.insert(s.key);
  // Daemon::ApplyReloadable applies exactly these (plus log_level in
  // ReloadConfig); a key added here without wiring it would be reported as
  // applied while doing nothing.
  EXPECT_EQ(reloadable, (std::set<std::string>{"log_level", "max_body_bytes", "header_limit_bytes",
                                               "read_timeout_s", "idle_timeout_s", "max_connections",
                                               "cleanup_interval_s", "cleanup_retention_s"}));
}

TEST(ReloadConfigTest, AppliesReloadableKeysAndListsTheRestAsNeedingARestart) {
  TempDir dir("ckptd-reload");
  std::string file = dir.File("c.toml");
  WriteFileText(file,
                "log_level = \"info\"\n"
                "max_body_bytes = 1048576\n"
                "cleanup_interval_s = 300\n"
                "job_workers = 2\n"
                "data_dir = \"/var/lib/a\"\n");
  Argv args({"--config", file, "--listen", "127.0.0.1:1"});
  auto start = LoadConfig(args.argc(), args.argv());
  ASSERT_TRUE(start.ok()) << start.status().ToString();
  Config running = start->config;

  // Nothing changed: nothing to report, but the daemon is still told (it is
  // idempotent) with the configuration in effect.
  int calls = 0;
  Config seen;
  auto apply = [&](const Config& c) {
    ++calls;
    seen = c;
  };
  auto same = ReloadConfig(args.argc(), args.argv(), &running, apply);
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_TRUE(same->applied.empty());
  EXPECT_TRUE(same->need_restart.empty());
  EXPECT_EQ(calls, 1);

  WriteFileText(file,
                "log_level = \"warn\"\n"
                "max_body_bytes = 65536\n"
                "header_limit_bytes = 4096\n"
                "cleanup_interval_s = 5\n"
                "cleanup_retention_s = 60\n"
                "job_workers = 7\n"
                "data_dir = \"/var/lib/b\"\n"
                "listen = \"127.0.0.1:2\"\n");  // the flag still wins: not a change
  auto r = ReloadConfig(args.argc(), args.argv(), &running, apply);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->applied, (std::vector<std::string>{"log_level", "max_body_bytes", "header_limit_bytes",
                                                  "cleanup_interval_s", "cleanup_retention_s"}));
  EXPECT_EQ(r->need_restart, (std::vector<std::string>{"data_dir", "job_workers"}));
  // Applied keys are in effect; the others keep their start-up values, so
  // they are reported again next time.
  EXPECT_EQ(running.log_level, "warn");
  EXPECT_EQ(running.max_body_bytes, 65536);
  EXPECT_EQ(running.header_limit_bytes, 4096);
  EXPECT_EQ(running.cleanup_interval_s, 5);
  EXPECT_EQ(running.cleanup_retention_s, 60);
  EXPECT_EQ(running.job_workers, 2);
  EXPECT_EQ(running.data_dir, "/var/lib/a");
  EXPECT_EQ(running.listen, "127.0.0.1:1");
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(seen.max_body_bytes, 65536);
  EXPECT_EQ(seen.cleanup_interval_s, 5);
  EXPECT_EQ(seen.job_workers, 2);
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::warn);

  auto again = ReloadConfig(args.argc(), args.argv(), &running, apply);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->applied.empty());
  EXPECT_EQ(again->need_restart, (std::vector<std::string>{"data_dir", "job_workers"}));

  // A file that does not load changes nothing and applies nothing.
  WriteFileText(file, "max_body_bytes = 2048\nno_such_key = 1\n");
  auto bad = ReloadConfig(args.argc(), args.argv(), &running, apply);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(running.max_body_bytes, 65536);
  EXPECT_EQ(calls, 3);
  WriteFileText(file, "max_body_bytes = 100\n");  // below the minimum
  EXPECT_FALSE(ReloadConfig(args.argc(), args.argv(), &running, apply).ok());
  EXPECT_EQ(running.max_body_bytes, 65536);
  EXPECT_EQ(calls, 3);
  spdlog::default_logger()->set_level(spdlog::level::info);
}

// The real daemon, its config file edited between SIGHUPs.
class ReloadDaemonTest : public ::testing::Test {
 protected:
  static constexpr const char* kToken = "reload-test-token-0123456789";

  void SetUp() override { ASSERT_TRUE(notify_.ok()) << "cannot bind " << notify_.path(); }

  // Starts ckptd with `config` (TOML lines) plus the token.
  void Start(const std::string& config) {
    WriteConfig(config);
    DaemonChild::Options o;
    o.args = {"--config", cfg_};
    o.env.push_back("NOTIFY_SOCKET=" + notify_.path());
    o.log = dir_.File("stderr");
    o.token = kToken;
    o.timeout = seconds(60);
    o.client_timeout = seconds(10);
    ASSERT_GE(child_.Start(dir_.File("data"), o), 0) << ReadFileText(o.log);
    daemon_ = child_.process();
    client_ = child_.client();
    ASSERT_TRUE(notify_.WaitFor("READY=1", seconds(60))) << daemon_->Log();
  }
  void WriteConfig(const std::string& config) {
    WriteFileText(cfg_, fmt::format("token = \"{}\"\n{}", kToken, config));
  }
  // Rewrites the file, sends SIGHUP and waits for the reload to finish.
  void Reload(const std::string& config) {
    WriteConfig(config);
    daemon_->Signal(SIGHUP);
    ASSERT_TRUE(notify_.WaitFor("RELOADING=1", seconds(10))) << daemon_->Log();
    ASSERT_TRUE(notify_.WaitFor("READY=1", seconds(10))) << daemon_->Log();
  }
  void TearDown() override {
    if (!daemon_) return;
    daemon_->Signal(SIGTERM);
    EXPECT_EQ(daemon_->Wait(seconds(30)), 0) << daemon_->Log();
  }

  int Status(const std::string& method, const std::string& target, const std::string& body,
             const std::map<std::string, std::string>& headers = {}) {
    auto r = client_->Send(method, target, body, "application/json", headers);
    if (!r.ok()) {
      ADD_FAILURE() << method << " " << target << ": " << r.status().ToString();
      return -1;
    }
    last_body_ = r->body;
    return r->status;
  }
  // A JSON body of exactly `n` bytes for an agent-state route.
  static std::string Body(size_t n) {
    std::string head = "{\"pad\":\"", tail = "\"}";
    return head + std::string(n - head.size() - tail.size(), 'x') + tail;
  }

  TempDir dir_{"ckptd-reload"};
  NotifySocket notify_{dir_.File("notify")};
  std::string cfg_ = dir_.File("ckptd.toml");
  DaemonChild child_;
  DaemonProcess* daemon_ = nullptr;    // child_'s
  api::HttpClient* client_ = nullptr;  // child_'s
  std::string last_body_;  // of the last Status() call
};

TEST_F(ReloadDaemonTest, BodyAndHeaderLimitsFollowTheFileOnSighup) {
  ASSERT_NO_FATAL_FAILURE(Start("max_body_bytes = 65536\n"));
  const std::string agent = "/checkpoints/put";  // body limit: max_body_bytes
  const std::string cedana = "/v2/checkpoints";   // body limit: 1 MiB, always
  // Answers other than 413 mean the body was read and the handler judged it.
  EXPECT_NE(Status("POST", agent, Body(60 << 10)), 413);
  EXPECT_EQ(Status("POST", agent, Body(200 << 10)), 413);
  EXPECT_EQ(Status("GET", "/v2/checkpoints", "", {{"x-pad", std::string(6000, 'h')}}), 200);

  // Raised above every route's limit at start (the parser's old ceiling),
  // header limit lowered, and a change that needs a restart.
  ASSERT_NO_FATAL_FAILURE(Reload("max_body_bytes = 4194304\nheader_limit_bytes = 4096\njob_workers = 3\n"));
  EXPECT_TRUE(daemon_->WaitForLog("applied: max_body_bytes, header_limit_bytes", seconds(5))) << daemon_->Log();
  EXPECT_TRUE(daemon_->WaitForLog("need a restart to take effect: job_workers", seconds(5))) << daemon_->Log();
  int big = Status("POST", agent, Body(2 << 20));
  EXPECT_NE(big, 413) << last_body_;
  EXPECT_GE(big, 200);
  EXPECT_LT(big, 500);
  EXPECT_NE(Status("POST", agent, Body(200 << 10)), 413);
  // Other routes keep their own limit.
  EXPECT_EQ(Status("POST", cedana, Body(2 << 20)), 413);
  EXPECT_NE(Status("POST", cedana, Body(512 << 10)), 413);
  EXPECT_EQ(Status("GET", "/v2/checkpoints", "", {{"x-pad", std::string(6000, 'h')}}), 431);
  EXPECT_EQ(Status("GET", "/v2/checkpoints", "", {{"x-pad", std::string(1000, 'h')}}), 200);

  // Back down: what was accepted a moment ago is refused again.
  ASSERT_NO_FATAL_FAILURE(Reload("max_body_bytes = 65536\n"));
  EXPECT_EQ(Status("POST", agent, Body(200 << 10)), 413);
  EXPECT_NE(Status("POST", agent, Body(60 << 10)), 413);
  EXPECT_EQ(Status("GET", "/v2/checkpoints", "", {{"x-pad", std::string(6000, 'h')}}), 200);
}

TEST_F(ReloadDaemonTest, ANewCleanupIntervalWakesTheSleepingCleaner) {
  // An hour: no round will run in this test unless the reload wakes it.
  ASSERT_NO_FATAL_FAILURE(Start("cleanup_interval_s = 3600\n"));
  auto created = client_->Send("POST", "/v2/checkpoints", "{}");
  ASSERT_TRUE(created.ok());
  ASSERT_EQ(created->status, 200) << created->body;
  std::string id = created->body;
  ASSERT_EQ(Status("PATCH", "/v2/checkpoints/deprecate/" + id, ""), 200);
  auto cleaned = [&] {
    auto r = client_->Send("GET", "/v2/checkpoints/" + id);
    if (!r.ok() || r->status != 200) return false;
    auto v = json::parse(r->body);
    const json::object* o = v.if_object();
    // GET answers the record, or a one-element list of it.
    if (!o && v.is_array() && !v.as_array().empty()) o = v.as_array()[0].if_object();
    const json::value* c = o ? o->if_contains("cleaned_at") : nullptr;
    return c && !c->is_null();
  };
  std::this_thread::sleep_for(milliseconds(1500));
  ASSERT_FALSE(cleaned()) << "cleaned without a round being due";

  auto reloaded_at = std::chrono::steady_clock::now();
  ASSERT_NO_FATAL_FAILURE(Reload("cleanup_interval_s = 1\n"));
  EXPECT_TRUE(daemon_->WaitForLog("applied: cleanup_interval_s", seconds(5))) << daemon_->Log();
  bool done = false;
  while (!done && std::chrono::steady_clock::now() - reloaded_at < seconds(10)) {
    done = cleaned();
    if (!done) std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(done) << "deprecated checkpoint not cleaned within 10 s of cleanup_interval_s = 1\n"
                    << daemon_->Log();
  EXPECT_NE(daemon_->Log().find("cleanup: checkpoint " + id + ": objects deleted"), std::string::npos)
      << daemon_->Log();

  // 0 pauses the rounds; a later reload resumes them.
  ASSERT_NO_FATAL_FAILURE(Reload("cleanup_interval_s = 0\n"));
  auto second = client_->Send("POST", "/v2/checkpoints", "{}");
  ASSERT_TRUE(second.ok());
  std::string id2 = second->body;
  ASSERT_EQ(Status("PATCH", "/v2/checkpoints/deprecate/" + id2, ""), 200);
  std::this_thread::sleep_for(milliseconds(2500));
  EXPECT_EQ(daemon_->Log().find("cleanup: checkpoint " + id2 + ": objects deleted"), std::string::npos)
      << "a round ran with cleanup_interval_s = 0\n"
      << daemon_->Log();
  ASSERT_NO_FATAL_FAILURE(Reload("cleanup_interval_s = 1\n"));
  EXPECT_TRUE(daemon_->WaitForLog("cleanup: checkpoint " + id2 + ": objects deleted", seconds(10)))
      << daemon_->Log();
}

}  // namespace
}  // namespace ckptd::testing
