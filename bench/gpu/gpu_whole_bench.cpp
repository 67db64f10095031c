// ckptd_gpu_whole_bench [--real|--fake] [--mib N] [--rounds R] [--compression none|lz4|zstd]
//
// A GPU process's whole checkpoint and restore by ckptd against the same
// steps run by hand (issue 17's goal: ckptd within 1.1x):
//   by hand: the driver API's lock and checkpoint, a CRIU dump into a local
//            directory (it ends the process); then a CRIU restore and the
//            driver API's restore and unlock. "synced" adds an fsync of
//            every image file, which ckptd does before a checkpoint is ready;
//   ckptd:   a checkpoint job (leave_running off) and a restore job.
// Each round checkpoints and restores the same process lineage once by hand
// and once by ckptd, in alternating order (the dumped process is reaped
// before its restore: this process is the restored trees' subreaper);
// medians are printed with the ratio. --real (the default where WhyNoRealGpu() is empty) uses NVIDIA's
// driver and the CUDA workload holding --mib MiB of device memory (4096);
// --fake the fake driver and ckptd_workload's memory mode with --mib MiB of
// host memory (256). --real without a GPU prints "skipped" and exits 0.
// Needs root (CRIU).
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "bench/bench_util.h"
#include "criu/criu_driver.h"
#include "daemon/daemon.h"
#include "gpu/cuda_driver.h"
#include "tests/testing/criu_test_util.h"
#include "tests/testing/cuda_workload.h"

namespace ct = ckptd::criu::testing;
namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;
using ckptd::bench::Die;
using ckptd::bench::Median;
using ckptd::bench::Secs;
using ckptd::bench::SucceededJob;

namespace {

struct Options {
  bool real = false;
  int mib = 0;
  int rounds = 3;
  std::string compression = "none";
};

Options Parse(int argc, char** argv) {
  Options o;
  o.real = ckptd::testing::WhyNoRealGpu().empty();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--real" || a == "--fake")
      o.real = a == "--real";
    else if (a == "--mib" && i + 1 < argc)
      o.mib = std::atoi(argv[++i]);
    else if (a == "--rounds" && i + 1 < argc)
      o.rounds = std::max(1, std::atoi(argv[++i]));
    else if (a == "--compression" && i + 1 < argc)
      o.compression = argv[++i];
    else
      Die("usage: ckptd_gpu_whole_bench [--real|--fake] [--mib N] [--rounds R] [--compression none|lz4|zstd]");
  }
  if (o.mib == 0) o.mib = o.real ? 4096 : 256;
  if (o.mib < 0) Die("--mib must be > 0");
  return o;
}

void Check(const ckptd::Status& st, const std::string& what) {
  if (!st.ok()) Die(what + ": " + st.ToString());
}

// The steps run by hand over one process: it ends checkpointed; the restore
// answers the restored process's pid.
class ByHand {
 public:
  ByHand(ckptd::gpu::GpuCheckpointer* gpu, const ckptd::criu::CriuDriver* criu, fs::path dir)
      : gpu_(gpu), criu_(criu), dir_(std::move(dir)) {}

  void Checkpoint(pid_t pid) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    Check(gpu_->Lock(pid, std::chrono::seconds(60)), "lock");
    Check(gpu_->Checkpoint(pid), "GPU checkpoint");
    ckptd::criu::DumpOptions d;
    d.pid = pid;
    d.images_dir = dir_;
    auto dump = criu_->Dump(d);
    if (!dump.ok()) Die("criu dump: " + dump.status().ToString());
  }

  // What ckptd does before it calls a checkpoint ready: the images on disk.
  void SyncImages() const { ckptd::bench::FsyncFilesIn(dir_); }

  pid_t Restore() {
    ckptd::criu::RestoreOptions r;
    r.images_dir = dir_;
    auto rst = criu_->Restore(r);
    if (!rst.ok()) Die("criu restore: " + rst.status().ToString());
    Check(gpu_->Restore(rst->pid, {}), "GPU restore");
    Check(gpu_->Unlock(rst->pid), "unlock");
    return rst->pid;
  }

 private:
  ckptd::gpu::GpuCheckpointer* gpu_;
  const ckptd::criu::CriuDriver* criu_;
  fs::path dir_;
};

// The workload's root, started for the mode; dies with a reason otherwise.
pid_t StartGpuWorkload(const Options& o, const fs::path& dir, const std::string& fake_lib) {
  if (o.real) {
    pid_t root = -1;
    auto procs = ckptd::testing::StartCudaWorkload(
        {"--out", (dir / "counter").string(), "--mib", std::to_string(o.mib), "--step-ms", "20"}, 1, &root);
    if (procs.empty()) Die("the CUDA workload did not start (out of device memory?)");
    std::printf("CUDA workload: %d MiB of device memory on %s, its own d2h %.2f GB/s\n", o.mib, procs[0].uuid.c_str(),
                procs[0].d2h_gbps);
    return root;
  }
  pid_t pid = ct::StartWorkload("memory", dir / "memory", {"--mib", std::to_string(o.mib), "--gpu-lib", fake_lib});
  if (!ct::WaitProgress(dir / "memory", 1, std::chrono::seconds(120))) Die("the workload did not fill its memory");
  std::printf("fake GPU: ckptd_workload memory --mib %d with the fake libcuda.so.1\n", o.mib);
  return pid;
}

