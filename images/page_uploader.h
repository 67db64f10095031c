// PageUploader: serves CRIU's page-server protocol (criu/page_server.h) on
// one end of a socketpair and sends the dumped memory straight into the
// object store: "<key_prefix>pages-<n>.img" through an EncodingWriter
// (compression + checksum of the uncompressed bytes) as the bytes arrive,
// "<key_prefix>pagemap-<id>.img" when its pair is complete. The other end
// goes to CRIU (DumpOptions::page_server_fd); everything CRIU writes besides
// pages still goes to the images dir and through the ImageStreamer.
//
// Why: the pages are nearly all of a checkpoint's bytes. Over the socket
// they skip the staging file (one copy in, one out, and fresh staging memory
// for every page), and the socket's flow control bounds what is in flight.
//
// Used for leave-running checkpoints only: when CRIU ends the tree after the
// dump, the staging images are the copy a failed upload rolls back from,
// and pages sent here are not in them.
//
// Threads: this one receives into 1 MiB buffers and hands each to the pages
// object's EncodingWriter as it is (WriteSwap, no copy), whose two threads
// checksum and compress it; so CRIU is not held to one core's pace.
// Memory: the received pages not yet compressed (up to max_queued_bytes,
// in 1 MiB buffers the writer reuses), the writer's codec and backend
// buffers (S3: its parts in flight), and the open pagemap image (about 20
// bytes per run of pages).
// Thread safety: Start/criu_fd/CriuStarted/Finish/Abort from the owning
// thread; the callbacks run on the uploader's thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "criu/page_server.h"
#include "images/image_upload.h"
#include "images/manifest.h"
#include "store/codec.h"
#include "store/object_store.h"

namespace ckptd {

struct PageUploaderOptions : ImageUploadOptions {
  // encoding.pipeline_depth is set from this: received pages waiting for
  // compression, at most (0: no bound). Rather than hold CRIU, and with it
  // the frozen tree, to compression's pace.
  uint64_t max_queued_bytes = 0;
};

class PageUploader {
 public:
  static Result<std::unique_ptr<PageUploader>> Start(PageUploaderOptions opts);
  ~PageUploader();  // Abort() unless finished
  PageUploader(const PageUploader&) = delete;
  PageUploader& operator=(const PageUploader&) = delete;

  // CRIU's end of the socket, for DumpOptions::page_server_fd.
  int criu_fd() const {
    MutexLock lock(criu_fd_mu_);
    return criu_fd_;
  }
  // CRIU has its copy (or will never get one): close ours, so that CRIU's
  // end closing is seen here. Any thread (DumpOptions::on_criu_started).
  void CriuStarted();
  // CRIU's dump returned successfully: wait for the session to end and
  // return the objects stored (ManifestFile: name, size, stored_size, hash,
  // digest, codec), in the order CRIU sent them.
  Result<std::vector<ManifestFile>> Finish();
  // Stops at once: the open object is aborted; committed ones stay (the
  // caller removes "<key_prefix>").
  void Abort();
  // Page bytes CRIU sent; after Finish or Abort.
  uint64_t bytes() const { return stats_.page_bytes; }

 private:
  class Sink;
  explicit PageUploader(PageUploaderOptions opts);
  void Run();

  PageUploaderOptions opts_;
  int fd_ = -1;  // ours
  mutable Mutex criu_fd_mu_;
  int criu_fd_ GUARDED_BY(criu_fd_mu_) = -1;  // CRIU's, until CriuStarted
  std::atomic<bool> stop_{false};
  criu::PageServeStats stats_;  // written by the session's thread
  std::unique_ptr<Sink> sink_;
  Status result_;
  std::thread thread_;
  bool joined_ = false;
};

}  // namespace ckptd
