// A RocksDB file system for tests of syncing: WAL files whose Sync/Fsync
// wait while the gate is closed, are counted, and fail on demand.
// Header-only. Thread safety: every member may be used from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include <rocksdb/file_system.h>

namespace ckptd::testing {

// WAL files whose Sync/Fsync wait while the gate is closed, counted, and
// failed on demand.
class GatedSyncFs : public rocksdb::FileSystemWrapper {
 public:
  GatedSyncFs() : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  static const char* kClassName() { return "GatedSyncFs"; }
  const char* Name() const override { return kClassName(); }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r, rocksdb::IODebugContext* d) override {
    auto s = target()->NewWritableFile(f, o, r, d);
    if (s.ok() && f.ends_with(".log")) *r = std::make_unique<File>(std::move(*r), this);
    return s;
  }

  void Close() {
    std::lock_guard l(mu_);
    open_ = false;
  }
  void Open() {
    {
      std::lock_guard l(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Waits until a sync is held at the closed gate.
  bool WaitForWaiter() {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(10), [&] { return waiting_ > 0; });
  }
  std::atomic<int> syncs{0};
  std::atomic<bool> fail{false};

 private:
  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> t, GatedSyncFs* fs)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(t)), fs_(fs) {}
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
      if (auto s = Gate(); !s.ok()) return s;
      return target()->Sync(o, d);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
      if (auto s = Gate(); !s.ok()) return s;
      return target()->Fsync(o, d);
    }

   private:
    rocksdb::IOStatus Gate() {
      std::unique_lock l(fs_->mu_);
      ++fs_->waiting_;
      fs_->cv_.notify_all();
      fs_->cv_.wait(l, [&] { return fs_->open_; });
      --fs_->waiting_;
      ++fs_->syncs;
      return fs_->fail ? rocksdb::IOStatus::IOError("injected sync failure") : rocksdb::IOStatus::OK();
    }
    GatedSyncFs* fs_;
  };

  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int waiting_ = 0;
};

}  // namespace ckptd::testing
