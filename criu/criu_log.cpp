#include "criu/criu_log.h"

#include <deque>
#include <fstream>
#include <vector>

#include "common/subprocess.h"

namespace ckptd::criu {

namespace {

constexpr size_t kMaxLine = 400;

// Reads at most the last `max_bytes` of a file; drops a partial first line.
std::string ReadTail(const std::filesystem::path& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  if (size <= 0) return {};
  std::streamoff start =
      size > static_cast<std::streamoff>(max_bytes) ? size - static_cast<std::streamoff>(max_bytes) : 0;
  in.seekg(start);
  std::string data(static_cast<size_t>(size - start), '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  if (start > 0) {
    size_t nl = data.find('\n');
    data.erase(0, nl == std::string::npos ? data.size() : nl + 1);
  }
  return data;
}

}  // namespace

std::string CriuLogErrors(const std::filesystem::path& path, size_t max_lines, size_t max_bytes) {
  std::string data = ReadTail(path, max_bytes);
  std::deque<std::string> kept;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t end = data.find('\n', pos);
    if (end == std::string::npos) end = data.size();
    std::string_view line(data.data() + pos, end - pos);
    pos = end + 1;
    // CRIU lines: "(00.123456) Error (criu/cr-dump.c:2093): Dumping FAILED."
    // Some (pie, early ones) have no timestamp.
    if (line.starts_with("(")) {
      size_t close = line.find(") ");
      if (close != std::string_view::npos && close < 20) line.remove_prefix(close + 2);
    }
    if (!line.starts_with("Error")) continue;
    std::string s(line.substr(0, kMaxLine));
    kept.push_back(std::move(s));
    if (kept.size() > max_lines) kept.pop_front();
  }
  std::string joined;
  for (const auto& l : kept) {
    if (!joined.empty()) joined += "; ";
    joined += l;
  }
  return joined;
}

std::string FileTail(const std::filesystem::path& path, size_t max_lines, size_t max_bytes) {
  return TailLines(ReadTail(path, max_bytes), max_lines);
}

}  // namespace ckptd::criu
