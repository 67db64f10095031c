// One conformance suite for the ObjectStore seam, run against every
// backend: the local directory store and the S3 store on a real s3rver.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "store/codec.h"
#include "store/digest.h"
#include "store/local_object_store.h"
#include "store/object_uri.h"
#include "store/s3_object_store.h"
#include "tests/testing/s3rver_fixture.h"
#include "tests/testing/test_util.h"

namespace ckptd {
namespace {

namespace fs = std::filesystem;
using testing::RandomBytes;
using testing::S3rverProcess;

// Small parts so multi-MiB objects cross several part boundaries.
constexpr uint64_t kTestPartSize = 256 << 10;

class ObjectStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "local") {
      tmp_ = std::make_unique<testing::TempDir>("ckptd-objstore");
      dir_ = tmp_->path().string();
      auto s = OpenObjectStore("file://" + dir_ + "/store/");
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      store_ = std::move(s).value();
    } else {
      server_ = std::make_unique<S3rverProcess>();
      Status st = server_->Start();
      ASSERT_TRUE(st.ok()) << st.ToString();
      ObjectStoreConfig cfg;
      cfg.s3 = server_->Config();
      cfg.s3.part_size = kTestPartSize;
      cfg.s3.allow_small_parts = true;
      cfg.s3.max_in_flight = 3;
      cfg.s3_from_env = false;
      auto s = OpenObjectStore(std::string("s3://") + S3rverProcess::kBucket + "/conf/prefix/", cfg);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      store_ = std::move(s).value();
    }
  }
  void TearDown() override {
    store_.reset();
    server_.reset();  // kills s3rver
    tmp_.reset();
  }

  // Writes data in uneven chunks; returns Commit's status.
  Status Put(std::string_view key, std::string_view data, size_t chunk = 100'003,
             std::optional<uint64_t> expected = std::nullopt) {
    WriteOptions o;
    o.expected_size = expected;
    auto w = store_->NewWriter(key, o);
    if (!w.ok()) return w.status();
    for (size_t off = 0; off < data.size(); off += chunk) {
      CKPTD_RETURN_IF_ERROR((*w)->Write(data.substr(off, chunk)));
    }
    EXPECT_EQ((*w)->bytes_written(), data.size());
    return (*w)->Commit();
  }

  std::string MustGet(std::string_view key) {
    auto r = store_->GetBytes(key);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::string();
  }

  std::vector<std::string> ListAll(std::string_view prefix, int page_size, int* pages = nullptr) {
    std::vector<std::string> keys;
    std::string token;
    int n = 0;
    do {
      auto page = store_->List(prefix, token, page_size);
      EXPECT_TRUE(page.ok()) << page.status().ToString();
      if (!page.ok()) break;
      EXPECT_LE(page->objects.size(), static_cast<size_t>(page_size));
      for (auto& o : page->objects) keys.push_back(o.key);
      token = page->next_token;
      ++n;
      EXPECT_LT(n, 1000) << "paging does not end";
    } while (!token.empty() && n < 1000);
    if (pages) *pages = n;
    return keys;
  }

  std::unique_ptr<testing::TempDir> tmp_;  // local only
  std::string dir_;
  std::unique_ptr<S3rverProcess> server_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_P(ObjectStoreTest, EmptyObjectRoundTrip) {
  ASSERT_TRUE(Put("empty", "").ok());
  auto info = store_->Head("empty");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, 0u);
  EXPECT_EQ(MustGet("empty"), "");
}

TEST_P(ObjectStoreTest, SmallObjectRoundTrip) {
  std::string data = "hello, checkpoint\n";
  ASSERT_TRUE(store_->PutBytes("dir/sub/small.txt", data).ok());
  EXPECT_EQ(MustGet("dir/sub/small.txt"), data);
  auto info = store_->Head("dir/sub/small.txt");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, data.size());
  EXPECT_EQ(info->key, "dir/sub/small.txt");
}

