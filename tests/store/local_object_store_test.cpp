// Local-backend specifics: a full disk (small tmpfs), path safety, and the
// writer at edge sizes on real filesystems.
#include <gtest/gtest.h>

#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "store/local_object_store.h"
#include "tests/testing/test_util.h"

namespace ckptd {
namespace {

namespace fs = std::filesystem;
using testing::RandomBytes;
using testing::TempDir;

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class TmpfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=2m") != 0) {
      int err = errno;
      skip_ = "mount -t tmpfs not permitted here: " + std::string(std::strerror(err));
      return;
    }
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  TempDir tmp_{"ckptd-tmpfs"};
  const std::string dir_ = tmp_.path().string();
  std::string skip_;
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

// What a writer killed with its process leaves (its hidden temp file) is
// removed under the prefix only, symlinks are never followed, committed
// objects stay, and directories left empty go.
TEST(LocalObjectStoreTest, RemoveIncompleteTakesOnlyTempFiles) {
  testing::TempDir dir;
  auto store = LocalObjectStore::Open(dir.File("objects"));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->PutBytes("a/keep.img", "kept").ok());
  auto w = (*store)->NewWriter("a/sub/pages.img");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write("partial").ok());
  std::vector<fs::path> temps;
  for (const auto& e : fs::recursive_directory_iterator(dir.File("objects/a")))
    if (e.path().filename().string().starts_with(".ckptd-tmp-")) temps.push_back(e.path());
  ASSERT_EQ(temps.size(), 1u);
  // A crash: the writer never commits or aborts (release it without its destructor's cleanup).
  fs::create_directories(dir.File("objects/b"));
  std::ofstream(dir.File("objects/b/.ckptd-tmp-other.1")) << "x";
  fs::create_directories(dir.File("outside"));
  std::ofstream(dir.File("outside/.ckptd-tmp-victim")) << "not ours";
  fs::create_directory_symlink(dir.File("outside"), dir.File("objects/a/link"));

  ASSERT_TRUE((*store)->RemoveIncomplete("a/").ok());
  EXPECT_FALSE(fs::exists(temps[0]));
  EXPECT_FALSE(fs::exists(dir.File("objects/a/sub"))) << "an emptied directory stays";
  EXPECT_EQ((*store)->GetBytes("a/keep.img").value(), "kept");
  EXPECT_TRUE(fs::exists(dir.File("outside/.ckptd-tmp-victim"))) << "followed a symlink out of the root";
  EXPECT_TRUE(fs::exists(dir.File("objects/b/.ckptd-tmp-other.1"))) << "went outside the prefix";
  EXPECT_TRUE((*store)->RemoveIncomplete("missing/").ok());
  EXPECT_EQ((*store)->RemoveIncomplete("a").code(), Code::kInvalidArgument);
  ASSERT_TRUE((*store)->RemoveIncomplete("").ok());
  EXPECT_FALSE(fs::exists(dir.File("objects/b/.ckptd-tmp-other.1")));
  (*w)->Abort();
}

// No symlink under the root is followed, whether it stands for an object or
// for a directory on the way to one: reads, heads, lists and deletes act as
// if it were not there (a delete removes the link, not what it points to).
TEST(LocalObjectStoreTest, SymlinksUnderTheRootAreNeverFollowed) {
  testing::TempDir dir;
  fs::create_directories(dir.File("outside/sub"));
  std::ofstream(dir.File("outside/secret")) << "not yours";
  std::ofstream(dir.File("outside/sub/pages-1.img")) << "not yours either";
  auto store = LocalObjectStore::Open(dir.File("objects"));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->PutBytes("ckpt/real.img", "ours").ok());
  fs::create_symlink(dir.File("outside/secret"), dir.File("objects/ckpt/pages-1.img"));
  fs::create_directory_symlink(dir.File("outside"), dir.File("objects/linked"));

  EXPECT_EQ((*store)->NewReader("ckpt/pages-1.img").status().code(), Code::kNotFound);
  EXPECT_EQ((*store)->Head("ckpt/pages-1.img").status().code(), Code::kNotFound);
  EXPECT_EQ((*store)->NewReader("linked/secret").status().code(), Code::kNotFound);
  EXPECT_EQ((*store)->Head("linked/sub/pages-1.img").status().code(), Code::kNotFound);
  auto all = (*store)->List("");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->objects.size(), 1u);
  EXPECT_EQ(all->objects[0].key, "ckpt/real.img");
  EXPECT_TRUE((*store)->List("linked/")->objects.empty());
  EXPECT_TRUE((*store)->DeletePrefix("linked/").ok());
  EXPECT_TRUE((*store)->Delete("linked/secret").ok());
  EXPECT_TRUE((*store)->Delete("ckpt/pages-1.img").ok());
  EXPECT_TRUE(fs::exists(dir.File("outside/secret")));
  EXPECT_TRUE(fs::exists(dir.File("outside/sub/pages-1.img")));
  // A writer does not write through a link either.
  EXPECT_FALSE((*store)->PutBytes("linked/new.img", "x").ok());
  EXPECT_FALSE(fs::exists(dir.File("outside/new.img")));
}

