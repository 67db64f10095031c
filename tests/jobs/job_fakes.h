// Fakes for the job pipelines' unit tests, which run without root: an
// in-memory object store with fault switches, a CRIU that writes image
// files and signals real (unprivileged) processes, GPU hooks that record
// what they are asked, and sleeping child processes standing in for
// targets, CRIUs and restored trees.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "criu/criu_driver.h"
#include "jobs/job_hooks.h"
#include "store/object_store.h"

namespace ckptd::testing {

// A child that sleeps until killed; reaped on destruction.
class Sleeper {
 public:
  Sleeper() {
    pid_ = fork();
    if (pid_ == 0) {
      setsid();
      execl("/bin/sleep", "sleep", "1000", nullptr);
      _exit(127);
    }
  }
  ~Sleeper() { Kill(); }
  Sleeper(const Sleeper&) = delete;
  Sleeper& operator=(const Sleeper&) = delete;
  pid_t pid() const { return pid_; }
  void Kill() {
    if (pid_ <= 0 || reaped_) return;
    kill(pid_, SIGKILL);
    Reap();
  }
  // Waits for it (after something else killed it).
  void Reap() {
    if (pid_ > 0 && !reaped_) waitpid(pid_, nullptr, 0);
    reaped_ = true;
  }
  bool reaped() const { return reaped_; }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

class MemoryObjectStore final : public ObjectStore {
 public:
  // Writes of keys containing `needle` fail at Commit.
  void FailWritesOf(std::string needle) {
    std::lock_guard lock(mu_);
    fail_ = std::move(needle);
  }
  std::map<std::string, std::string> objects() const {
    std::lock_guard lock(mu_);
    return objects_;
  }
  size_t CountUnder(const std::string& prefix) const {
    std::lock_guard lock(mu_);
    return std::count_if(objects_.begin(), objects_.end(), [&](const auto& kv) { return kv.first.starts_with(prefix); });
  }
  int incomplete_sweeps() const { return sweeps_; }

  Result<std::unique_ptr<ObjectWriter>> NewWriter(std::string_view key, const WriteOptions&) override {
    CKPTD_RETURN_IF_ERROR(ValidateKey(key));
    return std::unique_ptr<ObjectWriter>(new Writer(this, std::string(key)));
  }
  Result<std::unique_ptr<ObjectReader>> NewReader(std::string_view key, const ReadOptions& opts) override {
    std::lock_guard lock(mu_);
    auto it = objects_.find(std::string(key));
    if (it == objects_.end()) return NotFound("no object " + std::string(key));
    std::string data = it->second.substr(std::min<uint64_t>(opts.offset, it->second.size()));
    if (opts.length) data = data.substr(0, *opts.length);
    return std::unique_ptr<ObjectReader>(new Reader(std::move(data), it->second.size()));
  }
  Result<ObjectInfo> Head(std::string_view key) override {
    std::lock_guard lock(mu_);
    auto it = objects_.find(std::string(key));
    if (it == objects_.end()) return NotFound("no object " + std::string(key));
    return ObjectInfo{it->first, it->second.size(), "etag"};
  }
  Result<ListPage> List(std::string_view prefix, std::string_view token, int max_keys) override {
    std::lock_guard lock(mu_);
    ListPage page;
    for (auto it = objects_.upper_bound(std::string(token)); it != objects_.end(); ++it) {
      if (!it->first.starts_with(prefix)) continue;
      if (static_cast<int>(page.objects.size()) == max_keys) {
        page.next_token = page.objects.back().key;
        break;
      }
      page.objects.push_back({it->first, it->second.size(), "etag"});
    }
    return page;
  }
  Status Delete(std::string_view key) override {
    std::lock_guard lock(mu_);
    objects_.erase(std::string(key));
    return Status::Ok();
  }
  Status RemoveIncomplete(std::string_view) override {
    ++sweeps_;
    return Status::Ok();
  }
  std::string Describe() const override { return "memory://"; }

 private:
  class Writer final : public ObjectWriter {
   public:
    Writer(MemoryObjectStore* s, std::string key) : s_(s), key_(std::move(key)) {}
    Status Write(std::string_view d) override {
      data_.append(d);
      written_ += d.size();
      return Status::Ok();
    }
    Status Commit() override {
      std::lock_guard lock(s_->mu_);
      if (!s_->fail_.empty() && key_.find(s_->fail_) != std::string::npos) return IOError("injected failure: " + key_);
      s_->objects_[key_] = std::move(data_);
      return Status::Ok();
    }
    void Abort() override { data_.clear(); }
    uint64_t bytes_written() const override { return written_; }

   private:
    MemoryObjectStore* s_;
    std::string key_, data_;
    uint64_t written_ = 0;
  };
  class Reader final : public ObjectReader {
   public:
    Reader(std::string d, uint64_t size) : d_(std::move(d)), size_(size) {}
    Result<size_t> Read(std::span<char> buf) override {
      size_t n = std::min(buf.size(), d_.size() - off_);
      std::copy_n(d_.data() + off_, n, buf.data());
      off_ += n;
      return n;
    }
    uint64_t size() const override { return size_; }

