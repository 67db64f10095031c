#include <gtest/gtest.h>

#include <sys/resource.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>

#include "store/codec.h"
#include "store/digest.h"
#include "tests/testing/test_util.h"

namespace ckptd {
namespace {

using testing::RandomBytes;

std::string Compressible(size_t n) {
  std::string s;
  while (s.size() < n) s += "struct page { u64 pfn; u64 flags; } # " + std::to_string(s.size() % 4099) + "\n";
  s.resize(n);
  return s;
}

std::string Encode(Codec c, std::string_view data, size_t chunk, int threads = 0, int level = 0) {
  CodecOptions o;
  o.codec = c;
  o.threads = threads;
  o.level = level;
  auto e = Encoder::Create(o);
  EXPECT_TRUE(e.ok());
  std::string out;
  for (size_t off = 0; off < data.size(); off += chunk) EXPECT_TRUE((*e)->Update(data.substr(off, chunk), &out).ok());
  EXPECT_TRUE((*e)->Finish(&out).ok());
  return out;
}

Result<std::string> Decode(std::string_view data, size_t chunk, Codec* detected = nullptr,
                           std::optional<Codec> given = std::nullopt) {
  auto d = Decoder::Create(given);
  std::string out;
  for (size_t off = 0; off < data.size(); off += chunk) CKPTD_RETURN_IF_ERROR(d->Update(data.substr(off, chunk), &out));
  CKPTD_RETURN_IF_ERROR(d->Finish(&out));
  if (detected) *detected = d->codec();
  return out;
}

class CodecTest : public ::testing::TestWithParam<Codec> {};

TEST_P(CodecTest, RoundTripsAndIsDetected) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{3}, size_t{4}, size_t{1000}, size_t{5 << 20}}) {
    for (const std::string& data : {Compressible(size), RandomBytes(size, size)}) {
      for (size_t chunk : {size_t{1} << 20, size_t{4093}}) {
        std::string enc = Encode(GetParam(), data, chunk);
        Codec detected = Codec::kNone;
        auto dec = Decode(enc, chunk == 4093 ? 777 : chunk, &detected);
        ASSERT_TRUE(dec.ok()) << dec.status().ToString() << " size " << size;
        EXPECT_EQ(dec->size(), data.size());
        EXPECT_TRUE(*dec == data) << CodecName(GetParam()) << " size " << size;
        if (GetParam() != Codec::kNone && size > 0) {
          EXPECT_EQ(detected, GetParam());
        }
      }
    }
  }
  // Compressible data shrinks.
  if (GetParam() != Codec::kNone) {
    EXPECT_LT(Encode(GetParam(), Compressible(1 << 20), 65536).size(), 200000u);
  }
}

