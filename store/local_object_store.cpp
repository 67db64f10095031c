#include "store/local_object_store.h"

#include <dirent.h>
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

constexpr std::string_view kTmpPrefix = ".ckptd-tmp-";

std::string Dirname(const std::string& path) {
  size_t pos = path.rfind('/');
  return pos == 0 ? "/" : path.substr(0, pos);
}

// mkdir -p; EEXIST for a directory is fine.
Status MakeDirs(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    return S_ISDIR(st.st_mode) ? Status::Ok() : IOError(dir + " exists and is not a directory");
  }
  if (dir != "/" && dir.find('/') != std::string::npos) {
    CKPTD_RETURN_IF_ERROR(MakeDirs(Dirname(dir)));
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError("mkdir " + dir, errno);
  return Status::Ok();
}

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open dir " + dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoError("fsync dir " + dir, err);
  return Status::Ok();
}

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
using Store = LocalObjectStore;
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
  DirectRing(int fd, uint64_t offset, const std::string& tmp, Store::IoCounters& io)
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
    uint64_t offset = 0;  // in the file
    size_t size = 0;      // bytes copied in
    size_t end = 0;       // bytes to write direct (set when queued)
    size_t done = 0;      // bytes in the file
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
          ::unlink(tmp_.c_str());  // a failed object leaves nothing, even before the caller hears
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
  const std::string& tmp_;
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
  int error_ = 0;        // set by the thread before stopped_
  bool refused_ = false;
  std::thread thread_;  // last: starts once everything above is set up
};

class LocalWriter final : public ObjectWriter {
 public:
  LocalWriter(std::string key, std::string path, std::string tmp, int fd, std::string where,
              std::shared_ptr<Store::IoCounters> io)
      : key_(std::move(key)), path_(std::move(path)), tmp_(std::move(tmp)), fd_(fd),
        where_(std::move(where)), io_(std::move(io)) {}
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
      ::unlink(tmp_.c_str());
      return Err("close", err);
    }
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp_.c_str());
      return Err("rename", err);
    }
    // The rename is durable only once the directory entry is.
    return FsyncDir(Dirname(path_)).WithContext(where_ + ": commit '" + key_ + "'");
  }

  void Abort() override {
    if (fd_ < 0) return;
    ring_.reset();  // waits for the direct write in progress, if any
    ::close(fd_);
    fd_ = -1;
    ::unlink(tmp_.c_str());
  }

  uint64_t bytes_written() const override { return written_; }

 private:
  Status Err(std::string_view op, int err) {
    return ErrnoError(fmt::format("{}: {} '{}'", where_, op, key_), err);
  }
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

  std::string key_, path_, tmp_;
  int fd_;
  std::string where_;
  std::shared_ptr<Store::IoCounters> io_;
  uint64_t written_ = 0;  // accepted; in the file too unless ring_ holds some
  uint64_t flushed_ = 0;  // handed to writeback up to here
  bool direct_tried_ = false;          // the switch to O_DIRECT happens once, at kDirectAfter
  std::unique_ptr<DirectRing> ring_;   // while writing direct
};

class LocalReader final : public ObjectReader {
 public:
  LocalReader(int fd, uint64_t size, uint64_t remaining, std::string what)
      : fd_(fd), size_(size), remaining_(remaining), what_(std::move(what)) {}
  ~LocalReader() override { ::close(fd_); }

  Result<size_t> Read(std::span<char> buf) override {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), remaining_));
    if (want == 0) return size_t{0};
    for (;;) {
      ssize_t n = ::read(fd_, buf.data(), want);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError("read " + what_, errno);
      remaining_ -= static_cast<uint64_t>(n);
      return static_cast<size_t>(n);
    }
  }
  uint64_t size() const override { return size_; }

 private:
  int fd_;
  uint64_t size_, remaining_;
  std::string what_;
};

struct Entry {
  std::string sort_name;  // name, plus '/' for directories (byte order of full keys)
  bool dir;
};

