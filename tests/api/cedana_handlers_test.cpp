// The Cedana /v2/checkpoints endpoints over real HTTP on loopback.
#include <sys/stat.h>

#include <set>
#include <thread>

#include <boost/json.hpp>

#include "tests/testing/daemon_fixture.h"

namespace ckptd {
namespace {

namespace json = boost::json;
using testing::DaemonFixture;

const std::string kUnknownId = "3f2a0000-0000-4000-8000-000000000000";

class CedanaApiTest : public DaemonFixture {
 protected:
  std::string Create(const std::string& body = "") {
    auto r = Client()->Send("POST", "/v2/checkpoints", body);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200) << r->body;
    return r->body;
  }
  json::value GetOne(const std::string& id) {
    auto r = Client()->Send("GET", "/v2/checkpoints?ids=" + id);
    EXPECT_EQ(r->status, 200);
    auto arr = json::parse(r->body).as_array();
    EXPECT_EQ(arr.size(), 1u);
    return arr.empty() ? json::value() : arr[0];
  }
  void ExpectApiError(const api::ClientResponse& r, int status) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.Header("content-type"), "application/json");
    auto v = json::parse(r.body);
    ASSERT_TRUE(v.is_object());
    EXPECT_TRUE(v.as_object().at("message").is_string());
    EXPECT_FALSE(v.as_object().at("message").as_string().empty());
    EXPECT_EQ(v.as_object().at("code").as_string(), std::to_string(status));
    EXPECT_TRUE(v.as_object().contains("details"));
  }
};

TEST_F(CedanaApiTest, HealthNeedsNoToken) {
  auto r = Client("")->Send("GET", "/healthz");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body).at("status").as_string(), "ok");
}

TEST_F(CedanaApiTest, EveryOtherRouteNeedsTheToken) {
  for (auto [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/v2/checkpoints"},
           {"POST", "/v2/checkpoints"},
           {"PATCH", "/v2/checkpoints/deprecate/" + kUnknownId},
           {"PUT", "/v2/checkpoints/info/" + kUnknownId},
           {"POST", "/v2/checkpoints/uploaded/" + kUnknownId},
           {"GET", "/openapi.json"},
           {"GET", "/no/such/route"}}) {
    auto none = Client("")->Send(method, path);
    ExpectApiError(*none, 401);
    EXPECT_EQ(none->Header("www-authenticate"), "Bearer");
    auto wrong = Client(daemon_->token() + "x")->Send(method, path);
    ExpectApiError(*wrong, 401);
    auto prefix = Client(daemon_->token().substr(0, 10))->Send(method, path);
    ExpectApiError(*prefix, 401);
  }
  auto basic = Client("")->Send("GET", "/v2/checkpoints", "", "", {{"Authorization", "Basic Zm9vOmJhcg=="}});
  ExpectApiError(*basic, 401);
}

