// The configuration as an operator meets it, through the real binary:
// precedence (file < environment < flag), --check-config on good and bad
// files (exit status, the offending key named, secrets masked), and the
// shipped example systemd/ckptd.toml (lists every setting, checks clean).
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>

#include "daemon/config.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/test_util.h"

namespace ckptd::testing {
namespace {

// ckptd with a clean environment plus `env` ("A=b C=d").
CommandResult Ckptd(const std::string& env, const std::string& args) {
  return RunCommand("env -i PATH=/usr/bin:/bin " + env + " " + CkptdBinary() + " " + args);
}

TEST(ConfigCliTest, PrecedenceFileThenEnvironmentThenFlag) {
  TempDir dir("ckptd-cfg");
  std::string file = dir.File("c.toml");
  WriteFileText(file,
                "listen = \"127.0.0.1:1111\"\n"
                "log_level = \"debug\"\n"
                "data_dir = \"/from/file\"\n"
                "job_workers = 3\n");
  auto r = Ckptd("CKPTD_LOG_LEVEL=warn CKPTD_DATA_DIR=/from/env",
                 "--config " + file + " --data-dir /from/flag --check-config");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("listen = \"127.0.0.1:1111\""), std::string::npos) << r.output;  // file
  EXPECT_NE(r.output.find("job_workers = \"3\""), std::string::npos) << r.output;          // file
  EXPECT_NE(r.output.find("log_level = \"warn\""), std::string::npos) << r.output;         // env > file
  EXPECT_NE(r.output.find("data_dir = \"/from/flag\""), std::string::npos) << r.output;    // flag > env
  EXPECT_NE(r.output.find("io_threads = \"0\""), std::string::npos) << r.output;           // default
  EXPECT_NE(r.output.find("# from " + file), std::string::npos) << r.output;

  // CKPTD_CONFIG names the file when --config is absent.
  r = Ckptd("CKPTD_CONFIG=" + file, "--check-config");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("data_dir = \"/from/file\""), std::string::npos) << r.output;
}

TEST(ConfigCliTest, CheckConfigMasksSecrets) {
  TempDir dir("ckptd-cfg");
  std::string file = dir.File("c.toml");
  WriteFileText(file, "token = \"s3cret-token-value\"\n");
  auto r = Ckptd("", "--config " + file + " --check-config");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.find("s3cret-token-value"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("token = \"********\""), std::string::npos) << r.output;
  r = Ckptd("CKPTD_TOKEN=env-secret-value", "--check-config");
  EXPECT_EQ(r.output.find("env-secret-value"), std::string::npos) << r.output;
}

TEST(ConfigCliTest, CheckConfigRejectsBadFilesNamingTheKey) {
  TempDir dir("ckptd-cfg");
  struct Case {
    std::string text, must_mention;
  } cases[] = {
      {"listen = \"127.0.0.1:8080\"\nno_such_setting = 1\n", "no_such_setting"},
      {"io_threads = -1\n", "io_threads"},
      {"job_queue = \"many\"\n", "job_queue"},
      {"log_format = \"xml\"\n", "log_format"},
      {"log_level = [\"debug\"]\n", "log_level"},
      // A float beyond int64: undefined behaviour inside toml++ before (the
      // UBSan suite fails on it), a typed refusal now. Found by fuzz_config_toml.
      {"io_threads = 1.01e48\n", "io_threads"},
      {"listen = \"127.0.0.1:8080\n", "c.toml:1"},  // TOML syntax error: file and line
  };
  for (const auto& c : cases) {
    WriteFileText(dir.File("c.toml"), c.text);
    auto r = Ckptd("", "--config " + dir.File("c.toml") + " --check-config");
    EXPECT_NE(r.status, 0) << c.text;
    EXPECT_NE(r.output.find(c.must_mention), std::string::npos) << c.text << " -> " << r.output;
    EXPECT_NE(r.output.find("configuration error"), std::string::npos) << r.output;
  }
  // A missing file is an error too, and so is a bad value in the environment.
  auto r = Ckptd("", "--config " + dir.File("missing.toml") + " --check-config");
  EXPECT_NE(r.status, 0) << r.output;
  r = Ckptd("CKPTD_IO_THREADS=lots", "--check-config");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("CKPTD_IO_THREADS"), std::string::npos) << r.output;
}