// A finished file on the root's filesystem becomes an object without a
// copy: the object is the same inode, made private, and the file keeps its
// own name; an existing object is replaced.
TEST(LocalObjectStoreTest, LinkFileSharesTheBytes) {
  TempDir tmp("ckptd-link");
  auto store = LocalObjectStore::Open(tmp.File("objects"));
  ASSERT_TRUE(store.ok());
  fs::create_directories(tmp.File("staging"));
  const std::string bytes = RandomBytes(3 << 20, 7);
  std::ofstream(tmp.File("staging/pages-1.img"), std::ios::binary) << bytes;
  fs::permissions(tmp.File("staging/pages-1.img"), fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
  ASSERT_TRUE((*store)->PutBytes("ckpt/pages-1.img", "an older object").ok());

  EXPECT_TRUE((*store)->CanLinkFrom(tmp.File("staging")));
  ASSERT_TRUE((*store)->LinkFile("ckpt/pages-1.img", tmp.File("staging/pages-1.img")).ok());
  EXPECT_EQ(*(*store)->GetBytes("ckpt/pages-1.img"), bytes);
  struct stat obj {}, staged {};
  ASSERT_EQ(::stat(tmp.File("objects/ckpt/pages-1.img").c_str(), &obj), 0);
  ASSERT_EQ(::stat(tmp.File("staging/pages-1.img").c_str(), &staged), 0);
  EXPECT_EQ(obj.st_ino, staged.st_ino);
  EXPECT_EQ(obj.st_nlink, 2u);
  EXPECT_EQ(obj.st_mode & 0777, 0600u);
  // No temporary name stays behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.File("objects/ckpt")), fs::directory_iterator()), 1);
}

// What cannot be linked is refused, and nothing appears under the key: a
// symlink (never followed), a directory, a bad key, another filesystem.
TEST(LocalObjectStoreTest, LinkFileRefusals) {
  TempDir tmp("ckptd-link");
  auto store = LocalObjectStore::Open(tmp.File("objects"));
  ASSERT_TRUE(store.ok());
  std::ofstream(tmp.File("secret")) << "not an image";
  fs::create_symlink(tmp.File("secret"), tmp.File("link.img"));
  EXPECT_FALSE((*store)->LinkFile("ckpt/a.img", tmp.File("link.img")).ok());
  EXPECT_FALSE((*store)->LinkFile("ckpt/b.img", tmp.File("objects")).ok());
  EXPECT_FALSE((*store)->LinkFile("ckpt/c.img", tmp.File("missing.img")).ok());
  EXPECT_EQ((*store)->LinkFile("../outside.img", tmp.File("secret")).code(), Code::kInvalidArgument);
  EXPECT_FALSE(fs::exists(tmp.File("outside.img")));
  EXPECT_TRUE((*store)->List("")->objects.empty());
  EXPECT_FALSE((*store)->CanLinkFrom(tmp.File("missing")));
  if (fs::is_directory("/dev/shm")) {
    TempDir shm("ckptd-link", "/dev/shm");
    std::ofstream(shm.File("pages-1.img")) << "elsewhere";
    EXPECT_FALSE((*store)->CanLinkFrom(shm.path()));
    EXPECT_FALSE((*store)->LinkFile("ckpt/d.img", shm.File("pages-1.img")).ok());
    EXPECT_TRUE((*store)->List("")->objects.empty());
  }
}

// The reverse: an object appears as a new file sharing its inode; a
// symlink under the root is not followed, an existing file not replaced.
TEST(LocalObjectStoreTest, LinkObjectAsSharesTheBytes) {
  TempDir tmp("ckptd-link");
  auto store = LocalObjectStore::Open(tmp.File("objects"));
  ASSERT_TRUE(store.ok());
  fs::create_directories(tmp.File("staging"));
  ASSERT_TRUE((*store)->PutBytes("ckpt/pages-1.img", "page bytes").ok());
  ASSERT_TRUE((*store)->LinkObjectAs("ckpt/pages-1.img", tmp.File("staging/pages-1.img")).ok());
  struct stat obj {};
  struct stat linked {};
  ASSERT_EQ(::stat(tmp.File("objects/ckpt/pages-1.img").c_str(), &obj), 0);
  ASSERT_EQ(::stat(tmp.File("staging/pages-1.img").c_str(), &linked), 0);
  EXPECT_EQ(obj.st_ino, linked.st_ino);
  EXPECT_EQ((*store)->LinkObjectAs("ckpt/pages-1.img", tmp.File("staging/pages-1.img")).code(),
            Code::kAlreadyExists);
  EXPECT_EQ((*store)->LinkObjectAs("ckpt/none.img", tmp.File("staging/none.img")).code(), Code::kNotFound);
  EXPECT_EQ((*store)->LinkObjectAs("../x", tmp.File("staging/x")).code(), Code::kInvalidArgument);
  std::ofstream(tmp.File("secret")) << "not yours";
  fs::create_symlink(tmp.File("secret"), tmp.File("objects/ckpt/pages-2.img"));
  EXPECT_EQ((*store)->LinkObjectAs("ckpt/pages-2.img", tmp.File("staging/pages-2.img")).code(), Code::kNotFound);
  EXPECT_FALSE(fs::exists(tmp.File("staging/pages-2.img")));
}

TEST(LocalObjectStoreTest, KeysStayUnderRoot) {
  TempDir tmp("ckptd-local");
  const std::string dir = tmp.path().string();
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
}

// ---------------------------------------------------------------- write paths

// A store in a fresh directory under base; real files on base's filesystem.
class WriterTest : public ::testing::Test {
 protected:
  void Open(const std::string& base) {
    ASSERT_TRUE(fs::is_directory(base)) << base;
    MakeDir(base, "ckptd-writer");
    auto s = LocalObjectStore::Open(dir_ + "/store");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void TearDown() override {
    store_.reset();
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    tmp_.reset();
  }
  void MakeDir(const std::string& base, const std::string& tag) {
    tmp_ = std::make_unique<TempDir>(tag, base);
    dir_ = tmp_->path().string();
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

  std::unique_ptr<TempDir> tmp_;
  std::string dir_;
  bool mounted_ = false;
  std::unique_ptr<LocalObjectStore> store_;
};

constexpr size_t kMiB = 1 << 20;
constexpr size_t kAfter = LocalObjectStore::kDirectAfter;
constexpr size_t kBuf = LocalObjectStore::kDirectBuffer;
constexpr size_t kRing = kBuf * LocalObjectStore::kDirectBuffers;

// Sizes around block, write()-call (1 MiB), writeback-window (16 MiB),
// O_DIRECT-threshold and direct-buffer edges, and one that wraps the ring
// of direct buffers twice.
std::vector<size_t> EdgeSizes() {
  return {0, 1, 4095, 4096, 4097, kMiB - 1, kMiB, kMiB + 1, 2 * kMiB + 1,
          kAfter - 1, kAfter, kAfter + 1, kAfter + 4095, kAfter + 4096, kAfter + kBuf,
          kAfter + kBuf + 1, 16 * kMiB - 1, 16 * kMiB + 1, kAfter + 2 * kRing + 4097, 37 * kMiB + 123};
}

// On the root filesystem (ext4 on our nodes; /tmp may be tmpfs).
TEST_F(WriterTest, EdgeSizesRoundTripOnDisk) {
  ASSERT_NO_FATAL_FAILURE(Open("/var/tmp"));
  uint64_t seed = 1;
  for (size_t n : EdgeSizes()) RoundTrip("sizes/" + std::to_string(n), RandomBytes(n, seed++));
  RoundTrip("sizes/one-write", RandomBytes(37 * kMiB + 123, seed++), /*one_write=*/true);
  EXPECT_EQ(Files().size(), EdgeSizes().size() + 1);  // no temporary file left
}

// Large objects go to disk with O_DIRECT, small ones never do.
TEST_F(WriterTest, DirectIoOnlyForLargeObjects) {
  ASSERT_NO_FATAL_FAILURE(Open("/var/tmp"));
  const auto& io = store_->io_counters();
  RoundTrip("small", RandomBytes(64 << 10, 1));
  RoundTrip("at-threshold", RandomBytes(kAfter, 2));
  EXPECT_EQ(io.direct_bytes.load(), 0u);
  RoundTrip("large", RandomBytes(37 * kMiB + 123, 3));
  ASSERT_EQ(io.direct_refused.load(), 0u) << dir_ << ": the filesystem refuses O_DIRECT";
  // Everything past the threshold but the unaligned tail (123 bytes).
  EXPECT_EQ(io.direct_bytes.load(), 37 * kMiB - kAfter);
  RoundTrip("one-write", RandomBytes(37 * kMiB + 123, 4), /*one_write=*/true);
  EXPECT_EQ(io.direct_bytes.load(), 2 * (37 * kMiB - kAfter));
  EXPECT_EQ(Files(), (std::vector<std::string>{"at-threshold", "large", "one-write", "small"}));
}

// Abort (or destruction) while direct writes are queued and in flight
// returns promptly and leaves nothing.
TEST_F(WriterTest, AbortDuringDirectWritesLeavesNothing) {
  ASSERT_NO_FATAL_FAILURE(Open("/var/tmp"));
  std::string data = RandomBytes(kAfter + 2 * kRing + 4097, 5);
  for (bool destroy : {false, true}) {
    SCOPED_TRACE(destroy ? "destroyed" : "aborted");
    auto w = store_->NewWriter("aborted");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(data).ok());
    auto t0 = std::chrono::steady_clock::now();
    if (destroy) {
      w->reset();
    } else {
      (*w)->Abort();
      EXPECT_FALSE((*w)->Write("x").ok());
      EXPECT_FALSE((*w)->Commit().ok());
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
    EXPECT_GT(store_->io_counters().direct_bytes.load(), 0u);
    EXPECT_TRUE(Files().empty());
    EXPECT_EQ(store_->Head("aborted").status().code(), Code::kNotFound);
  }
}

// ramfs has no direct I/O: large objects fall back to buffered writes.
TEST_F(WriterTest, FilesystemWithoutDirectIoFallsBack) {
  MakeDir("/var/tmp", "ckptd-ramfs");
  if (::mount("ramfs", dir_.c_str(), "ramfs", 0, "mode=0700") != 0)
    GTEST_SKIP() << "mount -t ramfs not permitted here: " << std::strerror(errno);
  mounted_ = true;
  auto s = LocalObjectStore::Open(dir_ + "/store");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  store_ = std::move(s).value();
  RoundTrip("large", RandomBytes(37 * kMiB + 123, 6));
  RoundTrip("one-write", RandomBytes(kAfter + kBuf + 1, 7), /*one_write=*/true);
  EXPECT_EQ(store_->io_counters().direct_bytes.load(), 0u);
  EXPECT_EQ(store_->io_counters().direct_refused.load(), 2u);
}

// tmpfs: a different page cache (shmem), same bytes back.
TEST_F(WriterTest, LargeObjectOnShm) {
  if (!fs::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm";
  ASSERT_NO_FATAL_FAILURE(Open("/dev/shm"));
  RoundTrip("large", RandomBytes(37 * kMiB + 123, 4));
  RoundTrip("one-write", RandomBytes(9 * kMiB + 1, 5), /*one_write=*/true);
}

// A failed write part way through a large object (written in calls larger
// than one write(), the bulk by the direct I/O thread: tmpfs takes O_DIRECT
// since Linux 6.6) leaves no temporary file and names the key.
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
  if ((*store)->io_counters().direct_refused.load() == 0) {
    EXPECT_GT((*store)->io_counters().direct_bytes.load(), 0u);
  }
  EXPECT_NE(Lower(st.message()).find("no space left on device"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("ckpt/pages-1.img"), std::string::npos) << st.message();
  size_t files = 0;
  for (auto& e : fs::recursive_directory_iterator(dir_))
    if (e.is_regular_file()) ++files;
  EXPECT_EQ(files, 0u);
}

}  // namespace
}  // namespace ckptd
