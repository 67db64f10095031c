// A Clock that moves only when the test says: it starts at `start_ms`;
// SetSeconds(s) puts it s seconds past the start, Advance() moves it on.
// Header-only. Thread safety: every member may be used from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "common/clock.h"

namespace ckptd::testing {

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1'000'000'000'000) : start_(start_ms), now_(start_ms) {}
  int64_t NowMillis() const override { return now_.load(); }
  void SetSeconds(int64_t s) { now_.store(start_ + s * 1000); }
  void Advance(std::chrono::milliseconds d) { now_ += d.count(); }

 private:
  const int64_t start_;
  std::atomic<int64_t> now_;
};

}  // namespace ckptd::testing
