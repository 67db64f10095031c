// Wall time of the GPU phases for a tree of 1 and of N fake GPU processes
// whose every driver step takes --step-ms (the fake's slow_ms), with the
// orchestrator driving them one after the other (max_parallel 1) and all at
// once (the default). Rounds are interleaved; medians are printed, with the
// ratios issue 17 asks for: N processes against one (parallel; goal <= 1.3)
// and sequential against parallel for N.
//   ckptd_gpu_phases_bench [--processes N] [--step-ms MS] [--rounds R]
// CKPTD_FAKE_CUDA_LIB and CKPTD_GPU_USER override the built-in paths.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "common/subprocess.h"
#include "gpu/orchestrator.h"
#include "tests/testing/test_util.h"

using namespace ckptd;
using namespace ckptd::gpu;
using ckptd::bench::Median;

namespace {

// Built-in paths, or the environment's (scripts/gpu-check.sh runs this
// binary away from its build tree).
std::string PathOf(const char* env, const char* built) {
  const char* v = std::getenv(env);
  return v && *v ? v : built;
}
const std::string kFakeLib = PathOf("CKPTD_FAKE_CUDA_LIB", CKPTD_FAKE_CUDA_LIB);
const std::string kGpuUser = PathOf("CKPTD_GPU_USER", CKPTD_GPU_USER);

// Lock + checkpoint, then restore + unlock, of `pids`; the wall time in ms
// of the four phases, or a negative number when a call failed.
double OneCycle(GpuCheckpointer* ckpt, const std::vector<int>& pids, int max_parallel) {
  GpuOrchestrator orch(ckpt, OrchestratorOptions{3, std::chrono::milliseconds(100), max_parallel});
  GpuReport report;
  Status st = orch.PrepareForDump(pids, std::chrono::seconds(30), &report);
  if (st.ok()) st = orch.ResumeAfterDump(pids, &report);
  if (!st.ok()) {
    std::fprintf(stderr, "cycle failed: %s\n", st.ToString().c_str());
    return -1;
  }
  return report.prepare_ms + report.resume_ms;
}

}  // namespace

int main(int argc, char** argv) {
  int processes = 8, step_ms = 200, rounds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--processes")) processes = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--step-ms")) step_ms = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
  }
  ckptd::testing::TempDir tmp("ckptd-gpu-phases-bench");
  const std::string dir = tmp.path().string();
  setenv("CKPTD_FAKE_CUDA_STATE_DIR", dir.c_str(), 1);
  std::ofstream(dir + "/slow_ms") << step_ms << "\n";

  GpuConfig cfg;
  cfg.driver_library = kFakeLib;
  cfg.tool_path = "";
  auto backend = OpenGpuCheckpointer(cfg, SystemProcessRunner::Default());
  if (!backend.availability.available) {
    std::fprintf(stderr, "fake driver unavailable: %s\n", backend.availability.reason.c_str());
    return 1;
  }
  // Fake GPU processes (tests/gpu/gpu_user with the fake driver loaded),
  // killed when the bench ends.
  std::vector<std::unique_ptr<ckptd::testing::ReadyChild>> users;
  std::vector<int> all;
  for (int i = 0; i < processes; ++i) {
    users.push_back(std::make_unique<ckptd::testing::ReadyChild>(
        std::vector<std::string>{kGpuUser, "--gpu-lib", kFakeLib}));
    all.push_back(users.back()->pid());
  }
  const std::vector<int> one = {all[0]};
  std::map<std::string, std::vector<double>> ms;
  for (int r = 0; r < rounds; ++r) {
    for (int width : {1, 0}) {
      const char* mode = width == 1 ? "sequential" : "parallel";
      ms[std::string(mode) + " 1"].push_back(OneCycle(backend.checkpointer.get(), one, width));
      ms[std::string(mode) + " N"].push_back(OneCycle(backend.checkpointer.get(), all, width));
    }
  }
  std::printf("GPU phases (lock, checkpoint, restore, unlock) over fake processes, %d ms per step, "
              "%d interleaved rounds, median wall ms:\n",
              step_ms, rounds);
  std::printf("  %-12s %12s %12s %10s\n", "", "1 process", "processes", "N / 1");
  for (const char* mode : {"sequential", "parallel"}) {
    double m1 = Median(ms[std::string(mode) + " 1"]), mn = Median(ms[std::string(mode) + " N"]);
    std::printf("  %-12s %12.1f %9.1f (%d) %9.2fx\n", mode, m1, mn, processes, m1 > 0 ? mn / m1 : 0.0);
  }
  double seq = Median(ms["sequential N"]), par = Median(ms["parallel N"]);
  double ratio = Median(ms["parallel N"]) / std::max(1e-9, Median(ms["parallel 1"]));
  std::printf("parallel, %d processes against 1: x%.2f (goal <= 1.3: %s)\n", processes, ratio,
              ratio <= 1.3 ? "met" : "NOT met");
  std::printf("%d processes, sequential against parallel: x%.2f\n", processes, par > 0 ? seq / par : 0.0);
  return 0;
}
