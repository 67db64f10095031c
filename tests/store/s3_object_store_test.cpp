// S3-only behaviour against a real s3rver: authentication (a signing bug
// must fail here), fault handling mid multipart upload, abort on failure.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "store/digest.h"
#include "store/s3_client.h"
#include "store/s3_object_store.h"
#include "tests/testing/s3rver_fixture.h"
#include "tests/testing/test_util.h"

namespace ckptd {
namespace {

using testing::RandomBytes;
using testing::S3rverProcess;

constexpr uint64_t kPart = 128 << 10;

std::unique_ptr<S3ObjectStore> OpenStore(const S3Config& cfg) {
  auto s = S3ObjectStore::Open(cfg);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

S3Config SmallParts(S3Config c) {
  c.part_size = kPart;
  c.allow_small_parts = true;
  c.max_in_flight = 2;
  return c;
}

TEST(S3ObjectStoreTest, S3rverIsInstalled) {
  auto bin = testing::FindS3rver();
  ASSERT_TRUE(bin.ok()) << bin.status().message();
}

TEST(S3ObjectStoreTest, CorrectSignatureIsAccepted) {
  S3rverProcess server;
  ASSERT_TRUE(server.Start().ok());
  // Keys that need encoding in path and query (space, plus, unicode, '=').
  auto store = OpenStore(server.Config("pre fix+/"));
  ASSERT_TRUE(store);
  std::string key = "weird key+=&/\xc3\xa9t\xc3\xa9~(1).img";
  ASSERT_TRUE(store->PutBytes(key, "x").ok());
  auto got = store->GetBytes(key);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "x");
  auto page = store->List("weird key+=");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, key);
}

// A credential the server does not accept: every request is refused with
// S3's error code, and nothing is written.
struct BadCredential {
  const char* name;
  void (*spoil)(S3Config&);
  const char* s3_error;
};

void PrintTo(const BadCredential& c, std::ostream* os) { *os << c.name; }

class S3CredentialTest : public ::testing::TestWithParam<BadCredential> {};

TEST_P(S3CredentialTest, IsRejected) {
  S3rverProcess server;
  ASSERT_TRUE(server.Start().ok());
  S3Config cfg = server.Config();
  GetParam().spoil(cfg);
  auto store = OpenStore(cfg);
  ASSERT_TRUE(store);
  Status st = store->PutBytes("a", "data");
  EXPECT_EQ(st.code(), Code::kUnauthenticated) << st.ToString();
  EXPECT_NE(st.message().find(GetParam().s3_error), std::string::npos) << st.message();
  EXPECT_EQ(store->Head("a").status().code(), Code::kUnauthenticated);
  EXPECT_EQ(store->List("").status().code(), Code::kUnauthenticated);
  // Nothing was written under a bad signature.
  auto good = OpenStore(server.Config());
  ASSERT_TRUE(good);
  EXPECT_EQ(good->Head("a").status().code(), Code::kNotFound);
}

INSTANTIATE_TEST_SUITE_P(
    Credentials, S3CredentialTest,
    ::testing::Values(BadCredential{"WrongSecret", [](S3Config& c) { c.secret_key = "not-the-secret"; },
                                    "SignatureDoesNotMatch"},
                      BadCredential{"WrongAccessKey", [](S3Config& c) { c.access_key = "NOSUCHKEY"; },
                                    "InvalidAccessKeyId"}),
    [](const auto& tp) { return std::string(tp.param.name); });

TEST(S3ObjectStoreTest, SessionTokenIsSigned) {
  S3rverProcess server;
  ASSERT_TRUE(server.Start().ok());
  S3Config cfg = server.Config();
  cfg.session_token = "token/with=chars";
  auto store = OpenStore(cfg);
  ASSERT_TRUE(store->PutBytes("tok", "1").ok());
  EXPECT_NE(server.ReadLog().find("PUT /ckpt"), std::string::npos);
}

TEST(S3ObjectStoreTest, LargeObjectUsesMultipartAndSmallUsesPut) {
  S3rverProcess server;
  ASSERT_TRUE(server.Start().ok());
  auto store = OpenStore(SmallParts(server.Config()));
  std::string data = RandomBytes(kPart * 5 + 3, 1);
  ASSERT_TRUE(store->PutBytes("big", data).ok());
  ASSERT_TRUE(store->PutBytes("small", "s").ok());
  std::string log = server.ReadLog();
  EXPECT_NE(log.find("POST /ckptd-test/big?uploads"), std::string::npos) << log;
  EXPECT_NE(log.find("partNumber=6"), std::string::npos) << log;
  EXPECT_EQ(log.find("partNumber=7"), std::string::npos) << log;
  EXPECT_EQ(log.find("/small?uploads"), std::string::npos) << log;
  auto got = store->GetBytes("big");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(Sha256::HexOf(*got), Sha256::HexOf(data));
}

TEST(S3ObjectStoreTest, FailedPartAbortsTheUpload) {
  S3rverProcess server({"CKPTD_S3_FAIL_PART=3"});
  ASSERT_TRUE(server.Start().ok());
  auto store = OpenStore(SmallParts(server.Config()));
  auto w = store->NewWriter("doomed");
  ASSERT_TRUE(w.ok());
  Status st;
  std::string data = RandomBytes(kPart * 6, 2);
  for (size_t off = 0; off < data.size() && st.ok(); off += 50'000) st = (*w)->Write(data.substr(off, 50'000));
  if (st.ok()) st = (*w)->Commit();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("InjectedFault"), std::string::npos) << st.ToString();
  EXPECT_EQ(store->Head("doomed").status().code(), Code::kNotFound);
  std::string log = server.ReadLog();
  EXPECT_NE(log.find("DELETE /ckptd-test/doomed?uploadId="), std::string::npos) << log;
  EXPECT_EQ(log.find("POST /ckptd-test/doomed?uploadId="), std::string::npos)
      << "CompleteMultipartUpload must not be sent after a failed part\n" << log;
  EXPECT_EQ(server.PendingUploads(), std::vector<std::string>{});
}

