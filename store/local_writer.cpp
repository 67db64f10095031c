// Internal to the local object store: its writer. Bytes go to a hidden
// temporary file in the object's directory (reached beneath the root
// without following symlinks), large objects with O_DIRECT from a ring of
// aligned buffers written by an I/O thread of the writer; Commit fsyncs,
// renames into place and fsyncs the directory.
#include "store/local_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <random>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace ckptd {
namespace {

using Store = LocalObjectStore;

std::string RandomSuffix() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}-{:x}-{:x}", ::getpid(), counter.fetch_add(1), rng());
}

// Buffered writes hand the kernel at most 1 MiB per write(). On our VMs
// (kernel 6.18, paravirtualized) ext4 write() calls of 2 MiB or more (which
// get 2 MiB page-cache folios) cost 0.5-2.9 CPU-s per GiB in a third to half
// of the runs, all of it copying into the fresh page cache; 1 MiB calls
// cost 0.12-0.15, every run.
constexpr size_t kMaxWriteCall = 1 << 20;

// Large objects bypass the page cache. Inside the checkpoint pipeline (which
// frees and reallocates a lot of memory, and this VM hands freed memory back
// to the host) copying into fresh page-cache pages cost ~1.8 CPU-s per GiB
// written, against 0.14 on a quiet machine; O_DIRECT from a few reused
// buffers touches no fresh memory and does not evict the workload's cached
// files. Direct writes are synchronous (about half the page cache's speed
// one at a time), hence the I/O thread.
constexpr size_t kDirectAlign = 4096;  // covers the logical block size of our disks
static_assert(Store::kDirectAfter % kDirectAlign == 0 && Store::kDirectBuffer % kDirectAlign == 0);

