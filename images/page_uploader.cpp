#include "images/page_uploader.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace ckptd {

namespace {
// CRIU's sends queue up to this much ahead of the receiver (for AF_UNIX
// the sender's buffer is the limit): fewer wake-ups than the default
// ~200 KiB, still a bounded amount in flight.
constexpr int kSocketBuffer = 4 << 20;
}  // namespace

// Stores each pair CRIU sends: the pages object as the bytes come, the
// pagemap object at the pair's end.
class PageUploader::Sink final : public criu::PageSink {
 public:
  explicit Sink(const PageUploaderOptions& o) : o_(o) {}

  Status Open(const std::string& pagemap_name, const std::string& pages_name) override {
    if (!first_byte_sent_) {
      first_byte_sent_ = true;
      if (o_.on_first_byte) CKPTD_RETURN_IF_ERROR(o_.on_first_byte());
    }
    pagemap_name_ = pagemap_name;
    pages_name_ = pages_name;
    CKPTD_ASSIGN_OR_RETURN(auto inner, o_.store->NewWriter(o_.key_prefix + pages_name));
    CKPTD_ASSIGN_OR_RETURN(pages_, EncodingWriter::Create(std::move(inner), o_.codec, o_.encoding));
    return Status::Ok();
  }

  Status Pages(std::string* data) override {
    // The chunk's buffer goes to the writer's queue as it is: this thread
    // only receives, the writer's threads checksum and compress.
    const uint64_t n = data->size();
    CKPTD_RETURN_IF_ERROR(pages_->WriteSwap(data).WithContext("upload " + o_.key_prefix + pages_name_));
    if (o_.progress) CKPTD_RETURN_IF_ERROR(o_.progress(n));
    return Status::Ok();
  }

  Status Close(std::string pagemap_image) override {
    auto w = std::move(pages_);
    CKPTD_RETURN_IF_ERROR(Commit(w.get(), pages_name_));
    CKPTD_ASSIGN_OR_RETURN(auto inner, o_.store->NewWriter(o_.key_prefix + pagemap_name_));
    CKPTD_ASSIGN_OR_RETURN(auto pm, EncodingWriter::Create(std::move(inner), o_.codec, o_.encoding));
    CKPTD_RETURN_IF_ERROR(pm->Write(pagemap_image).WithContext("upload " + o_.key_prefix + pagemap_name_));
    return Commit(pm.get(), pagemap_name_);
  }

  void AbortOpen() {
    if (pages_) pages_->Abort();
    pages_.reset();
  }

  std::vector<ManifestFile> files;

 private:
  Status Commit(EncodingWriter* w, const std::string& name) {
    CKPTD_RETURN_IF_ERROR(w->Commit().WithContext("upload " + o_.key_prefix + name));
    files.push_back(CommittedFile(name, *w));
    return Status::Ok();
  }

  const PageUploaderOptions& o_;
  bool first_byte_sent_ = false;
  std::string pagemap_name_, pages_name_;
  std::unique_ptr<EncodingWriter> pages_;
};

PageUploader::PageUploader(PageUploaderOptions opts) : opts_(std::move(opts)) {}

Result<std::unique_ptr<PageUploader>> PageUploader::Start(PageUploaderOptions opts) {
  std::unique_ptr<PageUploader> u(new PageUploader(std::move(opts)));
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return ErrnoError("socketpair", errno);
  u->fd_ = sv[0];
  {
    MutexLock lock(u->criu_fd_mu_);
    u->criu_fd_ = sv[1];
  }
  // Advisory: the defaults work, only with more wake-ups.
  int size = kSocketBuffer;
  if (setsockopt(sv[1], SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
    (void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  // Chunks of at most kPageChunkBytes queue for compression.
  const uint64_t bound = u->opts_.max_queued_bytes > 0 ? u->opts_.max_queued_bytes : uint64_t{1} << 44;
  u->opts_.encoding.pipeline_depth = static_cast<size_t>(std::max<uint64_t>(4, bound / criu::kPageChunkBytes));
  u->sink_ = std::make_unique<Sink>(u->opts_);
  u->thread_ = std::thread([p = u.get()] { p->Run(); });
  return u;
}

PageUploader::~PageUploader() {
  Abort();
  CriuStarted();
  if (fd_ >= 0) close(fd_);
}

void PageUploader::CriuStarted() {
  MutexLock lock(criu_fd_mu_);
  if (criu_fd_ >= 0) close(criu_fd_);
  criu_fd_ = -1;
}

void PageUploader::Run() {
  Status st = criu::ServePages(fd_, sink_.get(), &stats_, &stop_);
  if (!st.ok()) sink_->AbortOpen();
  result_ = st;
}

Result<std::vector<ManifestFile>> PageUploader::Finish() {
  if (joined_) return IOError("page uploader already stopped");
  // CRIU is gone: with our copy of its end closed, a session it left
  // unfinished ends at once (EOF) instead of waiting.
  CriuStarted();
  thread_.join();
  joined_ = true;
  if (!result_.ok()) return result_;
  return std::move(sink_->files);
}

void PageUploader::Abort() {
  if (joined_) return;
  stop_ = true;
  shutdown(fd_, SHUT_RDWR);  // wakes a blocked recv
  thread_.join();
  joined_ = true;
}

}  // namespace ckptd
