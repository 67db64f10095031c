// crash_soak [--trials N] [--mib M] [--seed S] [--variants stop,gpu_run,gpu_stop,backlog]
//
// Random-kill soak of the job engine's start-up recovery. For each variant,
// N trials of: start `ckptd_workload memory --mib M` (default 768; with
// --gpu-lib of the fake CUDA driver in the GPU variants), start the real
// ckptd binary on a fresh data dir, submit a checkpoint job over HTTP,
// kill -9 the daemon at a random instant during the job, restart it on the
// same data dir 0.2 s later, wait for /healthz (recovery runs before the
// API opens), then classify what is left:
//   frozen        the workload's tree is alive but some task is stopped or
//                 traced 2 s after /healthz answered;
//   locked        a live fake-GPU process whose fake-driver state is not
//                 "running";
//   lost          the workload does not run (its counter does not advance
//                 for 3 s) and no checkpoint is ready; in leave_running
//                 variants any workload that does not run is lost;
//   inconsistent  a catalog record not ready/deprecated, a job not
//                 succeeded/failed (or the submitted job missing, or the
//                 restarted daemon never answering /healthz), or a ready
//                 checkpoint that does not restore into a workload whose
//                 counter advances (the workload is killed first if it runs).
// A trial can count in several columns. The kill instant is uniform in
// [0, D] after the submit, D being the job's duration in one calibration
// run per variant (same set-up, no kill). Rounds interleave the variants
// (round r runs each once) so slow spells of a shared machine hit all of
// them. Variants (--variants, by key):
//   stop      leave_running=false
//   gpu_run   leave_running=true, fake GPU 200 ms/step
//   gpu_stop  leave_running=false, fake GPU 200 ms/step
//   backlog   leave_running=true, backlog 8 MiB (--staging-backlog-bytes)
// All run with --page-server false. The kill delay is drawn from --seed
// (default 1).
//
// Prints one line per trial as it goes (variant, kill delay, the job's
// state/phase after the restart, recovery time and the actions recovery
// counted in ckptd_recovery_actions_total, the checkpoint's status, the
// workload, the classification) and a table at the end; "recovery ms" is
// the time from the restart's fork+exec until /healthz answers 200
// (median). Figures only: it never passes or fails on what it finds. The
// logs of a trial with a finding, or whose first daemon ended before the
// kill (both daemons', the workload's, the fake driver's, the job and
// catalog listings) are copied to
// /tmp/soak-failures/<stamp>-r<round>-<variant>/. Needs root (CRIU).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "api/client.h"
#include "bench/bench_util.h"
#include "common/proc.h"
#include "tests/testing/criu_test_util.h"
#include "tests/testing/daemon_process.h"

namespace ct = ckptd::criu::testing;
namespace dt = ckptd::testing;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;
using ckptd::bench::Die;

