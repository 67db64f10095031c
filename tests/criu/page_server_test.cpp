// criu::ServePages: the page-server protocol against a scripted client, and
// against the real CRIU: a dump whose pages come over the socket restores
// with the real CRIU from the images ServePages produced.
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "criu/criu_driver.h"
#include "criu/page_server.h"
#include "criu/pagemap.pb.h"
#include "tests/testing/criu_fixture.h"
#include "tests/testing/criu_test_util.h"

namespace ckptd::criu {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using namespace ckptd::criu::testing;

struct Wire {
  uint32_t cmd;
  uint64_t nr_pages;
  uint64_t vaddr;
  uint64_t dst_id;
};
constexpr uint32_t kOpen2 = 4, kAddF = 6, kParent = 5, kForceClose = 0x1024;
constexpr uint32_t kPresent = 4, kLazy = 2, kParentFlag = 1;
constexpr uint64_t kPid = 1, kShmem = 2;
const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));

// Records what the server hands over; can fail on the n-th Pages call.
class RecordingSink : public PageSink {
 public:
  struct Pair {
    std::string pagemap_name, pages_name, pages, pagemap;
    bool closed = false;
  };
  Status Open(const std::string& pm, const std::string& pages) override {
    pairs.push_back({pm, pages, "", "", false});
    return Status::Ok();
  }
  Status Pages(std::string* d) override {
    const int call = pages_calls++;
    if (fail_at_pages >= 0 && call == fail_at_pages) return IOError("store full");
    pairs.back().pages.append(*d);
    // Every other call takes the buffer and leaves a small one, as a
    // writer queueing buffers does: the server must read into that.
    if (call % 2 == 1) *d = std::string(7, 'x');
    return Status::Ok();
  }
  Status Close(std::string image) override {
    pairs.back().pagemap = std::move(image);
    pairs.back().closed = true;
    return Status::Ok();
  }
  std::vector<Pair> pairs;
  int fail_at_pages = -1;
  int pages_calls = 0;
};

// One end of a socketpair plays CRIU.
class ScriptedCriu {
 public:
  ScriptedCriu() {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    server_fd = sv[0];
    fd = sv[1];
  }
  ~ScriptedCriu() {
    if (fd >= 0) close(fd);
    if (server.joinable()) server.join();
    close(server_fd);
  }
  // Runs ServePages on the other end into `sink`.
  void Serve() {
    server = std::thread([this] { st = ServePages(server_fd, &sink, &stats); });
  }
  Status Join() {
    server.join();
    return st;
  }
  void Send(uint32_t cmd, uint64_t nr, uint64_t vaddr, uint64_t dst) {
    Wire w{cmd, nr, vaddr, dst};
    SendBytes(&w, sizeof w);
  }
  void SendBytes(const void* p, size_t n) { ASSERT_EQ(send(fd, p, n, MSG_NOSIGNAL), static_cast<ssize_t>(n)); }
  template <typename T>
  T Answer() {
    T v{};
    EXPECT_EQ(recv(fd, &v, sizeof v, MSG_WAITALL), static_cast<ssize_t>(sizeof v));
    return v;
  }
  void Hangup() {
    close(fd);
    fd = -1;
  }
  int server_fd, fd;
  RecordingSink sink;
  PageServeStats stats;
  Status st;
  std::thread server;
};

