#include "store/codec.h"

#include <unistd.h>

#include <lz4frame.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <span>
#include <thread>

#include <fmt/format.h>

#include "common/cpus.h"

namespace ckptd {
namespace {

constexpr unsigned char kZstdMagic[4] = {0x28, 0xB5, 0x2F, 0xFD};
constexpr unsigned char kLz4Magic[4] = {0x04, 0x22, 0x4D, 0x18};
// Feed codecs in slices so one Update never needs an unbounded output.
constexpr size_t kSlice = 1 << 20;

int AutoThreads() {
  unsigned hc = UsableCpus();
  if (hc < 4) return 0;
  return static_cast<int>(std::min(8u, hc / 2));
}

// ---------------------------------------------------------------- none
class NoneEncoder final : public Encoder {
 public:
  Status Update(std::string_view in, std::string* out) override {
    out->append(in);
    return Status::Ok();
  }
  Status Finish(std::string*) override { return Status::Ok(); }
  Codec codec() const override { return Codec::kNone; }
};

// ---------------------------------------------------------------- zstd
class ZstdEncoder final : public Encoder {
 public:
  ~ZstdEncoder() override { ZSTD_freeCCtx(cctx_); }
  Status Init(const CodecOptions& o) {
    cctx_ = ZSTD_createCCtx();
    if (cctx_ == nullptr) return Internal("ZSTD_createCCtx failed");
    int level = o.level == 0 ? 1 : o.level;
    CKPTD_RETURN_IF_ERROR(Set(ZSTD_c_compressionLevel, level));
    CKPTD_RETURN_IF_ERROR(Set(ZSTD_c_checksumFlag, 1));
    int threads = o.threads < 0 ? AutoThreads() : o.threads;
    if (threads > 0) {
      // A libzstd built without threads refuses nbWorkers: compress inline.
      if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx_, ZSTD_c_nbWorkers, threads)))
        ZSTD_CCtx_setParameter(cctx_, ZSTD_c_nbWorkers, 0);
    }
    return Status::Ok();
  }
  Status Update(std::string_view in, std::string* out) override {
    while (!in.empty()) {
      std::string_view slice = in.substr(0, kSlice);
      in.remove_prefix(slice.size());
      ZSTD_inBuffer ib{slice.data(), slice.size(), 0};
      while (ib.pos < ib.size) CKPTD_RETURN_IF_ERROR(Step(&ib, ZSTD_e_continue, out, nullptr));
    }
    return Status::Ok();
  }
  Status Finish(std::string* out) override {
    ZSTD_inBuffer ib{nullptr, 0, 0};
    size_t remaining = 1;
    while (remaining != 0) CKPTD_RETURN_IF_ERROR(Step(&ib, ZSTD_e_end, out, &remaining));
    return Status::Ok();
  }
  Codec codec() const override { return Codec::kZstd; }

 private:
  Status Set(ZSTD_cParameter p, int v) {
    size_t rc = ZSTD_CCtx_setParameter(cctx_, p, v);
    if (ZSTD_isError(rc)) return InvalidArgument(fmt::format("zstd parameter: {}", ZSTD_getErrorName(rc)));
    return Status::Ok();
  }
  Status Step(ZSTD_inBuffer* ib, ZSTD_EndDirective mode, std::string* out, size_t* remaining) {
    size_t old = out->size();
    size_t cap = ZSTD_CStreamOutSize();
    out->resize(old + cap);
    ZSTD_outBuffer ob{out->data() + old, cap, 0};
    size_t rc = ZSTD_compressStream2(cctx_, &ob, ib, mode);
    out->resize(old + ob.pos);
    if (ZSTD_isError(rc)) return Internal(fmt::format("zstd compress: {}", ZSTD_getErrorName(rc)));
    if (remaining) *remaining = rc;
    return Status::Ok();
  }
  ZSTD_CCtx* cctx_ = nullptr;
};

