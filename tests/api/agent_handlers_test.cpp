// The agent-state checkpoint endpoints' contracts, over real loopback HTTP.
#include <string>
#include <vector>

#include "api/meta_handlers.h"
#include "tests/testing/agent_fixture.h"

namespace ckptd {
namespace {

namespace json = boost::json;
using testing::AgentApiFixture;
using Ids = std::vector<std::string>;

class AgentApiTest : public AgentApiFixture {};

TEST_F(AgentApiTest, PutAnswersTheKeyAndDefaultsTheNamespace) {
  auto r = Post("/checkpoints/put", json::object{{"thread_id", "t1"}, {"checkpoint_id", "c1"},
                                                 {"checkpoint", json::object{{"id", "c1"}}}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body, (json::value{{"thread_id", "t1"}, {"checkpoint_ns", ""}, {"checkpoint_id", "c1"}}));
  auto t = GetTuple("t1", "");
  ASSERT_EQ(t.status, 200);
  EXPECT_EQ(t.body.at("checkpoint"), (json::value{{"id", "c1"}}));
  EXPECT_EQ(t.body.at("metadata"), json::object{});
  EXPECT_TRUE(t.body.at("parent_checkpoint_id").is_null());
  EXPECT_EQ(t.body.at("blobs"), json::array{});
  EXPECT_EQ(t.body.at("pending_writes"), json::array{});
}

TEST_F(AgentApiTest, PutReplacesCheckpointAndMetadataButBlobsAreInsertIfAbsent) {
  ASSERT_EQ(Put("t", "", "c1", CheckpointJson("c1", {{"a", "1"}}), {{"step", 1}}, {Blob("a", "1", "json", "\"old\"")})
                .status, 200);
  ASSERT_EQ(Put("t", "", "c1", CheckpointJson("c1", {{"a", "1"}}), {{"step", 2}}, {Blob("a", "1", "json", "\"new\"")},
                "c0").status, 200);
  auto t = GetTuple("t", "", "c1");
  ASSERT_EQ(t.status, 200);
  EXPECT_EQ(t.body.at("metadata"), (json::value{{"step", 2}}));
  EXPECT_EQ(t.body.at("parent_checkpoint_id"), "c0");
  ASSERT_EQ(t.body.at("blobs").as_array().size(), 1u);
  EXPECT_EQ(t.body.at("blobs").at(0).at("blob"), B64("\"old\""));
  EXPECT_EQ(ListIds({{"thread_id", "t"}}), Ids{"c1"});  // replaced, not duplicated
}

TEST_F(AgentApiTest, BlobsCarryOverFromOlderCheckpoints) {
  ASSERT_EQ(Put("t", "", "c1", CheckpointJson("c1", {{"a", "1"}, {"b", "1"}}), {},
                {Blob("a", "1", "json", "[1]"), Blob("b", "1", "msgpack", std::string("\x81\x00\xff", 3))})
                .status, 200);
  // c2 changes only `a`; `b` keeps version 1 and its blob is not sent again.
  ASSERT_EQ(Put("t", "", "c2", CheckpointJson("c2", {{"a", "2"}, {"b", "1"}}), {}, {Blob("a", "2", "json", "[1,2]")},
                "c1").status, 200);
  auto t = GetTuple("t", "");  // latest
  ASSERT_EQ(t.status, 200);
  EXPECT_EQ(t.body.at("checkpoint_id"), "c2");
  EXPECT_EQ(t.body.at("blobs"), (json::array{Blob("a", "2", "json", "[1,2]"),
                                             Blob("b", "1", "msgpack", std::string("\x81\x00\xff", 3))}));
  auto t1 = GetTuple("t", "", "c1");
  EXPECT_EQ(t1.body.at("blobs"), (json::array{Blob("a", "1", "json", "[1]"),
                                              Blob("b", "1", "msgpack", std::string("\x81\x00\xff", 3))}));
}

TEST_F(AgentApiTest, NumericChannelVersionsAndNullBlobs) {
  json::array blobs{json::object{{"channel", "e"}, {"version", "3"}, {"type", "empty"}, {"blob", nullptr}},
                    Blob("f", "2.5", "json", "7")};
  ASSERT_EQ(Put("t", "", "c1", CheckpointJson("c1", {{"e", 3}, {"f", 2.5}}), {}, blobs).status, 200);
  auto t = GetTuple("t", "", "c1");
  EXPECT_EQ(t.body.at("blobs"), json::value(blobs));
}

TEST_F(AgentApiTest, PutWritesIgnoresExistingWritesWithoutUpsert) {
  ASSERT_EQ(PutSimple("t", "", "c1").status, 200);
  auto r = PutWrites("t", "", "c1", {Write("task", 0, "messages", "json", "1"), Write("task", 1, "x", "json", "2")});
  ASSERT_EQ(r.status, 204) << r.raw;
  EXPECT_TRUE(r.raw.empty());
  // A retry with other content leaves the stored writes alone.
  ASSERT_EQ(PutWrites("t", "", "c1", {Write("task", 0, "messages", "json", "99")}).status, 204);
  auto t = GetTuple("t", "", "c1");
  const auto& pw = t.body.at("pending_writes").as_array();
  ASSERT_EQ(pw.size(), 2u);
  EXPECT_EQ(pw[0].at("blob"), B64("1"));
  EXPECT_EQ(pw[0].at("task_path"), "");  // the default
}

TEST_F(AgentApiTest, PutWritesUpsertReplacesSpecialChannels) {
  ASSERT_EQ(PutSimple("t", "", "c1").status, 200);
  ASSERT_EQ(PutWrites("t", "", "c1", {Write("task", -1, "__error__", "json", "\"first\"")}, true).status, 204);
  ASSERT_EQ(PutWrites("t", "", "c1", {Write("task", -1, "__error__", "json", "\"second\"")}, true).status, 204);
  auto t = GetTuple("t", "", "c1");
  const auto& pw = t.body.at("pending_writes").as_array();
  ASSERT_EQ(pw.size(), 1u);
  EXPECT_EQ(pw[0].at("idx"), -1);
  EXPECT_EQ(pw[0].at("blob"), B64("\"second\""));
}

TEST_F(AgentApiTest, PendingWritesAreOrderedByTaskThenIdx) {
  ASSERT_EQ(PutSimple("t", "ns", "c1").status, 200);
  json::object w = Write("b", 2, "ch", "json", "1");
  w["task_path"] = "~__pregel_pull, node";
  ASSERT_EQ(PutWrites("t", "ns", "c1", {w, Write("b", 0, "ch", "json", "2"), Write("a", 5, "ch", "json", "3"),
                                        Write("b", -3, "__interrupt__", "json", "[]"), Write("a", 10, "ch", "json", "4")},
                      true).status, 204);
  auto t = GetTuple("t", "ns", "c1");
  std::vector<std::pair<std::string, int64_t>> got;
  for (const auto& x : t.body.at("pending_writes").as_array())
    got.emplace_back(std::string(x.at("task_id").as_string()), x.at("idx").as_int64());
  EXPECT_EQ(got, (std::vector<std::pair<std::string, int64_t>>{{"a", 5}, {"a", 10}, {"b", -3}, {"b", 0}, {"b", 2}}));
  EXPECT_EQ(t.body.at("pending_writes").at(4).at("task_path"), "~__pregel_pull, node");
  // Writes of another namespace or checkpoint are not included.
  EXPECT_TRUE(GetTuple("t", "", "c1").body.is_null());
}

TEST_F(AgentApiTest, ListIsNewestFirstAndBeforeIsExclusive) {
  for (std::string id : {"0003", "0001", "0005", "0002", "0004"}) ASSERT_EQ(PutSimple("t", "", id).status, 200);
  EXPECT_EQ(ListIds({{"thread_id", "t"}}), (Ids{"0005", "0004", "0003", "0002", "0001"}));
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"before_checkpoint_id", "0004"}}), (Ids{"0003", "0002", "0001"}));
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"checkpoint_ns", ""}, {"before_checkpoint_id", "0004"}, {"limit", 2}}),
            (Ids{"0003", "0002"}));
  // An id that is not stored still bounds the scan.
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"before_checkpoint_id", "00035"}}), (Ids{"0003", "0002", "0001"}));
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"before_checkpoint_id", "0001"}}), Ids{});
  // Prefixes order before longer ids: "0003" < "00031".
  ASSERT_EQ(PutSimple("t", "", "00031").status, 200);
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"limit", 3}}), (Ids{"0005", "0004", "00031"}));
}