namespace {

const std::string kFakeLib = CKPTD_BINARY_DIR "/tests/fake_cuda/libcuda.so.1";
const fs::path kFailures = "/tmp/soak-failures";
constexpr const char* kGpuStateEnv = "CKPTD_FAKE_CUDA_STATE_DIR";

// Ctrl-C / SIGTERM: stop at the next poll and unwind, so the guards clean
// up. A second signal ends the bench at once.
std::atomic<bool> g_interrupted{false};
void OnSignal(int sig) {
  g_interrupted = true;
  signal(sig, SIG_DFL);
}
void CheckInterrupted() {
  if (g_interrupted) Die("interrupted");
}
void Sleep(Steady::duration d) {
  auto end = Steady::now() + d;
  while (Steady::now() < end) {
    CheckInterrupted();
    std::this_thread::sleep_for(std::min<Steady::duration>(end - Steady::now(), 20ms));
  }
}

double Ms(Steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct Variant {
  std::string key;
  std::string name;
  bool leave_running = false;
  bool gpu = false;
  bool backlog = false;
};

const std::vector<Variant>& AllVariants() {
  static const std::vector<Variant> v = {
      {"stop", "leave_running=false", false, false, false},
      {"gpu_run", "leave_running=true, fake GPU 200 ms/step", true, true, false},
      {"gpu_stop", "leave_running=false, fake GPU 200 ms/step", false, true, false},
      {"backlog", "leave_running=true, backlog 8 MiB", true, false, true},
  };
  return v;
}

// First line of the fake driver's state file of `pid` ("" when none).
std::string GpuState(const fs::path& state_dir, int pid) {
  std::ifstream in(state_dir / (std::to_string(pid) + ".state"));
  std::string word;
  std::getline(in, word);
  return word;
}

// Live fake-GPU processes whose state is not "running": "pid=state" each.
std::vector<std::string> LockedGpuProcesses(const fs::path& state_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(state_dir, ec)) {
    if (e.path().extension() != ".state") continue;
    std::string stem = e.path().stem().string();
    if (stem.empty() || !std::all_of(stem.begin(), stem.end(), [](char c) { return std::isdigit(c); })) continue;
    int pid = std::stoi(stem);
    if (!ct::Alive(pid)) continue;
    std::string st = GpuState(state_dir, pid);
    if (st != "running") out.push_back(std::to_string(pid) + "=" + (st.empty() ? "?" : st));
  }
  return out;
}

// What start-up recovery did, from ckptd_recovery_actions_total{action=...}
// of a fresh daemon's /metrics: "kill-criu,resume-tree,abandon" ("-" none).
std::string RecoveryActions(const json::value& metrics) {
  if (!metrics.is_string()) return "?";
  std::istringstream in{std::string(metrics.as_string())};
  std::string actions;
  const std::string key = "ckptd_recovery_actions_total{";
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(key)) continue;
    size_t a = line.find("action=\"");
    if (a == std::string::npos) continue;
    a += 8;
    size_t b = line.find('"', a);
    if (b == std::string::npos) continue;
    std::string count = line.substr(line.rfind(' ') + 1);
    std::string name = line.substr(a, b - a);
    if (count != "1") name += "x" + count;
    actions += (actions.empty() ? "" : ",") + name;
  }
  return actions.empty() ? "-" : actions;
}

