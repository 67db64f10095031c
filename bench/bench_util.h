// Small helpers the benchmarks share.
#pragma once

#include <errno.h>  // program_invocation_short_name

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace ckptd::bench {

// Seconds since `t` on the monotonic clock.
inline double Secs(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Bytes of the regular files under `d`.
inline uint64_t DirBytes(const std::filesystem::path& d) {
  uint64_t n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(d, ec))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

// "<program>: <what>" on stderr, exit 1.
[[noreturn]] inline void Die(const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, what.c_str());
  std::exit(1);
}

}  // namespace ckptd::bench