TEST_F(AgentApiTest, NamespaceNullListsEveryNamespaceEmptyOnlyTheRoot) {
  ASSERT_EQ(PutSimple("t", "", "c1").status, 200);
  ASSERT_EQ(PutSimple("t", "sub:1", "c2").status, 200);
  ASSERT_EQ(PutSimple("t", "", "c3").status, 200);
  ASSERT_EQ(PutSimple("t", "sub:2", "c4").status, 200);
  ASSERT_EQ(PutSimple("other", "", "c5").status, 200);
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"checkpoint_ns", nullptr}}), (Ids{"c4", "c3", "c2", "c1"}));
  EXPECT_EQ(ListIds({{"thread_id", "t"}}), (Ids{"c4", "c3", "c2", "c1"}));
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"checkpoint_ns", ""}}), (Ids{"c3", "c1"}));
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"checkpoint_ns", "sub:1"}}), (Ids{"c2"}));
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"checkpoint_ns", nullptr}, {"before_checkpoint_id", "c4"}, {"limit", 2}}),
            (Ids{"c3", "c2"}));
  auto r = Post("/checkpoints/list", json::object{{"thread_id", "t"}, {"checkpoint_ns", "sub:2"}});
  ASSERT_EQ(r.body.as_array().size(), 1u);
  const auto& item = r.body.at(0).as_object();
  EXPECT_EQ(item.at("checkpoint_ns"), "sub:2");
  EXPECT_EQ(item.at("thread_id"), "t");
  EXPECT_FALSE(item.contains("blobs"));  // list items carry no blobs
  EXPECT_FALSE(item.contains("pending_writes"));
}

