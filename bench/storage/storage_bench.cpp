// storage_bench [--mib N] [--runs R] [--codecs zstd,lz4,none] [--zstd-level L] [--no-restore] [--no-s3]
//               [--staging DIR]
//
// For `ckptd_workload memory --mib N` (default 2048; half pattern, half
// random): raw `criu dump` (CriuDriver, leave running) to a local disk dir
// and to tmpfs; then ckptd checkpoint jobs to the local backend and to S3 on
// loopback (s3rver) per codec, streaming (images uploaded from staging while
// CRIU writes them; "-pagesrv": the memory over CRIU's page-server socket
// instead) and, for the first codec, dump-then-upload; then the
// restores. Prints
// wall time, image bytes, stored bytes, MiB/s of image bytes and the ratio to
// the raw dump/restore. No pass/fail. --zstd-level sets the daemons'
// zstd_level (default 1, the daemon's default).
//
// Checkpoints run R times (default 3), each round a raw dump then every
// ckptd row, and rows print the median round (wall, CPU) and the fastest
// wall; "x raw" is the median of each round's ratio to that round's raw
// dump, so slow spells of a shared machine hit both sides of a ratio.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "bench/bench_util.h"
#include "criu/criu_driver.h"
#include "daemon/daemon.h"
#include "tests/testing/criu_test_util.h"
#include "tests/testing/s3rver_fixture.h"

namespace ct = ckptd::criu::testing;
namespace fs = std::filesystem;
namespace json = boost::json;
using Steady = std::chrono::steady_clock;

namespace {

using ckptd::bench::CpuSecs;
using ckptd::bench::Die;
using ckptd::bench::DirBytes;
using ckptd::bench::Secs;
using ckptd::bench::SucceededJob;

void Header() {
  std::printf("%-34s %9s %8s %10s %10s %9s %8s\n", "", "wall s", "cpu s", "image MiB", "stored MiB", "MiB/s", "x raw");
}
// Every step starts from the same memory state: dirty data written back and
// the page cache emptied (root only; otherwise steps run as they come).
// Without it, each row runs slower than the one before as the images of
// earlier rows fill the page cache and new writes wait for reclaim.
bool DropCaches() {
  sync();
  int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, "3", 1) == 1;
  close(fd);
  return ok;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
// One checkpoint row over the rounds.
struct Series {
  explicit Series(std::string l) : label(std::move(l)) {}
  std::string label;
  std::vector<double> wall, cpu, ratio;
  double image_mib = 0, stored_mib = 0;
  std::string last_phases;
};
void SeriesRow(const Series& x) {
  std::printf("%-34s %9.2f %8.2f %10.1f %10.1f %9.1f", x.label.c_str(), Median(x.wall), Median(x.cpu), x.image_mib,
              x.stored_mib, x.image_mib / Median(x.wall));
  if (!x.ratio.empty()) std::printf(" %8.2f", Median(x.ratio));
  std::printf("   (fastest %.2f s of %zu)\n", *std::min_element(x.wall.begin(), x.wall.end()), x.wall.size());
}
// cpu: CPU seconds of the daemon and CRIU (not the workload) for the step.
void Row(const std::string& what, double secs, double cpu, double image_mib, double stored_mib, double raw) {
  std::printf("%-34s %9.2f %8.2f %10.1f %10.1f %9.1f", what.c_str(), secs, cpu, image_mib, stored_mib,
              image_mib / secs);
  if (raw > 0) std::printf(" %8.2f", secs / raw);
  std::printf("\n");
}

struct Backend {
  std::string name;
  bool stream = true;
  std::unique_ptr<ckptd::Daemon> daemon;
};

struct Done {
  std::string label;
  std::string checkpoint_id;
  ckptd::Daemon* daemon;
  double image_mib;
};

}  // namespace

