#include "criu/network_lock.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>
#include <tuple>

#include <fmt/format.h>
#include <nftables/libnftables.h>
#include <boost/json.hpp>

#include "common/fd.h"
#include "common/proc.h"

namespace ckptd::criu {

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

// One end of a TCP connection, addresses as raw bytes (IPv4 in the first 4).
using Addr = std::array<unsigned char, 16>;
using Conn = std::tuple<int, Addr, int, Addr, int>;  // family, src, sport, dst, dport

// A number in `s` in `base`, nothing else; nullopt otherwise.
std::optional<unsigned long> Number(std::string_view s, int base = 10) {
  unsigned long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Calls fn(pid, fd, inode) for every socket the tree's tasks hold open.
template <typename Fn>
void ForEachSocket(pid_t root, Fn fn) {
  for (int p : TreePids(root)) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fmt::format("/proc/{}/fd", p), ec)) {
      std::string target = fs::read_symlink(e.path(), ec).string();
      if (ec || !target.starts_with("socket:[") || !target.ends_with("]")) continue;
      auto inode = Number(std::string_view(target).substr(8, target.size() - 9));
      auto fd = Number(e.path().filename().string());
      if (inode && fd) fn(p, static_cast<int>(*fd), *inode);
    }
  }
}

// "0100007F:1388" (/proc/net/tcp: each 32-bit word as the host prints it).
bool ParseEnd(const std::string& s, int family, Addr* addr, int* port) {
  const size_t words = family == AF_INET ? 1 : 4;
  if (s.size() != words * 8 + 5 || s[words * 8] != ':') return false;
  addr->fill(0);
  for (size_t w = 0; w < words; ++w) {
    auto v = Number(std::string_view(s).substr(w * 8, 8), 16);
    if (!v) return false;
    const uint32_t word = static_cast<uint32_t>(*v);
    std::memcpy(addr->data() + w * 4, &word, 4);
  }
  auto port_number = Number(std::string_view(s).substr(words * 8 + 1), 16);
  if (!port_number) return false;
  *port = static_cast<int>(*port_number);
  return true;
}

struct TreeTcp {
  std::set<Conn> conns;              // both directions
  std::set<unsigned long> inodes;    // of the connected sockets
};

// The tree's TCP connections, as /proc/<pid>/net/tcp{,6} (its network
// namespace) shows them.
TreeTcp TreeConnections(pid_t pid) {
  std::set<unsigned long> inodes;
  ForEachSocket(pid, [&](pid_t, int, unsigned long inode) { inodes.insert(inode); });
  TreeTcp tcp;
  std::set<Conn>& conns = tcp.conns;
  for (int family : {AF_INET, AF_INET6}) {
    std::ifstream in(fmt::format("/proc/{}/net/{}", pid, family == AF_INET ? "tcp" : "tcp6"));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string sl, local, remote, skip;
      unsigned long inode = 0;
      f >> sl >> local >> remote;
      for (int i = 0; i < 6; ++i) f >> skip;  // st tx:rx tr:tm retrnsmt uid timeout
      f >> inode;
      Addr a, b;
      int ap = 0, bp = 0;
      if (!f || !inodes.contains(inode) || !ParseEnd(local, family, &a, &ap) || !ParseEnd(remote, family, &b, &bp) ||
          bp == 0)
        continue;
      conns.insert({family, a, ap, b, bp});
      conns.insert({family, b, bp, a, ap});
      tcp.inodes.insert(inode);
    }
  }
  return tcp;
}

// Takes the tree's sockets among `inodes` out of TCP repair mode, through
// a duplicate of each (pidfd_getfd); how many were in it.
int LeaveRepairMode(pid_t root, const std::set<unsigned long>& inodes) {
  int count = 0;
  pid_t open_for = 0;
  UniqueFd pidfd;
  ForEachSocket(root, [&](pid_t p, int fd, unsigned long inode) {
    if (!inodes.contains(inode)) return;
    if (open_for != p) {
      pidfd = UniqueFd(static_cast<int>(syscall(SYS_pidfd_open, p, 0)));
      open_for = p;
    }
    UniqueFd sock(pidfd.get() < 0 ? -1 : static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0)));
    int repair = 0;
    socklen_t len = sizeof repair;
    if (sock.get() < 0 || getsockopt(sock.get(), SOL_TCP, TCP_REPAIR, &repair, &len) != 0 || repair == 0) return;
    int off = TCP_REPAIR_OFF;  // with a window probe, as CRIU resumes
    if (setsockopt(sock.get(), SOL_TCP, TCP_REPAIR, &off, sizeof off) == 0) ++count;
  });
  return count;
}

struct NftCtxFree {
  void operator()(nft_ctx* c) const { nft_ctx_free(c); }
};