// The direct part of one large object: the caller fills aligned buffers in
// turn and queues each full one; a thread of its own writes them in file
// order with O_DIRECT. Buffers are allocated on first use and reused.
// On a write error the thread unlinks the temporary file at once and stops;
// on EINVAL (no O_DIRECT here after all) it just stops. Either way what it
// did not write stays in the buffers (Unwritten) for the caller.
class DirectRing {
 public:
  // fd has O_DIRECT set; the first buffer goes to offset (block aligned).
  DirectRing(int fd, uint64_t offset, const localfs::TempFile& tmp, Store::IoCounters& io)
      : fd_(fd), next_offset_(offset), tmp_(tmp), io_(io), thread_([this] { Run(); }) {}
  // Stops the thread after the write in progress, if any.
  ~DirectRing() {
    {
      std::lock_guard lk(mu_);
      abort_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // Copies data into the ring (consuming it), queueing full buffers and
  // waiting for a free one when all are queued. False once the thread has
  // stopped (error or refusal); then call Finish.
  bool Append(std::string_view& data) {
    while (!data.empty()) {
      if (cur_ == nullptr && !NextBuffer()) return false;
      size_t n = std::min(data.size(), Store::kDirectBuffer - cur_->size);
      std::memcpy(cur_->data.get() + cur_->size, data.data(), n);
      cur_->size += n;
      data.remove_prefix(n);
      if (cur_->size == Store::kDirectBuffer) Queue(Store::kDirectBuffer);
    }
    return !stopped_.load(std::memory_order_acquire);
  }

  // Queues the aligned part of the last buffer, waits until the thread has
  // written everything queued (or stopped), and joins it.
  void Finish() {
    if (cur_ != nullptr) Queue(cur_->size / kDirectAlign * kDirectAlign);
    {
      std::lock_guard lk(mu_);
      closing_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // After Finish: the thread's write error (errno), 0 if none.
  int error() const { return error_; }
  bool refused() const { return refused_; }
  // After Finish: (bytes, file offset) not in the file yet, in file order:
  // the unaligned tail, and everything left after a refusal.
  std::vector<std::pair<std::string_view, uint64_t>> Unwritten() const {
    std::vector<std::pair<std::string_view, uint64_t>> out;
    for (const Buffer& b : bufs_)
      if (b.done < b.size)
        out.emplace_back(std::string_view(b.data.get() + b.done, b.size - b.done), b.offset + b.done);
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.second < b.second; });
    return out;
  }

 private:
  struct FreeDeleter {
    void operator()(char* p) const { std::free(p); }
  };
  struct Buffer {
    std::unique_ptr<char, FreeDeleter> data;  // kDirectBuffer bytes, kDirectAlign aligned
    uint64_t offset = 0;                      // in the file
    size_t size = 0;                          // bytes copied in
    size_t end = 0;                           // bytes to write direct (set when queued)
    size_t done = 0;                          // bytes in the file
  };

  // Waits for a free buffer and makes it the one being filled.
  bool NextBuffer() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return queued_ < bufs_.size() || stopped_; });
    if (stopped_) return false;
    Buffer& b = bufs_[(head_ + queued_) % bufs_.size()];
    if (!b.data) {
      void* p = nullptr;
      if (::posix_memalign(&p, kDirectAlign, Store::kDirectBuffer) != 0) throw std::bad_alloc();
      b.data.reset(static_cast<char*>(p));
    }
    b.offset = next_offset_;
    next_offset_ += Store::kDirectBuffer;
    b.size = b.end = b.done = 0;
    cur_ = &b;
    return true;
  }

  void Queue(size_t end) {
    {
      std::lock_guard lk(mu_);
      cur_->end = end;
      ++queued_;
      cur_ = nullptr;
    }
    cv_.notify_all();
  }

  void Run() {
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return queued_ > 0 || closing_ || abort_; });
      if (abort_ || queued_ == 0) break;
      Buffer& b = bufs_[head_];
      lk.unlock();
      int err = WriteOut(b);
      lk.lock();
      if (err != 0) {
        if (err == EINVAL) {
          refused_ = true;
        } else {
          error_ = err;
          tmp_.Unlink();  // a failed object leaves nothing, even before the caller hears
        }
        break;
      }
      head_ = (head_ + 1) % bufs_.size();
      --queued_;
      cv_.notify_all();
    }
    stopped_.store(true, std::memory_order_release);
    cv_.notify_all();
  }

  int WriteOut(Buffer& b) {
    while (b.done < b.end) {
      ssize_t n = ::pwrite(fd_, b.data.get() + b.done, b.end - b.done, static_cast<off_t>(b.offset + b.done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno;
      if (n == 0) return EIO;
      b.done += static_cast<size_t>(n);
      io_.direct_bytes.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      // A partial, unaligned write leaves the next one unaligned: EINVAL,
      // and the rest goes buffered.
    }
    return 0;
  }

  const int fd_;
  uint64_t next_offset_;  // of the next buffer to fill
  const localfs::TempFile& tmp_;
  Store::IoCounters& io_;
  std::array<Buffer, Store::kDirectBuffers> bufs_;
  Buffer* cur_ = nullptr;  // being filled by the caller, not queued

  std::mutex mu_;
  std::condition_variable cv_;  // queued_, stopped_, closing_, abort_
  size_t head_ = 0;             // next buffer for the thread
  size_t queued_ = 0;           // buffers from head_ on, waiting or being written
  bool closing_ = false;        // write what is queued, then stop
  bool abort_ = false;          // stop after the write in progress
  std::atomic<bool> stopped_{false};
  int error_ = 0;  // set by the thread before stopped_
  bool refused_ = false;
  std::thread thread_;  // last: starts once everything above is set up
};

class LocalWriter final : public ObjectWriter {
 public:
  LocalWriter(std::string key, localfs::Fd dir, std::string tmp_name, int fd, std::string where,
              std::shared_ptr<Store::IoCounters> io)
      : key_(std::move(key)),
        dir_(std::move(dir)),
        tmp_{dir_.get(), std::move(tmp_name)},
        fd_(fd),
        where_(std::move(where)),
        io_(std::move(io)) {}
  ~LocalWriter() override { Abort(); }

  Status Write(std::string_view data) override {
    if (fd_ < 0) return Internal("write to a closed writer for '" + key_ + "'");
    while (!data.empty()) {
      if (ring_) {
        size_t before = data.size();
        bool running = ring_->Append(data);
        written_ += before - data.size();
        if (!running) CKPTD_RETURN_IF_ERROR(LeaveDirect());  // error, or buffered from here on
        continue;
      }
      size_t n = std::min(data.size(), kMaxWriteCall);
      if (!direct_tried_) n = std::min<uint64_t>(n, Store::kDirectAfter - written_);
      CKPTD_RETURN_IF_ERROR(WriteAt(data.substr(0, n), written_));
      data.remove_prefix(n);
      written_ += n;
      if (!direct_tried_ && written_ == Store::kDirectAfter) StartDirect();
    }
    if (!ring_) StartWriteback();
    return Status::Ok();
  }

  Status Commit() override {
    if (fd_ < 0) return Internal("commit of a closed writer for '" + key_ + "'");
    if (ring_) CKPTD_RETURN_IF_ERROR(LeaveDirect());
    if (::fsync(fd_) != 0) return Fail("fsync", errno);
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) {
      int err = errno;
      tmp_.Unlink();
      return Err("close", err);
    }
    std::string base(localfs::BaseOf(key_));
    if (::renameat(dir_.get(), tmp_.name.c_str(), dir_.get(), base.c_str()) != 0) {
      int err = errno;
      tmp_.Unlink();
      return Err("rename", err);
    }
    // The rename is durable only once the directory entry is.
    return localfs::FsyncFd(dir_.get(), "directory").WithContext(where_ + ": commit '" + key_ + "'");
  }

  void Abort() override {
    if (fd_ < 0) return;
    ring_.reset();  // waits for the direct write in progress, if any
    ::close(fd_);
    fd_ = -1;
    tmp_.Unlink();
  }

  uint64_t bytes_written() const override { return written_; }

 private:
  Status Err(std::string_view op, int err) { return ErrnoError(fmt::format("{}: {} '{}'", where_, op, key_), err); }
  // A failed write leaves nothing behind: the temporary file goes at once.
  Status Fail(std::string_view op, int err) {
    Abort();
    return Err(op, err);
  }

  Status WriteAt(std::string_view data, uint64_t offset) {
    while (!data.empty()) {
      ssize_t n = ::pwrite(fd_, data.data(), std::min(data.size(), kMaxWriteCall), static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Fail("write", errno);
      }
      data.remove_prefix(static_cast<size_t>(n));
      offset += static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }

  // Once, at kDirectAfter bytes (written buffered). Where the filesystem
  // refuses O_DIRECT (EINVAL: ramfs, ...) the object stays buffered.
  void StartDirect() {
    direct_tried_ = true;
    int flags = ::fcntl(fd_, F_GETFL);
    if (flags < 0 || ::fcntl(fd_, F_SETFL, flags | O_DIRECT) != 0) {
      io_->direct_refused.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // Start writeback of the buffered head now; nothing else will.
    ::sync_file_range(fd_, static_cast<off_t>(flushed_), 0, SYNC_FILE_RANGE_WRITE);
    try {
      ring_ = std::make_unique<DirectRing>(fd_, written_, tmp_, *io_);
    } catch (const std::system_error&) {  // no thread: stay buffered
      ::fcntl(fd_, F_SETFL, flags);
    }
  }

  // Ends the direct part (at Commit, on a write error or when a direct
  // write was refused): waits for the I/O thread, then writes buffered
  // what it did not: the unaligned tail, or everything left after a refusal.
  Status LeaveDirect() {
    ring_->Finish();
    if (int err = ring_->error()) return Fail("write", err);
    if (ring_->refused()) io_->direct_refused.fetch_add(1, std::memory_order_relaxed);
    int flags = ::fcntl(fd_, F_GETFL);
    if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0) return Fail("fcntl", errno);
    for (auto [data, offset] : ring_->Unwritten()) CKPTD_RETURN_IF_ERROR(WriteAt(data, offset));
    ring_.reset();
    return Status::Ok();
  }

  // Buffered, large objects (no O_DIRECT): hand each finished window to
  // the disk as it fills (asynchronous writeback), so the fsync at Commit
  // waits only for the last window instead of the whole object, and dirty
  // pages stay bounded.
  void StartWriteback() {
    constexpr uint64_t kWindow = 16ull << 20;
    if (written_ - flushed_ < kWindow) return;
    uint64_t upto = written_ / kWindow * kWindow;
    // Advisory: on failure the fsync at Commit still does the whole job.
    if (::sync_file_range(fd_, static_cast<off_t>(flushed_), static_cast<off_t>(upto - flushed_),
                          SYNC_FILE_RANGE_WRITE) == 0)
      flushed_ = upto;
  }

  std::string key_;
  localfs::Fd dir_;        // the object's directory, opened beneath the root
  localfs::TempFile tmp_;  // in dir_
  int fd_;
  std::string where_;
  std::shared_ptr<Store::IoCounters> io_;
  uint64_t written_ = 0;              // accepted; in the file too unless ring_ holds some
  uint64_t flushed_ = 0;              // handed to writeback up to here
  bool direct_tried_ = false;         // the switch to O_DIRECT happens once, at kDirectAfter
  std::unique_ptr<DirectRing> ring_;  // while writing direct
};

}  // namespace