// An ObjectReader over a string that hands out at most `step` bytes a call
// (network reads come in odd sizes).
class DribbleReader final : public ObjectReader {
 public:
  DribbleReader(std::string data, size_t step) : data_(std::move(data)), step_(step) {}
  Result<size_t> Read(std::span<char> buf) override {
    size_t n = std::min({buf.size(), step_, data_.size() - pos_});
    std::memcpy(buf.data(), data_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  uint64_t size() const override { return data_.size(); }

 private:
  std::string data_;
  size_t step_;
  size_t pos_ = 0;
};

// zstd_level: negative levels (zstd's fast modes) and high ones round-trip;
// the fast modes trade size for speed (the config bounds the range).
TEST(ZstdLevelTest, LevelsRoundTripAndTradeSizeForSpeed) {
  std::string data;
  for (int i = 0; i < 20000; ++i) data += "line " + std::to_string(i * 7919 % 10007) + " of a log\n";
  std::map<int, size_t> sizes;
  for (int level : {-50, -5, -1, 1, 3, 19}) {
    std::string enc = Encode(Codec::kZstd, data, 65536, 0, level);
    sizes[level] = enc.size();
    auto dec = Decode(enc, 4096);
    ASSERT_TRUE(dec.ok()) << level << ": " << dec.status().ToString();
    EXPECT_TRUE(*dec == data) << level;
  }
  EXPECT_GT(sizes[-50], sizes[-1]);
  EXPECT_GT(sizes[-1], sizes[1]);
}

// Only the compressed frames carry a checksum to catch corruption with.
class CompressedCodecTest : public ::testing::TestWithParam<Codec> {};

TEST_P(CompressedCodecTest, CorruptionIsDetected) {
  std::string data = RandomBytes(300000, 5) + Compressible(300000);
  std::string enc = Encode(GetParam(), data, 65536);
  // A flipped byte in the middle of the frame.
  std::string bad = enc;
  bad[bad.size() / 2] ^= 0x5a;
  auto r = Decode(bad, 8192, nullptr, GetParam());
  if (GetParam() == Codec::kZstd) {
    // zstd's own content checksum.
    EXPECT_EQ(r.status().code(), Code::kCorruption) << r.status().ToString();
  } else {
    // lz4 frames carry no content checksum: an error or other bytes.
    EXPECT_TRUE(!r.ok() || *r != data);
  }
  // Whatever the codec, the reader's checksum (what restore compares with
  // the manifest) never matches a corrupted object.
  DecodingReader dr(std::make_unique<DribbleReader>(bad, 4096), GetParam());
  std::vector<char> buf(65536);
  bool failed = false;
  for (;;) {
    auto n = dr.Read(buf);
    if (!n.ok()) {
      failed = true;
      break;
    }
    if (*n == 0) break;
  }
  EXPECT_TRUE(failed || dr.digest_hex() != Blake3::HexOf(data)) << CodecName(GetParam());
  // A truncated frame.
  auto t = Decode(std::string_view(enc).substr(0, enc.size() - 7), 8192);
  EXPECT_EQ(t.status().code(), Code::kCorruption) << t.status().ToString();
  EXPECT_NE(t.status().message().find("truncated"), std::string::npos) << t.status().message();
}

INSTANTIATE_TEST_SUITE_P(Codecs, CodecTest, ::testing::Values(Codec::kZstd, Codec::kLz4, Codec::kNone),
                         [](const auto& tp) { return std::string(CodecName(tp.param)); });
INSTANTIATE_TEST_SUITE_P(Codecs, CompressedCodecTest, ::testing::Values(Codec::kZstd, Codec::kLz4),
                         [](const auto& tp) { return std::string(CodecName(tp.param)); });


std::string ReadAll(DecodingReader& r, size_t buf_size) {
  std::string out, buf(buf_size, '\0');
  for (;;) {
    auto n = r.Read(std::span<char>(buf.data(), buf.size()));
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    if (!n.ok() || *n == 0) return out;
    EXPECT_LE(*n, buf_size);
    out.append(buf.data(), *n);
  }
}

TEST_P(CodecTest, DecodingReaderHandlesTinyReadsAndBuffers) {
  for (size_t size : {size_t{0}, size_t{3}, size_t{5}, size_t{70000}}) {
    std::string data = RandomBytes(size / 2, size) + Compressible(size - size / 2);
    for (size_t step : {size_t{1}, size_t{3}, size_t{4096}}) {
      DecodingReader r(std::make_unique<DribbleReader>(Encode(GetParam(), data, 1 << 20), step));
      std::string got = ReadAll(r, 7);
      EXPECT_TRUE(got == data) << CodecName(GetParam()) << " size " << size << " step " << step;
      EXPECT_EQ(r.bytes_read(), data.size());
      EXPECT_EQ(r.digest_hex(), Blake3::HexOf(data));
    }
  }
}

// A very compressible object must not be decoded into memory all at once:
// 512 MiB of one byte is a few KiB of zstd/lz4; reading it back with a 1 MiB
// buffer may not raise the peak RSS by anything like its size.
TEST_P(CompressedCodecTest, DecodingReaderMemoryStaysBounded) {
  const size_t kSize = 512u << 20;
  std::string enc;
  {
    CodecOptions o;
    o.codec = GetParam();
    o.threads = 0;
    auto e = Encoder::Create(o);
    ASSERT_TRUE(e.ok());
    std::string block(1 << 20, 'z');
    for (size_t off = 0; off < kSize; off += block.size()) ASSERT_TRUE((*e)->Update(block, &enc).ok());
    ASSERT_TRUE((*e)->Finish(&enc).ok());
  }
  ASSERT_LT(enc.size(), 8u << 20);
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  DecodingReader r(std::make_unique<DribbleReader>(enc, 256 << 10));
  std::string buf(1 << 20, '\0');
  uint64_t total = 0;
  for (;;) {
    auto n = r.Read(std::span<char>(buf.data(), buf.size()));
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (*n == 0) break;
    ASSERT_EQ(buf[*n - 1], 'z');
    total += *n;
  }
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  EXPECT_EQ(total, kSize);
  // ru_maxrss is in KiB.
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 64 * 1024) << "decoding held the object in memory";
}

// An ObjectWriter into a string that can fail after `fail_after` bytes.
class StringWriter final : public ObjectWriter {
 public:
  StringWriter(std::string* out, uint64_t fail_after = UINT64_MAX) : out_(out), fail_after_(fail_after) {}
  Status Write(std::string_view data) override {
    if (out_->size() + data.size() > fail_after_) return IOError("disk on fire");
    out_->append(data);
    return Status::Ok();
  }
  Status Commit() override {
    committed_ = true;
    return Status::Ok();
  }
  void Abort() override { out_->clear(); }
  uint64_t bytes_written() const override { return out_->size(); }
  bool committed_ = false;

