#include "criu/page_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "criu/pagemap.pb.h"

namespace ckptd::criu {
namespace {

// CRIU's wire header (struct page_server_iov): natural alignment, so 4 bytes
// of padding after cmd.
struct Header {
  uint32_t cmd;
  uint64_t nr_pages;
  uint64_t vaddr;
  uint64_t dst_id;
};
static_assert(sizeof(Header) == 32);

constexpr uint32_t kAdd = 1, kHole = 2, kOpen = 3, kOpen2 = 4, kParent = 5, kAddF = 6, kGet = 7;
constexpr uint32_t kClose = 0x1023, kForceClose = 0x1024;
constexpr uint32_t kPeParent = 1, kPePresent = 4;
constexpr uint64_t kTypePid = 1, kTypeShmem = 2;
// Image magics (CRIU's criu/include/magic.h): every image but the inventory
// starts with the common magic, then its own.
constexpr uint32_t kImgCommonMagic = 0x54564319;
constexpr uint32_t kPagemapMagic = 0x56084025;
constexpr uint32_t kFirstPagesId = 0x10001;
// Far beyond any address space: guards the multiplication below.
constexpr uint64_t kMaxPagesPerEntry = uint64_t{1} << 36;

void PutU32(std::string* out, uint32_t v) { out->append(reinterpret_cast<const char*>(&v), sizeof v); }

void AppendEntry(std::string* image, const google::protobuf::MessageLite& m) {
  PutU32(image, static_cast<uint32_t>(m.ByteSizeLong()));
  m.AppendToString(image);
}

class Session {
 public:
  Session(int fd, PageSink* sink, PageServeStats* stats, const std::atomic<bool>* stop)
      : fd_(fd), sink_(sink), stats_(stats), stop_(stop), page_size_(static_cast<uint64_t>(sysconf(_SC_PAGESIZE))) {}

  Status Run() {
    // Page data is read into this buffer, which the sink may take and
    // replace (PageSink::Pages).
    std::string buf(kPageChunkBytes, '\0');
    for (;;) {
      Header h{};
      CKPTD_ASSIGN_OR_RETURN(bool got, ReadFull(&h, sizeof h, true));
      if (!got) return IOError("page server: CRIU closed the connection before the end of the dump");
      const uint32_t cmd = h.cmd & 0xffff;
      uint32_t flags = h.cmd >> 16;
      switch (cmd) {
        case kOpen:
        case kOpen2: {
          // Answer first: CRIU goes on sending while the pair before is
          // completed here.
          if (cmd == kOpen2) {
            const char has_parent = 0;
            CKPTD_RETURN_IF_ERROR(WriteFull(&has_parent, 1));
          }
          if (error_) {
            open_ = true;  // draining: only the state
            dst_id_ = h.dst_id;
          } else {
            Keep(OpenPair(h.dst_id));
          }
          break;
        }
        case kParent: {
          const int has_parent = 0;
          CKPTD_RETURN_IF_ERROR(WriteFull(&has_parent, sizeof has_parent));
          break;
        }
        case kAdd:
        case kHole:
        case kAddF: {
          if (cmd == kAdd) flags = kPePresent;
          if (cmd == kHole) flags = kPeParent;
          if (h.nr_pages > kMaxPagesPerEntry)
            return Corruption(fmt::format("page server: an entry of {} pages", h.nr_pages));
          if (!open_ && !error_) {
            // CRIU's own server opens implicitly ("IO w/o open").
            Keep(OpenPair(h.dst_id));
          } else if (open_ && h.dst_id != dst_id_ && !error_) {
            return Corruption(fmt::format("page server: pages for image {:#x} while {:#x} is open", h.dst_id, dst_id_));
          }
          if ((flags & kPeParent) && !error_)
            Keep(InvalidArgument("page server: CRIU refers to pages of a parent image, and this dump has none"));
          if (!error_) {
            img::pagemap_entry e;
            e.set_vaddr(h.vaddr);
            e.set_compat_nr_pages(0);
            e.set_nr_pages(h.nr_pages);
            e.set_flags(flags);
            AppendEntry(&pagemap_, e);
          }
          if (flags & kPePresent) {
            uint64_t left = h.nr_pages * page_size_;
            while (left > 0) {
              const size_t n = static_cast<size_t>(std::min<uint64_t>(left, kPageChunkBytes));
              buf.resize(n);  // shrinking writes nothing; growing a swapped-in buffer zeroes once
              CKPTD_RETURN_IF_ERROR(ReadFull(buf.data(), n, false).status());
              left -= n;
              stats_->page_bytes += n;
              if (!error_) Keep(sink_->Pages(&buf));
            }
          }
          break;
        }
        case kClose:
        case kForceClose: {
          // Answer first: once CRIU has it, the dump goes on (and resumes
          // the tree) while the last pair is completed here. A failure
          // from here on fails the checkpoint, not CRIU's dump.
          stats_->closed = true;
          const int32_t status = error_ ? -1 : 0;
          CKPTD_RETURN_IF_ERROR(WriteFull(&status, sizeof status));
          if (open_ && !error_) Keep(ClosePair());
          if (error_) return *error_;
          return Status::Ok();
        }
        case kGet:
          return InvalidArgument("page server: CRIU asked for pages back (lazy migration is not supported)");
        default:
          return Corruption(fmt::format("page server: unknown command {:#x}", h.cmd));
      }
    }
  }

