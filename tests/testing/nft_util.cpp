#include "tests/testing/nft_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nftables/libnftables.h>

namespace ckptd::testing {

std::string NftRun(const std::string& command, pid_t netns_pid, std::string* output) {
  std::string error;
  // setns() only on this thread: the test's other threads keep theirs.
  std::thread worker([&] {
    if (netns_pid > 0) {
      int ns = open(fmt::format("/proc/{}/ns/net", netns_pid).c_str(), O_RDONLY | O_CLOEXEC);
      int rc = ns >= 0 ? setns(ns, CLONE_NEWNET) : -1;
      if (ns >= 0) close(ns);
      if (rc != 0) {
        error = fmt::format("cannot enter the network namespace of pid {}", netns_pid);
        return;
      }
    }
    std::unique_ptr<nft_ctx, void (*)(nft_ctx*)> nft(nft_ctx_new(NFT_CTX_DEFAULT), nft_ctx_free);
    nft_ctx_buffer_output(nft.get());
    nft_ctx_buffer_error(nft.get());
    if (nft_run_cmd_from_buffer(nft.get(), command.c_str()) != 0) {
      error = nft_ctx_get_error_buffer(nft.get());
      if (error.empty()) error = "nft failed: " + command;
    }
    if (output) *output = nft_ctx_get_output_buffer(nft.get());
  });
  worker.join();
  return error;
}

std::set<std::string> CriuLockTables(pid_t netns_pid) {
  std::string out;
  std::set<std::string> tables;
  if (!NftRun("list tables inet", netns_pid, &out).empty()) return tables;
  std::istringstream lines(out);
  std::string table, family, name;
  while (lines >> table >> family >> name)
    if (name.starts_with("CRIU-")) tables.insert(name);
  return tables;
}

std::string AddCriuLockTable(const std::string& name, const std::string& conns4_element) {
  std::string error = NftRun(fmt::format("add table inet {}", name));
  if (error.empty())
    error = NftRun(
        fmt::format("add set inet {} conns4 {{ type ipv4_addr . inet_service . ipv4_addr . inet_service; }}", name));
  if (error.empty() && !conns4_element.empty())
    error = NftRun(fmt::format("add element inet {} conns4 {{ {} }}", name, conns4_element));
  return error;
}

std::string Conns4ElementOf(int sock) {
  sockaddr_in peer{}, local{};
  socklen_t plen = sizeof peer, llen = sizeof local;
  if (getpeername(sock, reinterpret_cast<sockaddr*>(&peer), &plen) != 0 ||
      getsockname(sock, reinterpret_cast<sockaddr*>(&local), &llen) != 0)
    return "";
  char pa[INET_ADDRSTRLEN] = {}, la[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &peer.sin_addr, pa, sizeof pa);
  inet_ntop(AF_INET, &local.sin_addr, la, sizeof la);
  return fmt::format("{} . {} . {} . {}", pa, ntohs(peer.sin_port), la, ntohs(local.sin_port));
}

}  // namespace ckptd::testing