void Row(const char* what, const std::vector<double>& hand, const std::vector<double>& job) {
  double h = Median(hand), j = Median(job);
  std::printf("%-26s %12.3f s %12.3f s   x%.2f\n", what, h, j, h > 0 ? j / h : 0);
}

}  // namespace

int Main(int argc, char** argv) {
  Options o = Parse(argc, argv);
  if (o.real && !ckptd::testing::WhyNoRealGpu().empty()) {
    std::printf("whole GPU checkpoint benchmark skipped: %s\n", ckptd::testing::WhyNoRealGpu().c_str());
    return 0;
  }
  spdlog::set_level(spdlog::level::warn);
  ct::TempDir tmp;
  const char* fake_env = std::getenv("CKPTD_FAKE_CUDA_LIB");
  const std::string fake_lib = fake_env && *fake_env ? fake_env : CKPTD_FAKE_CUDA_LIB;
  if (!o.real) setenv("CKPTD_FAKE_CUDA_STATE_DIR", tmp.Sub("fake-cuda").c_str(), 1);
  const std::string cuda_lib = o.real ? "libcuda.so.1" : fake_lib;

  ckptd::Config cfg;
  cfg.listen = "127.0.0.1:0";
  cfg.data_dir = (tmp.path() / "daemon").string();
  cfg.log_level = "warn";
  cfg.criu_path = ct::CriuPath();
  cfg.cuda_library = cuda_lib;
  cfg.cuda_checkpoint_path = "";
  ckptd::Daemon daemon(cfg);
  Check(daemon.Start(), "daemon");
  auto* jobs = daemon.job_system()->jobs();
  auto gpu = ckptd::gpu::CudaDriverCheckpointer::Load(cuda_lib);
  if (!gpu.ok()) Die(gpu.status().ToString());
  ckptd::criu::DriverConfig criu_config;
  criu_config.criu_path = ct::CriuPath();
  auto criu = ckptd::criu::CriuDriver::Create(criu_config);
  if (!criu.ok()) Die(criu.status().ToString());
  ByHand hand(gpu->get(), criu->get(), tmp.path() / "by-hand");

  pid_t pid = StartGpuWorkload(o, tmp.path(), fake_lib);
  std::vector<double> hand_ckpt, hand_synced, hand_rst, job_ckpt, job_rst;
  std::string ckpt_phases, rst_phases;  // the last jobs' timings_ms
  auto by_hand = [&] {
    auto t = Steady::now();
    hand.Checkpoint(pid);
    hand_ckpt.push_back(Secs(t));
    hand.SyncImages();
    hand_synced.push_back(Secs(t));
    if (!ct::ReapedOrGone(pid)) Die("the dump left the process running");
    t = Steady::now();
    pid = hand.Restore();
    hand_rst.push_back(Secs(t));
  };
  auto by_ckptd = [&] {
    ckptd::api::CheckpointJobRequest req;
    req.pid = pid;
    req.compression = o.compression;
    auto t = Steady::now();
    auto sub = jobs->SubmitCheckpoint(req);
    if (!sub.ok()) Die(sub.status().ToString());
    boost::json::value cjob = SucceededJob(jobs, sub->job_id, "checkpoint");
    job_ckpt.push_back(Secs(t));
    ckpt_phases = boost::json::serialize(cjob.at("result").at("timings_ms"));
    if (!ct::ReapedOrGone(pid)) Die("the checkpoint job left the process running");
    ckptd::api::RestoreJobRequest rreq;
    rreq.checkpoint_id = sub->checkpoint_id;
    t = Steady::now();
    auto rsub = jobs->SubmitRestore(rreq);
    if (!rsub.ok()) Die(rsub.status().ToString());
    boost::json::value rjob = SucceededJob(jobs, rsub->job_id, "restore");
    job_rst.push_back(Secs(t));
    rst_phases = boost::json::serialize(rjob.at("result").at("timings_ms"));
    pid = static_cast<pid_t>(rjob.at("pid").as_int64());
  };
  for (int r = 0; r < o.rounds; ++r) {
    if (r % 2 == 0) {
      by_hand();
      by_ckptd();
    } else {
      by_ckptd();
      by_hand();
    }
  }
  ct::KillTree(pid);
  std::printf("%d rounds, medians; ckptd job compression %s\n", o.rounds, o.compression.c_str());
  std::printf("%-26s %14s %14s   %s\n", "", "by hand", "ckptd", "ckptd / by hand");
  Row("checkpoint", hand_ckpt, job_ckpt);
  Row("  synced", hand_synced, job_ckpt);
  Row("restore", hand_rst, job_rst);
  std::printf("last checkpoint job's phases (ms): %s\nlast restore job's phases (ms): %s\n", ckpt_phases.c_str(),
              rst_phases.c_str());
  daemon.Stop();
  return 0;
}

int main(int argc, char** argv) {
  return ckptd::bench::RunBench([&] { return Main(argc, argv); });
}