Result<std::unique_ptr<ObjectWriter>> NewLocalWriter(int root, std::string_view key, const std::string& where,
                                                     std::shared_ptr<LocalObjectStore::IoCounters> io) {
  std::string base(localfs::BaseOf(key));
  if (std::string_view(base).starts_with(localfs::kTmpPrefix))
    return InvalidArgument("object key '" + std::string(key) + "' uses the reserved temp prefix");
  // A concurrent Delete may remove the (empty) directory between opening it
  // and creating the file: open it again and retry.
  for (int attempt = 0;; ++attempt) {
    auto dir = localfs::OpenDir(root, localfs::DirOf(key), true);
    if (!dir.ok()) return dir.status().WithContext(fmt::format("{}: create '{}'", where, key));
    std::string tmp = std::string(localfs::kTmpPrefix) + base + "." + RandomSuffix();
    int fd = ::openat(dir->get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
      return std::unique_ptr<ObjectWriter>(
          new LocalWriter(std::string(key), std::move(*dir), std::move(tmp), fd, where, std::move(io)));
    }
    if (errno == ENOENT && attempt < 3) continue;
    return ErrnoError(fmt::format("{}: create '{}'", where, key), errno);
  }
}

Status LinkLocalFile(int root, std::string_view key, const std::filesystem::path& path, const std::string& where) {
  auto fail = [&](std::string_view op, int err) {
    return ErrnoError(fmt::format("{}: {} '{}' as '{}'", where, op, path.string(), key), err);
  };
  localfs::Fd src(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (src.get() < 0) return fail("open", errno);
  struct stat st {};
  if (::fstat(src.get(), &st) != 0) return fail("stat", errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(fmt::format("{}: '{}' is not a regular file", where, path.string()));
  // Images hold process memory: the object is private whatever the file was.
  if (::fchmod(src.get(), 0600) != 0) return fail("chmod", errno);
  if (::fsync(src.get()) != 0) return fail("fsync", errno);
  std::string base(localfs::BaseOf(key));
  const std::string proc_path = fmt::format("/proc/self/fd/{}", src.get());
  for (int attempt = 0;; ++attempt) {
    auto dir = localfs::OpenDir(root, localfs::DirOf(key), true);
    if (!dir.ok()) return dir.status().WithContext(fmt::format("{}: link '{}'", where, key));
    localfs::TempFile tmp{dir->get(), std::string(localfs::kTmpPrefix) + base + "." + RandomSuffix()};
    // Through /proc/self/fd: the inode opened (and checked) above, not
    // whatever the path names by now (linkat(2), no CAP_DAC_READ_SEARCH).
    if (::linkat(AT_FDCWD, proc_path.c_str(), dir->get(), tmp.name.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      if (errno == ENOENT && attempt < 3) continue;  // the directory went meanwhile: again
      return fail("link", errno);
    }
    if (::renameat(dir->get(), tmp.name.c_str(), dir->get(), base.c_str()) != 0) {
      int err = errno;
      tmp.Unlink();
      return fail("rename", err);
    }
    return localfs::FsyncFd(dir->get(), "directory").WithContext(fmt::format("{}: link '{}'", where, key));
  }
}

}  // namespace ckptd
