// The receiving side of CRIU's page-server protocol, over a socket CRIU gets
// at dump time (criu_opts.ps.fd, DumpOptions::page_server_fd): CRIU splices
// the dumped memory into the socket instead of writing pages-*.img into the
// images directory, and ckptd hands it straight to compression and storage.
// Compared with tailing files CRIU writes into a staging directory this
// saves a copy of every page (into the staging file and out again) and the
// staging memory itself, and the socket's flow control makes CRIU wait for
// a slow store instead of a staging directory growing without bound.
//
// The protocol (CRIU 4.x, criu/page-xfer.c; all integers in the host's byte
// order, both ends being on this machine): CRIU sends 32-byte headers
// {u32 cmd, u64 nr_pages, u64 vaddr, u64 dst_id}, cmd's low 16 bits being the
// command and its high 16 bits the pagemap flags:
// - OPEN2 (4): the pages of image dst_id follow (dst_id's low 8 bits: 1 for
//   a process, "pagemap-<id>.img", 2 for shared memory,
//   "pagemap-shmem-<id>.img"; the rest: the id). Answer: one byte, 1 when a
//   parent image has them (never here). OPEN (3) is the same without answer.
// - ADD_F (6): a pagemap entry {vaddr, nr_pages, flags}; with PE_PRESENT
//   (4), nr_pages x 4096 bytes of page data follow. ADD (1) = ADD_F with
//   PE_PRESENT; HOLE (2) = ADD_F with PE_PARENT.
// - PARENT (5): is there a parent for dst_id? Answer: an int, 0 here.
// - CLOSE (0x1023) / FORCE_CLOSE (0x1024): the end; answer an int32 status.
// Each OPEN completes the pair before it: a pagemap image (magic, a
// pagemap_head naming pages-<n>.img, then one entry per ADD) and the pages
// image (the raw page data, in order).
//
// Answers go out before the work they end (completing a pair): CRIU waits
// for them with the tree frozen.
// Errors: a sink error does not cut CRIU off mid-transfer (it would fail in
// the middle of its own protocol with the tree frozen): the rest is read and
// dropped, and the final status tells CRIU the dump failed, so CRIU cures
// and resumes the tree itself. A malformed stream, or the socket closing
// before CLOSE, ends the session with an error.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ckptd::criu {

// Where the pages go: one image pair at a time, in the order CRIU sends
// them. Called on the thread running ServePages.
class PageSink {
 public:
  virtual ~PageSink() = default;
  // A pair begins: CRIU's restore reads `pagemap_name` and, through its
  // head, `pages_name`.
  virtual Status Open(const std::string& pagemap_name, const std::string& pages_name) = 0;
  // Page data of the open pair, in order (any split). The sink may take
  // *data's buffer (no copy), leaving any string in its place: the server
  // reads the next piece into whatever *data is then.
  virtual Status Pages(std::string* data) = 0;
  // The open pair is complete; `pagemap_image` is the pagemap image's bytes.
  virtual Status Close(std::string pagemap_image) = 0;
};

// Page data reaches PageSink::Pages in pieces of at most this many bytes.
inline constexpr size_t kPageChunkBytes = 1 << 20;

struct PageServeStats {
  uint64_t page_bytes = 0;  // page data received
  uint64_t pairs = 0;       // pagemap/pages pairs completed
  bool closed = false;      // CRIU said CLOSE/FORCE_CLOSE
};

// Serves one session on `fd` (a connected stream socket, left open) until
// CRIU closes it. OK only when CRIU closed the session and every sink call
// succeeded. Stops early with an error when `*stop` turns true (checked
// between reads; shut the socket down to interrupt a blocked read).
// Pages-image numbers start at 0x10001, as CRIU's own page server numbers
// them, above any that CRIU's dump might number itself.
Status ServePages(int fd, PageSink* sink, PageServeStats* stats, const std::atomic<bool>* stop = nullptr);

}  // namespace ckptd::criu
