// criu_bench [--mib N] [--compression zstd|lz4|none]
//
// For `ckptd_workload memory --mib N` (default 1024 MiB resident): a raw CRIU
// dump through CriuDriver into a local dir vs a ckptd checkpoint job (dump to
// staging + compress + checksum + upload to the local object store +
// manifest), then a raw CRIU restore vs a ckptd restore job (download +
// verify + restore). Prints wall time, MiB/s (of resident workload memory)
// and the job/raw ratio. No pass/fail.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "bench/bench_util.h"
#include "criu/criu_driver.h"
#include "daemon/daemon.h"
#include "tests/testing/criu_test_util.h"

namespace ct = ckptd::criu::testing;
namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;

namespace {

using ckptd::bench::Die;
using ckptd::bench::DirBytes;
using ckptd::bench::Secs;
using ckptd::bench::SucceededJob;

void Row(const char* what, double secs, double mib, double raw_secs) {
  std::printf("%-26s %9.2f s %9.1f MiB/s", what, secs, mib / secs);
  if (raw_secs > 0) std::printf("   x%.2f of raw", secs / raw_secs);
  std::printf("\n");
}

}  // namespace

int Main(int argc, char** argv) {
  int mib = 1024;
  std::string compression = "zstd";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--mib" && i + 1 < argc)
      mib = std::atoi(argv[++i]);
    else if (a == "--compression" && i + 1 < argc)
      compression = argv[++i];
    else
      Die("usage: criu_bench [--mib N] [--compression zstd|lz4|none]");
  }
  if (mib <= 0) Die("--mib must be > 0");
  spdlog::set_level(spdlog::level::warn);
  ct::TempDir tmp;
  auto out = tmp.path() / "memory";

  auto start_workload = [&] {
    fs::remove(out);
    pid_t pid = ct::StartWorkload("memory", out, {"--mib", std::to_string(mib)});
    if (!ct::WaitProgress(out, 1, std::chrono::seconds(300))) Die("workload did not fill its memory");
    return pid;
  };

  ckptd::Config cfg;
  cfg.listen = "127.0.0.1:0";
  cfg.data_dir = (tmp.path() / "daemon").string();
  cfg.log_level = "warn";
  ckptd::Daemon daemon(cfg);
  if (auto st = daemon.Start(); !st.ok()) Die(st.ToString());
  auto* jobs = daemon.job_system()->jobs();

  auto driver = ckptd::criu::CriuDriver::Create({});
  if (!driver.ok()) Die(driver.status().ToString());

  std::printf("workload: ckptd_workload memory --mib %d; job compression %s\n", mib, compression.c_str());

  // Dumps: the tree is left running by both, then killed for the restores.
  pid_t pid = start_workload();
  ct::TreeKiller workload(pid);  // however the benchmark ends
  fs::path raw_dir = tmp.Sub("raw");
  ckptd::criu::DumpOptions d;
  d.pid = pid;
  d.images_dir = raw_dir;
  d.leave_running = true;
  auto t = Steady::now();
  auto dump = (*driver)->Dump(d);
  double raw_dump = Secs(t);
  if (!dump.ok()) Die(dump.status().ToString());

  ckptd::api::CheckpointJobRequest req;
  req.pid = pid;
  req.leave_running = true;
  req.compression = compression;
  t = Steady::now();
  auto sub = jobs->SubmitCheckpoint(req);
  if (!sub.ok()) Die(sub.status().ToString());
  boost::json::value job = SucceededJob(jobs, sub->job_id, "checkpoint");
  double job_dump = Secs(t);

  std::printf("raw images %.1f MiB; stored by the job %.1f MiB\n", DirBytes(raw_dir) / 1048576.0,
              job.at("result").at("stored_bytes").to_number<double>() / 1048576.0);
  Row("checkpoint: raw CRIU dump", raw_dump, mib, 0);
  Row("checkpoint: ckptd job", job_dump, mib, raw_dump);
  const auto& timings = job.at("result").at("timings_ms").as_object();
  std::printf("  job phases (ms): %s\n", boost::json::serialize(timings).c_str());

  workload.Kill();
  t = Steady::now();
  ckptd::criu::RestoreOptions ro;
  ro.images_dir = raw_dir;
  auto rst = (*driver)->Restore(ro);
  double raw_restore = Secs(t);
  if (!rst.ok()) Die(rst.status().ToString());
  ct::KillTree(rst->pid);

  ckptd::api::RestoreJobRequest rreq;
  rreq.checkpoint_id = sub->checkpoint_id;
  t = Steady::now();
  auto rsub = jobs->SubmitRestore(rreq);
  if (!rsub.ok()) Die(rsub.status().ToString());
  boost::json::value rjob = SucceededJob(jobs, rsub->job_id, "restore");
  double job_restore = Secs(t);
  ct::KillTree(static_cast<pid_t>(rjob.at("pid").as_int64()));
  Row("restore: raw CRIU restore", raw_restore, mib, 0);
  Row("restore: ckptd job", job_restore, mib, raw_restore);
  std::printf("  job phases (ms): %s\n", boost::json::serialize(rjob.at("result").at("timings_ms")).c_str());
  daemon.Stop();
  return 0;
}

int main(int argc, char** argv) {
  return ckptd::bench::RunBench([&] { return Main(argc, argv); });
}