int Main(int argc, char** argv) {
  int mib = 2048;
  std::vector<std::string> codecs{"zstd", "lz4", "none"};
  bool s3 = true;
  std::string staging_root = "/dev/shm";
  int zstd_level = 1;
  int runs = 3;
  bool restores = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--mib" && i + 1 < argc) {
      mib = std::atoi(argv[++i]);
    } else if (a == "--codecs" && i + 1 < argc) {
      codecs.clear();
      std::stringstream ss(argv[++i]);
      for (std::string c; std::getline(ss, c, ',');) codecs.push_back(c);
    } else if (a == "--zstd-level" && i + 1 < argc) {
      zstd_level = std::atoi(argv[++i]);
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (a == "--no-restore") {
      restores = false;
    } else if (a == "--no-s3") {
      s3 = false;
    } else if (a == "--staging" && i + 1 < argc) {
      staging_root = argv[++i];
    } else {
      Die("usage: storage_bench [--mib N] [--runs R] [--codecs zstd,lz4,none] [--zstd-level L] [--no-restore] "
          "[--no-s3] [--staging DIR]");
    }
  }
  if (mib <= 0 || codecs.empty() || runs < 1) Die("--mib and --runs must be > 0 and --codecs non-empty");
  spdlog::set_level(spdlog::level::warn);
  ct::TempDir tmp;
  auto out = tmp.path() / "memory";
  fs::path shm = fs::path(staging_root) / ("ckptd-storage-bench-" + std::to_string(getpid()));
  fs::create_directories(shm);
  struct ShmCleanup {
    fs::path p;
    ~ShmCleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } shm_cleanup{shm};

  std::unique_ptr<ckptd::testing::S3rverProcess> s3rver;
  if (s3) {
    s3rver = std::make_unique<ckptd::testing::S3rverProcess>();
    if (auto st = s3rver->Start(); !st.ok()) Die("s3rver: " + st.ToString() + " (use --no-s3)");
  }

  auto make_daemon = [&](const std::string& name, bool on_s3, bool stream, bool page_server = false) {
    ckptd::Config cfg;
    cfg.listen = "127.0.0.1:0";
    cfg.data_dir = (tmp.path() / ("daemon-" + name)).string();
    cfg.staging_dir = (shm / ("staging-" + name)).string();
    cfg.log_level = "warn";
    cfg.stream_images = stream ? "true" : "false";
    cfg.page_server = page_server ? "true" : "false";
    cfg.zstd_level = zstd_level;
    if (on_s3) {
      cfg.images_uri = std::string("s3://") + ckptd::testing::S3rverProcess::kBucket + "/" + name + "/";
      cfg.s3_endpoint = s3rver->endpoint();
      cfg.s3_access_key = ckptd::testing::S3rverProcess::kAccessKey;
      cfg.s3_secret_key = ckptd::testing::S3rverProcess::kSecretKey;
      cfg.s3_path_style = "true";
    }
    auto d = std::make_unique<ckptd::Daemon>(cfg);
    if (auto st = d->Start(); !st.ok()) Die(name + ": " + st.ToString());
    return d;
  };
  std::vector<Backend> backends;
  // *-stream: page_server=false (every image through staging files);
  // *-pagesrv: page_server=true (the memory over CRIU's socket), the
  // default (auto) with 4 or more CPUs.
  backends.push_back({"local-stream", true, make_daemon("local-stream", false, true)});
  backends.push_back({"local-pagesrv", true, make_daemon("local-pagesrv", false, true, true)});
  backends.push_back({"local-after", false, make_daemon("local-after", false, false)});
  if (s3) {
    backends.push_back({"s3-stream", true, make_daemon("s3-stream", true, true)});
    backends.push_back({"s3-pagesrv", true, make_daemon("s3-pagesrv", true, true, true)});
    backends.push_back({"s3-after", false, make_daemon("s3-after", true, false)});
  }

  auto driver = ckptd::criu::CriuDriver::Create({});
  if (!driver.ok()) Die(driver.status().ToString());
  std::printf("workload: ckptd_workload memory --mib %d (half pattern, half random); staging %s; zstd level %d\n", mib,
              shm.c_str(), zstd_level);

  pid_t pid = ct::StartWorkload("memory", out, {"--mib", std::to_string(mib)});
  ct::TreeKiller workload(pid);  // however the benchmark ends
  if (!ct::WaitProgress(out, 1, std::chrono::seconds(600))) Die("workload did not fill its memory");

  // Raw dumps (leave running), to disk and to tmpfs.
  bool dropping = DropCaches();
  std::printf("page cache: %s\n", dropping ? "synced and dropped before every step"
                                           : "not dropped (needs root): later rows may run slower");
  auto raw_dump = [&](const fs::path& dir, bool drop = true) {
    if (drop) DropCaches();
    ckptd::criu::DumpOptions d;
    d.pid = pid;
    d.images_dir = dir;
    d.leave_running = true;
    fs::create_directories(dir);
    double c = CpuSecs();
    auto t = Steady::now();
    auto r = (*driver)->Dump(d);
    double s = Secs(t);
    if (!r.ok()) Die(r.status().ToString());
    return std::make_pair(s, CpuSecs() - c);
  };
  fs::path raw_disk = tmp.Sub("raw"), raw_shm = shm / "raw";
  // What durability costs on this disk: the same dump, then every file
  // fsync'd (the local backend's objects are, before `ready`).
  auto durable_dump = [&]() {
    fs::path durable = tmp.Sub("raw-durable");
    DropCaches();
    double c = CpuSecs();
    auto t = Steady::now();
    raw_dump(durable, false);
    ckptd::bench::FsyncFilesIn(durable);
    auto r = std::make_pair(Secs(t), CpuSecs() - c);
    fs::remove_all(durable);
    return r;
  };

  Series raw_s("raw criu dump -> disk dir"), shm_s("raw criu dump -> tmpfs dir"),
      durable_s("raw criu dump -> disk dir + fsync");
  std::vector<Series> rows;
  std::vector<Done> done;
  double raw_mib = 0;
  for (int round = 0; round < runs; ++round) {
    fs::remove_all(raw_disk);
    auto [raw_disk_s, raw_disk_cpu] = raw_dump(raw_disk);
    raw_mib = DirBytes(raw_disk) / 1048576.0;
    raw_s.wall.push_back(raw_disk_s);
    raw_s.cpu.push_back(raw_disk_cpu);
    auto [raw_shm_s, raw_shm_cpu] = raw_dump(raw_shm);
    fs::remove_all(raw_shm);
    shm_s.wall.push_back(raw_shm_s);
    shm_s.cpu.push_back(raw_shm_cpu);
    shm_s.ratio.push_back(raw_shm_s / raw_disk_s);
    auto [dur_s, dur_cpu] = durable_dump();
    durable_s.wall.push_back(dur_s);
    durable_s.cpu.push_back(dur_cpu);
    durable_s.ratio.push_back(dur_s / raw_disk_s);

    size_t row = 0;
    for (auto& b : backends) {
      auto* jobs = b.daemon->job_system()->jobs();
      for (const auto& codec : codecs) {
        if (!b.stream && codec != codecs.front()) continue;
        ckptd::api::CheckpointJobRequest req;
        req.pid = pid;
        req.leave_running = true;
        req.compression = codec;
        DropCaches();
        double c = CpuSecs();
        auto t = Steady::now();
        auto sub = jobs->SubmitCheckpoint(req);
        if (!sub.ok()) Die(sub.status().ToString());
        json::value job = SucceededJob(jobs, sub->job_id, "checkpoint");
        double secs = Secs(t);
        const auto& r = job.at("result").as_object();
        if (rows.size() <= row) rows.emplace_back("ckptd " + b.name + " " + codec);
        Series& x = rows[row++];
        x.wall.push_back(secs);
        x.cpu.push_back(CpuSecs() - c);
        x.ratio.push_back(secs / raw_disk_s);
        x.image_mib = r.at("image_bytes").to_number<double>() / 1048576.0;
        x.stored_mib = r.at("stored_bytes").to_number<double>() / 1048576.0;
        x.last_phases = json::serialize(r.at("timings_ms"));
        // The last round's checkpoints are the ones restored below.
        if (round == runs - 1) done.push_back({x.label, sub->checkpoint_id, b.daemon.get(), x.image_mib});
      }
    }
  }
  std::printf("\n== checkpoint (x raw: ratio to raw criu dump to disk; median of %d rounds)\n", runs);
  Header();
  raw_s.image_mib = raw_s.stored_mib = shm_s.image_mib = shm_s.stored_mib = durable_s.image_mib = durable_s.stored_mib =
      raw_mib;
  SeriesRow(raw_s);
  SeriesRow(shm_s);
  SeriesRow(durable_s);
  for (const auto& x : rows) {
    SeriesRow(x);
    std::printf("    phases ms (last round): %s\n", x.last_phases.c_str());
  }

  // Restores: the original must be gone for its pids.
  workload.Kill();
  if (!restores) {
    for (auto& b : backends) b.daemon->Stop();
    return 0;
  }
  std::printf("\n== restore (ratio to raw criu restore from disk)\n");
  Header();
  ckptd::criu::RestoreOptions ro;
  ro.images_dir = raw_disk;
  DropCaches();
  double c = CpuSecs();
  auto t = Steady::now();
  auto rst = (*driver)->Restore(ro);
  double raw_restore = Secs(t);
  double raw_restore_cpu = CpuSecs() - c;
  if (!rst.ok()) Die(rst.status().ToString());
  ct::KillTree(rst->pid);
  Row("raw criu restore <- disk dir", raw_restore, raw_restore_cpu, raw_mib, raw_mib, 0);
  for (const auto& d : done) {
    auto* jobs = d.daemon->job_system()->jobs();
    ckptd::api::RestoreJobRequest rreq;
    rreq.checkpoint_id = d.checkpoint_id;
    DropCaches();
    c = CpuSecs();
    t = Steady::now();
    auto rsub = jobs->SubmitRestore(rreq);
    if (!rsub.ok()) Die(rsub.status().ToString());
    json::value rjob = SucceededJob(jobs, rsub->job_id, "restore");
    double s = Secs(t);
    ct::KillTree(static_cast<pid_t>(rjob.at("pid").as_int64()));
    Row(d.label, s, CpuSecs() - c, d.image_mib, 0, raw_restore);
    std::printf("    phases ms: %s\n", json::serialize(rjob.at("result").at("timings_ms")).c_str());
  }
  for (auto& b : backends) b.daemon->Stop();
  return 0;
}

int main(int argc, char** argv) {
  return ckptd::bench::RunBench([&] { return Main(argc, argv); });
}