TEST_P(ObjectStoreTest, MultiMiBAcrossPartBoundaries) {
  // 13.5 parts of 256 KiB, written in chunks that straddle part edges.
  std::string data = RandomBytes(kTestPartSize * 13 + kTestPartSize / 2, 7);
  ASSERT_TRUE(Put("images/pages-1.img", data, 77'777).ok());
  auto info = store_->Head("images/pages-1.img");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, data.size());
  std::string got = MustGet("images/pages-1.img");
  EXPECT_EQ(got.size(), data.size());
  EXPECT_EQ(Sha256::HexOf(got), Sha256::HexOf(data));
  // Exactly one part, and exactly a multiple of the part size.
  std::string one = RandomBytes(kTestPartSize, 8), two = RandomBytes(kTestPartSize * 2, 9);
  ASSERT_TRUE(Put("one-part", one, kTestPartSize).ok());
  ASSERT_TRUE(Put("two-parts", two, kTestPartSize).ok());
  EXPECT_EQ(MustGet("one-part"), one);
  EXPECT_EQ(MustGet("two-parts"), two);
}

TEST_P(ObjectStoreTest, ExpectedSizeHintStillRoundTrips) {
  std::string data = RandomBytes(3 * kTestPartSize + 5, 10);
  ASSERT_TRUE(Put("hinted", data, 65536, data.size()).ok());
  EXPECT_EQ(MustGet("hinted"), data);
}

TEST_P(ObjectStoreTest, RangeReadsAndSink) {
  std::string data = RandomBytes(1 << 20, 11);
  ASSERT_TRUE(Put("ranged", data).ok());
  ReadOptions ro;
  ro.offset = 1000;
  ro.length = 300'000;
  std::string got;
  ASSERT_TRUE(store_->Get("ranged", [&](std::string_view c) { got.append(c); return Status::Ok(); }, ro).ok());
  EXPECT_EQ(got, data.substr(1000, 300'000));
  // Open-ended range, and a reader pulled in small pieces.
  ro.offset = data.size() - 4097;
  ro.length.reset();
  auto r = store_->NewReader("ranged", ro);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->size(), data.size());
  std::string tail;
  char buf[1000];
  for (;;) {
    auto n = (*r)->Read(buf);
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
    tail.append(buf, *n);
  }
  EXPECT_EQ(tail, data.substr(data.size() - 4097));
  // A sink error stops the transfer and comes back.
  Status st = store_->Get("ranged", [](std::string_view) { return Cancelled("enough"); });
  EXPECT_EQ(st.code(), Code::kCancelled);
}

TEST_P(ObjectStoreTest, OverwriteReplacesWholeObject) {
  std::string big = RandomBytes(3 * kTestPartSize, 12);
  ASSERT_TRUE(Put("k", big).ok());
  ASSERT_TRUE(Put("k", "short").ok());
  EXPECT_EQ(MustGet("k"), "short");
  auto info = store_->Head("k");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 5u);
}

TEST_P(ObjectStoreTest, MissingObjectIsNotFound) {
  EXPECT_EQ(store_->Head("nope").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->NewReader("nope").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->GetBytes("dir/nope").status().code(), Code::kNotFound);
  auto st = store_->Head("nope").status();
  EXPECT_NE(st.message().find("nope"), std::string::npos) << st.message();
}

TEST_P(ObjectStoreTest, InvalidKeysAreRejected) {
  for (std::string key : {std::string("../escape"), std::string("/abs"), std::string("a/../b"),
                          std::string("a/./b"), std::string("a\0b", 3), std::string(""),
                          std::string("dir/"), std::string("a//b")}) {
    EXPECT_EQ(store_->NewWriter(key).status().code(), Code::kInvalidArgument) << key;
    EXPECT_EQ(store_->Head(key).status().code(), Code::kInvalidArgument) << key;
  }
  EXPECT_EQ(store_->List("../").status().code(), Code::kInvalidArgument);
}

TEST_P(ObjectStoreTest, ListWithPrefixAndPaging) {
  std::vector<std::string> want;
  for (int i = 0; i < 23; ++i) {
    std::string key = "ckpt/" + std::string(i % 2 ? "a" : "b") + "/img-" + std::to_string(100 + i);
    ASSERT_TRUE(store_->PutBytes(key, std::string(i, 'x')).ok());
    want.push_back(key);
  }
  ASSERT_TRUE(store_->PutBytes("ckpt-other/x", "1").ok());
  ASSERT_TRUE(store_->PutBytes("other/y", "2").ok());
  std::sort(want.begin(), want.end());
  int pages = 0;
  EXPECT_EQ(ListAll("ckpt/", 5, &pages), want);
  EXPECT_EQ(pages, 5);
  // Prefixes that end inside a path segment.
  std::vector<std::string> a_keys;
  for (auto& k : want)
    if (k.starts_with("ckpt/a/img-11")) a_keys.push_back(k);
  EXPECT_EQ(ListAll("ckpt/a/img-11", 2), a_keys);
  auto ck = ListAll("ckpt", 1000);
  EXPECT_EQ(ck.size(), want.size() + 1);
  EXPECT_EQ(ListAll("nothing/", 10), std::vector<std::string>{});
  // Sizes come back too.
  auto page = store_->List("ckpt/b/img-104");
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].size, 4u);
}

TEST_P(ObjectStoreTest, DeleteAndDeleteMissing) {
  ASSERT_TRUE(store_->PutBytes("d/x", "1").ok());
  ASSERT_TRUE(store_->Delete("d/x").ok());
  EXPECT_EQ(store_->Head("d/x").status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->Delete("d/x").ok());  // idempotent
  EXPECT_TRUE(store_->Delete("never/was").ok());
}