std::string PageData(size_t pages, char seed) {
  std::string s(pages * kPage, '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(seed + i % 251);
  return s;
}

// Splits a pagemap image: magics, then length-prefixed entries.
struct ParsedPagemap {
  uint32_t magic0 = 0, magic1 = 0;
  uint32_t pages_id = 0;
  std::vector<img::pagemap_entry> entries;
  bool ok = false;
};
ParsedPagemap Parse(const std::string& img) {
  ParsedPagemap p;
  if (img.size() < 8) return p;
  std::memcpy(&p.magic0, img.data(), 4);
  std::memcpy(&p.magic1, img.data() + 4, 4);
  size_t off = 8;
  bool head = true;
  while (off < img.size()) {
    uint32_t n = 0;
    if (off + 4 > img.size()) return p;
    std::memcpy(&n, img.data() + off, 4);
    off += 4;
    if (off + n > img.size()) return p;
    if (head) {
      img::pagemap_head h;
      if (!h.ParseFromArray(img.data() + off, static_cast<int>(n))) return p;
      p.pages_id = h.pages_id();
      head = false;
    } else {
      img::pagemap_entry e;
      if (!e.ParseFromArray(img.data() + off, static_cast<int>(n))) return p;
      p.entries.push_back(e);
    }
    off += n;
  }
  p.ok = !head;
  return p;
}

TEST(PageServerProtocolTest, PairsBecomePagemapAndPagesImages) {
  ScriptedCriu c;
  c.Serve();

  const std::string a = PageData(3, 'a'), b = PageData(2, 'b'), s = PageData(1, 's');
  c.Send(kOpen2, 0, 0, (uint64_t{4242} << 8) | kPid);
  EXPECT_EQ(c.Answer<char>(), 0) << "no parent images";
  c.Send(kAddF | (kPresent << 16), 3, 0x400000, (uint64_t{4242} << 8) | kPid);
  c.SendBytes(a.data(), a.size());
  c.Send(kAddF | (kLazy << 16), 7, 0x500000, (uint64_t{4242} << 8) | kPid);  // no data follows
  c.Send(kAddF | (kPresent << 16), 2, 0x7f0000000000, (uint64_t{4242} << 8) | kPid);
  c.SendBytes(b.data(), b.size());
  c.Send(kParent, 0, 0, (uint64_t{9} << 8) | kShmem);
  EXPECT_EQ(c.Answer<int>(), 0);
  c.Send(kOpen2, 0, 0, (uint64_t{9} << 8) | kShmem);
  EXPECT_EQ(c.Answer<char>(), 0);
  c.Send(kAddF | (kPresent << 16), 1, 0, (uint64_t{9} << 8) | kShmem);
  c.SendBytes(s.data(), s.size());
  c.Send(kForceClose, 0, 0, 0);
  EXPECT_EQ(c.Answer<int32_t>(), 0);
  Status st = c.Join();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(c.stats.closed);
  EXPECT_EQ(c.stats.pairs, 2u);
  EXPECT_EQ(c.stats.page_bytes, a.size() + b.size() + s.size());

  ASSERT_EQ(c.sink.pairs.size(), 2u);
  const auto& p0 = c.sink.pairs[0];
  EXPECT_EQ(p0.pagemap_name, "pagemap-4242.img");
  EXPECT_EQ(p0.pages_name, "pages-65537.img");
  EXPECT_TRUE(p0.closed);
  EXPECT_TRUE(p0.pages == a + b) << "page data must arrive whole and in order";
  ParsedPagemap m0 = Parse(p0.pagemap);
  ASSERT_TRUE(m0.ok);
  EXPECT_EQ(m0.magic0, 0x54564319u);
  EXPECT_EQ(m0.magic1, 0x56084025u);
  EXPECT_EQ(m0.pages_id, 65537u);
  ASSERT_EQ(m0.entries.size(), 3u);
  EXPECT_EQ(m0.entries[0].vaddr(), 0x400000u);
  EXPECT_EQ(m0.entries[0].nr_pages(), 3u);
  EXPECT_EQ(m0.entries[0].flags(), kPresent);
  EXPECT_EQ(m0.entries[1].flags(), kLazy);
  EXPECT_EQ(m0.entries[1].nr_pages(), 7u);
  EXPECT_EQ(m0.entries[2].vaddr(), 0x7f0000000000u);

  const auto& p1 = c.sink.pairs[1];
  EXPECT_EQ(p1.pagemap_name, "pagemap-shmem-9.img");
  EXPECT_EQ(p1.pages_name, "pages-65538.img");
  EXPECT_EQ(p1.pages, s);
  ParsedPagemap m1 = Parse(p1.pagemap);
  ASSERT_TRUE(m1.ok);
  EXPECT_EQ(m1.pages_id, 65538u);
  ASSERT_EQ(m1.entries.size(), 1u);
}

// A store error mid-way: CRIU is not cut off; the rest is read and dropped
// and the final answer tells CRIU the dump failed.
TEST(PageServerProtocolTest, SinkErrorDrainsAndAnswersFailure) {
  ScriptedCriu c;
  c.sink.fail_at_pages = 0;
  c.Serve();
  const std::string big = PageData(600, 'x');  // more than one 1 MiB read
  c.Send(kOpen2, 0, 0, (uint64_t{1} << 8) | kPid);
  EXPECT_EQ(c.Answer<char>(), 0);
  c.Send(kAddF | (kPresent << 16), 600, 0x1000, (uint64_t{1} << 8) | kPid);
  c.SendBytes(big.data(), big.size());
  c.Send(kOpen2, 0, 0, (uint64_t{2} << 8) | kPid);
  EXPECT_EQ(c.Answer<char>(), 0);
  c.Send(kAddF | (kPresent << 16), 1, 0x1000, (uint64_t{2} << 8) | kPid);
  c.SendBytes(big.data(), kPage);
  c.Send(kForceClose, 0, 0, 0);
  EXPECT_EQ(c.Answer<int32_t>(), -1) << "CRIU must hear that the pages were not stored";
  Status st = c.Join();
  EXPECT_EQ(st.code(), Code::kIOError) << st.ToString();
  EXPECT_NE(st.message().find("store full"), std::string::npos) << st.ToString();
  EXPECT_EQ(c.sink.pages_calls, 1) << "nothing more goes to a failed sink";
  ASSERT_EQ(c.sink.pairs.size(), 1u);
  EXPECT_FALSE(c.sink.pairs[0].closed);
}

TEST(PageServerProtocolTest, HangupBeforeTheEndIsAnError) {
  {
    ScriptedCriu c;
    c.Serve();
    c.Send(kOpen2, 0, 0, (uint64_t{1} << 8) | kPid);
    EXPECT_EQ(c.Answer<char>(), 0);
    c.Send(kAddF | (kPresent << 16), 4, 0x1000, (uint64_t{1} << 8) | kPid);
    const std::string part = PageData(1, 'p');
    c.SendBytes(part.data(), part.size());  // 1 of 4 pages
    c.Hangup();
    Status st = c.Join();
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("in the middle of a message"), std::string::npos) << st.ToString();
    EXPECT_FALSE(c.sink.pairs.at(0).closed);
  }
  {
    ScriptedCriu c;
    c.Serve();
    c.Send(kOpen2, 0, 0, (uint64_t{1} << 8) | kPid);
    EXPECT_EQ(c.Answer<char>(), 0);
    c.Hangup();  // no CLOSE
    Status st = c.Join();
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("before the end"), std::string::npos) << st.ToString();
  }
}