 private:
  std::string* out_;
  uint64_t fail_after_;
};

// Past pipeline_after, compression and the inner writes run on the writer's
// worker thread: the result must be the same bytes, in order.
TEST_P(CodecTest, PipelinedEncodingWriterRoundTrips) {
  std::string data = Compressible(5 << 20) + RandomBytes(6 << 20, 9) + Compressible(3 << 20);
  for (uint64_t after : {uint64_t{0}, uint64_t{1} << 20}) {
    std::string stored;
    CodecOptions co;
    co.codec = GetParam();
    EncodingOptions eo;
    eo.pipeline_after = after;
    eo.pipeline_depth = 2;
    auto w = EncodingWriter::Create(std::make_unique<StringWriter>(&stored), co, eo);
    ASSERT_TRUE(w.ok());
    for (size_t off = 0; off < data.size(); off += 65537) ASSERT_TRUE((*w)->Write(std::string_view(data).substr(off, 65537)).ok());
    if (after > 0) {
      // The workers' tids are known (the image streamer renices them):
      // two of this process's threads.
      auto tids = (*w)->worker_tids();
      ASSERT_GT(tids[0], 0);
      ASSERT_GT(tids[1], 0);
      EXPECT_NE(tids[0], tids[1]);
      for (pid_t tid : tids) EXPECT_TRUE(std::filesystem::exists("/proc/self/task/" + std::to_string(tid)));
    } else {
      EXPECT_EQ((*w)->worker_tids()[0], 0);
    }
    ASSERT_TRUE((*w)->Commit().ok());
    EXPECT_EQ((*w)->digest_hex(), Blake3::HexOf(data));
    EXPECT_EQ((*w)->hash_alg(), HashAlg::kBlake3);
    EXPECT_EQ((*w)->bytes_written(), data.size());
    EXPECT_EQ((*w)->compressed_bytes(), stored.size());
    auto back = Decode(stored, 1 << 20);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_TRUE(*back == data) << "pipeline_after " << after;
  }
}

// WriteSwap: once the pipeline runs the writer takes the caller's buffer
// and hands back another (a spare, or empty), never a buffer it still
// reads; the bytes stored and the digest are those of the data written.
TEST_P(CodecTest, WriteSwapTakesTheBufferOncePipelined) {
  std::string data = Compressible(3 << 20) + RandomBytes(5 << 20, 11) + Compressible(1 << 20);
  std::string stored;
  CodecOptions co;
  co.codec = GetParam();
  EncodingOptions eo;
  eo.pipeline_after = 1 << 20;
  eo.pipeline_depth = 2;
  auto w = EncodingWriter::Create(std::make_unique<StringWriter>(&stored), co, eo);
  ASSERT_TRUE(w.ok());
  std::string buf;
  size_t kept_before = 0, taken_after = 0, calls_after = 0;
  constexpr size_t kPiece = 300'000;
  for (size_t off = 0; off < data.size(); off += kPiece) {
    const size_t n = std::min(kPiece, data.size() - off);
    buf.resize(n);
    std::memcpy(buf.data(), data.data() + off, n);
    const char* mine = buf.data();
    ASSERT_TRUE((*w)->WriteSwap(&buf).ok());
    if (off + n <= eo.pipeline_after) {
      kept_before += buf.data() == mine;
    } else {
      ++calls_after;
      taken_after += buf.data() != mine;
    }
    // Whatever came back is the caller's to overwrite at once.
    std::memset(buf.data(), 0x5a, buf.size());
  }
  EXPECT_EQ(kept_before, eo.pipeline_after / kPiece);
  EXPECT_EQ(taken_after, calls_after);
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_EQ((*w)->digest_hex(), Blake3::HexOf(data));
  EXPECT_EQ((*w)->bytes_written(), data.size());
  auto back = Decode(stored, 1 << 20);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(*back == data);
}

// An inner write that fails on the worker surfaces at a later Write or at
// Commit, never hangs, and nothing is committed.
TEST_P(CodecTest, PipelinedEncodingWriterReportsWorkerErrors) {
  std::string data = RandomBytes(16 << 20, 3);
  std::string stored;
  auto* inner = new StringWriter(&stored, 4 << 20);
  CodecOptions co;
  co.codec = GetParam();
  EncodingOptions eo;
  eo.pipeline_after = 1 << 20;
  auto w = EncodingWriter::Create(std::unique_ptr<ObjectWriter>(inner), co, eo);
  ASSERT_TRUE(w.ok());
  Status st;
  for (size_t off = 0; off < data.size() && st.ok(); off += 1 << 20) st = (*w)->Write(std::string_view(data).substr(off, 1 << 20));
  if (st.ok()) st = (*w)->Commit();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.ToString().find("disk on fire"), std::string::npos) << st.ToString();
  EXPECT_FALSE(inner->committed_);
  EXPECT_FALSE((*w)->Write("more").ok());
}