class ZstdDecoder {
 public:
  ZstdDecoder() : dctx_(ZSTD_createDCtx()) {
    if (dctx_ == nullptr) std::abort();
  }
  ~ZstdDecoder() { ZSTD_freeDCtx(dctx_); }
  // One bounded step: consumes from *in, writes at most out.size() bytes.
  Status Step(std::string_view* in, std::span<char> out, size_t* produced) {
    ZSTD_inBuffer ib{in->data(), in->size(), 0};
    ZSTD_outBuffer ob{out.data(), out.size(), 0};
    size_t rc = ZSTD_decompressStream(dctx_, &ob, &ib);
    *produced = 0;
    if (ZSTD_isError(rc)) return Corruption(fmt::format("zstd: {}", ZSTD_getErrorName(rc)));
    // A call with no progress (after a frame ended exactly at a full
    // output buffer) answers a hint for the next frame: not "inside".
    if (ib.pos > 0 || ob.pos > 0) in_frame_ = rc != 0;
    in->remove_prefix(ib.pos);
    *produced = ob.pos;
    return Status::Ok();
  }
  Status Finish() {
    if (in_frame_) return Corruption("zstd: input ends inside a frame (truncated)");
    return Status::Ok();
  }

 private:
  ZSTD_DCtx* dctx_;
  bool in_frame_ = false;
};

// ---------------------------------------------------------------- lz4
class Lz4Encoder final : public Encoder {
 public:
  ~Lz4Encoder() override { LZ4F_freeCompressionContext(cctx_); }
  Status Init(const CodecOptions& o) {
    if (LZ4F_isError(LZ4F_createCompressionContext(&cctx_, LZ4F_VERSION)))
      return Internal("LZ4F_createCompressionContext failed");
    std::memset(&prefs_, 0, sizeof(prefs_));
    prefs_.frameInfo.blockSizeID = LZ4F_max1MB;
    // No content checksum: its XXH32 cost 0.65 CPU-s per GiB here, more than
    // the compression itself, and every image is verified against the
    // manifest's checksum of its uncompressed bytes anyway (frames written
    // with one still decode and are still checked).
    prefs_.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
    prefs_.compressionLevel = o.level;
    return Status::Ok();
  }
  Status Update(std::string_view in, std::string* out) override {
    CKPTD_RETURN_IF_ERROR(Begin(out));
    while (!in.empty()) {
      std::string_view slice = in.substr(0, kSlice);
      in.remove_prefix(slice.size());
      size_t old = out->size();
      size_t cap = LZ4F_compressBound(slice.size(), &prefs_);
      out->resize(old + cap);
      size_t rc = LZ4F_compressUpdate(cctx_, out->data() + old, cap, slice.data(), slice.size(), nullptr);
      if (LZ4F_isError(rc)) {
        out->resize(old);
        return Internal(fmt::format("lz4 compress: {}", LZ4F_getErrorName(rc)));
      }
      out->resize(old + rc);
    }
    return Status::Ok();
  }
  Status Finish(std::string* out) override {
    CKPTD_RETURN_IF_ERROR(Begin(out));
    size_t old = out->size();
    size_t cap = LZ4F_compressBound(0, &prefs_);
    out->resize(old + cap);
    size_t rc = LZ4F_compressEnd(cctx_, out->data() + old, cap, nullptr);
    if (LZ4F_isError(rc)) {
      out->resize(old);
      return Internal(fmt::format("lz4 end: {}", LZ4F_getErrorName(rc)));
    }
    out->resize(old + rc);
    return Status::Ok();
  }
  Codec codec() const override { return Codec::kLz4; }

 private:
  Status Begin(std::string* out) {
    if (begun_) return Status::Ok();
    begun_ = true;
    size_t old = out->size();
    out->resize(old + LZ4F_HEADER_SIZE_MAX);
    size_t rc = LZ4F_compressBegin(cctx_, out->data() + old, LZ4F_HEADER_SIZE_MAX, &prefs_);
    if (LZ4F_isError(rc)) {
      out->resize(old);
      return Internal(fmt::format("lz4 begin: {}", LZ4F_getErrorName(rc)));
    }
    out->resize(old + rc);
    return Status::Ok();
  }
  LZ4F_cctx* cctx_ = nullptr;
  LZ4F_preferences_t prefs_;
  bool begun_ = false;
};

class Lz4Decoder {
 public:
  Lz4Decoder() {
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx_, LZ4F_VERSION))) std::abort();
  }
  ~Lz4Decoder() { LZ4F_freeDecompressionContext(dctx_); }
  Status Step(std::string_view* in, std::span<char> out, size_t* produced) {
    size_t dst_size = out.size(), src_size = in->size();
    size_t rc = LZ4F_decompress(dctx_, out.data(), &dst_size, in->data(), &src_size, nullptr);
    *produced = 0;
    if (LZ4F_isError(rc)) return Corruption(fmt::format("lz4: {}", LZ4F_getErrorName(rc)));
    if (src_size > 0 || dst_size > 0) in_frame_ = rc != 0;  // see ZstdDecoder
    in->remove_prefix(src_size);
    *produced = dst_size;
    return Status::Ok();
  }
  Status Finish() {
    if (in_frame_) return Corruption("lz4: input ends inside a frame (truncated)");
    return Status::Ok();
  }

 private:
  LZ4F_dctx* dctx_ = nullptr;
  bool in_frame_ = false;
};