// The progress counter changes `steps` times within `timeout` (a restored
// copy may start below what the original wrote last, so any change counts)
// and stays "ok". *bad is set when it reads "bad".
bool Advances(const fs::path& out, std::chrono::milliseconds timeout, int steps, bool* bad) {
  auto end = Steady::now() + timeout;
  ct::Progress last = ct::ReadProgress(out);
  int seen = 0;
  while (Steady::now() < end) {
    CheckInterrupted();
    ct::Progress p = ct::ReadProgress(out);
    if (p.valid && !p.ok) {
      if (bad) *bad = true;
      return false;
    }
    if (p.valid && (!last.valid || p.n != last.n)) {
      if (last.valid && ++seen >= steps) return true;
      last = p;
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// Gone (not even a zombie); zombies of ours are reaped. A restore to the
// same pid needs this.
bool WaitGone(pid_t pid, std::chrono::milliseconds timeout) {
  auto end = Steady::now() + timeout;
  while (Steady::now() < end) {
    char st = ct::ProcState(pid);
    if (st == 0) return true;
    if (st == 'Z') waitpid(pid, nullptr, WNOHANG);
    std::this_thread::sleep_for(10ms);
  }
  return ct::ProcState(pid) == 0;
}

// One trial's set-up and everything it starts: a temp dir (data dir, fake
// driver state, logs), the workload (reaped by a thread of ours the moment
// it ends), the daemon and any restored trees. The destructor kills and
// reaps them all, however the trial ends.
class Trial {
 public:
  Trial(const Variant& v, int mib) : v_(v) {
    data_ = tmp_.path() / "data";
    gpu_state_ = tmp_.Sub("fake-cuda");
    out_ = tmp_.path() / "progress";
    if (v_.gpu) {
      dt::WriteFileText((gpu_state_ / "slow_ms").string(), "200");
      setenv(kGpuStateEnv, gpu_state_.c_str(), 1);  // for the workload (inherited)
    } else {
      unsetenv(kGpuStateEnv);
    }
    std::vector<std::string> extra = {"--mib", std::to_string(mib)};
    if (v_.gpu) extra.insert(extra.end(), {"--gpu-lib", kFakeLib});
    pid_ = ct::StartWorkload("memory", out_, extra);
    if (pid_ <= 0) Die("cannot start the workload");
    killer_.emplace(pid_);
    pid_t p = pid_;
    reaper_ = std::jthread([p] { waitpid(p, nullptr, 0); });
    auto deadline = Steady::now() + 120s;
    while (!ct::WaitProgress(out_, 2, 1s)) {
      CheckInterrupted();
      if (Steady::now() > deadline || !ct::Alive(pid_))
        Die("the workload did not start counting: " + dt::ReadFileText(out_.string() + ".log"));
    }
    if (v_.gpu && GpuState(gpu_state_, pid_) != "running")
      Die("the workload did not register with the fake CUDA driver (" + GpuState(gpu_state_, pid_) + ")");
  }
  // Members go in reverse: restored trees (while the daemon still reaps
  // its children), the daemon, the workload's tree, its reaper (joined),
  // the temp dir. The same when the constructor throws.
  ~Trial() = default;
  Trial(const Trial&) = delete;
  Trial& operator=(const Trial&) = delete;

  // Starts the daemon (the n-th start on this data dir); returns ms from its
  // fork+exec until /healthz answered 200, or -1 when it exited or did not
  // answer within 120 s.
  double StartDaemon(int n) {
    dt::DaemonChild::Options o;
    o.args = {"--log-level", "info", "--page-server", "false", "--criu-path", ct::CriuPath()};
    if (v_.backlog) o.args.insert(o.args.end(), {"--staging-backlog-bytes", "8388608"});
    if (v_.gpu) o.args.insert(o.args.end(), {"--cuda-library", kFakeLib});
    o.env.push_back(std::string(kGpuStateEnv) + "=" + gpu_state_.string());
    o.log = LogPath(n).string();
    o.timeout = 120s;
    o.poll = [] { CheckInterrupted(); };
    return daemon_.Start(data_.string(), o);
  }
  // kill -9; false when the daemon had already ended by itself.
  bool KillDaemon() {
    daemon_.DropClient();
    char st = ct::ProcState(daemon_.process()->pid());
    bool was_running = st != 0 && st != 'Z';
    daemon_.process()->Signal(SIGKILL);
    if (!daemon_.process()->Wait(30s)) Die("the killed daemon did not end");
    return was_running;
  }
  bool HasClient() const { return daemon_.has_client(); }
  json::value Call(const std::string& method, const std::string& target, const json::object& body = {},
                   int* status = nullptr) {
    return daemon_.Call(method, target, body, status);
  }
  void AddRestored(pid_t pid) { restored_.push_back(std::make_unique<ct::TreeKiller>(pid)); }

  // Copies what tells the story of the trial to `dir`.
  void SaveLogs(const fs::path& dir, const std::vector<std::pair<std::string, std::string>>& extra) const {
    std::error_code ec;
    fs::create_directories(dir, ec);
    for (int n = 1; n <= 2; ++n)
      fs::copy_file(LogPath(n), dir / LogPath(n).filename(), fs::copy_options::overwrite_existing, ec);
    fs::copy_file(out_.string() + ".log", dir / "workload.log", fs::copy_options::overwrite_existing, ec);
    fs::copy(gpu_state_, dir / "fake-cuda", fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
    for (const auto& [name, text] : extra) dt::WriteFileText((dir / name).string(), text);
  }

  const Variant& variant() const { return v_; }
  pid_t pid() const { return pid_; }
  const fs::path& out() const { return out_; }
  const fs::path& gpu_state() const { return gpu_state_; }

 private:
  fs::path LogPath(int n) const { return tmp_.path() / ("ckptd-" + std::to_string(n) + ".log"); }

  Variant v_;
  ct::TempDir tmp_;
  fs::path data_, gpu_state_, out_;
  pid_t pid_ = -1;
  std::jthread reaper_;
  std::optional<ct::TreeKiller> killer_;
  dt::DaemonChild daemon_;
  std::vector<std::unique_ptr<ct::TreeKiller>> restored_;
};

// The job's duration without a kill (submit until the wait=true answer).
double Calibrate(const Variant& v, int mib) {
  Trial t(v, mib);
  if (t.StartDaemon(1) < 0) Die(v.name + ": the daemon did not start");
  int status = 0;
  auto t0 = Steady::now();
  json::value job = t.Call("POST", "/v2/jobs/checkpoint",
                           {{"pid", t.pid()}, {"leave_running", v.leave_running}, {"wait", true}}, &status);
  double ms = Ms(Steady::now() - t0);
  if (status != 200 || !job.is_object() || job.at("state") != "succeeded")
    Die(v.name + ": the calibration job did not succeed: " + json::serialize(job));
  return ms;
}

struct Outcome {
  double recovery_ms = -1;
  std::string job = "?";       // state/phase after the restart
  std::string actions = "?";   // what recovery did (RecoveryActions)
  std::string ckpt = "none";   // the trial's checkpoint after the restart
  std::string workload = "?";  // running | gone | held | stalled | bad
  bool frozen = false, locked = false, lost = false, inconsistent = false;
  bool ended_early = false;  // the first daemon died before the kill (logs kept, no column)
  std::vector<std::string> notes;
  std::string saved;  // where the logs went
  bool Any() const { return frozen || locked || lost || inconsistent; }
};

Outcome RunTrial(const Variant& v, int mib, double delay_ms, const fs::path& save_to) {
  Outcome o;
  Trial t(v, mib);
  if (t.StartDaemon(1) < 0) Die(v.name + ": the daemon did not start");
  int status = 0;
  auto t0 = Steady::now();
  json::value sub =
      t.Call("POST", "/v2/jobs/checkpoint", {{"pid", t.pid()}, {"leave_running", v.leave_running}}, &status);
  if (status != 202 || !sub.is_object() || !sub.as_object().contains("job_id"))
    Die(v.name + ": submit answered " + std::to_string(status) + ": " + json::serialize(sub));
  std::string job_id(sub.at("job_id").as_string());
  std::this_thread::sleep_until(t0 + std::chrono::duration<double, std::milli>(delay_ms));
  if (!t.KillDaemon()) {
    o.ended_early = true;
    o.notes.push_back("the daemon had ended by itself before the kill");
  }
  Sleep(200ms);

  o.recovery_ms = t.StartDaemon(2);
  auto healthy = Steady::now();
  json::value job, ckpts, jobs;
  if (o.recovery_ms < 0) {
    o.inconsistent = true;
    o.job = "-";
    o.notes.push_back("the restarted daemon did not answer /healthz");
  } else {
    job = t.Call("GET", "/v2/jobs/" + job_id, {}, &status);
    if (status == 200 && job.is_object()) {
      o.job = std::string(job.at("state").as_string()) + "/" + std::string(job.at("phase").as_string());
      o.actions = RecoveryActions(t.Call("GET", "/metrics"));
    } else {
      o.job = "missing";
      o.inconsistent = true;
      o.notes.push_back("job " + job_id + " missing after the restart (" + std::to_string(status) + ")");
    }
  }

  // 2 s after the API opened: nothing may be left stopped, traced or locked.
  Sleep(healthy + 2s - Steady::now());
  bool alive = ct::Alive(t.pid());
  if (alive) {
    for (int p : ckptd::TreePids(t.pid())) {
      if (ckptd::IsHeld(p)) {
        o.frozen = true;
        o.notes.push_back("pid " + std::to_string(p) + " held (state " + std::string(1, ckptd::ProcState(p)) +
                          ", tracer " + std::to_string(ckptd::TracerPid(p)) + ")");
      }
    }
  }
  for (const auto& l : LockedGpuProcesses(t.gpu_state())) {
    o.locked = true;
    o.notes.push_back("GPU process " + l);
  }

  // Nothing unfinished in the catalog or the job table.
  std::vector<std::string> ready;
  if (t.HasClient()) {
    ckpts = t.Call("GET", "/v2/checkpoints");
    if (!ckpts.is_array()) {
      o.inconsistent = true;
      o.notes.push_back("GET /v2/checkpoints: " + json::serialize(ckpts));
    } else {
      std::vector<std::string> states;
      for (const auto& c : ckpts.as_array()) {
        std::string s(c.at("status").as_string());
        states.push_back(s);
        if (s == "ready") ready.emplace_back(c.at("id").as_string());
        if (s != "ready" && s != "deprecated") {
          o.inconsistent = true;
          o.notes.push_back("checkpoint " + std::string(c.at("id").as_string()) + " is " + s);
        }
      }
      if (!states.empty()) {
        o.ckpt.clear();
        for (const auto& s : states) o.ckpt += (o.ckpt.empty() ? "" : ",") + s;
      }
    }
    jobs = t.Call("GET", "/v2/jobs?limit=100");
    if (!jobs.is_object() || !jobs.as_object().contains("jobs") || !jobs.at("jobs").is_array()) {
      o.inconsistent = true;
      o.notes.push_back("GET /v2/jobs: " + json::serialize(jobs));
    } else {
      for (const auto& j : jobs.at("jobs").as_array()) {
        std::string s(j.at("state").as_string());
        if (s != "succeeded" && s != "failed") {
          o.inconsistent = true;
          o.notes.push_back("job " + std::string(j.at("id").as_string()) + " is " + s + "/" +
                            std::string(j.at("phase").as_string()));
        }
      }
    }
  }

  // Does the workload run?
  bool bad = false;
  bool running = alive && !o.frozen && Advances(t.out(), 3s, 1, &bad);
  o.workload = running ? "running" : !ct::Alive(t.pid()) ? "gone" : o.frozen ? "held" : bad ? "bad" : "stalled";
  if (!running && (v.leave_running || ready.empty())) {
    o.lost = true;
    o.notes.push_back(v.leave_running ? "a leave-running workload does not run (" + o.workload + ")"
                                      : "the workload does not run (" + o.workload + ") and no checkpoint is ready");
  }

  // Every ready checkpoint restores into a workload that counts on.
  for (const auto& id : ready) {
    if (ct::ProcState(t.pid()) != 0) {
      ct::KillTree(t.pid());
      if (!WaitGone(t.pid(), 15s)) {
        o.inconsistent = true;
        o.notes.push_back("cannot restore " + id + ": pid " + std::to_string(t.pid()) + " does not go away");
        continue;
      }
    }
    json::value r = t.Call("POST", "/v2/jobs/restore", {{"checkpoint_id", id}, {"wait", true}}, &status);
    if (status != 200 || !r.is_object() || r.at("state") != "succeeded") {
      o.inconsistent = true;
      o.notes.push_back("restore of " + id + " answered " + std::to_string(status) + ": " + json::serialize(r));
      continue;
    }
    pid_t rp = r.at("pid").is_int64() ? static_cast<pid_t>(r.at("pid").as_int64()) : -1;
    if (rp <= 0) {
      o.inconsistent = true;
      o.notes.push_back("restore of " + id + " names no pid: " + json::serialize(r));
      continue;
    }
    t.AddRestored(rp);
    bool rbad = false;
    bool held = false;
    for (int p : ckptd::TreePids(rp)) held = held || ckptd::IsHeld(p);
    if (!ct::Alive(rp) || held || !Advances(t.out(), 15s, 2, &rbad)) {
      o.inconsistent = true;
      o.notes.push_back("restored " + id + " as pid " + std::to_string(rp) + " but it " +
                        (!ct::Alive(rp) ? "is gone"
                         : held         ? "is held"
                         : rbad         ? "reads bad"
                                        : "does not count"));
    }
    for (const auto& l : LockedGpuProcesses(t.gpu_state())) {
      o.inconsistent = true;
      o.notes.push_back("after the restore of " + id + ": GPU process " + l);
    }
  }

  if (o.Any() || o.ended_early) {
    std::string notes;
    for (const auto& n : o.notes) notes += n + "\n";
    t.SaveLogs(save_to, {{"notes.txt", notes},
                         {"job.json", json::serialize(job)},
                         {"jobs.json", json::serialize(jobs)},
                         {"checkpoints.json", json::serialize(ckpts)},
                         {"trial.txt", v.name + "\ndelay_ms " + std::to_string(delay_ms) + "\njob " + job_id + "\n"}});
    o.saved = save_to.string();
  }
  return o;
}

struct Tally {
  int trials = 0, frozen = 0, locked = 0, lost = 0, inconsistent = 0;
  std::vector<double> recovery_ms;
};

void Usage() { Die("usage: crash_soak [--trials N] [--mib M] [--seed S] [--variants stop,gpu_run,gpu_stop,backlog]"); }

}  // namespace

int Main(int argc, char** argv) {
  int trials = 30;
  int mib = 768;
  uint64_t seed = 1;
  std::vector<Variant> variants = AllVariants();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) Usage();
    std::string val = argv[++i];
    if (a == "--trials") {
      trials = std::atoi(val.c_str());
    } else if (a == "--mib") {
      mib = std::atoi(val.c_str());
    } else if (a == "--seed") {
      seed = std::strtoull(val.c_str(), nullptr, 10);
    } else if (a == "--variants") {
      variants.clear();
      std::stringstream ss(val);
      for (std::string k; std::getline(ss, k, ',');) {
        auto it =
            std::find_if(AllVariants().begin(), AllVariants().end(), [&](const Variant& v) { return v.key == k; });
        if (it == AllVariants().end()) Die("unknown variant '" + k + "' (stop, gpu_run, gpu_stop, backlog)");
        variants.push_back(*it);
      }
    } else {
      Usage();
    }
  }
  if (trials < 1 || mib < 1 || variants.empty()) Die("--trials and --mib must be > 0 and --variants non-empty");
  if (geteuid() != 0) Die("needs root (CRIU)");
  if (!fs::exists(dt::CkptdBinary())) Die(dt::CkptdBinary() + " is not built");
  if (!fs::exists(kFakeLib) && std::any_of(variants.begin(), variants.end(), [](const Variant& v) { return v.gpu; }))
    Die(kFakeLib + " is not built");
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  signal(SIGPIPE, SIG_IGN);

  std::printf("crash_soak: %d trials per variant, workload memory %d MiB, seed %llu\n", trials, mib,
              static_cast<unsigned long long>(seed));
  std::map<std::string, double> duration;
  for (const auto& v : variants) {
    duration[v.key] = Calibrate(v, mib);
    std::printf("calibration  %-42s job %8.0f ms\n", v.name.c_str(), duration[v.key]);
    std::fflush(stdout);
  }

  std::mt19937_64 rng(seed);
  std::map<std::string, Tally> tally;
  std::vector<std::string> saved;
  const std::string stamp = std::to_string(std::time(nullptr));
  for (int r = 1; r <= trials; ++r) {
    for (const auto& v : variants) {
      CheckInterrupted();
      double delay = std::uniform_real_distribution<double>(0, duration[v.key])(rng);
      fs::path save_to = kFailures / (stamp + "-r" + std::to_string(r) + "-" + v.key);
      Outcome o = RunTrial(v, mib, delay, save_to);
      Tally& t = tally[v.key];
      ++t.trials;
      t.frozen += o.frozen;
      t.locked += o.locked;
      t.lost += o.lost;
      t.inconsistent += o.inconsistent;
      if (o.recovery_ms >= 0) t.recovery_ms.push_back(o.recovery_ms);
      std::string cls;
      for (auto [on, name] : std::initializer_list<std::pair<bool, const char*>>{
               {o.frozen, "frozen"}, {o.locked, "locked"}, {o.lost, "lost"}, {o.inconsistent, "inconsistent"}})
        if (on) cls += (cls.empty() ? "" : ",") + std::string(name);
      std::printf("[%2d/%d] %-42s delay %6.0f ms  job %-16s recovery %5.0f ms (%s)  ckpt %s  workload %s -> %s\n", r,
                  trials, v.name.c_str(), delay, o.job.c_str(), o.recovery_ms, o.actions.c_str(), o.ckpt.c_str(),
                  o.workload.c_str(), cls.empty() ? "ok" : cls.c_str());
      for (const auto& n : o.notes) std::printf("         %s\n", n.c_str());
      if (!o.saved.empty()) {
        std::printf("         logs: %s\n", o.saved.c_str());
        saved.push_back(o.saved);
      }
      std::fflush(stdout);
    }
  }

  std::printf("\n| variant | trials | frozen | locked | lost | inconsistent | recovery ms (median) |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (const auto& v : variants) {
    const Tally& t = tally[v.key];
    std::printf("| %s | %d | %d | %d | %d | %d | %.0f |\n", v.name.c_str(), t.trials, t.frozen, t.locked, t.lost,
                t.inconsistent, Median(t.recovery_ms));
  }
  if (!saved.empty())
    std::printf("\nlogs of the %zu trials with findings are under %s\n", saved.size(), kFailures.c_str());
  return 0;
}

int main(int argc, char** argv) {
  return ckptd::bench::RunBench([&] { return Main(argc, argv); });
}
