// Keeping the tools' logs of a job past its staging directory.
#include "jobs/job_logs.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/testing/test_util.h"

namespace ckptd {
namespace {

namespace fs = std::filesystem;
using testing::ReadFileText;
using testing::TempDir;

void Write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

TEST(JobLogsTest, KeepsToolLogsOnlyWithoutFollowingSymlinks) {
  TempDir tmp("ckptd-job-logs");
  const fs::path staging = tmp.path() / "staging", root = tmp.path() / "job-logs";
  Write(staging / "restore.log", "criu\n");
  Write(staging / "restore.log.stderr", "stderr\n");
  Write(staging / "work" / "runc.log", "runc\n");
  Write(staging / "rollback-work" / "restore.log", "rollback\n");
  Write(staging / "images" / "x.log", "an image dir is never read\n");
  Write(staging / "inventory.img", "not a log");
  Write(tmp.path() / "secret.log", "outside");
  fs::create_symlink(tmp.path() / "secret.log", staging / "dump.log");
  auto kept = KeepJobLogs(staging, root, "job-1");
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(*kept, 4);
  EXPECT_EQ(ReadFileText((root / "job-1" / "work" / "runc.log").string()), "runc\n");
  EXPECT_FALSE(fs::exists(root / "job-1" / "dump.log")) << "a symlink was followed";
  EXPECT_FALSE(fs::exists(root / "job-1" / "images"));
  EXPECT_FALSE(fs::exists(root / "job-1" / "inventory.img"));
  auto all = ReadJobLogs(root, "job-1");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all,
            "==> restore.log <==\ncriu\n==> restore.log.stderr <==\nstderr\n==> rollback-work/restore.log <==\n"
            "rollback\n==> work/runc.log <==\nrunc\n");
  EXPECT_EQ(ReadJobLogs(root, "job-2").status().code(), Code::kNotFound);
}

// A kept log that fails to read is a note in the answer, not an exception
// out of the route: here a regular file in the job's directory that is a
// bind mount of a procfs file of a process reaped since (reads: ESRCH).
// The mount is made in a child's own mount namespace: never in the host's,
// whose mounts the CRIU tests running beside this one dump.
TEST(JobLogsTest, ALogThatFailsToReadIsANote) {
  TempDir tmp("ckptd-job-logs");
  const fs::path root = tmp.path() / "job-logs";
  Write(root / "job-1" / "a.log", "first\n");
  Write(root / "job-1" / "b.log", "");
  Write(root / "job-1" / "c.log", "last\n");
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(out[0]);
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(2);
    const pid_t gone = fork();
    if (gone == 0) {
      pause();
      _exit(0);
    }
    const std::string stat = fmt::format("/proc/{}/stat", gone);
    if (mount(stat.c_str(), (root / "job-1" / "b.log").c_str(), nullptr, MS_BIND, nullptr) != 0) _exit(3);
    kill(gone, SIGKILL);
    waitpid(gone, nullptr, 0);
    try {
      auto all = ReadJobLogs(root, "job-1");
      const std::string text = all.ok() ? *all : all.status().ToString();
      _exit(write(out[1], text.data(), text.size()) == static_cast<ssize_t>(text.size()) && all.ok() ? 0 : 4);
    } catch (const std::exception& e) {
      const std::string text = std::string("threw: ") + e.what();
      _exit(write(out[1], text.data(), text.size()) > 0 ? 5 : 5);
    }
  }
  close(out[1]);
  std::string all;
  char buf[4096];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) all.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status << ": " << all;
  EXPECT_TRUE(all.starts_with("==> a.log <==\nfirst\n==> b.log <==\n[ckptd: this log could not be read: ")) << all;
  EXPECT_TRUE(all.ends_with("]\n==> c.log <==\nlast\n")) << all;
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 6) << all;
}

TEST(JobLogsTest, BigLogsKeepTheirEnd) {
  TempDir tmp("ckptd-job-logs");
  const fs::path staging = tmp.path() / "staging", root = tmp.path() / "job-logs";
  std::string big(kMaxKeptLogBytes + 1000, 'x');
  big.replace(big.size() - 5, 5, "FAIL\n");
  Write(staging / "dump.log", big);
  ASSERT_TRUE(KeepJobLogs(staging, root, "j").ok());
  std::string kept = ReadFileText((root / "j" / "dump.log").string());
  EXPECT_EQ(kept.rfind("[ckptd: the first 1000 bytes of this log are cut]\n", 0), 0u);
  EXPECT_TRUE(kept.ends_with("FAIL\n"));
  EXPECT_LT(kept.size(), kMaxKeptLogBytes + 100);
}

TEST(JobLogsTest, ErrorsNameTheKeptCopies) {
  TempDir tmp("ckptd-job-logs");
  const fs::path staging = tmp.path() / "staging" / "restore-j", root = tmp.path() / "job-logs";
  Write(staging / "restore.log", "Error (x): boom\n");
  const std::string msg = "criu restore from " + (staging / "images").string() + ": failed: log " +
                          (staging / "restore.log").string() + ": Error (x): boom";
  Status kept = KeepLogsOf(IOError(msg), false, staging, root, "j");
  EXPECT_EQ(kept.code(), Code::kIOError);
  // The log names its kept copy; the images directory, gone, only its name.
  EXPECT_EQ(kept.message(),
            "criu restore from images: failed: log " + (root / "j" / "restore.log").string() + ": Error (x): boom");
  // A success keeps nothing unless asked to.
  EXPECT_TRUE(KeepLogsOf(Status::Ok(), false, staging, root, "ok").ok());
  EXPECT_FALSE(fs::exists(root / "ok"));
  EXPECT_TRUE(KeepLogsOf(Status::Ok(), true, staging, root, "debug").ok());
  EXPECT_TRUE(fs::exists(root / "debug" / "restore.log"));
}

TEST(JobLogsTest, IdsCannotEscapeAndPruneFollowsTheRecords) {
  TempDir tmp("ckptd-job-logs");
  const fs::path staging = tmp.path() / "staging", root = tmp.path() / "job-logs";
  Write(staging / "dump.log", "x\n");
  for (const char* bad : {"", "..", "../x", "a/b", "a b"}) {
    EXPECT_EQ(KeepJobLogs(staging, root, bad).status().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(ReadJobLogs(root, bad).status().code(), Code::kInvalidArgument) << bad;
  }
  ASSERT_TRUE(KeepJobLogs(staging, root, "keep").ok());
  ASSERT_TRUE(KeepJobLogs(staging, root, "gone").ok());
  fs::create_directories(root / "not a job");
  PruneJobLogs(root, [](const std::string& id) { return id == "keep"; });
  EXPECT_TRUE(fs::exists(root / "keep" / "dump.log"));
  EXPECT_FALSE(fs::exists(root / "gone"));
  EXPECT_FALSE(fs::exists(root / "not a job"));
}

}  // namespace
}  // namespace ckptd