TEST_F(AgentApiTest, MissingThreadIdListsEveryThreadNewestFirst) {
  ASSERT_EQ(PutSimple("a", "", "c1").status, 200);
  ASSERT_EQ(PutSimple("b", "x", "c3").status, 200);
  ASSERT_EQ(PutSimple("c", "", "c2").status, 200);
  EXPECT_EQ(ListIds(json::object{}), (Ids{"c3", "c2", "c1"}));
  EXPECT_EQ(ListIds({{"thread_id", nullptr}, {"checkpoint_ns", ""}}), (Ids{"c2", "c1"}));
  EXPECT_EQ(ListIds({{"before_checkpoint_id", "c3"}, {"limit", 1}}), (Ids{"c2"}));
}

TEST_F(AgentApiTest, MetadataFilterIsJsonbContainment) {
  ASSERT_EQ(PutSimple("t", "", "c1", {{"source", "input"}, {"step", -1}, {"tags", json::array{"a", "b"}}}).status, 200);
  ASSERT_EQ(PutSimple("t", "", "c2", {{"source", "loop"}, {"step", 0},
                                      {"writes", json::object{{"agent", json::object{{"n", 1}, {"k", "v"}}}}},
                                      {"tags", json::array{"b", json::object{{"x", 1}, {"y", 2}}}}}).status, 200);
  ASSERT_EQ(PutSimple("t", "", "c3", {{"source", "loop"}, {"step", 1.0}, {"writes", nullptr}}).status, 200);
  auto ids = [&](json::value filter) { return ListIds({{"thread_id", "t"}, {"filter_metadata", filter}}); };
  EXPECT_EQ(ids(json::object{}), (Ids{"c3", "c2", "c1"}));  // an empty object filters nothing
  EXPECT_EQ(ids(nullptr), (Ids{"c3", "c2", "c1"}));
  EXPECT_EQ(ids({{"source", "loop"}}), (Ids{"c3", "c2"}));
  EXPECT_EQ(ids({{"step", 1}}), (Ids{"c3"}));  // numbers compare by value
  EXPECT_EQ(ids({{"source", "loop"}, {"step", 0}}), (Ids{"c2"}));
  EXPECT_EQ(ids({{"writes", {{"agent", {{"n", 1}}}}}}), (Ids{"c2"}));  // nested objects contain recursively
  EXPECT_EQ(ids({{"writes", {{"agent", {{"n", 2}}}}}}), Ids{});
  EXPECT_EQ(ids({{"writes", nullptr}}), (Ids{"c3"}));
  EXPECT_EQ(ids({{"tags", json::array{"b"}}}), (Ids{"c2", "c1"}));  // arrays contain element-wise
  EXPECT_EQ(ids({{"tags", json::array{"b", "a"}}}), (Ids{"c1"}));
  EXPECT_EQ(ids({{"tags", json::array{json::object{{"y", 2}}}}}), (Ids{"c2"}));
  EXPECT_EQ(ids({{"tags", "b"}}), Ids{});  // a scalar is not an array
  EXPECT_EQ(ids({{"missing", 1}}), Ids{});
  // The filter applies before the limit.
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"filter_metadata", {{"source", "input"}}}, {"limit", 1}}), (Ids{"c1"}));
}

