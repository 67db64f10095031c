// Time of each GPU checkpoint step through the fake driver, for both
// backends: the orchestration + loading + tool-spawn overhead ckptd adds on
// top of the driver's own work (the fake does none). Prints figures only.
//   ckptd_gpu_bench [iterations]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/subprocess.h"
#include "gpu/orchestrator.h"
#include "tests/testing/test_util.h"

using namespace ckptd;
using namespace ckptd::gpu;

namespace {

struct Stats {
  std::vector<double> v;
  void Add(double x) { v.push_back(x); }
  double Pct(double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
  }
};

void RunBackend(const char* name, GpuCheckpointer* ckpt, int pid, int iterations) {
  GpuOrchestrator orch(ckpt);
  std::map<std::string, Stats> per_op;
  Stats prepare, resume;
  for (int i = 0; i < iterations; ++i) {
    GpuReport r;
    Status st = orch.PrepareForDump({pid}, std::chrono::seconds(5), &r);
    if (st.ok()) st = orch.ResumeAfterDump({pid}, &r);
    if (!st.ok()) {
      std::printf("%s: iteration %d failed: %s\n", name, i, st.ToString().c_str());
      return;
    }
    prepare.Add(r.prepare_ms);
    resume.Add(r.resume_ms);
    for (const auto& s : r.processes[0].steps) per_op[s.phase + "/" + s.op].Add(s.ms);
  }
  std::printf("\n%s (%s), %d iterations, one process, ms p50 / p90 / max:\n", name, ckpt->DriverInfo().version.c_str(),
              iterations);
  for (auto& [op, s] : per_op) {
    std::printf("  %-22s %8.3f %8.3f %8.3f\n", op.c_str(), s.Pct(0.5), s.Pct(0.9), s.Pct(1.0));
  }
  std::printf("  %-22s %8.3f %8.3f %8.3f\n", "PrepareForDump", prepare.Pct(0.5), prepare.Pct(0.9), prepare.Pct(1.0));
  std::printf("  %-22s %8.3f %8.3f %8.3f\n", "ResumeAfterDump", resume.Pct(0.5), resume.Pct(0.9), resume.Pct(1.0));
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = argc > 1 ? std::atoi(argv[1]) : 200;
  ckptd::testing::TempDir tmp("ckptd-gpu-bench");
  const std::string dir = tmp.path().string();
  setenv("CKPTD_FAKE_CUDA_STATE_DIR", dir.c_str(), 1);

  // The "GPU process": this process, registered when the fake driver loads.
  GpuConfig driver_cfg;
  driver_cfg.driver_library = CKPTD_FAKE_CUDA_LIB;
  driver_cfg.tool_path = "";
  auto t0 = std::chrono::steady_clock::now();
  auto driver = OpenGpuCheckpointer(driver_cfg, SystemProcessRunner::Default());
  double open_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("open driver-api backend: %.3f ms (%s)\n", open_ms,
              driver.availability.available ? "available" : driver.availability.reason.c_str());
  if (driver.availability.available) RunBackend("driver-api", driver.checkpointer.get(), getpid(), iterations);

  GpuConfig tool_cfg;
  tool_cfg.driver_library = CKPTD_FAKE_CUDA_NOCKPT_LIB;
  tool_cfg.tool_path = CKPTD_FAKE_CUDA_TOOL;
  t0 = std::chrono::steady_clock::now();
  auto tool = OpenGpuCheckpointer(tool_cfg, SystemProcessRunner::Default());
  open_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("\nopen cuda-checkpoint backend: %.3f ms (%s)\n", open_ms,
              tool.availability.available ? "available" : tool.availability.reason.c_str());
  if (tool.availability.available) {
    RunBackend("cuda-checkpoint", tool.checkpointer.get(), getpid(), std::max(1, iterations / 4));
  }
  return 0;
}