TEST(S3ObjectStoreTest, ServerStoppedMidMultipartFailsCleanly) {
  S3rverProcess server;
  ASSERT_TRUE(server.Start().ok());
  S3Config cfg = SmallParts(server.Config());
  cfg.max_retries = 2;
  cfg.connect_timeout_ms = 2000;
  auto store = OpenStore(cfg);
  auto w = store->NewWriter("interrupted");
  ASSERT_TRUE(w.ok());
  std::string data = RandomBytes(kPart * 8, 3);
  ASSERT_TRUE((*w)->Write(std::string_view(data).substr(0, kPart * 3)).ok());
  server.Stop();
  Status st;
  for (size_t off = kPart * 3; off < data.size() && st.ok(); off += 40'000)
    st = (*w)->Write(std::string_view(data).substr(off, 40'000));
  if (st.ok()) st = (*w)->Commit();
  ASSERT_FALSE(st.ok()) << "a writer must not report success with the server gone";
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("interrupted"), std::string::npos) << st.message();
  // Once the server is back, no object is visible under the key.
  ASSERT_TRUE(server.Start().ok());
  EXPECT_EQ(store->Head("interrupted").status().code(), Code::kNotFound);
  auto page = store->List("interrupted");
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->objects.empty());
  // The abort could not reach the server: its parts are still held, out of
  // sight of List. DeletePrefix (what cleanup runs) aborts them.
  EXPECT_FALSE(server.PendingUploads().empty()) << "the writer's abort reached a stopped server?";
  ASSERT_TRUE(store->PutBytes("interrupted-not", "other").ok());
  auto other = store->NewWriter("other/kept");
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->Write(std::string_view(data).substr(0, kPart * 2)).ok());  // an upload in progress
  size_t before = server.PendingUploads().size();
  ASSERT_GE(before, 2u);
  Status del = store->DeletePrefix("interrupted");
  ASSERT_TRUE(del.ok()) << del.ToString();
  EXPECT_EQ(server.PendingUploads().size(), 1u) << "only the upload under other/ may stay";
  EXPECT_NE(server.ReadLog().find("GET /ckptd-test?prefix=interrupted&uploads="), std::string::npos)
      << server.ReadLog();
  ASSERT_TRUE((*other)->Write(std::string_view(data).substr(kPart * 2, kPart)).ok());
  Status c = (*other)->Commit();
  EXPECT_TRUE(c.ok()) << c.ToString();
}

