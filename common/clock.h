// Clock seam: wall time for records, monotonic time for deadlines.
// The daemon uses SystemClock; tests may pass a fake. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace ckptd {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual int64_t NowMillis() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  static SystemClock* Default() {
    static SystemClock clock;
    return &clock;
  }
};

// Milliseconds elapsed on the monotonic clock since `start`.
inline int64_t MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
}

// RFC 3339 UTC with milliseconds, e.g. "2026-11-22T18:37:45.123Z".
std::string FormatTimestamp(int64_t millis);

}  // namespace ckptd
