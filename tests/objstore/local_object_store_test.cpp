// Local-backend specifics: a full disk (small tmpfs), path safety, and the
// writer at edge sizes on real filesystems.
#include <gtest/gtest.h>

#include <sys/mount.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

#include "store/local_object_store.h"

namespace ckptd {
namespace {

namespace fs = std::filesystem;

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class TmpfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ckptd-tmpfs-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=2m") != 0) {
      int err = errno;
      skip_ = "mount -t tmpfs not permitted here: " + std::string(std::strerror(err));
      return;
    }
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string dir_, skip_;
  bool mounted_ = false;
};

TEST_F(TmpfsTest, DiskFullIsAClearErrorAndLeavesNothing) {
  if (!mounted_) GTEST_SKIP() << skip_;
  auto store = LocalObjectStore::Open(dir_ + "/objects");
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->PutBytes("ckpt/old.img", "previous").ok());
  auto w = (*store)->NewWriter("ckpt/old.img");
  ASSERT_TRUE(w.ok());
  std::string chunk(256 << 10, 'p');
  Status st;
  for (int i = 0; i < 16 && st.ok(); ++i) st = (*w)->Write(chunk);  // 4 MiB into 2 MiB
  if (st.ok()) st = (*w)->Commit();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kIOError);
  EXPECT_NE(Lower(st.message()).find("no space left on device"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("ckpt/old.img"), std::string::npos) << st.message();
  // The previous object is intact and no temporary file remains.
  auto old = (*store)->GetBytes("ckpt/old.img");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(*old, "previous");
  std::vector<std::string> files;
  for (auto& e : fs::recursive_directory_iterator(dir_))
    if (e.is_regular_file()) files.push_back(e.path().filename());
  EXPECT_EQ(files, std::vector<std::string>{"old.img"});
  // A new key that does not fit is not visible either, and space is back.
  auto w2 = (*store)->NewWriter("ckpt/new.img");
  ASSERT_TRUE(w2.ok());
  st = Status();
  for (int i = 0; i < 16 && st.ok(); ++i) st = (*w2)->Write(chunk);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ((*store)->Head("ckpt/new.img").status().code(), Code::kNotFound);
  EXPECT_TRUE((*store)->PutBytes("ckpt/after", std::string(1 << 20, 'a')).ok());
}

TEST(LocalObjectStoreTest, KeysStayUnderRoot) {
  char tmpl[] = "/tmp/ckptd-local-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  auto store = LocalObjectStore::Open(dir + "/root");
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->PutBytes("../outside", "x").code(), Code::kInvalidArgument);
  EXPECT_EQ((*store)->PutBytes("a/../../outside", "x").code(), Code::kInvalidArgument);
  EXPECT_EQ((*store)->PutBytes("/etc/passwd", "x").code(), Code::kInvalidArgument);
  EXPECT_EQ((*store)->PutBytes("x/.ckptd-tmp-y", "x").code(), Code::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir + "/outside"));
  EXPECT_EQ(LocalObjectStore::Open("relative").status().code(), Code::kInvalidArgument);
  // Files are private: checkpoint images hold process memory.
  ASSERT_TRUE((*store)->PutBytes("p", "x").ok());
  EXPECT_EQ(fs::status(dir + "/root/p").permissions() & fs::perms::others_read, fs::perms::none);
  // Delete tidies empty directories but never the root.
  ASSERT_TRUE((*store)->PutBytes("deep/er/k", "x").ok());
  ASSERT_TRUE((*store)->Delete("deep/er/k").ok());
  EXPECT_FALSE(fs::exists(dir + "/root/deep"));
  EXPECT_TRUE(fs::exists(dir + "/root"));
  fs::remove_all(dir);
}

// ---------------------------------------------------------------- write paths

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&s[i], &v, std::min<size_t>(8, n - i));
  }
  return s;
}

