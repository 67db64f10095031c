// Streaming compression for checkpoint images: zstd (default), lz4 frame,
// none; and writer/reader adapters that compress + checksum on the way to
// an ObjectStore and decompress + checksum on the way back.
//
// Frames are self-describing: Decoder detects zstd (28 B5 2F FD) and lz4
// frame (04 22 4D 18) magic; anything else is taken as uncompressed ("none")
// unless the codec is given explicitly. zstd frames carry a content checksum
// (XXH64, cheap), so their corruption is a Corruption error; lz4 frames are
// written without one (XXH32 cost more than lz4 itself) and rely, like
// "none", on the checksum the adapters below compute (a Decoder alone may
// return garbage for a corrupted lz4 frame). Truncated frames fail at
// Finish().
//
// Memory: bounded by the codec's window/block (zstd level 1-3: a few MiB;
// with workers, about (workers+1) x job size), not by the object size.
// Thread safety: each Encoder/Decoder/adapter belongs to one thread.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "store/digest.h"
#include "store/object_store.h"

namespace ckptd {

enum class Codec { kNone, kZstd, kLz4 };

std::string_view CodecName(Codec codec);          // "none", "zstd", "lz4"
Result<Codec> ParseCodec(std::string_view name);  // inverse; InvalidArgument otherwise

struct CodecOptions {
  Codec codec = Codec::kZstd;
  // 0: the codec's fast default (zstd 1, lz4 0 = fast). zstd accepts
  // ZSTD_minCLevel()..19 (negative: its fast modes).
  int level = 0;
  // zstd worker threads (ZSTD_c_nbWorkers): -1 = auto (half the CPUs this
  // process may use, common/cpus.h; at most 8, none below 4 CPUs); 0 =
  // compress on the caller's thread.
  int threads = -1;
};

class Encoder {
 public:
  virtual ~Encoder() = default;
  static Result<std::unique_ptr<Encoder>> Create(const CodecOptions& opts);
  // Compresses in; appends whatever output is ready to *out.
  virtual Status Update(std::string_view in, std::string* out) = 0;
  // Ends the frame; appends the rest to *out. The encoder is then spent.
  virtual Status Finish(std::string* out) = 0;
  virtual Codec codec() const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // codec unset: detect from the first bytes.
  static std::unique_ptr<Decoder> Create(std::optional<Codec> codec = std::nullopt);
  // One bounded step: consumes from the front of *in and writes at most
  // out.size() decoded bytes into out (*produced). A step may consume input
  // without output, or output from what the codec holds without input; call
  // again until *in is empty and a step produced less than out.size().
  virtual Status Step(std::string_view* in, std::span<char> out, size_t* produced) = 0;
  // Decompresses in; appends output to *out. Corruption on a bad frame.
  virtual Status Update(std::string_view in, std::string* out) = 0;
  // Corruption if the input ended inside a frame.
  virtual Status Finish(std::string* out) = 0;
  // The detected/given codec; kNone until detection has seen 4 bytes.
  virtual Codec codec() const = 0;
};

// Compresses what is written into an inner writer and checksums the
// uncompressed bytes. Commit() finishes the frame then commits the inner
// writer; after it, digest_hex() is the checksum (EncodingOptions::hash,
// BLAKE3 by default) of everything written.
//
// Three stages for large objects: once more than `pipeline_after` bytes were
// written (EncodingOptions), Write() only queues the chunk (a copy;
// WriteSwap() takes the caller's buffer instead) and two threads of this
// writer take each queued chunk: one checksums it, the other compresses it
// and writes to the inner writer. So the writer's caller, the checksum and
// compression+storage run on three cores at once (a page server taking
// CRIU's memory off a socket keeps pace with CRIU). Memory: at most
// `pipeline_depth` queued chunks, plus as many spare buffers. A worker
// error is returned by the next Write() or by Commit(). Small objects never
// start the workers.
struct EncodingOptions {
  uint64_t pipeline_after = 8ull << 20;  // 0: never pipeline
  size_t pipeline_depth = 4;             // queued chunks (each as written)
  HashAlg hash = HashAlg::kBlake3;       // checksum of the uncompressed bytes
};

class EncodingWriter final : public ObjectWriter {
 public:
  static Result<std::unique_ptr<EncodingWriter>> Create(std::unique_ptr<ObjectWriter> inner, const CodecOptions& opts,
                                                        const EncodingOptions& eopts = {});
  ~EncodingWriter() override;
  Status Write(std::string_view data) override;
  // Write(*chunk) without the copy into the queue: once the pipeline runs,
  // the writer takes *chunk's contents and leaves a buffer it is done with
  // in its place (a spare of some earlier chunk's size, or an empty string),
  // for the caller to fill next. Before that, *chunk is left as it was.
  Status WriteSwap(std::string* chunk);
  Status Commit() override;
  void Abort() override;
  uint64_t bytes_written() const override { return uncompressed_; }      // uncompressed
  uint64_t compressed_bytes() const { return inner_->bytes_written(); }  // after Commit
  const std::string& digest_hex() const { return digest_hex_; }          // valid after Commit
  HashAlg hash_alg() const { return hash_.alg(); }
  Codec codec() const { return enc_->codec(); }
  // The worker threads' kernel tids (0: not started), e.g. to renice them;
  // set before the first pipelined Write returns.
  std::array<pid_t, 2> worker_tids() const { return {encoder_tid_.load(), hasher_tid_.load()}; }