// Abort while the worker still has queued chunks: returns, nothing committed.
TEST(CodecMisc, PipelinedEncodingWriterAborts) {
  std::string stored;
  auto* inner = new StringWriter(&stored);
  CodecOptions co;
  EncodingOptions eo;
  eo.pipeline_after = 1;
  auto w = EncodingWriter::Create(std::unique_ptr<ObjectWriter>(inner), co, eo);
  ASSERT_TRUE(w.ok());
  std::string chunk = RandomBytes(1 << 20, 4);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE((*w)->Write(chunk).ok());
  (*w)->Abort();
  EXPECT_FALSE(inner->committed_);
  EXPECT_TRUE(stored.empty());
}

TEST(CodecMisc, ZstdWithWorkersRoundTrips) {
  std::string data = Compressible(6 << 20) + RandomBytes(1 << 20, 9);
  std::string enc = Encode(Codec::kZstd, data, 1 << 20, /*threads=*/2);
  auto dec = Decode(enc, 100000);
  ASSERT_TRUE(dec.ok());
  EXPECT_TRUE(*dec == data);
}

TEST(CodecMisc, UnknownBytesDecodeAsNone) {
  Codec c = Codec::kZstd;
  auto dec = Decode("plain text, not a frame", 5, &c);
  ASSERT_TRUE(dec.ok());
  EXPECT_EQ(*dec, "plain text, not a frame");
  EXPECT_EQ(c, Codec::kNone);
  // Garbage after a zstd magic is corruption, not pass-through.
  std::string fake("\x28\xb5\x2f\xfd\xff\xff\xff\xff\xff\xff", 10);
  EXPECT_EQ(Decode(fake, 3).status().code(), Code::kCorruption);
}

