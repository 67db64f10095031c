#include "images/image_streamer.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/crash_point.h"

namespace ckptd {

namespace fs = std::filesystem;

namespace {
// glibc 2.36's <sys/pidfd.h> lacks extern "C": pidfd calls are syscalls here.
int PidfdSendSignal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}
constexpr uint64_t kPunchGranule = 4ull << 20;  // punch in 4 MiB steps (fewer syscalls)
constexpr size_t kMaxPerPass = 16u << 20;       // fairness between files in one pass
constexpr uint64_t kWritebackGranule = 8ull << 20;  // linking: start writeback in 8 MiB steps

// Whether `path` names the file open as `fd` (not one put in its place).
bool SameFile(int fd, const fs::path& path) {
  struct stat a {};
  struct stat b {};
  return fstat(fd, &a) == 0 && stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}
}  // namespace

struct ImageStreamer::File {
  std::string name;
  int fd = -1;
  uint64_t shipped = 0;  // bytes read and pushed to the writer
  uint64_t punched = 0;  // bytes released with PUNCH_HOLE
  bool closed = false;   // IN_CLOSE_WRITE seen
  bool committed = false;
  bool dirty = false;  // modified after commit, or shrank: re-upload at Finish
  std::unique_ptr<EncodingWriter> w;
  std::unique_ptr<ContentHash> hash;  // linking: the checksum so far
  uint64_t writeback = 0;             // linking: writeback started up to here
  ManifestFile mf;
  ~File() {
    if (w) w->Abort();
    if (fd >= 0) close(fd);
  }
};

ImageStreamer::ImageStreamer(ImageStreamerOptions opts) : opts_(std::move(opts)) {}

Result<std::unique_ptr<ImageStreamer>> ImageStreamer::Start(ImageStreamerOptions opts) {
  std::unique_ptr<ImageStreamer> s(new ImageStreamer(std::move(opts)));
  s->inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (s->inotify_fd_ < 0) return ErrnoError("inotify_init1", errno);
  if (inotify_add_watch(s->inotify_fd_, s->opts_.dir.c_str(), IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO) < 0)
    return ErrnoError("inotify_add_watch " + s->opts_.dir.string(), errno);
  s->event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s->event_fd_ < 0) return ErrnoError("eventfd", errno);
  s->buf_.resize(std::max<size_t>(s->opts_.chunk_bytes, 64 << 10));
  ImageStreamerOptions& o = s->opts_;
  s->link_ = o.codec.codec == Codec::kNone && o.store->CanLinkFrom(o.dir);
  if (s->link_) {
    o.punch_holes = false;  // the staging files are the objects' bytes
    o.max_backlog_bytes = 0;
  }
  s->start_ = std::chrono::steady_clock::now();
  s->thread_ = std::thread([p = s.get()] { p->Loop(); });
  if (s->opts_.max_backlog_bytes > 0) s->watcher_ = std::thread([p = s.get()] { p->WatchLoop(); });
  return s;
}

ImageStreamer::~ImageStreamer() {
  Abort();
  if (int fd = writer_pidfd_.exchange(-1); fd >= 0) close(fd);
  if (inotify_fd_ >= 0) close(inotify_fd_);
  if (event_fd_ >= 0) close(event_fd_);
}

int64_t ImageStreamer::ElapsedMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start_).count();
}

void ImageStreamer::Wake() {
  uint64_t one = 1;
  (void)!write(event_fd_, &one, sizeof one);
}

void ImageStreamer::Abort() {
  if (joined_) return;
  abort_ = true;
  Wake();
  thread_.join();
  joined_ = true;
  files_.clear();  // aborts uncommitted writers
}

Status ImageStreamer::SetWriterProcess(pid_t pid) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return ErrnoError(fmt::format("pidfd_open {}", pid), errno);
  int old = writer_pidfd_.exchange(pidfd);
  if (old >= 0) close(old);
  return Status::Ok();
}

void ImageStreamer::WatchLoop() {
  UniqueLock lock(watch_mu_);
  while (!watch_cv_.wait_for(lock, std::chrono::milliseconds(5), [&]() REQUIRES(watch_mu_) { return watch_stop_; })) {
    lock.unlock();
    uint64_t written = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(opts_.dir, ec)) {
      std::error_code sec;
      if (e.is_regular_file(sec)) written += e.file_size(sec);
    }
    uint64_t backlog = 0;
    {
      MutexLock slock(mu_);
      backlog = written > stats_.bytes ? written - stats_.bytes : 0;
      stats_.peak_backlog = std::max(stats_.peak_backlog, backlog);
    }
    Throttle(backlog);
    lock.lock();
  }
  lock.unlock();
  ResumeWriter();
}