TEST(PageServerProtocolTest, MalformedStreamsAreRefused) {
  struct Case {
    uint32_t cmd;
    uint64_t nr, dst;
    const char* want;
  };
  for (const Case& k : {Case{0x77, 0, 1, "unknown command"}, Case{kOpen2, 0, (uint64_t{5} << 8) | 9, "unknown image type"},
                        Case{kAddF | (kPresent << 16), uint64_t{1} << 40, (uint64_t{1} << 8) | kPid, "an entry of"}}) {
    ScriptedCriu c;
    c.Serve();
    c.Send(k.cmd, k.nr, 0, k.dst);
    if (k.cmd == kOpen2) {
      EXPECT_EQ(c.Answer<char>(), 0);
      c.Send(kForceClose, 0, 0, 0);
      EXPECT_EQ(c.Answer<int32_t>(), -1);
    }
    Status st = c.Join();
    EXPECT_FALSE(st.ok()) << k.want;
    EXPECT_NE(st.message().find(k.want), std::string::npos) << st.ToString();
  }
  // Pages kept in a parent image: this server has no parent to offer.
  ScriptedCriu c;
  c.Serve();
  c.Send(kOpen2, 0, 0, (uint64_t{1} << 8) | kPid);
  EXPECT_EQ(c.Answer<char>(), 0);
  c.Send(kAddF | (kParentFlag << 16), 2, 0x1000, (uint64_t{1} << 8) | kPid);
  c.Send(kForceClose, 0, 0, 0);
  EXPECT_EQ(c.Answer<int32_t>(), -1);
  Status st = c.Join();
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
}

// Writes each pair into the images dir, as CRIU's own page server would.
class DirSink : public PageSink {
 public:
  explicit DirSink(fs::path dir) : dir_(std::move(dir)) {}
  Status Open(const std::string& pm, const std::string& pages) override {
    pagemap_name_ = pm;
    pages_.open(dir_ / pages, std::ios::binary | std::ios::trunc);
    names.push_back(pages);
    return pages_ ? Status::Ok() : IOError("open " + pages);
  }
  Status Pages(std::string* d) override {
    pages_.write(d->data(), static_cast<std::streamsize>(d->size()));
    bytes += d->size();
    return pages_ ? Status::Ok() : IOError("write");
  }
  Status Close(std::string image) override {
    pages_.close();
    std::ofstream pm(dir_ / pagemap_name_, std::ios::binary | std::ios::trunc);
    pm.write(image.data(), static_cast<std::streamsize>(image.size()));
    names.push_back(pagemap_name_);
    return pm ? Status::Ok() : IOError("write pagemap");
  }
  std::vector<std::string> names;
  uint64_t bytes = 0;

