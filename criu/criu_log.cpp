#include "criu/criu_log.h"

#include <algorithm>
#include <deque>
#include <fstream>
#include <vector>

#include "common/subprocess.h"

namespace ckptd::criu {

namespace {

constexpr size_t kMaxLine = 400;
constexpr size_t kLastLines = 3;

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

// A log line without CRIU's "(ss.uuuuuu) " timestamp and a restored task's
// "<pid>: " prefix (some lines, from pie or early on, have neither).
std::string_view Bare(std::string_view line) {
  if (line.starts_with("(")) {
    size_t close = line.find(") ");
    if (close != std::string_view::npos && close < 20) line.remove_prefix(close + 2);
  }
  // Restored tasks' lines: "(00.044311)  27983: Error ..." (pid padded).
  size_t lead = line.find_first_not_of(' ');
  if (lead != std::string_view::npos && lead < 8 && line[lead] >= '0' && line[lead] <= '9') line.remove_prefix(lead);
  size_t digits = 0;
  while (digits < line.size() && digits < 10 && line[digits] >= '0' && line[digits] <= '9') ++digits;
  if (digits > 0 && line.substr(digits).starts_with(": ")) line.remove_prefix(digits + 2);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  return line;
}

struct Kept {
  bool error;
  std::string text;
};

// Keeps the last `max` lines, dropping the oldest warning before any error.
void Keep(std::deque<Kept>* kept, Kept k, size_t max) {
  kept->push_back(std::move(k));
  if (kept->size() <= max) return;
  for (auto it = kept->begin(); it != kept->end(); ++it) {
    if (!it->error) {
      kept->erase(it);
      return;
    }
  }
  kept->pop_front();
}

}  // namespace

std::string CriuLogErrors(const std::filesystem::path& path, size_t max_lines, size_t max_bytes) {
  std::string data = ReadTail(path, max_bytes);
  std::deque<Kept> kept;
  std::deque<std::string> last;  // the log's last lines, whatever they are
  size_t pos = 0;
  while (pos < data.size()) {
    size_t end = data.find('\n', pos);
    if (end == std::string::npos) end = data.size();
    std::string_view line = Bare(std::string_view(data.data() + pos, end - pos));
    pos = end + 1;
    if (line.empty()) continue;
    std::string text(line.substr(0, kMaxLine));
    last.push_back(text);
    if (last.size() > kLastLines) last.pop_front();
    // "Error (criu/cr-dump.c:2093): Dumping FAILED.", "Warn  (criu/...)"
    if (line.starts_with("Error")) {
      Keep(&kept, {true, std::move(text)}, max_lines);
    } else if (line.starts_with("Warn")) {
      Keep(&kept, {false, std::move(text)}, max_lines);
    }
  }
  if (kept.empty()) return {};
  std::string joined;
  for (const auto& k : kept) {
    if (!joined.empty()) joined += "; ";
    joined += k.text;
  }
  // The last lines say where it stopped, unless already there.
  std::string tail;
  for (const auto& l : last) {
    if (std::any_of(kept.begin(), kept.end(), [&](const Kept& k) { return k.text == l; })) continue;
    if (!tail.empty()) tail += "; ";
    tail += l;
  }
  if (!tail.empty()) joined += " | last lines: " + tail;
  return joined;
}

std::string FileTail(const std::filesystem::path& path, size_t max_lines, size_t max_bytes) {
  return TailLines(ReadTail(path, max_bytes), max_lines);
}

}  // namespace ckptd::criu