TEST_F(CedanaApiTest, TokenFileIsCreatedPrivate) {
  struct stat st {};
  ASSERT_EQ(stat((dir_.File("token")).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(daemon_->token().size(), 64u);
}

TEST_F(CedanaApiTest, CreateReturnsPlainUuidInitializing) {
  auto r = Client()->Send("POST", "/v2/checkpoints");
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("content-type"), "text/plain; charset=utf-8");
  EXPECT_TRUE(IsUuid(r->body)) << r->body;
  auto c = GetOne(r->body);
  EXPECT_EQ(c.at("id").as_string(), r->body);
  EXPECT_EQ(c.at("status").as_string(), "initializing");
  EXPECT_EQ(c.at("gpu").as_string(), "");
  EXPECT_TRUE(c.at("checksum").is_null());
  EXPECT_TRUE(c.at("restore_path").is_null());
  EXPECT_TRUE(c.at("name").is_null());
  EXPECT_TRUE(c.at("created_at").is_string());
  EXPECT_TRUE(c.at("updated_at").is_string());
}

TEST_F(CedanaApiTest, CreateWithNameAndBadBodies) {
  auto id = Create(R"({"name":"llama-train"})");
  EXPECT_EQ(GetOne(id).at("name").as_string(), "llama-train");
  ExpectApiError(*Client()->Send("POST", "/v2/checkpoints", "{not json"), 400);
  ExpectApiError(*Client()->Send("POST", "/v2/checkpoints", R"({"name":5})"), 400);
  ExpectApiError(*Client()->Send("POST", "/v2/checkpoints", "[1,2]"), 400);
  ExpectApiError(*Client()->Send("POST", "/v2/checkpoints", json::serialize(json::object{{"name", std::string(300, 'n')}})), 400);
}

TEST_F(CedanaApiTest, FullLifecycle) {
  auto id = Create();
  auto info = Client()->Send("PUT", "/v2/checkpoints/info/" + id,
                             R"({"gpu":"H100","platform":"linux/amd64 6.18","info":{"pid":42,"tags":["a"]}})");
  ASSERT_EQ(info->status, 200) << info->body;
  EXPECT_EQ(info->body, id);
  EXPECT_EQ(info->Header("content-type"), "text/plain; charset=utf-8");
  auto c = GetOne(id);
  EXPECT_EQ(c.at("status").as_string(), "updated_info");
  EXPECT_EQ(c.at("gpu").as_string(), "H100");
  EXPECT_EQ(c.at("platform").as_string(), "linux/amd64 6.18");
  EXPECT_EQ(c.at("info").at("pid").as_int64(), 42);

  auto up = Client()->Send("POST", "/v2/checkpoints/uploaded/" + id, R"({"restore_path":"s3://bucket/ckpt/1/"})");
  ASSERT_EQ(up->status, 200) << up->body;
  EXPECT_EQ(up->body, id);
  c = GetOne(id);
  EXPECT_EQ(c.at("status").as_string(), "ready");
  EXPECT_EQ(c.at("restore_path").as_string(), "s3://bucket/ckpt/1/");

  auto dep = Client()->Send("PATCH", "/v2/checkpoints/deprecate/" + id);
  ASSERT_EQ(dep->status, 200);
  EXPECT_EQ(dep->body, id);
  EXPECT_EQ(GetOne(id).at("status").as_string(), "deprecated");
  // Deprecating again is harmless.
  EXPECT_EQ(Client()->Send("PATCH", "/v2/checkpoints/deprecate/" + id)->status, 200);
  // The extension: GET by id, with the transition history.
  auto one = Client()->Send("GET", "/v2/checkpoints/" + id);
  ASSERT_EQ(one->status, 200);
  EXPECT_EQ(json::parse(one->body).at("history").as_array().size(), 4u);
}

TEST_F(CedanaApiTest, IllegalTransitionsAre409) {
  auto id = Create();
  // uploaded before info
  ExpectApiError(*Client()->Send("POST", "/v2/checkpoints/uploaded/" + id, R"({"restore_path":"x"})"), 409);
  ASSERT_EQ(Client()->Send("PATCH", "/v2/checkpoints/deprecate/" + id)->status, 200);
  // info on a deprecated checkpoint
  ExpectApiError(*Client()->Send("PUT", "/v2/checkpoints/info/" + id, R"({"gpu":"none","platform":"p"})"), 409);
  ExpectApiError(*Client()->Send("POST", "/v2/checkpoints/uploaded/" + id, R"({"restore_path":null})"), 409);
  EXPECT_EQ(GetOne(id).at("status").as_string(), "deprecated");

  auto ready = Create();
  ASSERT_EQ(Client()->Send("PUT", "/v2/checkpoints/info/" + ready, R"({"gpu":"none","platform":"p"})")->status, 200);
  ASSERT_EQ(Client()->Send("POST", "/v2/checkpoints/uploaded/" + ready, "{}")->status, 200);
  ExpectApiError(*Client()->Send("POST", "/v2/checkpoints/uploaded/" + ready, "{}"), 409);
  ExpectApiError(*Client()->Send("PUT", "/v2/checkpoints/info/" + ready, R"({"gpu":"none","platform":"p"})"), 409);
}

TEST_F(CedanaApiTest, MalformedInputIs400) {
  auto id = Create();
  ExpectApiError(*Client()->Send("PATCH", "/v2/checkpoints/deprecate/not-a-uuid"), 400);
  ExpectApiError(*Client()->Send("PUT", "/v2/checkpoints/info/not-a-uuid", R"({"gpu":"a","platform":"b"})"), 400);
  ExpectApiError(*Client()->Send("POST", "/v2/checkpoints/uploaded/zzz", "{}"), 400);
  ExpectApiError(*Client()->Send("PUT", "/v2/checkpoints/info/" + id, R"({"platform":"b"})"), 400);
  ExpectApiError(*Client()->Send("PUT", "/v2/checkpoints/info/" + id, R"({"gpu":"a"})"), 400);
  ExpectApiError(*Client()->Send("PUT", "/v2/checkpoints/info/" + id, R"({"gpu":1,"platform":"b"})"), 400);
  ExpectApiError(*Client()->Send("PUT", "/v2/checkpoints/info/" + id, "gpu=a"), 400);
  ExpectApiError(*Client()->Send("PUT", "/v2/checkpoints/info/" + id, ""), 400);
  ExpectApiError(*Client()->Send("POST", "/v2/checkpoints/uploaded/" + id, ""), 400);
  ExpectApiError(*Client()->Send("POST", "/v2/checkpoints/uploaded/" + id, R"({"restore_path":7})"), 400);
  ExpectApiError(*Client()->Send("GET", "/v2/checkpoints?ids=" + id + ",nope"), 400);
  ExpectApiError(*Client()->Send("GET", "/v2/checkpoints?ids="), 400);
  ExpectApiError(*Client()->Send("GET", "/v2/checkpoints?ids=" + id + ",,"), 400);
  ExpectApiError(*Client()->Send("GET", "/v2/checkpoints/nope"), 400);
  ExpectApiError(*Client()->Send("GET", "/v2/checkpoints?limit=0"), 400);
  ExpectApiError(*Client()->Send("GET", "/v2/checkpoints?limit=1001"), 400);
  ExpectApiError(*Client()->Send("GET", "/v2/checkpoints?limit=x"), 400);
  ExpectApiError(*Client()->Send("GET", "/v2/checkpoints?limit=5&cursor=abc"), 400);
  // Nothing above changed the record.
  EXPECT_EQ(GetOne(id).at("status").as_string(), "initializing");
}

TEST_F(CedanaApiTest, UnknownIdsAre404OrSkippedInLists) {
  ExpectApiError(*Client()->Send("PATCH", "/v2/checkpoints/deprecate/" + kUnknownId), 404);
  ExpectApiError(*Client()->Send("PUT", "/v2/checkpoints/info/" + kUnknownId, R"({"gpu":"a","platform":"b"})"), 404);
  ExpectApiError(*Client()->Send("POST", "/v2/checkpoints/uploaded/" + kUnknownId, "{}"), 404);
  ExpectApiError(*Client()->Send("GET", "/v2/checkpoints/" + kUnknownId), 404);
  auto id = Create();
  auto r = Client()->Send("GET", "/v2/checkpoints?ids=" + kUnknownId + "," + id);
  ASSERT_EQ(r->status, 200);
  auto arr = json::parse(r->body).as_array();
  ASSERT_EQ(arr.size(), 1u);
  EXPECT_EQ(arr[0].at("id").as_string(), id);
  // Upper-case UUIDs name the same checkpoint.
  std::string upper = id;
  for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  EXPECT_EQ(Client()->Send("GET", "/v2/checkpoints?ids=" + upper)->body, r->body);
}

TEST_F(CedanaApiTest, UnknownRouteIs404WrongMethodIs405) {
  ExpectApiError(*Client()->Send("GET", "/v3/things"), 404);
  ExpectApiError(*Client()->Send("GET", "/v2/checkpoints/a/b/c"), 404);
  auto r = Client()->Send("DELETE", "/v2/checkpoints");
  ExpectApiError(*r, 405);
  EXPECT_EQ(r->Header("allow"), "GET, POST");
  auto r2 = Client()->Send("GET", "/v2/checkpoints/info/" + kUnknownId);
  ExpectApiError(*r2, 405);
  EXPECT_EQ(r2->Header("allow"), "PUT");
}

TEST_F(CedanaApiTest, ListAllStreamsEverythingAndPagesWithCursor) {
  std::vector<std::string> ids;
  for (int i = 0; i < 300; ++i) ids.push_back(Create());
  auto all = Client()->Send("GET", "/v2/checkpoints");
  ASSERT_EQ(all->status, 200);
  EXPECT_EQ(all->Header("transfer-encoding"), "chunked");
  auto arr = json::parse(all->body).as_array();
  ASSERT_EQ(arr.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(arr[i].at("id").as_string(), ids[i]);

  std::vector<std::string> paged;
  std::string cursor;
  for (int pages = 0; pages < 10; ++pages) {
    auto r = Client()->Send("GET", "/v2/checkpoints?limit=128" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(r->status, 200);
    auto page = json::parse(r->body);
    for (auto& v : page.as_array()) paged.push_back(std::string(v.at("id").as_string()));
    cursor = r->Header("x-next-cursor");
    if (cursor.empty()) break;
  }
  EXPECT_EQ(paged, ids);
}

TEST_F(CedanaApiTest, EmptyCatalogListsEmptyArray) {
  auto r = Client()->Send("GET", "/v2/checkpoints");
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body), json::array{});
}

TEST_F(CedanaApiTest, FourHundredConcurrentCreatesAreUniqueAndListed) {
  constexpr int kThreads = 400;
  std::vector<std::string> ids(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto c = api::HttpClient::Create(BaseUrl(), daemon_->token(), std::chrono::seconds(60));
      ready++;
      while (ready < kThreads) std::this_thread::yield();
      auto r = (*c)->Send("POST", "/v2/checkpoints");
      if (r.ok() && r->status == 200) ids[i] = r->body;
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), static_cast<size_t>(kThreads));
  EXPECT_FALSE(unique.count(""));
  auto all = json::parse(Client()->Send("GET", "/v2/checkpoints")->body).as_array();
  std::set<std::string> listed;
  for (auto& v : all) listed.insert(std::string(v.at("id").as_string()));
  EXPECT_EQ(listed, unique);
}

TEST_F(CedanaApiTest, RecordsSurviveARestart) {
  auto a = Create(R"({"name":"keep"})");
  ASSERT_EQ(Client()->Send("PUT", "/v2/checkpoints/info/" + a, R"({"gpu":"A100","platform":"p"})")->status, 200);
  auto b = Create();
  std::string token = daemon_->token();
  RestartDaemon();
  EXPECT_EQ(daemon_->token(), token);
  auto c = GetOne(a);
  EXPECT_EQ(c.at("status").as_string(), "updated_info");
  EXPECT_EQ(c.at("gpu").as_string(), "A100");
  EXPECT_EQ(c.at("name").as_string(), "keep");
  auto all = json::parse(Client()->Send("GET", "/v2/checkpoints")->body).as_array();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].at("id").as_string(), a);
  EXPECT_EQ(all[1].at("id").as_string(), b);
}

}  // namespace
}  // namespace ckptd