TEST_P(ObjectStoreTest, DeletePrefix) {
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(store_->PutBytes("job1/part-" + std::to_string(i), "z").ok());
  ASSERT_TRUE(store_->PutBytes("job1/deep/a/b", "z").ok());
  ASSERT_TRUE(store_->PutBytes("job10/keep", "k").ok());
  ASSERT_TRUE(store_->DeletePrefix("job1/").ok());
  EXPECT_EQ(ListAll("job1/", 100), std::vector<std::string>{});
  EXPECT_EQ(MustGet("job10/keep"), "k");
  EXPECT_EQ(store_->DeletePrefix("").code(), Code::kInvalidArgument);
  EXPECT_TRUE(store_->DeletePrefix("absent/").ok());
}

TEST_P(ObjectStoreTest, AbortLeavesNothingVisible) {
  ASSERT_TRUE(store_->PutBytes("keep/old", "old").ok());
  {
    auto w = store_->NewWriter("keep/old");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(RandomBytes(3 * kTestPartSize + 1, 1)).ok());
    (*w)->Abort();
  }
  EXPECT_EQ(MustGet("keep/old"), "old");
  {
    // Destroyed without Commit: same as Abort.
    auto w = store_->NewWriter("never/committed");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(RandomBytes(2 * kTestPartSize + 7, 2)).ok());
  }
  {
    auto w = store_->NewWriter("small/aborted");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("tiny").ok());
    (*w)->Abort();
    EXPECT_FALSE((*w)->Commit().ok());
  }
  EXPECT_EQ(store_->Head("never/committed").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Head("small/aborted").status().code(), Code::kNotFound);
  EXPECT_EQ(ListAll("", 1000), std::vector<std::string>{"keep/old"});
  if (server_) {
    EXPECT_EQ(server_->PendingUploads(), std::vector<std::string>{});
  }
  if (!dir_.empty()) {
    // No temporary files left behind either.
    size_t files = 0;
    for (auto& e : fs::recursive_directory_iterator(dir_ + "/store"))
      if (e.is_regular_file()) ++files;
    EXPECT_EQ(files, 1u);
  }
}

TEST_P(ObjectStoreTest, ConcurrentWritersOfDistinctKeys) {
  constexpr int kThreads = 6;
  std::vector<std::thread> threads;
  std::vector<Status> results(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string data = RandomBytes(kTestPartSize * 2 + 1000 * t, 100 + t);
      results[t] = Put("conc/obj-" + std::to_string(t), data, 50'000);
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_TRUE(results[t].ok()) << results[t].ToString();
    EXPECT_EQ(Sha256::HexOf(MustGet("conc/obj-" + std::to_string(t))),
              Sha256::HexOf(RandomBytes(kTestPartSize * 2 + 1000 * t, 100 + t)));
  }
  EXPECT_EQ(ListAll("conc/", 4).size(), static_cast<size_t>(kThreads));
}

TEST_P(ObjectStoreTest, CompressedChecksummedRoundTrip) {
  // The pipeline's shape: EncodingWriter -> store -> DecodingReader.
  std::string data;
  for (int i = 0; i < 200'000; ++i) data += "page " + std::to_string(i % 977) + "\n";
  data += RandomBytes(300'000, 3);
  for (Codec c : {Codec::kZstd, Codec::kLz4, Codec::kNone}) {
    std::string key = "enc/" + std::string(CodecName(c));
    auto inner = store_->NewWriter(key);
    ASSERT_TRUE(inner.ok());
    CodecOptions co;
    co.codec = c;
    co.threads = 2;
    auto w = EncodingWriter::Create(std::move(inner).value(), co);
    ASSERT_TRUE(w.ok());
    for (size_t off = 0; off < data.size(); off += 123'457) ASSERT_TRUE((*w)->Write(data.substr(off, 123'457)).ok());
    ASSERT_TRUE((*w)->Commit().ok());
    EXPECT_EQ((*w)->digest_hex(), Blake3::HexOf(data));
    if (c != Codec::kNone) {
      EXPECT_LT((*w)->compressed_bytes(), data.size());
    }
    auto r = store_->NewReader(key);
    ASSERT_TRUE(r.ok());
    DecodingReader dr(std::move(r).value());
    std::string got;
    std::vector<char> buf(70'000);
    for (;;) {
      auto n = dr.Read(buf);
      ASSERT_TRUE(n.ok()) << n.status().ToString();
      if (*n == 0) break;
      got.append(buf.data(), *n);
    }
    EXPECT_EQ(got.size(), data.size());
    EXPECT_EQ(dr.digest_hex(), Blake3::HexOf(data)) << CodecName(c);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, ObjectStoreTest, ::testing::Values("local", "s3"),
                         [](const auto& tp) { return tp.param; });

}  // namespace
}  // namespace ckptd