TEST_F(AgentApiTest, LimitDefaultsTo100) {
  for (int i = 0; i < 120; ++i) {
    char id[8];
    snprintf(id, sizeof id, "%04d", i);
    ASSERT_EQ(PutSimple("t", "", id).status, 200);
  }
  auto ids = ListIds({{"thread_id", "t"}});
  ASSERT_EQ(ids.size(), 100u);
  EXPECT_EQ(ids.front(), "0119");
  EXPECT_EQ(ids.back(), "0020");
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"limit", 1000}}).size(), 120u);
}

TEST_F(AgentApiTest, GetTupleAnswersNullWhenAbsent) {
  auto r = GetTuple("nope", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.raw, "null");
  ASSERT_EQ(PutSimple("t", "ns", "c1").status, 200);
  EXPECT_EQ(GetTuple("t", "", nullptr).raw, "null");  // other namespace
  EXPECT_EQ(GetTuple("t", "ns", "c2").raw, "null");
  EXPECT_EQ(GetTuple("t", "ns", nullptr).body.at("checkpoint_id"), "c1");
  // checkpoint_ns defaults to "".
  EXPECT_EQ(Post("/checkpoints/get-tuple", json::object{{"thread_id", "t"}}).raw, "null");
}

TEST_F(AgentApiTest, DeleteThreadRemovesEveryNamespaceAndNothingElse) {
  for (std::string ns : {"", "a", "b"}) {
    ASSERT_EQ(Put("t", ns, "c1", CheckpointJson("c1", {{"x", "1"}}), {}, {Blob("x", "1", "json", "1")}).status, 200);
    ASSERT_EQ(PutWrites("t", ns, "c1", {Write("w", 0, "x", "json", "2")}).status, 204);
  }
  ASSERT_EQ(Put("t2", "", "c1", CheckpointJson("c1", {{"x", "1"}}), {}, {Blob("x", "1", "json", "1")}).status, 200);
  ASSERT_EQ(PutWrites("t2", "", "c1", {Write("w", 0, "x", "json", "2")}).status, 204);
  // A thread whose id extends "t" must survive too.
  ASSERT_EQ(PutSimple("tt", "", "c9").status, 200);

  auto r = Post("/checkpoints/delete-thread", json::object{{"thread_id", "t"}});
  EXPECT_EQ(r.status, 204);
  EXPECT_TRUE(r.raw.empty());
  EXPECT_EQ(ListIds({{"thread_id", "t"}}), Ids{});
  EXPECT_EQ(ListIds(json::object{}), (Ids{"c9", "c1"}));
  for (std::string ns : {"", "a", "b"}) EXPECT_EQ(GetTuple("t", ns).raw, "null");
  // Blobs and writes went too: a new checkpoint naming the old version finds none.
  ASSERT_EQ(Put("t", "a", "c2", CheckpointJson("c2", {{"x", "1"}})).status, 200);
  auto t = GetTuple("t", "a");
  EXPECT_EQ(t.body.at("blobs"), json::array{});
  EXPECT_EQ(GetTuple("t", "a", "c1").raw, "null");
  auto other = GetTuple("t2", "", "c1");
  EXPECT_EQ(other.body.at("blobs").as_array().size(), 1u);
  EXPECT_EQ(other.body.at("pending_writes").as_array().size(), 1u);
  EXPECT_EQ(Post("/checkpoints/delete-thread", json::object{{"thread_id", "unknown"}}).status, 204);
}