void ImageStreamer::StopWatcher() {
  {
    MutexLock lock(watch_mu_);
    watch_stop_ = true;
  }
  watch_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

void ImageStreamer::Throttle(uint64_t backlog) {
  int fd = writer_pidfd_.load();
  if (fd < 0) return;
  if (!writer_paused_ && backlog > opts_.max_backlog_bytes) {
    if (PidfdSendSignal(fd, SIGSTOP) == 0) {
      writer_paused_ = true;
      paused_at_ = std::chrono::steady_clock::now();
      {
        MutexLock lock(mu_);
        stats_.writer_pauses++;
      }
      // The daemon dying here leaves CRIU stopped, holding the tree: the
      // crash-point tests check that neither outlives it.
      CrashPoint("dump:criu-paused");
    }
  } else if (writer_paused_ && backlog <= opts_.max_backlog_bytes / 2) {
    ResumeWriter();
  }
}

void ImageStreamer::ResumeWriter() {
  if (!writer_paused_) return;
  writer_paused_ = false;
  int fd = writer_pidfd_.load();
  // A pidfd never reaches another process: if CRIU is gone, this fails.
  if (fd >= 0 && PidfdSendSignal(fd, SIGCONT) != 0 && errno != ESRCH)
    spdlog::error("{}: resuming CRIU: {}", opts_.log_tag, std::strerror(errno));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - paused_at_);
  MutexLock lock(mu_);
  stats_.writer_paused_ms += ms.count();
}

StreamStats ImageStreamer::stats() const {
  MutexLock lock(mu_);
  return stats_;
}

Result<std::vector<ManifestFile>> ImageStreamer::Finish() {
  if (joined_) return IOError("image streamer already stopped");
  {
    MutexLock lock(mu_);
    stats_.finish_called_ms = ElapsedMs();
    stats_.bytes_before_finish = stats_.bytes;
  }
  finishing_ = true;
  Wake();
  thread_.join();
  joined_ = true;
  MutexLock lock(mu_);
  if (!result_.ok()) {
    files_.clear();
    return result_;
  }
  return manifest_;
}

ImageStreamer::File* ImageStreamer::Track(const std::string& name) {
  auto it = files_.find(name);
  if (it != files_.end()) return it->second.get();
  auto f = std::make_unique<File>();
  f->name = name;
  File* p = f.get();
  files_.emplace(name, std::move(f));
  return p;
}

Status ImageStreamer::Rescan() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(opts_.dir, ec)) {
    if (!e.is_regular_file()) continue;
    Track(e.path().filename().string());
  }
  if (ec) return IOError(fmt::format("list {}: {}", opts_.dir.string(), ec.message()));
  return Status::Ok();
}

Status ImageStreamer::HandleEvents() {
  alignas(inotify_event) char buf[16 << 10];
  for (;;) {
    ssize_t n = read(inotify_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return Status::Ok();
    if (n < 0) return ErrnoError("read inotify", errno);
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        CKPTD_RETURN_IF_ERROR(Rescan());
        continue;
      }
      if (ev->len == 0 || (ev->mask & IN_ISDIR)) continue;
      File* f = Track(ev->name);
      if ((ev->mask & IN_MODIFY) && f->committed) f->dirty = true;
      if (ev->mask & IN_CLOSE_WRITE) f->closed = true;
    }
  }
}

// Reads what is there beyond `shipped` (at most kMaxPerPass unless
// to_end) and pushes it to the file's writer.
Status ImageStreamer::Pump(File* f, bool to_end, bool* progressed) {
  if (f->committed) return Status::Ok();
  const std::string path = (opts_.dir / f->name).string();
  if (f->fd < 0) {
    f->fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
      if (errno == ENOENT) return Status::Ok();  // gone again (CRIU's temp files)
      return ErrnoError("open " + path, errno);
    }
  }
  size_t pushed = 0;
  while (to_end || pushed < kMaxPerPass) {
    if (abort_) return Cancelled("image upload aborted");
    ssize_t n = pread(f->fd, buf_.data(), buf_.size(), static_cast<off_t>(f->shipped));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read " + path, errno);
    if (n == 0) break;
    if (!first_byte_sent_) {
      first_byte_sent_ = true;
      {
        MutexLock lock(mu_);
        stats_.first_byte_ms = ElapsedMs();
      }
      if (opts_.on_first_byte) CKPTD_RETURN_IF_ERROR(opts_.on_first_byte());
    }
    CKPTD_RETURN_IF_ERROR(Take(f, std::string_view(buf_.data(), static_cast<size_t>(n))));
    f->shipped += static_cast<uint64_t>(n);
    pushed += static_cast<size_t>(n);
    *progressed = true;
    {
      MutexLock lock(mu_);
      stats_.bytes += static_cast<uint64_t>(n);
    }
    if (opts_.progress) CKPTD_RETURN_IF_ERROR(opts_.progress(static_cast<uint64_t>(n)));
    if (opts_.punch_holes && f->shipped - f->punched >= kPunchGranule) {
      uint64_t upto = f->shipped / kPunchGranule * kPunchGranule;
      if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(f->punched),
                    static_cast<off_t>(upto - f->punched)) == 0) {
        f->punched = upto;
      } else if (errno == EOPNOTSUPP) {
        spdlog::warn("{}: {}: hole punching not supported: staging keeps whole images", opts_.log_tag,
                     opts_.dir.string());
        opts_.punch_holes = false;
      }
      // Other errors: the range stays; try again at the next granule.
    }
  }
  return Status::Ok();
}

