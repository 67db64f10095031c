// container_bench [--mib N] [--rounds R] [--compression zstd|lz4|none]
//                 [--staging-dir DIR]
//
// A busybox container (real runc, ckptd's CRIU) holding N MiB (default 1024)
// of incompressible-ish memory (base64 of random bytes in a shell
// variable). Each round, in alternating order:
//   checkpoint  `runc checkpoint --leave-running` by hand into a local dir
//               (also timed until syncfs() has made it durable, which
//               the job's store does for its objects) vs a ckptd
//               checkpoint job of the container (leave_running; dump +
//               compress + checksum + upload to the local store +
//               manifest); staging in <data_dir>/staging unless
//               --staging-dir (a tmpfs dir such as /dev/shm/x is faster);
//   restore     `runc restore --detach` by hand from that dir vs a ckptd
//               restore job (download + verify + runc restore), each as a
//               new container, removed afterwards.
// Each timed side starts after a sync() and a 2 s pause. Prints every
// round, the medians and the job/by-hand ratios (the goal for checkpoints:
// <= 1.2; with --compression none the images are linked into the store,
// not copied). No pass/fail. Needs root.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "bench/bench_util.h"
#include "daemon/daemon.h"
#include "tests/testing/criu_test_util.h"
#include "tests/testing/runc_fixture.h"
#include "tests/testing/test_util.h"

namespace fs = std::filesystem;
namespace tt = ckptd::testing;
using Steady = std::chrono::steady_clock;
using ckptd::bench::Die;
using ckptd::bench::Median;
using ckptd::bench::Secs;
using ckptd::bench::SucceededJob;

namespace {

// Before each timed side: the page cache written back and a pause, so that
// neither side starts while the disk (or the host behind this VM's disk)
// still flushes what the other wrote.
void Settle() {
  ::sync();
  std::this_thread::sleep_for(std::chrono::seconds(2));
}

struct Bench {
  tt::TempDir tmp{"ckptd-ctr-bench"};
  fs::path root = tmp.Sub("runc-root"), data = tmp.Sub("data"), bundle = tmp.Sub("bundle");
  tt::RuncContainers containers{root};
  std::string runc = tt::RuncPath() + " --criu " + ckptd::criu::testing::CriuPath() + " --root " + root.string();
  int restores = 0;

  void Runc(const std::string& args) {
    tt::CommandResult r = tt::RunCommand(runc + " " + args);
    if (r.status != 0) Die("runc " + args + ": " + r.output);
  }
  // A new container id for a restore, removed when the bench ends.
  std::string NewId() {
    std::string id = "bench-restored-" + std::to_string(++restores);
    containers.Track(id);
    return id;
  }
};

}  // namespace

