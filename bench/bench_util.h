// Small helpers the benchmarks share.
#pragma once

#include <errno.h>  // program_invocation_short_name
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

namespace ckptd::bench {

// Seconds since `t` on the monotonic clock.
inline double Secs(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Bytes of the regular files under `d`.
inline uint64_t DirBytes(const std::filesystem::path& d) {
  uint64_t n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(d, ec))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

// CPU seconds (user + system) used so far by this process and by its
// children that were waited for (CRIU's swrk helpers). Under load from
// other processes wall time stretches; CPU time says what the work cost.
inline double CpuSecs() {
  auto secs = [](const rusage& r) {
    return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
  };
  rusage self{}, children{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  return secs(self) + secs(children);
}

// A benchmark that cannot go on. Die() throws it; RunBench() prints
// "<program>: <what>" on stderr and returns 1 after the stack has unwound,
// so temporary directories (gigabytes of images) and child servers are
// removed by their destructors instead of left behind by exit().
struct Failure {
  std::string what;
};
[[noreturn]] inline void Die(const std::string& what) { throw Failure{what}; }

// The middle value of the sorted figures (the upper one of an even
// count); 0 for none.
inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// fsync() of every file directly in `dir`, then of `dir`: what a local
// store does to images before it calls them durable. Dies on a failure.
inline void FsyncFilesIn(const std::filesystem::path& dir) {
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    int fd = open(e.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) Die("fsync " + e.path().string());
    close(fd);
  }
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0) Die("fsync " + dir.string());
  close(fd);
}

// Waits for job `id` (JobManager::WaitJob) and returns it; Die()s unless
// it succeeded.
template <class Jobs>
boost::json::value SucceededJob(Jobs* jobs, const std::string& id, std::string_view what) {
  auto job = jobs->WaitJob(id, std::chrono::hours(1));
  if (!job.ok()) Die(std::string(what) + " job: " + job.status().ToString());
  if (job->at("state") != "succeeded") Die(std::string(what) + " job: " + boost::json::serialize(*job));
  return std::move(*job);
}

// main() { return RunBench([&] { return Main(argc, argv); }); }
template <class F>
int RunBench(F&& body) {
  try {
    return body();
  } catch (const Failure& f) {
    std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, f.what.c_str());
    return 1;
  }
}

}  // namespace ckptd::bench