TEST(CodecMisc, ParseCodecNames) {
  for (Codec c : {Codec::kZstd, Codec::kLz4, Codec::kNone}) {
    auto p = ParseCodec(CodecName(c));
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(*p, c);
  }
  EXPECT_EQ(ParseCodec("gzip").status().code(), Code::kInvalidArgument);
}

// A writer and reader set to SHA-256 (image_checksum = "sha256", and
// manifests written before BLAKE3) checksum with it.
TEST(DigestTest, EncodingWriterAndDecodingReaderWithSha256) {
  std::string data = RandomBytes(300'000, 7) + Compressible(300'000);
  std::string stored;
  EncodingOptions eo;
  eo.hash = HashAlg::kSha256;
  eo.pipeline_after = 100'000;  // the pipelined path too
  auto w = EncodingWriter::Create(std::make_unique<StringWriter>(&stored), CodecOptions{}, eo);
  ASSERT_TRUE(w.ok());
  for (size_t off = 0; off < data.size(); off += 65537) ASSERT_TRUE((*w)->Write(std::string_view(data).substr(off, 65537)).ok());
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_EQ((*w)->hash_alg(), HashAlg::kSha256);
  EXPECT_EQ((*w)->digest_hex(), Sha256::HexOf(data));
  DecodingReader r(std::make_unique<DribbleReader>(stored, 4096), std::nullopt, HashAlg::kSha256);
  EXPECT_TRUE(ReadAll(r, 10'000) == data);
  EXPECT_EQ(r.digest_hex(), Sha256::HexOf(data));
}

TEST(DigestTest, KnownVectorsAndStreaming) {
  EXPECT_EQ(Sha256::HexOf(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::HexOf("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.Update("a");
  h.Update("");
  h.Update("bc");
  EXPECT_EQ(h.FinishHex(), Sha256::HexOf("abc"));
  EXPECT_EQ(h.FinishHex(), Sha256::HexOf(""));  // restarts empty
  // BLAKE3 (32-byte output): vectors from an independent implementation
  // (b3sum); a megabyte runs the SIMD many-chunk paths.
  EXPECT_EQ(Blake3::HexOf(""), "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
  EXPECT_EQ(Blake3::HexOf("abc"), "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85");
  const std::string zeros(1'000'000, '\0');
  EXPECT_EQ(Blake3::HexOf(zeros), "c211bb2e5afbd0efa21659d5578ea30217d5382734be1b494faf705d9aa202a1");
  Blake3 b;
  for (size_t off = 0; off < zeros.size(); off += 4099) b.Update(std::string_view(zeros).substr(off, 4099));
  EXPECT_EQ(b.FinishHex(), Blake3::HexOf(zeros));
  EXPECT_EQ(b.FinishHex(), Blake3::HexOf(""));  // restarts empty
  // ContentHash picks the algorithm at run time; names round-trip.
  for (HashAlg a : {HashAlg::kBlake3, HashAlg::kSha256}) {
    ContentHash ch(a);
    ch.Update("a");
    ch.Update("bc");
    EXPECT_EQ(ch.FinishHex(), a == HashAlg::kSha256 ? Sha256::HexOf("abc") : Blake3::HexOf("abc"));
    auto p = ParseHashAlg(HashAlgName(a));
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(*p, a);
  }
  EXPECT_EQ(ParseHashAlg("md5").status().code(), Code::kInvalidArgument);
  // RFC 4231 test case 2.
  EXPECT_EQ(ToHex(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

}  // namespace
}  // namespace ckptd
