// ImageStreamer: ships CRIU's image files to the object store while CRIU is
// still writing them, so a checkpoint costs about the dump's time alone.
//
// Mechanism (why: CRIU writes each image file sequentially, appending, and
// the kernel raises i_size only after the bytes are in the page cache, so
// every byte below the size a reader sees is final):
// - an inotify watch on the images dir (IN_CREATE, IN_MODIFY,
//   IN_CLOSE_WRITE, IN_MOVED_TO) wakes one uploader thread, which also polls
//   every 50 ms and rescans the dir on queue overflow;
// - the thread tails each file from the offset it has shipped to the end it
//   sees, pushing the bytes through an EncodingWriter (compression +
//   checksum of the uncompressed bytes) into "<key_prefix><file name>";
// - a file is finished when inotify reported IN_CLOSE_WRITE and it was read
//   to its end, or when Finish() says CRIU has returned: then its writer is
//   committed;
// - with punch_holes, shipped ranges are released with
//   fallocate(PUNCH_HOLE|KEEP_SIZE), so a tmpfs staging dir holds only what
//   is not shipped yet (the dump's lead over the upload).
// Safety net: at Finish() every file's final size must equal what was
// shipped; a file that shrank or was modified after its close is uploaded
// again whole (impossible after holes were punched: then an error).
// Linking (codec none, a store that can take the staging files as they are:
// the local store on the same filesystem, ObjectStore::CanLinkFrom): the
// bytes are never copied. The thread only checksums each file as CRIU
// writes it and starts its writeback; at Finish() every file is
// hard-linked into the store (fsynced first), so the staging copy stays
// whole for a recovery, no holes are punched and max_backlog_bytes does
// not apply (staging holds nothing the store would not).
//
// Errors: the first error (store, read, progress callback) stops the
// uploader; Finish() returns it. Objects already committed stay: the caller
// removes "<key_prefix>" on failure.
// Memory: one read buffer (chunk_bytes) plus each open object's
// EncodingWriter (a large object: up to EncodingOptions::pipeline_depth
// queued chunks, its two threads checksumming and compressing+writing while
// this thread reads) and store writer (S3: part_size x
// (max_in_flight + 1)).
// Thread safety: Start/Finish/Abort from the owning thread; the callbacks
// run on the uploader thread.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "images/image_upload.h"
#include "images/manifest.h"
#include "store/codec.h"
#include "store/object_store.h"

namespace ckptd {

struct ImageStreamerOptions : ImageUploadOptions {
  std::filesystem::path dir;     // the images dir CRIU writes; must exist
  bool punch_holes = false;      // release shipped bytes of the staging files
  size_t chunk_bytes = 1 << 20;  // read size
  // Nice value of the upload threads while CRIU dumps (0: leave as is). On
  // a machine with few cores the upload competes with CRIU, and every
  // moment CRIU waits is a moment the workload stands frozen: the upload
  // yields while CRIU runs and gets its own priority back at Finish().
  int dump_nice = 10;
  // Backpressure: when CRIU has written this many bytes more than were
  // shipped, CRIU (the process given to SetWriterProcess) is paused with
  // SIGSTOP until the upload has caught up to half of it. With punch_holes
  // this bounds the staging dir's size (tmpfs: memory) at the price of a
  // longer freeze. 0: no bound. A watcher thread at the daemon's own
  // priority (not dump_nice) compares the files' sizes with what was
  // shipped every 5 ms, so the bound holds even when the uploader gets
  // little CPU; it stops (resuming CRIU) as soon as the uploader does.
  uint64_t max_backlog_bytes = 0;
};

struct StreamStats {
  uint64_t bytes = 0;                // uncompressed bytes shipped
  uint64_t stored_bytes = 0;         // bytes in the store
  uint64_t peak_backlog = 0;         // most bytes written by CRIU but not yet shipped
  uint64_t reuploaded = 0;           // files uploaded again by the safety net
  int64_t first_byte_ms = -1;        // since Start
  uint64_t bytes_before_finish = 0;  // shipped while CRIU was still dumping
  int64_t finish_called_ms = -1;
  int64_t done_ms = -1;        // every object committed
  uint64_t writer_pauses = 0;  // times CRIU was paused for max_backlog_bytes
  uint64_t linked_files = 0;   // images linked into the store, not copied
  int64_t writer_paused_ms = 0;
};

class ImageStreamer {
 public:
  static Result<std::unique_ptr<ImageStreamer>> Start(ImageStreamerOptions opts);
  ~ImageStreamer();  // Abort() unless finished
  ImageStreamer(const ImageStreamer&) = delete;
  ImageStreamer& operator=(const ImageStreamer&) = delete;

  // CRIU has returned successfully: ship the rest, commit every object and
  // return them sorted by name (ManifestFile: name, size, stored_size,
  // hash, digest, codec).
  Result<std::vector<ManifestFile>> Finish();
  // Stops at once; uncommitted objects are aborted.
  void Abort();
  StreamStats stats() const;
  // The process writing the images (CRIU), for max_backlog_bytes: kept as a
  // pidfd, so a signal never reaches another process once CRIU is gone.
  // Call while `pid` is still CRIU's (not reaped). Any thread.
  Status SetWriterProcess(pid_t pid);

 private:
  struct File;
  explicit ImageStreamer(ImageStreamerOptions opts);
  void Loop();
  Status HandleEvents();
  Status Rescan();
  File* Track(const std::string& name);
  Status Pump(File* f, bool to_end, bool* progressed);
  Status Take(File* f, std::string_view bytes);  // one chunk read: to the writer or the checksum
  Status CommitFile(File* f);
  Status LinkFile(File* f);
  Status Reupload(File* f);
  Status FinishAll();
  void Wake();
  void RestorePriority();
  void WatchLoop();                 // the backpressure watcher
  void StopWatcher();               // joins it; CRIU is running after
  void Throttle(uint64_t backlog);  // pause/resume the writer (watcher only)
  void ResumeWriter();
  int64_t ElapsedMs() const;

  ImageStreamerOptions opts_;
  int inotify_fd_ = -1;
  int event_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> finishing_{false};
  std::atomic<bool> abort_{false};
  bool joined_ = false;
  std::chrono::steady_clock::time_point start_;
  std::map<std::string, std::unique_ptr<File>> files_;  // uploader thread only
  std::string buf_;
  bool link_ = false;  // linking, not copying (set by Start)
  bool first_byte_sent_ = false;
  std::atomic<int> writer_pidfd_{-1};
  bool writer_paused_ = false;  // watcher thread only
  std::chrono::steady_clock::time_point paused_at_;
  std::thread watcher_;
  Mutex watch_mu_;
  CondVar watch_cv_;
  bool watch_stop_ GUARDED_BY(watch_mu_) = false;
  int base_nice_ = 0;  // the uploader thread's nice before dump_nice
  bool reniced_ = false;

  mutable Mutex mu_;
  Status result_ GUARDED_BY(mu_);
  std::vector<ManifestFile> manifest_ GUARDED_BY(mu_);
  StreamStats stats_ GUARDED_BY(mu_);
};

}  // namespace ckptd