int Main(int argc, char** argv) {
  int mib = 1024, rounds = 3;
  std::string compression = "zstd", staging;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--mib" && i + 1 < argc)
      mib = std::atoi(argv[++i]);
    else if (a == "--rounds" && i + 1 < argc)
      rounds = std::atoi(argv[++i]);
    else if (a == "--compression" && i + 1 < argc)
      compression = argv[++i];
    else if (a == "--staging-dir" && i + 1 < argc)
      staging = argv[++i];
    else
      Die("usage: container_bench [--mib N] [--rounds R] [--compression zstd|lz4|none] [--staging-dir DIR]");
  }
  if (mib <= 0 || rounds <= 0) Die("--mib and --rounds must be > 0");
  spdlog::set_level(spdlog::level::warn);
  Bench b;
  tt::BundleSpec spec;
  // 3/4 of N MiB random bytes, base64: N MiB of text held by the shell.
  spec.args = {"/bin/sh", "-c",
               "x=$(head -c " + std::to_string(static_cast<uint64_t>(mib) * 786432) +
                   " /dev/urandom | base64 -w 0); echo 1 > /data/ready; while true; do sleep 1; done"};
  spec.binds = {{b.data.string(), "/data"}};
  tt::MakeBundle(b.bundle, spec);
  b.containers.Run("bench", b.bundle);
  for (int i = 0; i < 600 && !fs::exists(b.data / "ready"); ++i) std::this_thread::sleep_for(std::chrono::seconds(1));
  if (!fs::exists(b.data / "ready")) Die("the container did not fill its memory");

  ckptd::Config cfg;
  cfg.listen = "127.0.0.1:0";
  cfg.data_dir = (b.tmp.path() / "daemon").string();
  cfg.log_level = "warn";
  if (!staging.empty()) cfg.staging_dir = staging;
  ckptd::Daemon daemon(cfg);
  if (auto st = daemon.Start(); !st.ok()) Die(st.ToString());
  auto* jobs = daemon.job_system()->jobs();
  std::string version = tt::RunCommand(tt::RuncPath() + " --version | head -1").output;
  if (!version.empty() && version.back() == '\n') version.pop_back();
  std::printf("container: busybox sh holding %d MiB; %s; job compression %s; %d rounds\n", mib, version.c_str(),
              compression.c_str(), rounds);

  std::vector<double> raw_ckpt, raw_durable, job_ckpt, raw_rst, job_rst;
  std::string ckpt_phases, rst_phases;  // the last jobs' timings_ms
  for (int r = 0; r < rounds; ++r) {
    fs::path raw_dir = b.tmp.Sub("raw-" + std::to_string(r));
    auto raw = [&] {
      Settle();
      auto t = Steady::now();
      b.Runc("checkpoint --leave-running --image-path " + raw_dir.string() + " --work-path " + raw_dir.string() +
             "-work bench");
      raw_ckpt.push_back(Secs(t));
      int fd = ::open(raw_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0 || ::syncfs(fd) != 0) Die("syncfs " + raw_dir.string());
      ::close(fd);
      raw_durable.push_back(Secs(t));
    };
    std::string checkpoint_id;
    auto job = [&] {
      ckptd::api::CheckpointJobRequest req;
      req.container = ckptd::api::ContainerTarget{"bench", b.root.string(), ""};
      req.leave_running = true;
      req.compression = compression;
      Settle();
      auto t = Steady::now();
      auto sub = jobs->SubmitCheckpoint(req);
      if (!sub.ok()) Die(sub.status().ToString());
      boost::json::value done = SucceededJob(jobs, sub->job_id, "checkpoint");
      job_ckpt.push_back(Secs(t));
      ckpt_phases = boost::json::serialize(done.at("result").at("timings_ms"));
      checkpoint_id = sub->checkpoint_id;
    };
    // Alternating which goes first evens out cache and disk state.
    if (r % 2 == 0) {
      raw();
      job();
    } else {
      job();
      raw();
    }

    auto raw_restore = [&] {
      std::string id = b.NewId();
      Settle();
      auto t = Steady::now();
      b.Runc("restore --detach --image-path " + raw_dir.string() + " --work-path " + raw_dir.string() +
             "-rwork --bundle " + b.bundle.string() + " " + id + " </dev/null >/dev/null 2>&1");
      raw_rst.push_back(Secs(t));
      b.Runc("delete --force " + id);
    };
    auto job_restore = [&] {
      std::string id = b.NewId();
      ckptd::api::RestoreJobRequest req;
      req.checkpoint_id = checkpoint_id;
      req.container = ckptd::api::ContainerTarget{id, b.root.string(), b.bundle.string()};
      Settle();
      auto t = Steady::now();
      auto sub = jobs->SubmitRestore(req);
      if (!sub.ok()) Die(sub.status().ToString());
      boost::json::value done = SucceededJob(jobs, sub->job_id, "restore");
      job_rst.push_back(Secs(t));
      rst_phases = boost::json::serialize(done.at("result").at("timings_ms"));
      b.Runc("delete --force " + id);
    };
    if (r % 2 == 0) {
      raw_restore();
      job_restore();
    } else {
      job_restore();
      raw_restore();
    }
    std::printf(
        "round %d: checkpoint by hand %.2f s (durable %.2f s), job %.2f s; restore by hand %.2f s, job %.2f s\n",
        r + 1, raw_ckpt.back(), raw_durable.back(), job_ckpt.back(), raw_rst.back(), job_rst.back());
    fs::remove_all(raw_dir);
  }
  double rc = Median(raw_ckpt), rd = Median(raw_durable), jc = Median(job_ckpt), rr = Median(raw_rst),
         jr = Median(job_rst);
  std::printf("\nmedian of %d rounds         by hand      ckptd   ratio\n", rounds);
  std::printf("checkpoint (leave running) %7.2f s  %7.2f s   x%.2f (goal <= 1.2)\n", rc, jc, jc / rc);
  std::printf("  by hand + syncfs         %7.2f s  %7.2f s   x%.2f\n", rd, jc, jc / rd);
  std::printf("restore (new container)    %7.2f s  %7.2f s   x%.2f\n", rr, jr, jr / rr);
  std::printf("last checkpoint job's phases (ms): %s\nlast restore job's phases (ms): %s\n", ckpt_phases.c_str(),
              rst_phases.c_str());
  daemon.Stop();
  return 0;
}

int main(int argc, char** argv) {
  return ckptd::bench::RunBench([&] { return Main(argc, argv); });
}
