// One HTTP connection's edge cases (api/session.cpp): a request without the
// token is refused on its header alone, before any body byte is read and
// without a 100 Continue; transfer codings, chunk syntax, repeated
// Authorization headers; a connection's first request gets the read
// timeout, not the idle one.
#include <chrono>

#include <boost/json.hpp>

#include "tests/testing/daemon_fixture.h"

namespace ckptd {
namespace {

using namespace std::chrono_literals;
using testing::DaemonFixture;
using testing::RawExchange;

class SessionTest : public DaemonFixture {
 protected:
  std::string Auth() const { return "Authorization: Bearer " + daemon_->token() + "\r\n"; }
  // Sends `request` as raw bytes; the answer, whose status line must be
  // HTTP/1.1 `code`.
  std::string ExpectAnswer(const std::string& request, int code, std::chrono::seconds wait = 5s) {
    std::string out = RawExchange(daemon_->port(), request, wait);
    EXPECT_EQ(out.rfind("HTTP/1.1 " + std::to_string(code), 0), 0u) << out.substr(0, 200);
    return out;
  }
};

TEST_F(SessionTest, UnauthenticatedBodyIsNeitherReadNorWaitedFor) {
  // 60 MB announced, none sent: the 401 must come from the header alone.
  std::string head =
      "POST /checkpoints/put HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 60000000\r\n\r\n";
  auto t0 = std::chrono::steady_clock::now();
  std::string out = ExpectAnswer(head, 401, 3s);
  EXPECT_NE(out.find("WWW-Authenticate: Bearer"), std::string::npos) << out.substr(0, 300);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

TEST_F(SessionTest, NoContinueWithoutTheToken) {
  std::string head = "POST /v2/checkpoints HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n";
  std::string out = ExpectAnswer(head, 401, 3s);
  EXPECT_EQ(out.find("100 Continue"), std::string::npos) << out.substr(0, 200);
  // With it, the continue comes (and then the answer).
  std::string body = R"({"name":"x"})";
  std::string ok = "POST /v2/checkpoints HTTP/1.1\r\nHost: x\r\n" + Auth() +
                   "Expect: 100-continue\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) +
                   "\r\n\r\n" + body;
  out = RawExchange(daemon_->port(), ok);
  EXPECT_EQ(out.rfind("HTTP/1.1 100 Continue", 0), 0u) << out.substr(0, 200);
}

TEST_F(SessionTest, UnknownRouteWithoutTheTokenIs401) {
  std::string out = ExpectAnswer("GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 401);
}

TEST_F(SessionTest, TwoAuthorizationHeadersAre400) {
  std::string req = "GET /v2/checkpoints HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n" + Auth() +
                    "Connection: close\r\n\r\n";
  std::string out = ExpectAnswer(req, 400);
  EXPECT_NE(out.find("more than one Authorization"), std::string::npos) << out;
}

TEST_F(SessionTest, TransferCodingsOtherThanChunkedAre501) {
  std::string req =
      "POST /v2/checkpoints HTTP/1.1\r\nHost: x\r\n" + Auth() + "Transfer-Encoding: gzip\r\nConnection: close\r\n\r\n";
  std::string out = ExpectAnswer(req, 501);
  req = "POST /v2/checkpoints HTTP/1.1\r\nHost: x\r\n" + Auth() +
        "Transfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n";
  out = ExpectAnswer(req, 501);
}

TEST_F(SessionTest, MalformedChunkSizeIs400) {
  std::string req = "POST /v2/checkpoints HTTP/1.1\r\nHost: x\r\n" + Auth() +
                    "Transfer-Encoding: chunked\r\n\r\nzz-not-hex\r\nabc\r\n0\r\n\r\n";
  std::string out = ExpectAnswer(req, 400);
}

TEST_F(SessionTest, TargetThatIsNotUtf8OnceDecodedIs400) {
  // Found by fuzz_api_json: the agent route echoed the thread id into its
  // JSON answer, which was then not JSON.
  std::string out = ExpectAnswer("GET /threads/t%CD1/state/checkpoint HTTP/1.1\r\nHost: x\r\n" + Auth() + "\r\n", 400);
  EXPECT_NE(out.find("not UTF-8"), std::string::npos) << out.substr(0, 300);
  ExpectAnswer("GET /v2/checkpoints?ids=%FF HTTP/1.1\r\nHost: x\r\n" + Auth() + "\r\n", 400);
  // Percent-encoded UTF-8 passes: the route itself answers (422, no body).
  ExpectAnswer(
      "POST /threads/caf%C3%A9/state/checkpoint HTTP/1.1\r\nHost: x\r\n" + Auth() + "Content-Length: 0\r\n\r\n", 422);
}

TEST_F(SessionTest, BodyNumberBeyondDoubleIsRefusedAndNothingIsPoisoned) {
  // Found by fuzz_api_json: 1e3081 parsed to infinity, was stored as the
  // non-JSON "Infinity", and every later read of the record was a 500.
  std::string create = R"({"name":"inf"})";
  std::string out =
      ExpectAnswer("POST /v2/checkpoints HTTP/1.1\r\nHost: x\r\n" + Auth() +
                       "Connection: close\r\nContent-Length: " + std::to_string(create.size()) + "\r\n\r\n" + create,
                   200);
  std::string id = out.substr(out.find("\r\n\r\n") + 4);
  ASSERT_EQ(id.size(), 36u) << out;
  std::string info = R"({"gpu":"","platform":"linux/amd64","info":{"pid":1e3081}})";
  out = ExpectAnswer("PUT /v2/checkpoints/info/" + id + " HTTP/1.1\r\nHost: x\r\n" + Auth() +
                         "Content-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                         std::to_string(info.size()) + "\r\n\r\n" + info,
                     400);
  EXPECT_NE(out.find("out of range"), std::string::npos) << out.substr(0, 400);
  ExpectAnswer("GET /v2/checkpoints/" + id + " HTTP/1.1\r\nHost: x\r\n" + Auth() + "Connection: close\r\n\r\n", 200);
  // The agent routes answer as their spec does: 422, finite_number.
  std::string put = R"({"thread_id":"t","checkpoint_ns":"","checkpoint":{"v":1,"x":-1e400}})";
  out = ExpectAnswer("POST /checkpoints/put HTTP/1.1\r\nHost: x\r\n" + Auth() +
                         "Content-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                         std::to_string(put.size()) + "\r\n\r\n" + put,
                     422);
  EXPECT_NE(out.find("finite_number"), std::string::npos) << out.substr(0, 400);
}

TEST(SessionTimeoutTest, FirstRequestGetsTheReadTimeoutNotTheIdleOne) {
  testing::TempDir dir;
  Config c = testing::TestConfig(dir.path());
  c.read_timeout_s = 1;
  c.idle_timeout_s = 30;
  Daemon d(c);
  ASSERT_TRUE(d.Start().ok());
  auto t0 = std::chrono::steady_clock::now();
  std::string out = RawExchange(d.port(), "GET /healthz HTTP/1.1\r\nHo", 20s);  // a header that never ends
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 10s) << "the half-sent header was given the idle timeout";
  EXPECT_GE(took, 900ms);
}

}  // namespace
}  // namespace ckptd
