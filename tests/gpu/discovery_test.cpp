// GPU process discovery on real processes (one mapping the fake
// libcuda.so.1, one not) and on a fabricated procfs tree.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "gpu/discovery.h"
#include "tests/gpu/gpu_test_util.h"

namespace ckptd::gpu::testing {
namespace {

using DiscoveryTest = FakeCudaTest;

TEST_F(DiscoveryTest, FindsRealProcessesThatMapLibcuda) {
  // root (loads lib) -> child (does not) -> grandchild (loads lib)
  Child tree({kGpuUser, "--gpu-lib", kFakeLib, "--tree"}, 3);
  ASSERT_EQ(tree.ready_pids().size(), 3u);
  auto all = ListProcessTree(tree.pid());
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0], tree.pid());
  int child = (*all)[1], grandchild = (*all)[2];

  auto gpu = FindGpuProcesses(tree.pid());
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  ASSERT_EQ(gpu->size(), 2u);
  EXPECT_EQ((*gpu)[0].pid, tree.pid());
  EXPECT_EQ((*gpu)[1].pid, grandchild);
  EXPECT_NE((*gpu)[1].pid, child);
  ASSERT_FALSE((*gpu)[0].evidence.empty());
  EXPECT_NE((*gpu)[0].evidence[0].find("libcuda.so.1"), std::string::npos) << (*gpu)[0].evidence[0];
}

TEST_F(DiscoveryTest, ProcessWithoutLibcudaIsNotAGpuProcess) {
  Child plain({kGpuUser});
  ASSERT_GT(plain.pid(), 0);
  auto gpu = FindGpuProcesses(plain.pid());
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  EXPECT_TRUE(gpu->empty());
  auto all = ListProcessTree(plain.pid());
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, std::vector<int>{plain.pid()});
}

TEST_F(DiscoveryTest, FakeProcTree) {
  namespace fs = std::filesystem;
  fs::path root = dir_ + "/proc";
  auto write = [&](const std::string& rel, const std::string& text) {
    fs::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << text;
  };
  write("100/task/100/children", "101 102 ");
  write("100/task/105/children", "103");  // a second thread's child
  write("100/maps", "55d0-55d1 r-xp 00000000 08:01 12 /usr/bin/python3\n");
  write("101/task/101/children", "");
  write("101/maps", "7f00-7f01 rw-s 00000000 00:05 7 /dev/nvidiactl\n");
  write("102/task/102/children", "104");
  write("102/maps", "7f00-7f01 r-xp 00000000 08:01 9 /usr/lib/libc.so.6\n");
  write("103/task/103/children", "");
  write("103/maps", "7f00-7f01 r-xp 00000000 08:01 9 /usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06\n");
  // 104 exited during the walk: listed as a child, no directory.
  DiscoveryOptions opts;
  opts.proc_root = root.string();
  auto all = ListProcessTree(100, opts);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(*all, (std::vector<int>{100, 101, 102, 103, 104}));
  auto gpu = FindGpuProcesses(100, opts);
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  ASSERT_EQ(gpu->size(), 2u);
  EXPECT_EQ((*gpu)[0].pid, 101);
  EXPECT_EQ((*gpu)[0].evidence, std::vector<std::string>{"maps:/dev/nvidiactl"});
  EXPECT_EQ((*gpu)[1].pid, 103);
}

TEST_F(DiscoveryTest, MissingRootIsNotFound) {
  DiscoveryOptions opts;
  opts.proc_root = dir_;
  auto all = ListProcessTree(4242, opts);
  EXPECT_EQ(all.status().code(), Code::kNotFound);
}

TEST(GpuPathTest, Matches) {
  EXPECT_TRUE(IsGpuPath("/dev/nvidia0"));
  EXPECT_TRUE(IsGpuPath("/dev/nvidia-uvm"));
  EXPECT_TRUE(IsGpuPath("/usr/lib/x86_64-linux-gnu/libcuda.so.1"));
  EXPECT_TRUE(IsGpuPath("/tmp/x/libcuda.so.1 (deleted)"));
  EXPECT_FALSE(IsGpuPath("/usr/lib/libcudart.so.12"));
  EXPECT_FALSE(IsGpuPath("/dev/null"));
  EXPECT_FALSE(IsGpuPath("/home/nvidia/app"));
}

}  // namespace
}  // namespace ckptd::gpu::testing