// ---------------------------------------------------------------- detecting decoder
class AnyDecoder final : public Decoder {
 public:
  explicit AnyDecoder(std::optional<Codec> c) {
    if (c) Choose(*c);
  }
  Status Step(std::string_view* in, std::span<char> out, size_t* produced) override {
    *produced = 0;
    if (!chosen_) {
      size_t take = std::min(in->size(), 4 - head_.size());
      head_.append(in->substr(0, take));
      in->remove_prefix(take);
      if (head_.size() < 4) return Status::Ok();
      Detect();
    }
    if (head_pos_ < head_.size()) {
      // The bytes detection looked at go through the codec first.
      std::string_view h(head_.data() + head_pos_, head_.size() - head_pos_);
      size_t before = h.size();
      CKPTD_RETURN_IF_ERROR(Feed(&h, out, produced));
      head_pos_ += before - h.size();
      return Status::Ok();
    }
    return Feed(in, out, produced);
  }
  Status Update(std::string_view in, std::string* out) override {
    // Loop until the input is consumed and a step left room in its output
    // (a full output means the codec may still hold decoded bytes).
    constexpr size_t kCap = 256 << 10;
    for (;;) {
      size_t old = out->size();
      out->resize(old + kCap);
      size_t produced = 0;
      Status st = Step(&in, std::span<char>(out->data() + old, kCap), &produced);
      out->resize(old + produced);
      CKPTD_RETURN_IF_ERROR(st);
      if (in.empty() && produced < kCap && (!chosen_ || head_pos_ >= head_.size())) return Status::Ok();
    }
  }
  Status Finish(std::string* out) override {
    if (!chosen_) {
      // Fewer than 4 bytes in all: only "none" can be that short.
      Choose(Codec::kNone);
      out->append(head_);
      head_pos_ = head_.size();
      return Status::Ok();
    }
    if (zstd_) return zstd_->Finish();
    if (lz4_) return lz4_->Finish();
    return Status::Ok();
  }
  Codec codec() const override { return codec_; }

 private:
  void Detect() {
    if (std::memcmp(head_.data(), kZstdMagic, 4) == 0) {
      Choose(Codec::kZstd);
    } else if (std::memcmp(head_.data(), kLz4Magic, 4) == 0) {
      Choose(Codec::kLz4);
    } else {
      Choose(Codec::kNone);
    }
  }
  void Choose(Codec c) {
    chosen_ = true;
    codec_ = c;
    if (c == Codec::kZstd) zstd_ = std::make_unique<ZstdDecoder>();
    if (c == Codec::kLz4) lz4_ = std::make_unique<Lz4Decoder>();
  }
  Status Feed(std::string_view* in, std::span<char> out, size_t* produced) {
    if (zstd_) return zstd_->Step(in, out, produced);
    if (lz4_) return lz4_->Step(in, out, produced);
    size_t n = std::min(in->size(), out.size());
    std::memcpy(out.data(), in->data(), n);
    in->remove_prefix(n);
    *produced = n;
    return Status::Ok();
  }

  bool chosen_ = false;
  Codec codec_ = Codec::kNone;
  std::string head_;     // the first bytes, kept for detection
  size_t head_pos_ = 0;  // how much of head_ went through the codec
  std::unique_ptr<ZstdDecoder> zstd_;
  std::unique_ptr<Lz4Decoder> lz4_;
};

}  // namespace

std::string_view CodecName(Codec codec) {
  switch (codec) {
    case Codec::kNone:
      return "none";
    case Codec::kZstd:
      return "zstd";
    case Codec::kLz4:
      return "lz4";
  }
  return "?";
}

Result<Codec> ParseCodec(std::string_view name) {
  if (name == "none") return Codec::kNone;
  if (name == "zstd") return Codec::kZstd;
  if (name == "lz4") return Codec::kLz4;
  return InvalidArgument(fmt::format("unknown codec '{}' (want zstd, lz4 or none)", name));
}

