// Real containers for the runc tests: an OCI bundle whose rootfs is built
// from Debian's busybox-static (no registry), run by the real runc with
// pipes for stdio, as containerd's shim does.
// Thread safety: one test thread.
#pragma once

#include <array>
#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace ckptd::testing {

struct BundleSpec {
  std::vector<std::string> args;                           // the init's argv
  std::vector<std::pair<std::string, std::string>> binds;  // host dir -> container dir
  std::string netns;                                       // join this network namespace (a path) instead of a new one
  std::vector<std::string> env;                            // more "NAME=value" for the init
};

// A named network namespace with its loopback up (`ip netns add`), as CNI
// makes a pod's; deleted on destruction. runc treats a namespace given by
// path as external: the restore joins the one the new config names. (In a
// namespace runc creates, lo is down while CRIU restores: a TCP connection
// fails "Network is unreachable".)
class NetNs {
 public:
  explicit NetNs(std::string name);
  ~NetNs();
  NetNs(const NetNs&) = delete;
  NetNs& operator=(const NetNs&) = delete;
  std::string path() const { return "/var/run/netns/" + name_; }

 private:
  std::string name_;
};

// A busybox rootfs: /bin/busybox and its applet links, /tmp, /data, /etc
// with a file /etc/deleteme.
void MakeRootfs(const std::filesystem::path& rootfs);
// <dir>/config.json from `runc spec`: not read-only, no terminal, `args` as
// the init and the bind mounts.
void WriteConfig(const std::filesystem::path& dir, const BundleSpec& spec);
// MakeRootfs(<dir>/rootfs) and WriteConfig(dir, spec).
void MakeBundle(const std::filesystem::path& dir, const BundleSpec& spec);

// An overlay mounted at `target` (lower read-only, writes into upper, as
// containerd's snapshotter does), unmounted on destruction.
class OverlayMount {
 public:
  OverlayMount(const std::filesystem::path& lower, const std::filesystem::path& upper,
               const std::filesystem::path& work, const std::filesystem::path& target);
  ~OverlayMount();
  OverlayMount(const OverlayMount&) = delete;
  OverlayMount& operator=(const OverlayMount&) = delete;
  bool mounted() const { return mounted_; }

 private:
  std::filesystem::path target_;
  bool mounted_ = false;
};

// A shell loop counting in memory and writing the count to /data/count
// every 50 ms, after writing a marker file in its own rootfs (/tmp/marker)
// and removing /etc/deleteme.
BundleSpec CounterSpec(const std::string& host_data_dir);

std::string RuncPath();  // $CKPTD_RUNC, else "runc"

// Pipes for containers' stdio, shared by every container of a test; both
// ends stay open here until destruction, so a container never gets SIGPIPE.
class ContainerStdio {
 public:
  ContainerStdio();
  ~ContainerStdio();
  ContainerStdio(const ContainerStdio&) = delete;
  ContainerStdio& operator=(const ContainerStdio&) = delete;
  // The container's ends (stdin's read end, stdout's and stderr's write ends).
  std::array<int, 3> theirs() const { return theirs_; }

 private:
  std::array<int, 3> theirs_{-1, -1, -1}, ours_{-1, -1, -1};
};

// `runc run --detach` of a bundle under a runtime root, deleted (killed)
// on destruction, and whatever else the test restored under that root.
class RuncContainers {
 public:
  explicit RuncContainers(std::filesystem::path root) : root_(std::move(root)) {}
  ~RuncContainers();
  // Starts `id`; aborts the test on failure.
  void Run(const std::string& id, const std::filesystem::path& bundle);
  // Removes `id` (kill + delete) when the test ends.
  void Track(const std::string& id) { ids_.push_back(id); }
  // `runc state`'s status ("running", "paused", ...), "" when it has none.
  std::string Status(const std::string& id) const;
  // `runc <args...>` under this root with our CRIU; exit status and output.
  int Runc(const std::string& args, std::string* output = nullptr) const;
  const std::filesystem::path& root() const { return root_; }
  ContainerStdio& stdio() { return stdio_; }

 private:
  std::filesystem::path root_;
  std::vector<std::string> ids_;
  ContainerStdio stdio_;
};

// The integer in a file (-1 when unreadable).
long ReadCount(const std::filesystem::path& file);
// Whether the counter in `file` exceeds `above` within `within` (the
// container counts, so it runs).
bool CountsPast(const std::filesystem::path& file, long above,
                std::chrono::milliseconds within = std::chrono::seconds(15));
// "<dir's name>-<name>": a container id unique to the test owning `dir`.
// runc names a container's cgroup after its id, and tests run in parallel.
std::string UniqueId(const std::filesystem::path& dir, const std::string& name);

}  // namespace ckptd::testing