Status ImageStreamer::Take(File* f, std::string_view bytes) {
  if (link_) {
    if (!f->hash) f->hash = std::make_unique<ContentHash>(opts_.encoding.hash);
    f->hash->Update(bytes);
    // Writeback starts behind the checksum, so the fsync at the link waits
    // only for the last granule. Advisory: the fsync does the whole job.
    uint64_t end = f->shipped + bytes.size();
    if (end - f->writeback >= kWritebackGranule) {
      uint64_t upto = end / kWritebackGranule * kWritebackGranule;
      if (sync_file_range(f->fd, static_cast<off_t>(f->writeback), static_cast<off_t>(upto - f->writeback),
                          SYNC_FILE_RANGE_WRITE) == 0)
        f->writeback = upto;
    }
    return Status::Ok();
  }
  if (!f->w) {
    CKPTD_ASSIGN_OR_RETURN(auto inner, opts_.store->NewWriter(opts_.key_prefix + f->name));
    CKPTD_ASSIGN_OR_RETURN(f->w, EncodingWriter::Create(std::move(inner), opts_.codec, opts_.encoding));
  }
  return f->w->Write(bytes).WithContext("upload " + opts_.key_prefix + f->name);
}

// Linking: the file, complete and checksummed, becomes the object.
Status ImageStreamer::LinkFile(File* f) {
  const std::string key = opts_.key_prefix + f->name;
  CKPTD_RETURN_IF_ERROR(opts_.store->LinkFile(key, opts_.dir / f->name).WithContext("upload " + key));
  if (!f->hash) f->hash = std::make_unique<ContentHash>(opts_.encoding.hash);  // an empty image
  f->mf = LinkedFile(f->name, f->shipped, *f->hash);
  f->hash.reset();
  f->committed = true;
  {
    MutexLock lock(mu_);
    stats_.stored_bytes += f->shipped;
    stats_.linked_files++;
  }
  // Staging still has every image: a recovery uploads them again.
  CrashPoint("upload:image-linked");
  return Status::Ok();
}

Status ImageStreamer::CommitFile(File* f) {
  if (link_) return LinkFile(f);
  if (!f->w) {
    // An empty image: CRIU wrote nothing into it (still an object).
    CKPTD_ASSIGN_OR_RETURN(auto inner, opts_.store->NewWriter(opts_.key_prefix + f->name));
    CKPTD_ASSIGN_OR_RETURN(f->w, EncodingWriter::Create(std::move(inner), opts_.codec, opts_.encoding));
  }
  CKPTD_RETURN_IF_ERROR(f->w->Commit().WithContext("upload " + opts_.key_prefix + f->name));
  f->mf = CommittedFile(f->name, *f->w);
  f->committed = true;
  {
    MutexLock lock(mu_);
    stats_.stored_bytes += f->mf.stored_size;
  }
  f->w.reset();
  if (opts_.punch_holes && f->fd >= 0 && f->shipped > f->punched) {
    if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(f->punched),
                  static_cast<off_t>(f->shipped - f->punched)) == 0)
      f->punched = f->shipped;
  }
  return Status::Ok();
}

// The safety net: the file changed after it was shipped. Only possible
// while the staging file is intact.
Status ImageStreamer::Reupload(File* f) {
  if (f->punched > 0)
    return IOError(fmt::format("image {} changed after it was shipped and its staging copy released", f->name));
  spdlog::warn("{}: image {} changed after it was shipped: uploading it again", opts_.log_tag, f->name);
  {
    MutexLock lock(mu_);
    stats_.stored_bytes -= f->mf.stored_size;
    stats_.reuploaded++;
  }
  f->committed = false;
  f->dirty = false;
  f->shipped = 0;
  f->w.reset();
  f->hash.reset();
  if (link_ && f->fd >= 0) {  // read it again under its name: that is what gets linked
    close(f->fd);
    f->fd = -1;
    f->writeback = 0;
  }
  bool progressed = false;
  CKPTD_RETURN_IF_ERROR(Pump(f, true, &progressed));
  return CommitFile(f);
}