Result<std::unique_ptr<Encoder>> Encoder::Create(const CodecOptions& opts) {
  switch (opts.codec) {
    case Codec::kNone:
      return std::unique_ptr<Encoder>(new NoneEncoder());
    case Codec::kZstd: {
      auto e = std::make_unique<ZstdEncoder>();
      CKPTD_RETURN_IF_ERROR(e->Init(opts));
      return std::unique_ptr<Encoder>(std::move(e));
    }
    case Codec::kLz4: {
      auto e = std::make_unique<Lz4Encoder>();
      CKPTD_RETURN_IF_ERROR(e->Init(opts));
      return std::unique_ptr<Encoder>(std::move(e));
    }
  }
  return InvalidArgument("unknown codec");
}

std::unique_ptr<Decoder> Decoder::Create(std::optional<Codec> codec) { return std::make_unique<AnyDecoder>(codec); }

// ---------------------------------------------------------------- EncodingWriter

Result<std::unique_ptr<EncodingWriter>> EncodingWriter::Create(std::unique_ptr<ObjectWriter> inner,
                                                               const CodecOptions& opts, const EncodingOptions& eopts) {
  CKPTD_ASSIGN_OR_RETURN(auto enc, Encoder::Create(opts));
  return std::unique_ptr<EncodingWriter>(new EncodingWriter(std::move(inner), std::move(enc), eopts));
}

EncodingWriter::~EncodingWriter() {
  if (encoder_.joinable()) StopWorkers(false).IgnoreError();
}

Status EncodingWriter::Flush() {
  if (buf_.empty()) return Status::Ok();
  Status st = inner_->Write(buf_);
  buf_.clear();
  return st;
}

Status EncodingWriter::Encode(std::string_view data) {
  if (enc_->codec() == Codec::kNone && buf_.empty()) return inner_->Write(data);  // no copy
  CKPTD_RETURN_IF_ERROR(enc_->Update(data, &buf_));
  // Batch small compressed outputs: fewer, larger writes to the backend.
  if (buf_.size() >= (1 << 20)) return Flush();
  return Status::Ok();
}

void EncodingWriter::Reclaim() {
  while (base_ < std::min(encoded_, hashed_)) {
    // Spares keep their size: a caller filling one (WriteSwap) resizes
    // without writing zeros over it first.
    spare_.push_back(std::move(queue_.front()));
    queue_.pop_front();
    ++base_;
  }
}

void EncodingWriter::WorkerLoop(uint64_t* cursor, std::atomic<pid_t>* tid,
                                const std::function<Status(std::string_view)>& work) {
  {
    MutexLock lock(mu_);
    *tid = static_cast<pid_t>(::gettid());
  }
  cv_.notify_all();
  for (;;) {
    const std::string* chunk = nullptr;
    {
      UniqueLock lock(mu_);
      cv_.wait(lock, [&]() REQUIRES(mu_) { return *cursor < base_ + queue_.size() || stop_ || drop_; });
      if (drop_ || *cursor >= base_ + queue_.size()) return;  // dropped, or stopped and drained
      // Stays put: the deque only grows at the back, and this chunk leaves
      // its front only once this worker's cursor is past it.
      chunk = &queue_[*cursor - base_];
    }
    Status st = work(*chunk);
    MutexLock lock(mu_);
    ++*cursor;
    Reclaim();
    if (!st.ok()) {
      worker_status_ = st;
      drop_ = true;
    }
    cv_.notify_all();
    if (!st.ok()) return;
  }
}

Status EncodingWriter::StopWorkers(bool drain) {
  {
    MutexLock lock(mu_);
    stop_ = true;
    if (!drain) drop_ = true;
  }
  cv_.notify_all();
  encoder_.join();
  hasher_.join();
  MutexLock lock(mu_);
  queue_.clear();
  spare_.clear();
  return worker_status_;
}

Result<bool> EncodingWriter::WriteInline(std::string_view data) {
  if (failed_) return Internal("write to a failed encoding writer");
  uncompressed_ += data.size();
  if (encoder_.joinable()) return false;
  if (eopts_.pipeline_after == 0 || uncompressed_ <= eopts_.pipeline_after) {
    hash_.Update(data);
    Status st = Encode(data);
    if (!st.ok()) {
      failed_ = true;
      return st;
    }
    return true;
  }
  // From here on, both workers take every chunk; the hash so far covers
  // the bytes before it, in order.
  encoder_ =
      std::thread([this] { WorkerLoop(&encoded_, &encoder_tid_, [this](std::string_view c) { return Encode(c); }); });
  hasher_ = std::thread([this] {
    WorkerLoop(&hashed_, &hasher_tid_, [this](std::string_view c) {
      hash_.Update(c);
      return Status::Ok();
    });
  });
  // worker_tids() are valid from the first pipelined Write on.
  UniqueLock lock(mu_);
  cv_.wait(lock, [&]() REQUIRES(mu_) { return encoder_tid_.load() != 0 && hasher_tid_.load() != 0; });
  return false;
}