 private:
  // The first sink error is kept; from then on the stream is only drained.
  void Keep(Status st) {
    if (!st.ok() && !error_) error_ = std::move(st);
  }

  Status OpenPair(uint64_t dst_id) {
    if (open_) CKPTD_RETURN_IF_ERROR(ClosePair());
    const uint64_t type = dst_id & 0xff, id = dst_id >> 8;
    std::string name;
    if (type == kTypePid) {
      name = fmt::format("pagemap-{}.img", id);
    } else if (type == kTypeShmem) {
      name = fmt::format("pagemap-shmem-{}.img", id);
    } else {
      return Corruption(fmt::format("page server: unknown image type in {:#x}", dst_id));
    }
    const uint32_t pages_id = next_pages_id_++;
    pagemap_.clear();
    PutU32(&pagemap_, kImgCommonMagic);
    PutU32(&pagemap_, kPagemapMagic);
    img::pagemap_head head;
    head.set_pages_id(pages_id);
    AppendEntry(&pagemap_, head);
    open_ = true;
    dst_id_ = dst_id;
    return sink_->Open(name, fmt::format("pages-{}.img", pages_id));
  }

  Status ClosePair() {
    open_ = false;
    stats_->pairs++;
    return sink_->Close(std::move(pagemap_));
  }

  // false: the peer closed before the first byte (only allowed when
  // at_boundary; a close later is an error).
  Result<bool> ReadFull(void* p, size_t n, bool at_boundary) {
    char* c = static_cast<char*>(p);
    size_t got = 0;
    while (got < n) {
      if (stop_ && stop_->load()) return Cancelled("page server stopped");
      ssize_t r = ::recv(fd_, c + got, n - got, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return ErrnoError("page server: recv", errno);
      if (r == 0) {
        if (got == 0 && at_boundary) return false;
        return IOError("page server: CRIU closed the connection in the middle of a message");
      }
      got += static_cast<size_t>(r);
    }
    return true;
  }

  Status WriteFull(const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      ssize_t r = ::send(fd_, c, n, MSG_NOSIGNAL);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return ErrnoError("page server: send", errno);
      c += r;
      n -= static_cast<size_t>(r);
    }
    return Status::Ok();
  }

  const int fd_;
  PageSink* const sink_;
  PageServeStats* const stats_;
  const std::atomic<bool>* const stop_;
  const uint64_t page_size_;
  bool open_ = false;
  uint64_t dst_id_ = 0;
  uint32_t next_pages_id_ = kFirstPagesId;
  std::string pagemap_;  // the open pair's pagemap image so far
  std::optional<Status> error_;
};

}  // namespace

Status ServePages(int fd, PageSink* sink, PageServeStats* stats, const std::atomic<bool>* stop) {
  PageServeStats local;
  Session s(fd, sink, stats ? stats : &local, stop);
  return s.Run();
}

}  // namespace ckptd::criu
