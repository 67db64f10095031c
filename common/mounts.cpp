#include "common/mounts.h"

#include <sys/mount.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace ckptd {

namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::vector<MountEntry> ReadMounts() {
  std::vector<MountEntry> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    std::istringstream ls(line);
    std::string id, parent, devs, root, point;
    ls >> id >> parent >> devs >> root >> point;
    size_t sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream rest(line.substr(sep + 3));
    MountEntry e;
    std::string source;
    rest >> e.fstype >> source >> e.super_options;
    e.mount_point = Unescape(point);
    out.push_back(std::move(e));
  }
  return out;
}

int UnmountAllUnder(const std::filesystem::path& dir) {
  std::string prefix = dir.lexically_normal().string();
  if (prefix.empty()) return 0;
  if (prefix.back() != '/') prefix += '/';
  std::vector<std::string> under;
  for (const auto& m : ReadMounts())
    if (m.mount_point.size() > prefix.size() && m.mount_point.compare(0, prefix.size(), prefix) == 0)
      under.push_back(m.mount_point);
  // Deepest first, each once.
  std::sort(under.begin(), under.end(),
            [](const auto& a, const auto& b) { return a.size() != b.size() ? a.size() > b.size() : a < b; });
  under.erase(std::unique(under.begin(), under.end()), under.end());
  int n = 0;
  for (const auto& p : under)
    if (umount2(p.c_str(), MNT_DETACH) == 0) ++n;
  return n;
}

}  // namespace ckptd