TEST(ConfigCliTest, ExampleConfigListsEverySettingAndChecksClean) {
  std::string path = std::string(CKPTD_SOURCE_DIR) + "/systemd/ckptd.toml";
  std::string text = ReadFileText(path);
  ASSERT_FALSE(text.empty()) << path;
  // Every `key = value` line, active or commented out.
  std::set<std::string> listed;
  std::regex line(R"(^#?\s*([a-z0-9_]+)\s*=)");
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (std::regex_search(l, m, line)) {
      EXPECT_TRUE(listed.insert(m[1]).second) << "listed twice: " << m[1];
    }
  }
  std::set<std::string> known;
  for (const auto& s : ConfigSettings()) {
    known.insert(s.key);
    EXPECT_TRUE(listed.count(s.key)) << "systemd/ckptd.toml does not document '" << s.key << "'";
  }
  for (const auto& k : listed) EXPECT_TRUE(known.count(k)) << "systemd/ckptd.toml lists unknown '" << k << "'";

  auto r = Ckptd("", "--config " + path + " --check-config");
  EXPECT_EQ(r.status, 0) << r.output;
  // With every commented line enabled, the documented defaults must be the
  // daemon's defaults (except criu_path, a build option, and the two paths documented with
  // their derived value).
  TempDir dir("ckptd-cfg");
  std::string all;
  std::istringstream in2(text);
  for (std::string l; std::getline(in2, l);) {
    std::smatch m;
    if (std::regex_search(l, m, line) && m[1] != "criu_path" && m[1] != "token_file" && m[1] != "images_dir")
      all += (l[0] == '#' ? l.substr(1) : l) + "\n";
  }
  WriteFileText(dir.File("all.toml"), all);
  auto with_all = Ckptd("", "--config " + dir.File("all.toml") + " --check-config");
  auto defaults = Ckptd("", "--check-config");
  ASSERT_EQ(with_all.status, 0) << with_all.output << "\n" << all;
  auto strip = [](std::string s) { return s.substr(s.find('\n') + 1); };  // "# from ..." line
  EXPECT_EQ(strip(with_all.output), defaults.output);
}

// io_threads = 0, the default, follows the CPUs too: one I/O thread per
// kCpusPerIoThread, at least one, at most kMaxAutoIoThreads.
TEST(ConfigCliTest, IoThreadsZeroFollowsTheCpus) {
  EXPECT_EQ(Config{}.io_threads, 0);
  EXPECT_EQ(IoThreadsFor(3, 64), 3);  // as set
  EXPECT_EQ(IoThreadsFor(0, 1), 1);
  EXPECT_EQ(IoThreadsFor(0, 2 * kCpusPerIoThread - 1), 1);
  EXPECT_EQ(IoThreadsFor(0, 2 * kCpusPerIoThread), 2);
  EXPECT_EQ(IoThreadsFor(0, 1024), kMaxAutoIoThreads);
}

// page_server = "auto", the default, follows the CPUs the daemon may use:
// off on the small machines where the socket's pipeline would hold CRIU
// (and the frozen tree) back, on from kPageServerAutoMinCpus up; "true" and
// "false" hold whatever the machine.
TEST(ConfigCliTest, PageServerAutoFollowsTheCpus) {
  EXPECT_EQ(Config{}.page_server, "auto");
  EXPECT_FALSE(PageServerOn("auto", 1));
  EXPECT_FALSE(PageServerOn("auto", kPageServerAutoMinCpus - 1));
  EXPECT_TRUE(PageServerOn("auto", kPageServerAutoMinCpus));
  EXPECT_TRUE(PageServerOn("auto", 64));
  EXPECT_TRUE(PageServerOn("true", 1));
  EXPECT_FALSE(PageServerOn("false", 64));
  auto r = Ckptd("CKPTD_PAGE_SERVER=sometimes", "--check-config");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("not one of auto, true, false"), std::string::npos) << r.output;
}

// What SIGHUP reloads is documented where operators look: in the example
// config each setting's comment says "(SIGHUP applies it)" exactly when it
// is reloadable, and the README's configuration table marks every
// reloadable setting *SIGHUP*.
TEST(ConfigCliTest, ReloadableSettingsAreMarkedInTheExampleConfigAndReadme) {
  std::string toml = ReadFileText(std::string(CKPTD_SOURCE_DIR) + "/systemd/ckptd.toml");
  std::string readme = ReadFileText(std::string(CKPTD_SOURCE_DIR) + "/README.md");
  ASSERT_FALSE(toml.empty());
  ASSERT_FALSE(readme.empty());
  // Each key's comment: the comment lines right above it (up to a blank line
  // or another key).
  std::map<std::string, std::string> doc;
  std::regex key_line(R"(^#?\s*([a-z0-9_]+)\s*=)");
  std::string comment;
  std::istringstream in(toml);
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (std::regex_search(l, m, key_line)) {
      doc[m[1]] = comment;
      comment.clear();
    } else if (!l.empty() && l[0] == '#') {
      comment += l + "\n";
    } else {
      comment.clear();
    }
  }
  std::vector<std::string> table_rows;
  std::istringstream rin(readme);
  for (std::string l; std::getline(rin, l);)
    if (l.rfind("| `", 0) == 0) table_rows.push_back(l);
  for (const auto& s : ConfigSettings()) {
    ASSERT_TRUE(doc.count(s.key)) << s.key;
    bool marked = doc[s.key].find("(SIGHUP applies it") != std::string::npos;
    EXPECT_EQ(marked, s.reloadable) << "systemd/ckptd.toml, comment of " << s.key << ":\n" << doc[s.key];
    if (!s.reloadable) continue;
    bool in_table = false;
    for (const auto& row : table_rows)
      if (row.find("`" + s.key + "`") != std::string::npos && row.find("*SIGHUP*") != std::string::npos)
        in_table = true;
    EXPECT_TRUE(in_table) << "README's configuration table does not mark " << s.key << " *SIGHUP*";
  }
}

}  // namespace
}  // namespace ckptd::testing