   private:
    std::string d_;
    size_t off_ = 0;
    uint64_t size_;
  };

  mutable std::mutex mu_;
  std::map<std::string, std::string> objects_;
  std::string fail_;
  std::atomic<int> sweeps_{0};
};

// A CRIU that needs no privileges: Dump writes a few image files and
// answers the notifications as CRIU does; without leave_running it kills
// the target (a Sleeper) at the end. Restore starts a new Sleeper as the
// "restored tree". Each can be made to fail.
class FakeCriu final : public criu::CriuApi {
 public:
  bool fail_dump = false;
  bool fail_restore = false;
  std::string dump_payload = std::string(300000, 'p');
  mutable std::vector<criu::RestoreOptions> restores;
  mutable std::vector<std::unique_ptr<Sleeper>> restored;
  mutable int dumps = 0;

  Result<criu::CriuVersion> Version() const override { return criu::CriuVersion{4, 2, 1, "", ""}; }
  Status Check() const override { return Status::Ok(); }
  Result<criu::CriuFeatures> FeatureCheck() const override { return criu::CriuFeatures{}; }
  criu::ProbeResult Probe() const override {
    criu::ProbeResult p;
    p.found = p.version_ok = p.check_passed = true;
    p.version = criu::CriuVersion{4, 2, 1, "", ""};
    return p;
  }
  Result<criu::DumpResult> Dump(const criu::DumpOptions& o) const override {
    ++dumps;
    Sleeper criu;  // stands in for CRIU's process while it "dumps"
    if (o.on_criu_started) o.on_criu_started(criu.pid());
    if (o.notify) CKPTD_RETURN_IF_ERROR(o.notify("pre-dump", 0));
    if (fail_dump) return IOError("fake criu dump failed");
    std::ofstream(o.images_dir / "pstree.img") << "tree";
    std::ofstream(o.images_dir / "core-1.img") << "core";
    std::ofstream(o.images_dir / "pages-1.img") << dump_payload;
    if (o.notify) CKPTD_RETURN_IF_ERROR(o.notify("post-dump", 0));
    if (!o.leave_running) kill(o.pid, SIGKILL);
    return criu::DumpResult{};
  }
  Result<criu::DumpResult> PreDump(const criu::DumpOptions&) const override { return Unavailable("no"); }
  Result<criu::RestoreResult> Restore(const criu::RestoreOptions& o) const override {
    restores.push_back(o);
    if (fail_restore) return IOError("fake criu restore failed");
    restored.push_back(std::make_unique<Sleeper>());
    int pid = restored.back()->pid();
    if (o.notify) CKPTD_RETURN_IF_ERROR(o.notify("post-restore", pid));
    criu::RestoreResult r;
    r.pid = pid;
    return r;
  }
};

// The keys of `inner` under a prefix, as a store of their own (what
// OpenObjectStore gives a restore for "<images_uri><id>/").
class PrefixedStore final : public ObjectStore {
 public:
  PrefixedStore(ObjectStore* inner, std::string prefix) : inner_(inner), p_(std::move(prefix)) {}
  Result<std::unique_ptr<ObjectWriter>> NewWriter(std::string_view k, const WriteOptions& o) override {
    return inner_->NewWriter(p_ + std::string(k), o);
  }
  Result<std::unique_ptr<ObjectReader>> NewReader(std::string_view k, const ReadOptions& o) override {
    return inner_->NewReader(p_ + std::string(k), o);
  }
  Result<ObjectInfo> Head(std::string_view k) override { return inner_->Head(p_ + std::string(k)); }
  Result<ListPage> List(std::string_view, std::string_view, int) override { return Unavailable("not needed"); }
  Status Delete(std::string_view k) override { return inner_->Delete(p_ + std::string(k)); }
  std::string Describe() const override { return "memory://" + p_; }

 private:
  ObjectStore* inner_;
  std::string p_;
};

// GPU hooks that find the given pids and record every call.
class RecordingGpuHooks final : public JobHooks {
 public:
  std::vector<int> gpu_pids;
  bool fail_checkpoint = false;
  std::vector<std::string> calls;  // "lock 12", "resume 12", ...

  Status Find(int, GpuJobContext* ctx) override {
    ctx->pids = gpu_pids;
    return Status::Ok();
  }
  Status Lock(GpuJobContext* ctx) override { return Record("lock", ctx); }
  Status Checkpoint(GpuJobContext* ctx) override {
    Record("checkpoint", ctx).IgnoreError();
    return fail_checkpoint ? Internal("fake GPU checkpoint failed") : Status::Ok();
  }
  Status Resume(GpuJobContext* ctx) override { return Record("resume", ctx); }
  Status AfterRestore(int, GpuJobContext* ctx) override { return Record("restore", ctx); }

 private:
  Status Record(const std::string& op, GpuJobContext* ctx) {
    std::string line = op;
    for (int p : ctx->pids) line += " " + std::to_string(p);
    calls.push_back(line);
    return Status::Ok();
  }
};

}  // namespace ckptd::testing
