#include "common/crash_point.h"

#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace ckptd {

namespace {

std::vector<std::string> Split(const char* env) {
  std::vector<std::string> out;
  const char* v = std::getenv(env);
  if (!v) return out;
  std::string s(v);
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

struct Armed {
  std::vector<std::string> crash = Split("CKPTD_CRASH_AT");
  std::vector<std::string> fail = Split("CKPTD_FAIL_AT");
};

const Armed& Points() {
  static const Armed armed;
  return armed;
}

bool Contains(const std::vector<std::string>& v, std::string_view point) {
  for (const auto& p : v)
    if (p == point) return true;
  return false;
}

}  // namespace

void CrashPoint(std::string_view point) {
  if (!Contains(Points().crash, point)) return;
  std::string line = fmt::format("ckptd: crash point {} reached: exiting\n", point);
  ssize_t n = ::write(2, line.data(), line.size());
  (void)n;
  ::_exit(kCrashExitCode);
}

Status FailPoint(std::string_view point) {
  if (!Contains(Points().fail, point)) return Status::Ok();
  return Internal(fmt::format("failpoint {}", point));
}

std::string ArmedFailpoints() {
  std::string out;
  for (const auto& p : Points().crash) out += (out.empty() ? "crash at " : ", crash at ") + p;
  for (const auto& p : Points().fail) out += (out.empty() ? "fail at " : ", fail at ") + p;
  return out;
}

}  // namespace ckptd
