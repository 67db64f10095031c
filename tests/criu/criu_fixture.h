// A test fixture with a CriuDriver for the real CRIU (skipping the test when
// CRIU is unusable), the pids to kill afterwards and a temporary directory.
#pragma once

#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "criu/criu_driver.h"
#include "criu_test_util.h"

namespace ckptd::criu::testing {

class CriuFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    DriverConfig cfg;
    cfg.criu_path = CriuPath();
    auto d = CriuDriver::Create(cfg);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    driver_ = std::move(d).value();
    ProbeResult p = driver_->Probe();
    if (!p.found || !p.version) GTEST_SKIP() << "criu unusable: " << p.error;
  }
  void TearDown() override {
    for (pid_t p : cleanup_) KillTree(p);
  }

  std::unique_ptr<CriuDriver> driver_;
  std::vector<pid_t> cleanup_;
  TempDir tmp_;
};

}  // namespace ckptd::criu::testing