Status ImageStreamer::FinishAll() {
  // CRIU has returned: every image is complete. Pick up files inotify may
  // not have named (overflow), ship everything, commit.
  CKPTD_RETURN_IF_ERROR(HandleEvents());
  CKPTD_RETURN_IF_ERROR(Rescan());
  for (auto& [name, f] : files_) {
    bool progressed = false;
    if (f->committed) {
      struct stat st {};
      if (f->dirty || fstat(f->fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != f->shipped)
        CKPTD_RETURN_IF_ERROR(Reupload(f.get()));
      continue;
    }
    CKPTD_RETURN_IF_ERROR(Pump(f.get(), true, &progressed));
    if (f->fd < 0) continue;  // vanished before we could open it
    struct stat st {};
    if (fstat(f->fd, &st) != 0) return ErrnoError("stat " + name, errno);
    if (static_cast<uint64_t>(st.st_size) != f->shipped || (link_ && !SameFile(f->fd, opts_.dir / name))) {
      // Shrank (truncated and rewritten), or another file took its name:
      // start over from the file.
      if (f->w) f->w->Abort();
      f->w.reset();
      f->committed = true;  // so Reupload restarts it
      f->mf = {};
      CKPTD_RETURN_IF_ERROR(Reupload(f.get()));
      continue;
    }
    CKPTD_RETURN_IF_ERROR(CommitFile(f.get()));
  }
  std::vector<ManifestFile> out;
  for (auto& [name, f] : files_)
    if (f->committed) out.push_back(f->mf);
  if (out.empty()) return IOError("CRIU wrote no image files");
  MutexLock lock(mu_);
  manifest_ = std::move(out);  // std::map: sorted by name
  stats_.done_ms = ElapsedMs();
  return Status::Ok();
}

// Upload threads made way for CRIU (dump_nice); CRIU is done: back to the
// priority they had, for the uploader and each writer's worker threads (they
// inherited the nice value from the uploader). Raising priority needs
// CAP_SYS_NICE: without it they stay reniced, which only slows the tail.
void ImageStreamer::RestorePriority() {
  if (!reniced_) return;
  reniced_ = false;
  auto renice = [&](pid_t tid) {
    if (tid > 0 && setpriority(PRIO_PROCESS, static_cast<id_t>(tid), base_nice_) != 0)
      spdlog::debug("{}: renice thread {} to {}: {}", opts_.log_tag, tid, base_nice_, std::strerror(errno));
  };
  renice(static_cast<pid_t>(gettid()));
  for (auto& [name, f] : files_)
    if (f->w)
      for (pid_t tid : f->w->worker_tids()) renice(tid);
}

void ImageStreamer::Loop() {
  if (opts_.dump_nice > 0) {
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, 0);  // this thread
    if (errno == 0 && cur < opts_.dump_nice && setpriority(PRIO_PROCESS, 0, opts_.dump_nice) == 0) {
      base_nice_ = cur;
      reniced_ = true;
    }
  }
  Status st = [&]() -> Status {
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {event_fd_, POLLIN, 0}};
    for (;;) {
      if (abort_) return Cancelled("image upload aborted");
      if (finishing_) {
        StopWatcher();
        RestorePriority();
        return FinishAll();
      }
      CKPTD_RETURN_IF_ERROR(HandleEvents());
      bool progressed = false;
      uint64_t backlog = 0;
      for (auto& [name, f] : files_) {
        CKPTD_RETURN_IF_ERROR(Pump(f.get(), false, &progressed));
        if (f->committed || f->fd < 0) continue;
        struct stat s {};
        if (fstat(f->fd, &s) != 0) return ErrnoError("stat " + name, errno);
        uint64_t size = static_cast<uint64_t>(s.st_size);
        if (size > f->shipped) backlog += size - f->shipped;
        // Closed and read to the end: done (a later change is caught by
        // the check at Finish).
        // Linking waits for Finish: CRIU is done with every file then.
        if (f->closed && size == f->shipped && !link_) CKPTD_RETURN_IF_ERROR(CommitFile(f.get()));
      }
      {
        MutexLock lock(mu_);
        stats_.peak_backlog = std::max(stats_.peak_backlog, backlog);
      }
      if (progressed) continue;  // more may be there already
      int r = poll(fds, 2, 50);
      if (r < 0 && errno != EINTR) return ErrnoError("poll", errno);
      if (fds[1].revents & POLLIN) {
        uint64_t v;
        (void)!read(event_fd_, &v, sizeof v);
      }
    }
  }();
  // Never leave CRIU stopped (and with it the frozen workload): on every
  // way out of this loop the watcher stops, resuming CRIU.
  StopWatcher();
  if (!st.ok()) {
    // Failed or aborted: nothing more goes to the store.
    for (auto& [name, f] : files_)
      if (f->w) {
        f->w->Abort();
        f->w.reset();
      }
  }
  MutexLock lock(mu_);
  result_ = st;
}

}  // namespace ckptd