// Depth-first walk in key order, appending keys > after (and starting with
// prefix) until out has max entries. Memory: one directory listing per level.
Status Walk(const std::string& root, const std::string& rel_dir, std::string_view prefix,
            std::string_view after, size_t max, std::vector<ObjectInfo>* out, bool* more) {
  std::string abs = rel_dir.empty() ? root : root + "/" + rel_dir;
  DIR* d = ::opendir(abs.c_str());
  if (d == nullptr) {
    if (errno == ENOENT || errno == ENOTDIR) return Status::Ok();
    return ErrnoError("opendir " + abs, errno);
  }
  std::vector<Entry> entries;
  errno = 0;
  while (struct dirent* de = ::readdir(d)) {
    std::string_view name = de->d_name;
    if (name == "." || name == ".." || name.starts_with(kTmpPrefix)) continue;
    std::string rel = rel_dir.empty() ? std::string(name) : rel_dir + "/" + std::string(name);
    bool dir = false;
    struct stat st;
    if (::fstatat(::dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // raced a delete
    if (S_ISDIR(st.st_mode)) {
      dir = true;
    } else if (!S_ISREG(st.st_mode)) {
      continue;
    }
    std::string key_or_dir = dir ? rel + "/" : rel;
    // Prune subtrees that cannot hold a matching key.
    size_t common = std::min(key_or_dir.size(), prefix.size());
    if (key_or_dir.compare(0, common, prefix.substr(0, common)) != 0) continue;
    if (!dir && key_or_dir.size() < prefix.size()) continue;
    // Prune keys/subtrees entirely <= after.
    if (!after.empty()) {
      if (!dir && key_or_dir <= after) continue;
      if (dir && !(std::string_view(after).starts_with(key_or_dir)) && key_or_dir < after) continue;
    }
    entries.push_back({std::string(name) + (dir ? "/" : ""), dir});
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return ErrnoError("readdir " + abs, err);
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.sort_name < b.sort_name; });
  for (const Entry& e : entries) {
    std::string name = e.dir ? e.sort_name.substr(0, e.sort_name.size() - 1) : e.sort_name;
    std::string rel = rel_dir.empty() ? name : rel_dir + "/" + name;
    if (e.dir) {
      CKPTD_RETURN_IF_ERROR(Walk(root, rel, prefix, after, max, out, more));
      if (*more) return Status::Ok();
    } else {
      if (out->size() == max) {
        *more = true;
        return Status::Ok();
      }
      struct stat st;
      std::string abs_path = root + "/" + rel;
      if (::stat(abs_path.c_str(), &st) != 0) continue;
      out->push_back({rel, static_cast<uint64_t>(st.st_size),
                      fmt::format("{:x}-{:x}", st.st_size, st.st_mtim.tv_sec * 1000000000LL +
                                                             st.st_mtim.tv_nsec)});
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<LocalObjectStore>> LocalObjectStore::Open(std::string root) {
  if (root.empty() || root.front() != '/')
    return InvalidArgument("local object store root '" + root + "' is not absolute");
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  CKPTD_RETURN_IF_ERROR(MakeDirs(root).WithContext("local object store"));
  return std::unique_ptr<LocalObjectStore>(new LocalObjectStore(std::move(root)));
}

std::string LocalObjectStore::Describe() const { return "file://" + root_ + "/"; }

Result<std::unique_ptr<ObjectWriter>> LocalObjectStore::NewWriter(std::string_view key,
                                                                  const WriteOptions&) {
  CKPTD_RETURN_IF_ERROR(ValidateKey(key));
  std::string path = PathOf(key);
  std::string dir = Dirname(path);
  std::string base = path.substr(dir.size() + 1);
  if (std::string_view(base).starts_with(kTmpPrefix))
    return InvalidArgument("object key '" + std::string(key) + "' uses the reserved temp prefix");
  // A concurrent Delete may remove the (empty) parent directory between
  // mkdir and open: recreate it and try again.
  for (int attempt = 0;; ++attempt) {
    CKPTD_RETURN_IF_ERROR(MakeDirs(dir).WithContext(Describe()));
    std::string tmp = dir + "/" + std::string(kTmpPrefix) + base + "." + RandomSuffix();
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      return std::unique_ptr<ObjectWriter>(
          new LocalWriter(std::string(key), path, tmp, fd, Describe(), io_));
    }
    if (errno == ENOENT && attempt < 3) continue;
    return ErrnoError(fmt::format("{}: create '{}'", Describe(), key), errno);
  }
}

Result<std::unique_ptr<ObjectReader>> LocalObjectStore::NewReader(std::string_view key,
                                                                  const ReadOptions& opts) {
  CKPTD_RETURN_IF_ERROR(ValidateKey(key));
  std::string path = PathOf(key);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR)
      return NotFound(fmt::format("{}: object '{}' not found", Describe(), key));
    return ErrnoError(fmt::format("{}: open '{}'", Describe(), key), errno);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return NotFound(fmt::format("{}: object '{}' not found", Describe(), key));
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t offset = std::min(opts.offset, size);
  uint64_t remaining = size - offset;
  if (opts.length) remaining = std::min(remaining, *opts.length);
  if (offset > 0 && ::lseek(fd, static_cast<off_t>(offset), SEEK_SET) < 0) {
    int err = errno;
    ::close(fd);
    return ErrnoError(fmt::format("{}: seek '{}'", Describe(), key), err);
  }
  return std::unique_ptr<ObjectReader>(
      new LocalReader(fd, size, remaining, fmt::format("{}: '{}'", Describe(), key)));
}

Result<ObjectInfo> LocalObjectStore::Head(std::string_view key) {
  CKPTD_RETURN_IF_ERROR(ValidateKey(key));
  struct stat st;
  std::string path = PathOf(key);
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return NotFound(fmt::format("{}: object '{}' not found", Describe(), key));
    return ErrnoError(fmt::format("{}: stat '{}'", Describe(), key), errno);
  }
  if (!S_ISREG(st.st_mode)) return NotFound(fmt::format("{}: object '{}' not found", Describe(), key));
  return ObjectInfo{std::string(key), static_cast<uint64_t>(st.st_size),
                    fmt::format("{:x}-{:x}", st.st_size,
                                st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec)};
}

Result<ListPage> LocalObjectStore::List(std::string_view prefix, std::string_view page_token,
                                        int max_keys) {
  CKPTD_RETURN_IF_ERROR(ValidatePrefix(prefix));
  size_t max = static_cast<size_t>(std::clamp(max_keys, 1, 1000));
  ListPage page;
  bool more = false;
  // Start at the deepest directory the prefix names fully.
  std::string start_dir;
  size_t slash = prefix.rfind('/');
  if (slash != std::string_view::npos) start_dir = std::string(prefix.substr(0, slash));
  CKPTD_RETURN_IF_ERROR(
      Walk(root_, start_dir, prefix, page_token, max, &page.objects, &more).WithContext(Describe()));
  if (more && !page.objects.empty()) page.next_token = page.objects.back().key;
  return page;
}

Status LocalObjectStore::Delete(std::string_view key) {
  CKPTD_RETURN_IF_ERROR(ValidateKey(key));
  std::string path = PathOf(key);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT && errno != ENOTDIR)
    return ErrnoError(fmt::format("{}: delete '{}'", Describe(), key), errno);
  // Tidy empty parents up to the root; rmdir fails harmlessly when not empty.
  std::string dir = Dirname(path);
  while (dir.size() > root_.size() && ::rmdir(dir.c_str()) == 0) dir = Dirname(dir);
  return Status::Ok();
}

