// Limits of the HTTP server: body and header sizes, malformed requests,
// keep-alive; the daemon keeps serving afterwards.
#include <boost/json.hpp>

#include "tests/testing/daemon_fixture.h"

namespace ckptd {
namespace {

namespace json = boost::json;
using testing::DaemonFixture;

using testing::RawExchange;

class ServerLimitsTest : public DaemonFixture {
 protected:
  void ExpectAlive() {
    auto r = Client()->Send("POST", "/v2/checkpoints");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200);
  }
};

TEST_F(ServerLimitsTest, SixtyFourMiBBodyIs413AndDaemonSurvives) {
  std::string big(64u << 20, 'x');
  auto r = Client()->Send("PUT", "/v2/checkpoints/info/3f2a0000-0000-4000-8000-000000000000", big);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 413);
  auto v = json::parse(r->body);
  EXPECT_EQ(v.at("code").as_string(), "413");
  EXPECT_NE(std::string(v.at("message").as_string()).find("limit"), std::string::npos);
  ExpectAlive();
}

TEST_F(ServerLimitsTest, ChunkedBodyOverTheLimitIs413) {
  std::string head = "POST /v2/checkpoints HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + daemon_->token() +
                     "\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string chunk(1 << 20, 'y');
  char size_line[32];
  snprintf(size_line, sizeof size_line, "%zx\r\n", chunk.size());
  std::string body;
  for (int i = 0; i < 3; ++i) body += size_line + chunk + "\r\n";
  body += "0\r\n\r\n";
  auto out = RawExchange(daemon_->port(), head + body);
  EXPECT_EQ(out.rfind("HTTP/1.1 413", 0), 0u) << out.substr(0, 200);
  ExpectAlive();
}

TEST_F(ServerLimitsTest, HugeHeadersAre431) {
  std::string req = "GET /v2/checkpoints HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(64 << 10, 'p') + "\r\n\r\n";
  auto out = RawExchange(daemon_->port(), req);
  EXPECT_EQ(out.rfind("HTTP/1.1 431", 0), 0u) << out.substr(0, 200);
  ExpectAlive();
}

TEST_F(ServerLimitsTest, GarbageIs400) {
  auto out = RawExchange(daemon_->port(), "NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out.substr(0, 200);
  ExpectAlive();
}

TEST_F(ServerLimitsTest, KeepAliveServesManyRequestsOnOneConnection) {
  std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string last = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  auto out = RawExchange(daemon_->port(), req + req + req + last);
  size_t count = 0;
  for (size_t pos = 0; (pos = out.find("HTTP/1.1 200", pos)) != std::string::npos; ++pos) ++count;
  EXPECT_EQ(count, 4u);
}

TEST_F(ServerLimitsTest, ExpectContinueIsHonoured) {
  std::string body = R"({"name":"expect"})";
  std::string req = "POST /v2/checkpoints HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + daemon_->token() +
                    "\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nConnection: close\r\n"
                    "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  auto out = RawExchange(daemon_->port(), req);
  EXPECT_EQ(out.rfind("HTTP/1.1 100 Continue", 0), 0u) << out.substr(0, 200);
  EXPECT_NE(out.find("HTTP/1.1 200"), std::string::npos);
}

TEST_F(ServerLimitsTest, EventLoopResponsivenessForTheWatchdog) {
  EXPECT_TRUE(daemon_->Responsive());
  daemon_->Stop();
  EXPECT_FALSE(daemon_->Responsive());
}

}  // namespace
}  // namespace ckptd
