// Local-backend specifics: a full disk (small tmpfs) and path safety.
#include <gtest/gtest.h>

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

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

}  // namespace
}  // namespace ckptd