namespace {

// Unlinks temp files under the directory open as `fd` (which it closes),
// depth first; directories left empty are removed by the caller's unlinkat.
Status SweepTemps(int fd, const std::string& where, int depth, size_t* removed) {
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    int err = errno;
    ::close(fd);
    return ErrnoError("opendir " + where, err);
  }
  std::vector<std::string> dirs;
  errno = 0;
  while (struct dirent* de = ::readdir(d)) {
    std::string_view name = de->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    if (::fstatat(::dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      dirs.emplace_back(name);
    } else if (S_ISREG(st.st_mode) && name.starts_with(kTmpPrefix)) {
      if (::unlinkat(::dirfd(d), de->d_name, 0) == 0) ++*removed;
    }
  }
  Status result;
  for (const auto& name : dirs) {
    if (depth > 64) break;  // keys are never this deep
    int sub = ::openat(::dirfd(d), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) continue;
    Status st = SweepTemps(sub, where + "/" + name, depth + 1, removed);
    if (!st.ok() && result.ok()) result = st;
    ::unlinkat(::dirfd(d), name.c_str(), AT_REMOVEDIR);  // only when empty
  }
  ::closedir(d);
  return result;
}

}  // namespace

Status LocalObjectStore::RemoveIncomplete(std::string_view prefix) {
  CKPTD_RETURN_IF_ERROR(ValidatePrefix(prefix));
  if (!prefix.empty() && prefix.back() != '/')
    return InvalidArgument(fmt::format("RemoveIncomplete: prefix '{}' is not a directory", prefix));
  int fd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + root_, errno);
  std::string where = root_;
  std::string_view rest = prefix;
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    std::string part(rest.substr(0, slash));
    rest.remove_prefix(slash + 1);
    int sub = ::openat(fd, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    ::close(fd);
    if (sub < 0) {
      if (err == ENOENT || err == ENOTDIR || err == ELOOP) return Status::Ok();
      return ErrnoError(fmt::format("{}: open '{}'", Describe(), prefix), err);
    }
    fd = sub;
    where += "/" + part;
  }
  size_t removed = 0;
  Status st = SweepTemps(fd, where, 0, &removed);
  if (!prefix.empty()) {
    std::string dir = where;
    while (dir.size() > root_.size() && ::rmdir(dir.c_str()) == 0) dir = Dirname(dir);
  }
  return st.WithContext(Describe());
}

}  // namespace ckptd
