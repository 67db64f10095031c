// What a killed CRIU's hold on a tree's network leaves behind, released.
//
// Dumping established TCP connections (tcp_established), CRIU puts each
// socket in repair mode (TCP_REPAIR: it carries no data) and, with
// network_lock = nftables, locks the network in a table of its own,
// "inet CRIU-<run id>": in the caller's network namespace a set of the
// dumped connections (conns4, conns6, both directions) whose packets are
// dropped; in a tree's own namespace every packet (policy drop). CRIU undoes
// both when it ends (and keeps the lock, on purpose, after a dump that
// ended the tree, for the restore), but a CRIU that is killed, by a
// deadline or with the daemon (PDEATHSIG), leaves them while the tree runs
// on: its connections are dead (every call on a socket in repair mode
// fails, so the driver keeps the tree stopped from the kill until the
// release; a daemon's death gives no such chance). The run id that names
// the table is logged nowhere in swrk mode, so the table is found by what
// it locks.
//
// Thread safety: stateless; nft runs on a thread of its own, which alone
// enters another network namespace.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace ckptd::criu {

struct NetworkRelease {
  std::vector<std::string> tables;  // lock tables removed
  int sockets = 0;                  // sockets taken out of repair mode
};

// For the tree rooted at `pid`, which runs on after its CRIU was killed:
// takes every TCP socket of the tree out of repair mode (through
// pidfd_getfd); in the caller's network namespace, removes every CRIU-*
// table whose connection sets hold a connection of the tree; when the tree
// has a network namespace of its own, every CRIU-* table in it. NotFound
// when `pid` is gone; other errors after doing what it could.
Result<NetworkRelease> ReleaseNetworkAfterKill(pid_t pid);

}  // namespace ckptd::criu
