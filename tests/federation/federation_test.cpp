// Federation over real HTTP: a local in-process ckptd mirrors its checkpoint
// lifecycles to a second in-process ckptd acting as the upstream.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "federation/upstream_mirror.h"
#include "tests/testing/daemon_fixture.h"

namespace ckptd::testing {
namespace {

namespace json = boost::json;

constexpr char kUpstreamToken[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::abort();
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// Polls until `pred` holds; false at the deadline.
bool Eventually(const std::function<bool()>& pred, std::chrono::seconds limit = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// Outbox rows (q/ keys) in a daemon's database.
size_t OutboxRows(Db* db) {
  std::unique_ptr<rocksdb::Iterator> it(db->raw()->NewIterator(rocksdb::ReadOptions(), db->Handle(cf::kOutbox)));
  size_t n = 0;
  for (it->Seek("q/"); it->Valid() && it->key().starts_with("q/"); it->Next()) ++n;
  return n;
}

size_t OutboxKeys(Db* db) {
  std::unique_ptr<rocksdb::Iterator> it(db->raw()->NewIterator(rocksdb::ReadOptions(), db->Handle(cf::kOutbox)));
  size_t n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
  return n;
}

class FederationTest : public ::testing::Test {
 protected:
  void SetUp() override { upstream_port_ = FreePort(); }
  void TearDown() override {
    local_.Stop();
    upstream_.Stop();
  }

  Config UpstreamConfig() const {
    Config c = TestConfig(upstream_dir_.path());
    c.listen = "127.0.0.1:" + std::to_string(upstream_port_);
    c.token = kUpstreamToken;
    return c;
  }
  Config LocalConfig() const {
    Config c = TestConfig(local_dir_.path());
    c.upstream_url = "http://127.0.0.1:" + std::to_string(upstream_port_) + "/";
    c.upstream_token = kUpstreamToken;
    c.upstream_retry_max_s = 1;
    c.upstream_timeout_s = 5;
    return c;
  }
  void StartUpstream() {
    ASSERT_TRUE(upstream_.Start(UpstreamConfig()));
    ASSERT_EQ(upstream_.daemon_->port(), upstream_port_);
  }
  void StartLocal(Config c) {
    ASSERT_TRUE(local_.Start(std::move(c)));
  }
  void StartLocal() { StartLocal(LocalConfig()); }

  static std::unique_ptr<api::HttpClient> ClientFor(Daemon* d) {
    auto c = api::HttpClient::Create("http://127.0.0.1:" + std::to_string(d->port()), d->token());
    EXPECT_TRUE(c.ok());
    return std::move(c).value();
  }

  // The local API, as a node agent would call it.
  std::string Create(const std::string& name) {
    auto r = local_.client_->Send("POST", "/v2/checkpoints", json::serialize(json::object{{"name", name}}));
    EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
    return r.ok() ? r->body : "";
  }
  void Call(const std::string& method, const std::string& target, const json::value& body = nullptr) {
    auto r = local_.client_->Send(method, target, body.is_null() ? "" : json::serialize(body));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->status, 200) << method << " " << target << ": " << r->body;
  }
  void Info(const std::string& id, const std::string& gpu) {
    Call("PUT", "/v2/checkpoints/info/" + id,
         json::object{{"gpu", gpu},
                      {"platform", "linux/amd64 criu 4.2.1"},
                      {"info", json::object{{"pid", 4242}, {"cmdline", json::array{"train.py", "--epochs", "3"}}}}});
  }
  void Uploaded(const std::string& id) {
    Call("POST", "/v2/checkpoints/uploaded/" + id,
         json::object{{"restore_path", "s3://bucket/ckpt/" + id}, {"checksum", "sha256:abcd"}});
  }
  void Deprecate(const std::string& id) { Call("PATCH", "/v2/checkpoints/deprecate/" + id); }

  static json::value Get(Daemon* d, const std::string& id) {
    auto r = ClientFor(d)->Send("GET", "/v2/checkpoints/" + id);
    if (!r.ok() || r->status != 200) return nullptr;
    return json::parse(r->body);
  }
  std::optional<std::string> LinkOf(const std::string& id) {
    auto r = local_.daemon_->catalog()->Get(id);
    return r.ok() ? r->upstream_id : std::nullopt;
  }
  size_t UpstreamCount() {
    auto r = upstream_.client_->Send("GET", "/v2/checkpoints");
    return r.ok() && r->status == 200 ? json::parse(r->body).as_array().size() : 0;
  }

  // What "the same lifecycle" compares: the mirrored fields and the
  // sequence of statuses gone through.
  static json::value Lifecycle(const json::value& v) {
    if (!v.is_object()) return nullptr;
    const auto& o = v.as_object();
    json::array statuses;
    for (const auto& h : o.at("history").as_array()) statuses.push_back(h.at("to"));
    return json::object{{"name", o.at("name")},         {"status", o.at("status")},
                        {"gpu", o.at("gpu")},           {"platform", o.at("platform")},
                        {"info", o.at("info")},         {"restore_path", o.at("restore_path")},
                        {"checksum", o.at("checksum")}, {"statuses", statuses}};
  }
  // Waits for the outbox to drain, then checks the upstream copy of `id`.
  void ExpectMirrored(const std::string& id) {
    ASSERT_TRUE(Eventually([&] { return local_.daemon_->upstream_mirror()->pending() == 0; }))
        << json::serialize(local_.daemon_->Health());
    auto link = LinkOf(id);
    ASSERT_TRUE(link.has_value()) << "no upstream id stored for " << id;
    EXPECT_NE(*link, id);
    json::value local = Get(local_.daemon_.get(), id);
    json::value upstream = Get(upstream_.daemon_.get(), *link);
    ASSERT_FALSE(upstream.is_null()) << "upstream has no checkpoint " << *link;
    EXPECT_EQ(json::serialize(Lifecycle(local)), json::serialize(Lifecycle(upstream)));
  }

  TempDir upstream_dir_{"ckptd-upstream"};
  TempDir local_dir_{"ckptd-local"};
  uint16_t upstream_port_ = 0;
  testing::InProcessDaemon upstream_;
  testing::InProcessDaemon local_;
};

TEST_F(FederationTest, HappyPathMirrorsEveryStepAndLinksIds) {
  StartUpstream();
  StartLocal();
  std::string id = Create("train-42");
  ExpectMirrored(id);
  json::value up = Get(upstream_.daemon_.get(), *LinkOf(id));
  EXPECT_EQ(up.at("status"), "initializing");

  Info(id, "NVIDIA H100 80GB HBM3");
  ExpectMirrored(id);
  EXPECT_EQ(Get(upstream_.daemon_.get(), *LinkOf(id)).at("status"), "updated_info");
  // A refresh of info while updated_info is mirrored too.
  Info(id, "NVIDIA H200");
  ExpectMirrored(id);
  EXPECT_EQ(Get(upstream_.daemon_.get(), *LinkOf(id)).at("gpu"), "NVIDIA H200");

  Uploaded(id);
  ExpectMirrored(id);
  EXPECT_EQ(Get(upstream_.daemon_.get(), *LinkOf(id)).at("status"), "ready");
  Deprecate(id);
  ExpectMirrored(id);
  EXPECT_EQ(Get(upstream_.daemon_.get(), *LinkOf(id)).at("status"), "deprecated");

  // One upstream checkpoint, no leftover rows (linking the id wrote none).
  EXPECT_EQ(UpstreamCount(), 1u);
  EXPECT_EQ(OutboxRows(local_.daemon_->db()), 0u);
  auto h = local_.daemon_->Health().at("upstream");
  EXPECT_EQ(h.at("enabled"), true);
  EXPECT_EQ(h.at("pending"), 0);
  EXPECT_TRUE(h.at("last_error").is_null()) << json::serialize(h);
  EXPECT_EQ(h.at("url"), json::value("http://127.0.0.1:" + std::to_string(upstream_port_)));
}

TEST_F(FederationTest, UpstreamDownDuringCheckpointThenBackConverges) {
  StartLocal();  // the upstream is not running yet
  std::string a = Create("a");
  Info(a, "none");
  Uploaded(a);
  Deprecate(a);
  std::string b = Create("b");
  Info(b, "NVIDIA A100");
  // 4 events for a, 2 for b, all held while the upstream is down.
  ASSERT_TRUE(Eventually([&] {
    auto h = local_.daemon_->Health().at("upstream");
    return !h.at("last_error").is_null() && h.at("pending") == 6;
  })) << json::serialize(local_.daemon_->Health());
  EXPECT_FALSE(LinkOf(a).has_value());
  EXPECT_EQ(OutboxRows(local_.daemon_->db()), 6u);

  StartUpstream();  // back, on the same port
  ExpectMirrored(a);
  ExpectMirrored(b);
  EXPECT_EQ(Get(upstream_.daemon_.get(), *LinkOf(a)).at("status"), "deprecated");
  EXPECT_EQ(Get(upstream_.daemon_.get(), *LinkOf(b)).at("status"), "updated_info");
  EXPECT_EQ(UpstreamCount(), 2u);
  EXPECT_EQ(OutboxRows(local_.daemon_->db()), 0u);
  EXPECT_TRUE(local_.daemon_->Health().at("upstream").at("last_error").is_null());
}

TEST_F(FederationTest, UpstreamStopsMidwayThenRestartsOnSamePort) {
  StartUpstream();
  StartLocal();
  std::string id = Create("midway");
  Info(id, "NVIDIA H100");
  ExpectMirrored(id);
  std::string uid = *LinkOf(id);

  upstream_.Stop();  // down mid-lifecycle
  Uploaded(id);
  Deprecate(id);
  ASSERT_TRUE(Eventually([&] {
    auto h = local_.daemon_->Health().at("upstream");
    return !h.at("last_error").is_null() && h.at("pending") == 2;
  })) << json::serialize(local_.daemon_->Health());

  StartUpstream();  // same data dir and port
  ExpectMirrored(id);
  EXPECT_EQ(*LinkOf(id), uid);  // the same upstream checkpoint, not a new one
  EXPECT_EQ(Get(upstream_.daemon_.get(), uid).at("status"), "deprecated");
  EXPECT_EQ(UpstreamCount(), 1u);
}

TEST_F(FederationTest, LocalRestartWithPendingEventsLosesNothing) {
  StartLocal();
  std::string id = Create("restart");
  Info(id, "none");
  Uploaded(id);
  ASSERT_EQ(local_.daemon_->upstream_mirror()->pending(), 3);

  local_.Stop();  // stop with 3 undelivered events
  StartLocal();
  EXPECT_EQ(local_.daemon_->upstream_mirror()->pending(), 3);
  EXPECT_EQ(OutboxRows(local_.daemon_->db()), 3u);
  // New events continue the sequence after the surviving ones.
  Deprecate(id);
  EXPECT_EQ(local_.daemon_->upstream_mirror()->pending(), 4);

  StartUpstream();
  ExpectMirrored(id);
  EXPECT_EQ(Get(upstream_.daemon_.get(), *LinkOf(id)).at("status"), "deprecated");
  EXPECT_EQ(UpstreamCount(), 1u);
}

// A crash between the upstream applying an event and the row's deletion
// re-sends it on restart: simulated by putting replayed rows back into the
// outbox of a stopped daemon.
TEST_F(FederationTest, ReplayedEventsAfterCrashAreIdempotent) {
  StartUpstream();
  StartLocal();
  std::string id = Create("replay");
  Info(id, "none");
  Uploaded(id);
  ExpectMirrored(id);
  std::string uid = *LinkOf(id);
  local_.Stop();
  {
    auto db = Db::Open(LocalConfig().DbDir());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    rocksdb::WriteBatch batch;
    auto key = [](uint64_t seq) {
      std::string k = "q/";
      for (int s = 56; s >= 0; s -= 8) k += static_cast<char>((seq >> s) & 0xff);
      return k;
    };
    auto h = (*db)->Handle(cf::kOutbox);
    ASSERT_TRUE(batch.Put(h, key(1000), json::serialize(json::object{{"id", id},
                                                                      {"event", "create"},
                                                                      {"payload", json::object{{"name", "replay"}}},
                                                                      {"at", 0}}))
                    .ok());
    ASSERT_TRUE(batch.Put(h, key(1001), json::serialize(json::object{{"id", id},
                                                                      {"event", "info"},
                                                                      {"payload", json::object{{"gpu", "none"},
                                                                                               {"platform", "linux"},
                                                                                               {"info", nullptr}}},
                                                                      {"at", 0}}))
                    .ok());
    ASSERT_TRUE(batch.Put(h, key(1002),
                          json::serialize(json::object{
                              {"id", id},
                              {"event", "uploaded"},
                              {"payload", json::object{{"restore_path", "s3://bucket/ckpt/" + id},
                                                       {"checksum", "sha256:abcd"}}},
                              {"at", 0}}))
                    .ok());
    ASSERT_TRUE((*db)->Write(&batch).ok());
  }
  StartLocal();  // the sender picks the replayed rows up at once
  // create is skipped (linked), info and uploaded answer 409 (upstream ready).
  ExpectMirrored(id);
  EXPECT_EQ(OutboxRows(local_.daemon_->db()), 0u);
  EXPECT_EQ(*LinkOf(id), uid);
  EXPECT_EQ(UpstreamCount(), 1u);
  EXPECT_EQ(Get(upstream_.daemon_.get(), uid).at("status"), "ready");
  // 409s are taken as applied, not reported as dropped events.
  EXPECT_TRUE(local_.daemon_->Health().at("upstream").at("last_error").is_null())
      << json::serialize(local_.daemon_->Health());
  Deprecate(id);
  ExpectMirrored(id);
}

TEST_F(FederationTest, UnreachableUpstreamDoesNotBlockLocalApi) {
  StartLocal();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) Create("n" + std::to_string(i));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(local_.daemon_->upstream_mirror()->pending(), 20);
}

TEST_F(FederationTest, DisabledWritesNoOutboxRows) {
  StartUpstream();
  StartLocal(TestConfig(local_dir_.path()));  // no upstream_url
  EXPECT_EQ(local_.daemon_->upstream_mirror(), nullptr);
  std::string id = Create("off");
  Info(id, "none");
  Uploaded(id);
  Deprecate(id);
  EXPECT_EQ(OutboxKeys(local_.daemon_->db()), 0u);
  EXPECT_FALSE(LinkOf(id).has_value());
  EXPECT_EQ(UpstreamCount(), 0u);
  auto h = local_.daemon_->Health().at("upstream");
  EXPECT_EQ(h.at("enabled"), false);
  EXPECT_EQ(h.at("pending"), 0);
}

TEST_F(FederationTest, BadUpstreamUrlFailsStart) {
  Config c = LocalConfig();
  c.upstream_url = "https://upstream.example:443";
  Daemon d(c);
  auto st = d.Start();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("http://"), std::string::npos) << st.ToString();
}

// Which local changes make events: only lifecycle changes, never the link
// or cleanup bookkeeping.
TEST(UpstreamEvents, OnlyLifecycleChangesMakeEvents) {
  auto kinds = [](const CheckpointRecord* b, const CheckpointRecord* a) {
    std::string out;
    for (const auto& e : UpstreamMirror::EventsFor(b, a)) out += (out.empty() ? "" : ",") + e.kind;
    return out;
  };
  CheckpointRecord r;
  r.id = NewUuid();
  EXPECT_EQ(kinds(nullptr, &r), "create");
  EXPECT_EQ(kinds(&r, nullptr), "");

  CheckpointRecord linked = r;
  linked.upstream_id = NewUuid();
  linked.updated_at_ms = 99;
  EXPECT_EQ(kinds(&r, &linked), "");

  CheckpointRecord info = r;
  ASSERT_TRUE(info.TransitionTo(CheckpointStatus::kUpdatedInfo, 1).ok());
  info.gpu = "none";
  EXPECT_EQ(kinds(&r, &info), "info");
  EXPECT_EQ(kinds(&info, &info), "");
  CheckpointRecord refreshed = info;
  refreshed.gpu = "H100";
  EXPECT_EQ(kinds(&info, &refreshed), "info");

  CheckpointRecord possibly = info;
  ASSERT_TRUE(possibly.TransitionTo(CheckpointStatus::kPossiblyUploaded, 2).ok());
  EXPECT_EQ(kinds(&info, &possibly), "");
  CheckpointRecord ready = possibly;
  ASSERT_TRUE(ready.TransitionTo(CheckpointStatus::kReady, 3).ok());
  ready.restore_path = "/images/x";
  EXPECT_EQ(kinds(&possibly, &ready), "uploaded");
  EXPECT_EQ(kinds(&info, &ready), "uploaded");
  CheckpointRecord cleaned = ready;
  cleaned.cleaned_at_ms = 5;
  EXPECT_EQ(kinds(&ready, &cleaned), "");

  CheckpointRecord failed = info;
  ASSERT_TRUE(failed.TransitionTo(CheckpointStatus::kDeprecated, 4).ok());
  failed.info = json::object{{"error", "criu dump: boom"}};
  EXPECT_EQ(kinds(&info, &failed), "info,deprecate");
  CheckpointRecord dep = ready;
  ASSERT_TRUE(dep.TransitionTo(CheckpointStatus::kDeprecated, 6).ok());
  EXPECT_EQ(kinds(&ready, &dep), "deprecate");
  EXPECT_EQ(kinds(&dep, &dep), "");
}

}  // namespace
}  // namespace ckptd::testing
