// nftables for tests: the network-lock tables CRIU makes ("inet CRIU-...").
// Thread safety: stateless functions; each runs nft on a thread of its own.
#pragma once

#include <sys/types.h>

#include <set>
#include <string>

namespace ckptd::testing {

// Runs one nft command in the network namespace of `netns_pid` (0: ours);
// "" on success, else nft's error text. `output`, when given, gets nft's.
std::string NftRun(const std::string& command, pid_t netns_pid = 0, std::string* output = nullptr);

// The names of the tables CRIU made for its network locks ("CRIU-...") in
// that namespace.
std::set<std::string> CriuLockTables(pid_t netns_pid = 0);

// Makes table "inet <name>" in our namespace as CRIU makes its lock there:
// a conns4 set, holding `conns4_element` unless that is empty. "" on
// success, else nft's error text.
std::string AddCriuLockTable(const std::string& name, const std::string& conns4_element = "");

// The conns4 element CRIU writes for the IPv4 connection of `sock`, seen
// from its peer: "peer addr . peer port . local addr . local port".
std::string Conns4ElementOf(int sock);

}  // namespace ckptd::testing