 private:
  EncodingWriter(std::unique_ptr<ObjectWriter> inner, std::unique_ptr<Encoder> enc, EncodingOptions eopts)
      : inner_(std::move(inner)), enc_(std::move(enc)), eopts_(eopts), hash_(eopts.hash) {}
  Status Encode(std::string_view data);  // compress + write on (the worker's) thread
  Status Flush();
  // false: the write goes through the queue (the workers started).
  Result<bool> WriteInline(std::string_view data);
  // Queues a copy of data, or (swap) takes *swap's buffer.
  Status Enqueue(std::string_view data, std::string* swap);
  // One worker: takes the queued chunks in order (its own cursor, encoded_
  // or hashed_: read and written under mu_), runs `work` on each outside
  // the lock; an error drops the rest.
  void WorkerLoop(uint64_t* cursor, std::atomic<pid_t>* tid, const std::function<Status(std::string_view)>& work);
  void Reclaim() REQUIRES(mu_);    // chunks both workers are done with become spares
  Status StopWorkers(bool drain);  // joins; returns the first worker error

  std::unique_ptr<ObjectWriter> inner_;
  std::unique_ptr<Encoder> enc_;
  EncodingOptions eopts_;
  ContentHash hash_;
  std::string buf_;
  std::string digest_hex_;
  uint64_t uncompressed_ = 0;
  bool failed_ = false;

  // The pipeline (only once started). Chunk i (counted from the first
  // queued) is queue_[i - base_]; each worker's cursor is the next it takes.
  std::thread encoder_, hasher_;
  Mutex mu_;
  CondVar cv_;
  std::deque<std::string> queue_ GUARDED_BY(mu_);
  uint64_t base_ GUARDED_BY(mu_) = 0;
  uint64_t encoded_ GUARDED_BY(mu_) = 0;
  uint64_t hashed_ GUARDED_BY(mu_) = 0;
  std::vector<std::string> spare_ GUARDED_BY(mu_);  // chunks both workers are done with, reused
  bool stop_ GUARDED_BY(mu_) = false;               // no more chunks: drain (or drop, on abort) and exit
  bool drop_ GUARDED_BY(mu_) = false;
  Status worker_status_ GUARDED_BY(mu_);
  std::atomic<pid_t> encoder_tid_{0}, hasher_tid_{0};
};

// Decompresses an inner reader (codec detected unless given) and checksums
// the output with `hash`. At end of stream, digest_hex() is the checksum of
// everything returned; compare it with the manifest's. size() is the stored
// size.
class DecodingReader final : public ObjectReader {
 public:
  explicit DecodingReader(std::unique_ptr<ObjectReader> inner, std::optional<Codec> codec = std::nullopt,
                          HashAlg hash = HashAlg::kBlake3);
  Result<size_t> Read(std::span<char> buf) override;
  uint64_t size() const override { return inner_->size(); }
  const std::string& digest_hex() const { return digest_hex_; }  // valid after Read()==0
  uint64_t bytes_read() const { return produced_; }

 private:
  std::unique_ptr<ObjectReader> inner_;
  std::unique_ptr<Decoder> dec_;
  ContentHash hash_;
  std::string in_;  // the last chunk read from inner
  size_t in_pos_ = 0, in_len_ = 0;
  std::string tail_;  // what Finish() produced (short "none" objects)
  size_t tail_pos_ = 0;
  bool eof_ = false;   // inner is at its end
  bool done_ = false;  // the decoder has finished
  std::string digest_hex_;
  uint64_t produced_ = 0;
};

}  // namespace ckptd