Status EncodingWriter::Enqueue(std::string_view data, std::string* swap) {
  UniqueLock lock(mu_);
  cv_.wait(lock, [&]() REQUIRES(mu_) { return queue_.size() < std::max<size_t>(1, eopts_.pipeline_depth) || drop_; });
  if (drop_) {
    failed_ = true;
    return worker_status_;
  }
  std::string next;
  if (!spare_.empty()) {
    next = std::move(spare_.back());
    spare_.pop_back();
  }
  if (swap) {
    queue_.push_back(std::move(*swap));
    *swap = std::move(next);
  } else {
    lock.unlock();
    next.assign(data);  // the copy happens outside the lock
    lock.lock();
    queue_.push_back(std::move(next));
  }
  lock.unlock();
  cv_.notify_all();
  return Status::Ok();
}

Status EncodingWriter::Write(std::string_view data) {
  CKPTD_ASSIGN_OR_RETURN(bool done, WriteInline(data));
  return done ? Status::Ok() : Enqueue(data, nullptr);
}

Status EncodingWriter::WriteSwap(std::string* chunk) {
  CKPTD_ASSIGN_OR_RETURN(bool done, WriteInline(*chunk));
  return done ? Status::Ok() : Enqueue({}, chunk);
}

Status EncodingWriter::Commit() {
  if (failed_) return Internal("commit of a failed encoding writer");
  Status st = encoder_.joinable() ? StopWorkers(true) : Status::Ok();
  if (st.ok()) st = enc_->Finish(&buf_);
  if (st.ok()) st = Flush();
  if (st.ok()) st = inner_->Commit();
  if (!st.ok()) {
    failed_ = true;
    inner_->Abort();
    return st;
  }
  digest_hex_ = hash_.FinishHex();
  return Status::Ok();
}

void EncodingWriter::Abort() {
  failed_ = true;
  if (encoder_.joinable()) StopWorkers(false).IgnoreError();
  inner_->Abort();
}

// ---------------------------------------------------------------- DecodingReader

DecodingReader::DecodingReader(std::unique_ptr<ObjectReader> inner, std::optional<Codec> codec, HashAlg hash)
    : inner_(std::move(inner)), dec_(Decoder::Create(codec)), hash_(hash) {}

Result<size_t> DecodingReader::Read(std::span<char> buf) {
  if (buf.empty()) return size_t{0};
  for (;;) {
    if (tail_pos_ < tail_.size()) {
      // Bytes Finish() produced (a "none" object shorter than 4 bytes).
      size_t n = std::min(buf.size(), tail_.size() - tail_pos_);
      std::memcpy(buf.data(), tail_.data() + tail_pos_, n);
      tail_pos_ += n;
      hash_.Update(std::string_view(buf.data(), n));
      produced_ += n;
      return n;
    }
    if (done_) {
      if (digest_hex_.empty()) digest_hex_ = hash_.FinishHex();
      return size_t{0};
    }
    if (in_pos_ == in_len_ && !eof_) {
      in_.resize(256 << 10);
      CKPTD_ASSIGN_OR_RETURN(size_t n, inner_->Read(std::span<char>(in_.data(), in_.size())));
      in_pos_ = 0;
      in_len_ = n;
      if (n == 0) eof_ = true;
    }
    // Decode straight into the caller's buffer: memory stays bounded by the
    // input chunk however well the data compressed.
    std::string_view in(in_.data() + in_pos_, in_len_ - in_pos_);
    size_t before = in.size();
    size_t produced = 0;
    CKPTD_RETURN_IF_ERROR(dec_->Step(&in, buf, &produced));
    in_pos_ += before - in.size();
    if (produced > 0) {
      hash_.Update(std::string_view(buf.data(), produced));
      produced_ += produced;
      return produced;
    }
    if (eof_ && in_pos_ == in_len_) {
      // Nothing more comes out with no more input: the stream has ended.
      CKPTD_RETURN_IF_ERROR(dec_->Finish(&tail_));
      done_ = true;
    }
  }
}

}  // namespace ckptd
