// ReadToEnd and ReadFileTo, and the procfs readers built on it, on processes that go away:
// a read error is an answer, never an exception (libstdc++'s filebuf throws
// on one, and the daemon's recovery died of it when a process left between
// opening its stat file and reading it).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/fd.h"
#include "common/proc.h"
#include "tests/testing/test_util.h"

namespace ckptd {
namespace {

using testing::TempDir;

// A child that waits to be killed.
pid_t Sleeper() {
  pid_t pid = fork();
  if (pid == 0) {
    pause();
    _exit(0);
  }
  return pid;
}

TEST(ReadToEnd, ReadsAWholeFile) {
  UniqueFd fd(open("/proc/self/status", O_RDONLY | O_CLOEXEC));
  ASSERT_GE(fd.get(), 0);
  std::string s = "kept:";
  ASSERT_TRUE(ReadToEnd(fd.get(), &s));
  EXPECT_EQ(s.rfind("kept:Name:", 0), 0u) << s.substr(0, 40);
  EXPECT_NE(s.find("\nPid:"), std::string::npos);
}

TEST(ReadToEnd, ReadFileToOpensWithTheGivenFlags) {
  TempDir tmp("ckptd-fd");
  const std::string file = tmp.File("f"), link = tmp.File("l");
  { std::ofstream(file) << "text"; }
  ASSERT_EQ(symlink(file.c_str(), link.c_str()), 0);
  std::string s = "kept:";
  ASSERT_TRUE(ReadFileTo(file, &s));
  EXPECT_EQ(s, "kept:text");
  s.clear();
  ASSERT_TRUE(ReadFileTo(link, &s));
  EXPECT_EQ(s, "text");
  s.clear();
  errno = 0;
  EXPECT_FALSE(ReadFileTo(link, &s, O_NOFOLLOW));
  EXPECT_EQ(errno, ELOOP);
  EXPECT_FALSE(ReadFileTo(tmp.File("missing"), &s));
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(s, "");
}

TEST(ReadToEnd, AProcessGoneAfterTheOpenIsAnErrorNotAThrow) {
  pid_t pid = Sleeper();
  ASSERT_GT(pid, 0);
  UniqueFd stat(open(fmt::format("/proc/{}/stat", pid).c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd cmdline(open(fmt::format("/proc/{}/cmdline", pid).c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_GE(stat.get(), 0);
  ASSERT_GE(cmdline.get(), 0);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
  std::string s;
  errno = 0;
  EXPECT_FALSE(ReadToEnd(stat.get(), &s)) << "read: " << s;
  EXPECT_EQ(errno, ESRCH);
  EXPECT_FALSE(ReadToEnd(cmdline.get(), &s));
  // The readers of proc.h answer "nothing there" for it.
  EXPECT_EQ(ProcState(pid), 0);
  EXPECT_EQ(Cmdline(pid), "");
  EXPECT_FALSE(ProcStartTime(pid).has_value());
}

}  // namespace
}  // namespace ckptd
