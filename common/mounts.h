// This process's mount table (/proc/self/mountinfo) and cleaning up mounts
// a killed tool left behind (CRIU's cgroup yard in its work dir, runc's
// criu-root bind mount).
// Thread safety: free functions; the mount table may change under them.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace ckptd {

struct MountEntry {
  std::string mount_point;    // unescaped
  std::string fstype;         // "overlay", "ext4", ...
  std::string super_options;  // "rw,lowerdir=...,upperdir=..."
};

// In mountinfo order (a later mount at the same point covers an earlier one).
std::vector<MountEntry> ReadMounts();

// Unmounts (lazily, MNT_DETACH) every mount strictly below `dir`, deepest
// first; `dir` itself stays. How many were unmounted.
int UnmountAllUnder(const std::filesystem::path& dir);

}  // namespace ckptd