// A store in a fresh directory under base; real files on base's filesystem.
class WriterTest : public ::testing::Test {
 protected:
  void Open(const std::string& base) {
    std::string tmpl = base + "/ckptd-writer-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << base << ": " << std::strerror(errno);
    dir_ = tmpl;
    auto s = LocalObjectStore::Open(dir_ + "/store");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  // Writes data in Write() calls of uneven sizes (or in one call), commits,
  // and checks size, content and mode of what is stored.
  void RoundTrip(const std::string& key, const std::string& data, bool one_write = false) {
    SCOPED_TRACE(key);
    static constexpr size_t kCalls[] = {1, 4095, 100'003, 4097, 1 << 20, (3 << 20) + 5, 77, 12'345'679};
    auto w = store_->NewWriter(key);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    size_t off = 0;
    for (size_t i = 0; off < data.size(); ++i) {
      size_t n = one_write ? data.size() : std::min(kCalls[i % std::size(kCalls)], data.size() - off);
      Status st = (*w)->Write(std::string_view(data).substr(off, n));
      ASSERT_TRUE(st.ok()) << st.ToString();
      off += n;
      ASSERT_EQ((*w)->bytes_written(), off);
    }
    Status st = (*w)->Commit();
    ASSERT_TRUE(st.ok()) << st.ToString();
    auto info = store_->Head(key);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(info->size, data.size());
    auto back = store_->GetBytes(key);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_TRUE(*back == data) << "content differs (" << back->size() << " bytes read)";
    EXPECT_EQ(fs::status(dir_ + "/store/" + key).permissions(), fs::perms::owner_read | fs::perms::owner_write);
  }

  std::vector<std::string> Files() {
    std::vector<std::string> files;
    for (auto& e : fs::recursive_directory_iterator(dir_ + "/store"))
      if (e.is_regular_file()) files.push_back(e.path().filename());
    std::sort(files.begin(), files.end());
    return files;
  }

  std::string dir_;
  std::unique_ptr<LocalObjectStore> store_;
};

constexpr size_t kMiB = 1 << 20;

// Sizes around block, write()-call (1 MiB) and writeback-window (16 MiB) edges.
std::vector<size_t> EdgeSizes() {
  return {0, 1, 4095, 4096, 4097, kMiB - 1, kMiB, kMiB + 1, 2 * kMiB + 1,
          16 * kMiB - 1, 16 * kMiB + 1, 37 * kMiB + 123};
}

// On the root filesystem (ext4 on our nodes; /tmp may be tmpfs).
TEST_F(WriterTest, EdgeSizesRoundTripOnDisk) {
  ASSERT_NO_FATAL_FAILURE(Open("/var/tmp"));
  uint64_t seed = 1;
  for (size_t n : EdgeSizes()) RoundTrip("sizes/" + std::to_string(n), RandomBytes(n, seed++));
  RoundTrip("sizes/one-write", RandomBytes(37 * kMiB + 123, seed++), /*one_write=*/true);
  EXPECT_EQ(Files().size(), EdgeSizes().size() + 1);  // no temporary file left
}

// tmpfs: a different page cache (shmem), same bytes back.
TEST_F(WriterTest, LargeObjectOnShm) {
  if (!fs::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm";
  ASSERT_NO_FATAL_FAILURE(Open("/dev/shm"));
  RoundTrip("large", RandomBytes(37 * kMiB + 123, 4));
  RoundTrip("one-write", RandomBytes(9 * kMiB + 1, 5), /*one_write=*/true);
}

// A failed write part way through a large object (written in calls larger
// than one write()) leaves no temporary file and names the key.
TEST_F(TmpfsTest, DiskFullOnLargeObject) {
  if (!mounted_) GTEST_SKIP() << skip_;
  ASSERT_EQ(::umount2(dir_.c_str(), MNT_DETACH), 0);
  ASSERT_EQ(::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=20m"), 0);
  auto store = LocalObjectStore::Open(dir_ + "/objects");
  ASSERT_TRUE(store.ok());
  auto w = (*store)->NewWriter("ckpt/pages-1.img");
  ASSERT_TRUE(w.ok());
  std::string chunk = RandomBytes((3 << 20) + 7, 9);
  Status st;
  for (int i = 0; i < 14 && st.ok(); ++i) st = (*w)->Write(chunk);  // 42 MiB into 20 MiB
  if (st.ok()) st = (*w)->Commit();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(Lower(st.message()).find("no space left on device"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("ckpt/pages-1.img"), std::string::npos) << st.message();
  size_t files = 0;
  for (auto& e : fs::recursive_directory_iterator(dir_))
    if (e.is_regular_file()) ++files;
  EXPECT_EQ(files, 0u);
}

}  // namespace
}  // namespace ckptd