 private:
  fs::path dir_;
  std::string pagemap_name_;
  std::ofstream pages_;
};

class PageServerCriuTest : public CriuFixture {
 protected:
  // Dumps `pid` with its pages over a socket into `images` (DirSink), kills
  // and reaps the tree, restores it from `images` with CRIU.
  pid_t DumpOverSocketAndRestore(pid_t pid, const fs::path& images, DirSink* sink) {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    PageServeStats stats;
    Status served;
    std::thread server([&] { served = ServePages(sv[0], sink, &stats); });
    DumpOptions o;
    o.pid = pid;
    o.images_dir = images;
    o.deadline = 120s;
    o.page_server_fd = sv[1];
    std::vector<pid_t> tree = TreeOf(pid);
    auto r = driver_->Dump(o);
    close(sv[1]);
    server.join();
    close(sv[0]);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(served.ok()) << served.ToString();
    EXPECT_TRUE(stats.closed);
    if (!r.ok() || !served.ok()) return -1;
    ReapDumped(pid, tree);
    return RestoreSamePid(pid, images);
  }
};

TEST_F(PageServerCriuTest, MemoryDumpedOverTheSocketRestoresIntact) {
  auto out = tmp_.path() / "memory";
  pid_t pid = StartTarget("memory", out, 2, {"--mib", "64"}, 30s);
  ASSERT_GT(pid, 0);
  fs::path images = tmp_.Sub("img");
  DirSink sink(images);
  ASSERT_EQ(DumpOverSocketAndRestore(pid, images, &sink), pid);
  EXPECT_GE(sink.bytes, 64ull << 20) << "the memory must have come over the socket";
  // CRIU itself wrote no pages: every pages image is one ServePages named.
  for (const auto& e : fs::directory_iterator(images)) {
    std::string n = e.path().filename().string();
    if (n.starts_with("pages-") || n.starts_with("pagemap-")) {
      EXPECT_NE(std::find(sink.names.begin(), sink.names.end(), n), sink.names.end()) << n << " written by CRIU";
    }
  }
  uint64_t at = ReadProgress(out).n;
  ASSERT_TRUE(WaitProgress(out, at + 2, 30s)) << "memory verification stalled";
  EXPECT_TRUE(ReadProgress(out).ok) << "memory content differs after restore";
}

// A tree: one pair per process, each restored with its own memory.
TEST_F(PageServerCriuTest, ForkedTreeDumpedOverTheSocketContinues) {
  auto out = tmp_.path() / "fork";
  pid_t pid = StartTarget("fork", out, 5, {"--children", "2"});
  ASSERT_GT(pid, 0);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(WaitProgress(out.string() + "." + std::to_string(i), 5));
  fs::path images = tmp_.Sub("img");
  DirSink sink(images);
  uint64_t n = ReadProgress(out).n;
  ASSERT_EQ(DumpOverSocketAndRestore(pid, images, &sink), pid);
  size_t pagemaps = 0;
  for (const auto& name : sink.names) pagemaps += name.starts_with("pagemap-") ? 1 : 0;
  EXPECT_GE(pagemaps, 3u) << "one pagemap per process";
  EXPECT_TRUE(WaitProgress(out, n + 5));
  for (int i = 0; i < 2; ++i) {
    auto c = out.string() + "." + std::to_string(i);
    EXPECT_TRUE(WaitProgress(c, ReadProgress(c).n + 5)) << "child " << i;
  }
}

// The driver refuses a page server for dumps that refer to parent images.
TEST_F(PageServerCriuTest, NoPageServerWithParentImages) {
  DumpOptions o;
  o.pid = getpid();
  o.images_dir = tmp_.Sub("img");
  o.deadline = 10s;
  o.page_server_fd = 0;
  o.parent_img = "../parent";
  auto r = driver_->Dump(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().ToString();
}

}  // namespace
}  // namespace ckptd::criu