// --- 422s, as FastAPI shapes them ---

json::value Detail(const testing::JsonReply& r) {
  EXPECT_EQ(r.status, 422) << r.raw;
  return r.body.is_object() ? r.body.at("detail") : json::value();
}

TEST_F(AgentApiTest, MissingRequiredFieldsAre422) {
  json::object body{{"thread_id", "t"}};
  auto d = Detail(Post("/checkpoints/put", body));
  ASSERT_EQ(d.as_array().size(), 2u);
  EXPECT_EQ(d.at(0), (json::value{{"type", "missing"}, {"loc", {"body", "checkpoint_id"}}, {"msg", "Field required"},
                                 {"input", body}}));
  EXPECT_EQ(d.at(1).at("loc"), (json::value{"body", "checkpoint"}));
  auto w = Detail(Post("/checkpoints/put-writes", json::object{{"thread_id", "t"}, {"checkpoint_id", "c"}}));
  EXPECT_EQ(w.at(0).at("loc"), (json::value{"body", "writes"}));
  auto d2 = Detail(Post("/checkpoints/delete-thread", json::object{}));
  EXPECT_EQ(d2.at(0).at("type"), "missing");
  auto empty = Detail(PostRaw("/checkpoints/get-tuple", ""));
  EXPECT_EQ(empty.at(0), (json::value{{"type", "missing"}, {"loc", {"body"}}, {"msg", "Field required"},
                                     {"input", nullptr}}));
}

TEST_F(AgentApiTest, WrongTypesAre422) {
  auto d = Detail(Post("/checkpoints/put", json::object{{"thread_id", 5}, {"checkpoint_id", "c"},
                                                        {"checkpoint", json::array{}}, {"metadata", "x"}}));
  ASSERT_EQ(d.as_array().size(), 3u);
  EXPECT_EQ(d.at(0), (json::value{{"type", "string_type"}, {"loc", {"body", "thread_id"}},
                                 {"msg", "Input should be a valid string"}, {"input", 5}}));
  EXPECT_EQ(d.at(1).at("type"), "dict_type");
  EXPECT_EQ(d.at(1).at("loc"), (json::value{"body", "checkpoint"}));
  EXPECT_EQ(d.at(2).at("loc"), (json::value{"body", "metadata"}));
  auto w = Detail(Post("/checkpoints/put-writes",
                       json::object{{"thread_id", "t"}, {"checkpoint_id", "c"},
                                    {"writes", json::array{json::object{{"task_id", "a"}, {"idx", "x"},
                                                                        {"channel", "c"}, {"blob", ""}}}}}));
  EXPECT_EQ(w.at(0).at("loc"), (json::value{"body", "writes", 0, "idx"}));
  EXPECT_EQ(w.at(0).at("type"), "int_parsing");
  auto l = Detail(Post("/checkpoints/list", json::object{{"thread_id", "t"}, {"filter_metadata", json::array{}},
                                                         {"limit", "ten"}}));
  EXPECT_EQ(l.at(0).at("type"), "dict_type");
  EXPECT_EQ(l.at(1).at("loc"), (json::value{"body", "limit"}));
  auto item = Detail(Post("/checkpoints/put", json::object{{"thread_id", "t"}, {"checkpoint_id", "c"},
                                                           {"checkpoint", json::object{}}, {"blobs", json::array{5}}}));
  EXPECT_EQ(item.at(0).at("type"), "model_type");
  EXPECT_EQ(item.at(0).at("loc"), (json::value{"body", "blobs", 0}));
  auto notjson = Detail(PostRaw("/checkpoints/list", "{nope"));
  EXPECT_EQ(notjson.at(0).at("type"), "json_invalid");
  auto notobj = Detail(PostRaw("/checkpoints/list", "[1]"));
  EXPECT_EQ(notobj.at(0).at("type"), "model_attributes_type");
}