// One nft command, JSON output; its parsed output, or the error. Both
// buffers are read (and so rewound) after every command.
Result<json::value> Nft(nft_ctx* nft, const std::string& cmd) {
  const bool failed = nft_run_cmd_from_buffer(nft, cmd.c_str()) != 0;
  const char* out = nft_ctx_get_output_buffer(nft);
  std::string err = nft_ctx_get_error_buffer(nft);
  if (failed) {
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return IOError(fmt::format("nft {}: {}", cmd, err));
  }
  boost::system::error_code ec;
  json::value v = json::parse(out && *out ? out : "{}", ec);
  if (ec) return IOError(fmt::format("nft {}: unreadable JSON output", cmd));
  return v;
}

// The objects of kind `kind` ("table", "set") in an nft JSON answer.
std::vector<json::object> Objects(const json::value& v, std::string_view kind) {
  std::vector<json::object> out;
  const json::value* list = v.is_object() ? v.as_object().if_contains("nftables") : nullptr;
  if (!list || !list->is_array()) return out;
  for (const auto& item : list->as_array())
    if (const json::value* o = item.is_object() ? item.as_object().if_contains(kind) : nullptr; o && o->is_object())
      out.push_back(o->as_object());
  return out;
}

// Whether set `set` of table `table` holds one of `conns`.
bool LocksOneOf(nft_ctx* nft, const std::string& table, const char* set, int family, const std::set<Conn>& conns) {
  auto v = Nft(nft, fmt::format("list set inet {} {}", table, set));
  if (!v.ok()) return false;  // no such set
  for (const auto& s : Objects(*v, "set")) {
    const json::value* elems = s.if_contains("elem");
    if (!elems || !elems->is_array()) continue;
    for (const auto& e : elems->as_array()) {
      const json::value* c = e.is_object() ? e.as_object().if_contains("concat") : nullptr;
      if (!c || !c->is_array() || c->as_array().size() != 4) continue;
      const json::array& t = c->as_array();
      Addr a{}, b{};
      if (!t[0].is_string() || !t[2].is_string() || !t[1].is_int64() || !t[3].is_int64() ||
          inet_pton(family, t[0].as_string().c_str(), a.data()) != 1 ||
          inet_pton(family, t[2].as_string().c_str(), b.data()) != 1)
        continue;
      if (conns.contains({family, a, static_cast<int>(t[1].as_int64()), b, static_cast<int>(t[3].as_int64())}))
        return true;
    }
  }
  return false;
}

// In the calling thread's network namespace.
Result<std::vector<std::string>> RemoveHere(bool own_netns, const std::set<Conn>& conns) {
  std::unique_ptr<nft_ctx, NftCtxFree> nft(nft_ctx_new(NFT_CTX_DEFAULT));
  if (!nft) return Internal("nftables: cannot create a context");
  nft_ctx_output_set_flags(nft.get(), NFT_CTX_OUTPUT_JSON);
  nft_ctx_buffer_output(nft.get());
  nft_ctx_buffer_error(nft.get());
  CKPTD_ASSIGN_OR_RETURN(json::value tables, Nft(nft.get(), "list tables inet"));
  std::vector<std::string> removed;
  for (const auto& t : Objects(tables, "table")) {
    const json::value* name = t.if_contains("name");
    if (!name || !name->is_string() || !name->as_string().starts_with("CRIU-")) continue;
    const std::string table(name->as_string());
    bool stale = own_netns || LocksOneOf(nft.get(), table, "conns4", AF_INET, conns) ||
                 LocksOneOf(nft.get(), table, "conns6", AF_INET6, conns);
    if (!stale) continue;
    CKPTD_RETURN_IF_ERROR(Nft(nft.get(), "delete table inet " + table).status());
    removed.push_back(table);
  }
  return removed;
}

}  // namespace

Result<NetworkRelease> ReleaseNetworkAfterKill(pid_t pid) {
  const std::string ns_path = fmt::format("/proc/{}/ns/net", pid);
  UniqueFd ns(open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (ns.get() < 0) {
    if (errno == ENOENT || errno == ESRCH) return NotFound(fmt::format("process {} is gone", pid));
    return ErrnoError("open " + ns_path, errno);
  }
  struct stat its {}, own {};
  if (fstat(ns.get(), &its) != 0 || stat("/proc/self/ns/net", &own) != 0) return ErrnoError("stat netns", errno);
  const bool own_netns = its.st_dev != own.st_dev || its.st_ino != own.st_ino;
  const TreeTcp tcp = TreeConnections(pid);
  NetworkRelease release;
  release.sockets = LeaveRepairMode(pid, tcp.inodes);
  if (!own_netns && tcp.conns.empty()) return release;  // nothing a lock could hold
  Status st;
  std::thread worker([&] {
    if (own_netns && setns(ns.get(), CLONE_NEWNET) != 0) {
      st = ErrnoError(fmt::format("enter the network namespace of pid {}", pid), errno);
      return;
    }
    auto removed = RemoveHere(own_netns, tcp.conns);
    if (removed.ok()) release.tables = std::move(*removed);
    st = removed.status();
  });
  worker.join();
  CKPTD_RETURN_IF_ERROR(st);
  return release;
}

}  // namespace ckptd::criu