TEST(S3ObjectStoreTest, ServerRestartMidMultipartRetriesToSuccess) {
  S3rverProcess server;
  ASSERT_TRUE(server.Start().ok());
  S3Config cfg = SmallParts(server.Config());
  cfg.max_retries = 8;
  cfg.retry_base_ms = 200;
  cfg.retry_max_ms = 1000;
  auto store = OpenStore(cfg);
  auto w = store->NewWriter("resilient");
  ASSERT_TRUE(w.ok());
  std::string data = RandomBytes(kPart * 6 + 17, 4);
  ASSERT_TRUE((*w)->Write(std::string_view(data).substr(0, kPart * 2 + 5)).ok());
  server.Stop();
  std::thread restarter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    EXPECT_TRUE(server.Start().ok());
  });
  Status st;
  for (size_t off = kPart * 2 + 5; off < data.size() && st.ok(); off += 60'000)
    st = (*w)->Write(std::string_view(data).substr(off, 60'000));
  if (st.ok()) st = (*w)->Commit();
  restarter.join();
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto got = store->GetBytes("resilient");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(Sha256::HexOf(*got), Sha256::HexOf(data));
}

// 501 NotImplemented (an API the server lacks) will not go away: one
// request, no retries (DeletePrefix relies on it to skip
// ListMultipartUploads quickly on servers without it).
TEST(S3ObjectStoreTest, NotImplementedIsNotRetried) {
  S3rverProcess server;
  ASSERT_TRUE(server.Start().ok());
  S3Client client(server.Config());
  auto resp = client.Call(S3Request{"GET", "", {{"inventory", ""}}, {}, {}});
  ASSERT_FALSE(resp.ok());
  EXPECT_NE(resp.status().message().find("NotImplemented"), std::string::npos) << resp.status().ToString();
  std::string log = server.ReadLog();
  size_t n = 0;
  for (size_t pos = 0; (pos = log.find("?inventory=", pos)) != std::string::npos; ++pos) ++n;
  EXPECT_EQ(n, 1u) << log;
}

// Connections the server dropped while they sat in the pool (s3rver, as
// any Node server, closes idle keep-alive connections after 5 s) are not
// reused: after a pause, every request succeeds on its first attempt. Before
// the fix each retry took the next dropped connection from the pool, and a
// checkpoint after a quiet minute failed with "end of stream".
TEST(S3ObjectStoreTest, ConnectionsTheServerDroppedWhileIdleAreNotReused) {
  S3rverProcess server;
  ASSERT_TRUE(server.Start().ok());
  S3Config cfg = server.Config();
  cfg.max_retries = 0;
  auto store = OpenStore(cfg);
  ASSERT_TRUE(store);
  constexpr int kConns = 6;
  {
    // Requests at once leave that many connections in the pool.
    std::vector<std::thread> ts;
    for (int i = 0; i < kConns; ++i)
      ts.emplace_back([&, i] { EXPECT_TRUE(store->PutBytes("idle/" + std::to_string(i), "x").ok()); });
    for (auto& t : ts) t.join();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(6500));
  for (int i = 0; i < kConns; ++i) {
    auto h = store->Head("idle/" + std::to_string(i));
    EXPECT_TRUE(h.ok()) << i << ": " << h.status().ToString();
  }
}

TEST(S3ObjectStoreTest, UnreachableServerIsUnavailable) {
  S3Config cfg;
  cfg.endpoint = "http://127.0.0.1:1";  // nothing listens on port 1
  cfg.bucket = "b";
  cfg.access_key = "k";
  cfg.secret_key = "s";
  cfg.max_retries = 1;
  cfg.retry_base_ms = 1;
  auto store = OpenStore(cfg);
  auto h = store->Head("x");
  EXPECT_EQ(h.status().code(), Code::kUnavailable) << h.status().ToString();
  EXPECT_NE(h.status().message().find("127.0.0.1"), std::string::npos) << h.status().message();
}

}  // namespace
}  // namespace ckptd
