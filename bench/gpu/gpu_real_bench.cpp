// On a real NVIDIA GPU: each GPU step's time for a CUDA process holding
// 4 GiB and 16 GiB of device memory (configurable), driven by ckptd's
// orchestrator through the driver API, the device memory checkpointed and
// restored in GB/s, and the workload's own device-to-host bandwidth for
// comparison. Rounds are repeated; medians are printed. Without a usable
// driver (or without the CUDA workload) it prints "skipped: <why>" and
// exits 0.
//   ckptd_gpu_real_bench [--mib 4096,16384] [--rounds 3]
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "common/subprocess.h"
#include "gpu/orchestrator.h"
#include "tests/testing/cuda_workload.h"
#include "tests/testing/test_util.h"

using namespace ckptd;
using namespace ckptd::gpu;
using ckptd::bench::Median;

namespace {

std::vector<long> ParseSizes(const std::string& list) {
  std::vector<long> out;
  std::istringstream in(list);
  for (std::string item; std::getline(in, item, ',');)
    if (long v = std::atol(item.c_str()); v > 0) out.push_back(v);
  return out;
}

// One workload of `mib` MiB through `rounds` lock/checkpoint/restore/unlock
// cycles; prints its table row. False when a step failed.
bool MeasureSize(GpuCheckpointer* ckpt, long mib, int rounds, const std::string& dir) {
  pid_t root = -1;
  auto procs = ckptd::testing::StartCudaWorkload(
      {"--out", dir + "/counter-" + std::to_string(mib), "--mib", std::to_string(mib), "--step-ms", "20"}, 1, &root);
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
  } reaper{root};
  if (procs.empty()) {
    std::printf("  %6ld MiB: the CUDA workload did not start (out of device memory?)\n", mib);
    return false;
  }
  GpuOrchestrator orch(ckpt);
  std::map<std::string, std::vector<double>> ms;
  for (int r = 0; r < rounds; ++r) {
    GpuReport report;
    Status st = orch.PrepareForDump({procs[0].pid}, std::chrono::seconds(30), &report);
    if (st.ok()) st = orch.ResumeAfterDump({procs[0].pid}, &report);
    if (!st.ok()) {
      std::printf("  %6ld MiB: round %d failed: %s\n", mib, r, st.ToString().c_str());
      return false;
    }
    for (const char* op : {"lock", "checkpoint", "restore", "unlock"})
      ms[op].push_back(report.processes[0].MsFor(op));
  }
  const double gb = static_cast<double>(mib) * (1 << 20) / 1e9;
  auto gbps = [&](double m) { return m > 0 ? gb / (m / 1000) : 0.0; };
  std::printf("  %6ld MiB %10.2f %9.1f %9.1f (%5.2f GB/s) %9.1f (%5.2f GB/s) %9.1f\n", mib, procs[0].d2h_gbps,
              Median(ms["lock"]), Median(ms["checkpoint"]), gbps(Median(ms["checkpoint"])), Median(ms["restore"]),
              gbps(Median(ms["restore"])), Median(ms["unlock"]));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string sizes = "4096,16384";
  int rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--mib")) sizes = argv[i + 1];
    if (!std::strcmp(argv[i], "--rounds")) rounds = std::max(1, std::atoi(argv[i + 1]));
  }
  if (std::string why = ckptd::testing::WhyNoRealGpu(); !why.empty()) {
    std::printf("real GPU benchmark skipped: %s\n", why.c_str());
    return 0;
  }
  GpuConfig cfg;
  cfg.tool_path = "";
  auto backend = OpenGpuCheckpointer(cfg, SystemProcessRunner::Default());
  ckptd::testing::TempDir tmp("ckptd-gpu-real-bench");
  std::printf("real GPU steps, driver %s (%s), %d rounds, medians:\n", backend.availability.driver.version.c_str(),
              backend.availability.backend.c_str(), rounds);
  std::printf("  %10s %10s %9s %22s %22s %9s\n", "device mem", "d2h GB/s", "lock ms", "checkpoint ms", "restore ms",
              "unlock ms");
  bool ok = true;
  for (long mib : ParseSizes(sizes)) ok = MeasureSize(backend.checkpointer.get(), mib, rounds, tmp.path().string()) && ok;
  return ok ? 0 : 1;
}