TEST_F(AgentApiTest, LimitOutsideOneTo1000Is422) {
  auto lo = Detail(Post("/checkpoints/list", json::object{{"thread_id", "t"}, {"limit", 0}}));
  EXPECT_EQ(lo.at(0), (json::value{{"type", "greater_than_equal"}, {"loc", {"body", "limit"}},
                                  {"msg", "Input should be greater than or equal to 1"}, {"input", 0},
                                  {"ctx", {{"ge", 1}}}}));
  auto hi = Detail(Post("/checkpoints/list", json::object{{"thread_id", "t"}, {"limit", 1001}}));
  EXPECT_EQ(hi.at(0), (json::value{{"type", "less_than_equal"}, {"loc", {"body", "limit"}},
                                  {"msg", "Input should be less than or equal to 1000"}, {"input", 1001},
                                  {"ctx", {{"le", 1000}}}}));
  EXPECT_EQ(Detail(Post("/checkpoints/list", json::object{{"limit", 2.5}})).at(0).at("type"), "int_from_float");
}

TEST_F(AgentApiTest, InvalidBase64Is422AndStoresNothing) {
  auto d = Detail(Put("t", "", "c1", CheckpointJson("c1", {{"a", "1"}}), {},
                      {json::object{{"channel", "a"}, {"version", "1"}, {"type", "json"}, {"blob", "not base64!"}}}));
  EXPECT_EQ(d.at(0).at("type"), "base64_decode");
  EXPECT_EQ(d.at(0).at("loc"), (json::value{"body", "blobs", 0, "blob"}));
  EXPECT_EQ(d.at(0).at("input"), "not base64!");
  EXPECT_EQ(GetTuple("t", "").raw, "null");
  auto w = Detail(PutWrites("t", "", "c1", {json::object{{"task_id", "a"}, {"idx", 0}, {"channel", "c"},
                                                          {"blob", "abc"}}}));
  EXPECT_EQ(w.at(0).at("loc"), (json::value{"body", "writes", 0, "blob"}));
}

TEST_F(AgentApiTest, RoutesRequireTheToken) {
  auto anon = Client("");
  for (std::string p : {"/checkpoints/put", "/checkpoints/put-writes", "/checkpoints/list", "/checkpoints/get-tuple",
                        "/checkpoints/delete-thread", "/checkpoints/prune", "/checkpoints/copy-thread",
                        "/checkpoints/retention", "/checkpoints/sweep", "/checkpoints/batch",
                        "/threads/t/state/checkpoint"}) {
    auto r = anon->Send("POST", p, "{}");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 401) << p;
  }
}

TEST_F(AgentApiTest, EveryAgentRouteIsDocumented) {
  auto doc = json::parse(api::OpenApiDocument());
  int agent_routes = 0;
  for (const auto& route : daemon_->router().routes()) {
    if (!route.pattern.starts_with("/checkpoints/") && !route.pattern.starts_with("/threads/")) continue;
    ++agent_routes;
    EXPECT_EQ(route.method, "POST");
    const auto* item = doc.at("paths").as_object().if_contains(route.pattern);
    ASSERT_TRUE(item) << route.pattern;
    EXPECT_TRUE(item->as_object().contains("post")) << route.pattern;
    EXPECT_TRUE(route.options.auth);
    EXPECT_EQ(route.options.body_limit, size_t{64} << 20);
  }
  EXPECT_EQ(agent_routes, 11);
}

TEST_F(AgentApiTest, LargeBlobsAboveTheDefaultRouteLimit) {
  std::string big(8 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + (i >> 9));
  ASSERT_EQ(Put("t", "", "c1", CheckpointJson("c1", {{"big", "1"}}), {}, {Blob("big", "1", "bytes", big)}).status, 200);
  auto t = GetTuple("t", "");
  ASSERT_EQ(t.status, 200);
  EXPECT_TRUE(t.body.at("blobs").at(0).at("blob") == B64(big));
}

}  // namespace
}  // namespace ckptd
