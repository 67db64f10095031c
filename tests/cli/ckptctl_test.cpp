// The real ckptctl binary against an in-process daemon.
#include <boost/json.hpp>

#include "common/subprocess.h"
#include "tests/testing/daemon_fixture.h"

namespace ckptd {
namespace {

namespace json = boost::json;
using testing::DaemonFixture;

class CkptctlTest : public DaemonFixture {
 protected:
  RunResult Ctl(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    std::vector<std::string> argv = {std::string(CKPTD_BINARY_DIR) + "/ckptctl", "--url", BaseUrl()};
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions opts;
    opts.deadline = std::chrono::seconds(30);
    opts.env = std::move(env);
    if (!opts.env.count("CKPTD_TOKEN_FILE")) opts.env["CKPTD_TOKEN_FILE"] = dir_.File("token");
    auto r = SystemProcessRunner::Default()->Run(argv, opts);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : RunResult{};
  }
  std::string Create(const std::string& body = "") { return Client()->Send("POST", "/v2/checkpoints", body)->body; }
};

TEST_F(CkptctlTest, ListEmptyAndWithRecords) {
  auto empty = Ctl({"--json", "list"});
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_EQ(json::parse(empty.out), json::array{});

  auto a = Create(R"({"name":"alpha"})");
  auto b = Create();
  auto table = Ctl({"list"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.rfind("ID", 0), 0u);
  EXPECT_NE(table.out.find(a), std::string::npos);
  EXPECT_NE(table.out.find(b), std::string::npos);
  EXPECT_NE(table.out.find("alpha"), std::string::npos);
  EXPECT_LT(table.out.find(a), table.out.find(b));

  auto js = Ctl({"--json", "list"});
  EXPECT_EQ(json::parse(js.out).as_array().size(), 2u);
  auto one = Ctl({"--json", "list", "--limit", "1"});
  auto arr = json::parse(one.out).as_array();
  ASSERT_EQ(arr.size(), 1u);
  EXPECT_EQ(arr[0].at("id").as_string(), a);
}

TEST_F(CkptctlTest, GetAndDeprecate) {
  auto id = Create(R"({"name":"beta"})");
  auto get = Ctl({"get", id});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_NE(get.out.find("status:       initializing"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("beta"), std::string::npos);

  auto dep = Ctl({"deprecate", id});
  ASSERT_EQ(dep.exit_code, 0) << dep.err;
  EXPECT_EQ(dep.out, "deprecated " + id + "\n");
  auto js = Ctl({"--json", "get", id});
  EXPECT_EQ(json::parse(js.out).at("status").as_string(), "deprecated");
}

// `get` prints info as an outline a person reads: phases with their unit,
// sizes in binary units, options and GPU steps nested; --json is the API's.
TEST_F(CkptctlTest, GetPrintsInfoReadably) {
  auto id = Create(R"({"name":"gamma"})");
  auto put = Client()->Send("PUT", "/v2/checkpoints/info/" + id, R"({"gpu":"none","platform":"linux/x86_64","info":
      {"pid": 42, "options": {"leave_running": true, "external": []},
       "timings_ms": {"dump": 887, "upload": 1310},
       "image_bytes": 1610612736,
       "gpu": {"steps": [{"step": "lock", "ms": 12}]}}})");
  ASSERT_TRUE(put.ok());
  ASSERT_EQ(put->status, 200) << put->body;
  auto get = Ctl({"get", id});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  for (const char* line : {"info:\n", "\n  pid: 42\n", "\n  options:\n    leave_running: true\n    external: []\n",
                           "\n  timings_ms:\n    dump: 887 ms\n    upload: 1310 ms\n",
                           "\n  image_bytes: 1.5 GiB (1610612736)\n",
                           "\n  gpu:\n    steps:\n      -\n        step: lock\n        ms: 12\n"})
    EXPECT_NE(get.out.find(line), std::string::npos) << "missing '" << line << "' in:\n" << get.out;
  auto js = Ctl({"--json", "get", id});
  ASSERT_EQ(js.exit_code, 0) << js.err;
  EXPECT_EQ(json::parse(js.out).at("info").at("timings_ms").at("dump").as_int64(), 887);
}

TEST_F(CkptctlTest, ErrorsHaveMessagesAndExitCodes) {
  auto unknown = Ctl({"get", "3f2a0000-0000-4000-8000-000000000000"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("HTTP 404"), std::string::npos) << unknown.err;
  EXPECT_NE(unknown.err.find("not found"), std::string::npos) << unknown.err;

  auto bad = Ctl({"deprecate", "nope"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("HTTP 400"), std::string::npos);

  auto wrong = Ctl({"--token", "wrong", "list"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("HTTP 401"), std::string::npos);

  auto usage = Ctl({"frobnicate"});
  EXPECT_EQ(usage.exit_code, 2);

  auto no_token = Ctl({"list"}, {{"CKPTD_TOKEN_FILE", dir_.File("absent")}});
  EXPECT_EQ(no_token.exit_code, 2);
  EXPECT_NE(no_token.err.find("no token"), std::string::npos);
}

TEST_F(CkptctlTest, UnreachableDaemonIsExit3) {
  uint16_t port = daemon_->port();
  daemon_.reset();
  std::vector<std::string> argv = {std::string(CKPTD_BINARY_DIR) + "/ckptctl", "--url",
                                   "http://127.0.0.1:" + std::to_string(port), "--token", "t", "list"};
  auto r = SystemProcessRunner::Default()->Run(argv, RunOptions{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_NE(r->err.find("cannot connect"), std::string::npos) << r->err;
}

}  // namespace
}  // namespace ckptd
