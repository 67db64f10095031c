// POST /checkpoints/batch (our extension): put, put-writes, get-tuple and
// list calls in one request. Each op must answer exactly what its own route
// answers, in order; writes must be durable when the batch answers.
#include <string>
#include <vector>

#include <boost/algorithm/string/replace.hpp>

#include "tests/testing/agent_fixture.h"

namespace ckptd {
namespace {

namespace json = boost::json;
using testing::AgentApiFixture;
using testing::JsonReply;

class AgentBatchTest : public AgentApiFixture {
 protected:
  // One thread's history as route calls: writes, reads that must see the
  // writes before them, and calls their routes refuse.
  static std::vector<std::pair<std::string, json::object>> Calls(const std::string& t) {
    auto blob = [](const char* ch, const char* v, const char* data) { return Blob(ch, v, "json", data); };
    json::object put1{{"thread_id", t},
                      {"checkpoint_id", "c1"},
                      {"checkpoint", CheckpointJson("c1", {{"a", "1"}, {"b", "1"}})},
                      {"metadata", json::object{{"step", 1}}},
                      {"blobs", json::array{blob("a", "1", "[1]"), blob("b", "1", "\"x\"")}}};
    json::object put2{{"thread_id", t},
                      {"checkpoint_id", "c2"},
                      {"parent_checkpoint_id", "c1"},
                      {"checkpoint", CheckpointJson("c2", {{"a", "2"}, {"b", "1"}})},
                      {"metadata", json::object{{"step", 2}}},
                      {"blobs", json::array{blob("a", "2", "[2]")}}};
    json::object writes{
        {"thread_id", t},
        {"checkpoint_id", "c2"},
        {"writes", json::array{Write("task", 1, "a", "json", "3"), Write("task", 0, "b", "json", "4")}}};
    return {
        {"get-tuple", {{"thread_id", t}}},
        {"put", put1},
        {"get-tuple", {{"thread_id", t}}},
        {"put", put2},
        {"put-writes", writes},
        {"get-tuple", {{"thread_id", t}}},
        {"get-tuple", {{"thread_id", t}, {"checkpoint_id", "c1"}}},
        {"list", {{"thread_id", t}, {"include", json::array{"values", "pending_writes"}}}},
        {"list", {{"thread_id", t}, {"filter_metadata", json::object{{"step", 1}}}}},
        {"get-tuple", {{"checkpoint_id", "c1"}}},              // no thread_id: 422
        {"list", {{"thread_id", t}, {"limit", 0}}},            // 422
        {"put", {{"thread_id", t}, {"checkpoint_id", "c3"}}},  // no checkpoint: 422
    };
  }

  static json::object Ops(const std::vector<std::pair<std::string, json::object>>& calls) {
    json::array ops;
    for (const auto& [op, body] : calls) ops.push_back(json::object{{"op", op}, {"body", body}});
    return json::object{{"ops", std::move(ops)}};
  }
};

TEST_F(AgentBatchTest, EachOpAnswersWhatItsRouteAnswersInOrder) {
  std::vector<JsonReply> alone;
  for (const auto& [op, body] : Calls("t-alone")) alone.push_back(Post("/checkpoints/" + op, body));
  auto batch = Post("/checkpoints/batch", Ops(Calls("t-batch")));
  ASSERT_EQ(batch.status, 200) << batch.raw;
  const json::array& results = batch.body.at("results").as_array();
  ASSERT_EQ(results.size(), alone.size());
  int errors = 0;
  for (size_t i = 0; i < alone.size(); ++i) {
    SCOPED_TRACE("op " + std::to_string(i));
    EXPECT_EQ(results[i].at("status"), alone[i].status);
    std::string expected = json::serialize(alone[i].body);
    boost::replace_all(expected, "t-alone", "t-batch");
    EXPECT_EQ(json::serialize(results[i].at("body")), expected);
    errors += alone[i].status == 422;
  }
  EXPECT_EQ(errors, 3);
  // The reads saw the writes before them: nothing, c1, then c2 with its writes.
  EXPECT_TRUE(results[0].at("body").is_null());
  EXPECT_EQ(results[2].at("body").at("checkpoint_id"), "c1");
  EXPECT_EQ(results[5].at("body").at("checkpoint_id"), "c2");
  EXPECT_EQ(results[5].at("body").at("pending_writes").as_array().size(), 2u);
  EXPECT_EQ(results[7].at("body").as_array().size(), 2u);
}

TEST_F(AgentBatchTest, WritesAreThereAfterARestart) {
  auto batch = Post("/checkpoints/batch", Ops(Calls("t")));
  ASSERT_EQ(batch.status, 200) << batch.raw;
  Restart();
  auto t = GetTuple("t", "");
  ASSERT_EQ(t.status, 200) << t.raw;
  EXPECT_EQ(t.body.at("checkpoint_id"), "c2");
  EXPECT_EQ(t.body.at("pending_writes").as_array().size(), 2u);
  EXPECT_EQ(t.body, batch.body.at("results").at(5).at("body"));
}

TEST_F(AgentBatchTest, TheLargestBatchIsAcceptedOneMoreIsNot) {
  json::array ops;
  for (int i = 0; i < 256; ++i)
    ops.push_back(json::object{{"op", "get-tuple"}, {"body", json::object{{"thread_id", "t" + std::to_string(i)}}}});
  auto full = Post("/checkpoints/batch", json::object{{"ops", ops}});
  ASSERT_EQ(full.status, 200) << full.raw;
  EXPECT_EQ(full.body.at("results").as_array().size(), 256u);
  ops.push_back(ops.back());
  auto over = Post("/checkpoints/batch", json::object{{"ops", ops}});
  ASSERT_EQ(over.status, 422) << over.raw;
  EXPECT_EQ(over.body.at("detail").at(0).at("type"), "too_long");
  EXPECT_EQ(over.body.at("detail").at(0).at("loc"), (json::array{"body", "ops"}));
}

TEST_F(AgentBatchTest, BadBatchesAre422AndApplyNothing) {
  auto put = json::object{{"op", "put"}, {"body", Calls("t")[1].second}};
  struct Case {
    json::value ops;
    json::array loc;
    const char* type;
  };
  std::vector<Case> cases{
      {nullptr, {"body", "ops"}, "list_type"},
      {json::array{put, json::object{{"op", "delete-thread"}, {"body", json::object{{"thread_id", "t"}}}}},
       {"body", "ops", 1, "op"},
       "literal_error"},
      {json::array{put, json::object{{"op", "put"}}}, {"body", "ops", 1, "body"}, "missing"},
      {json::array{put, json::object{{"op", "put"}, {"body", "x"}}}, {"body", "ops", 1, "body"}, "dict_type"},
      {json::array{put, 7}, {"body", "ops", 1}, "model_type"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(json::serialize(c.ops));
    json::object body;
    if (!c.ops.is_null())
      body["ops"] = c.ops;
    else
      body["ops"] = "not a list";
    auto r = Post("/checkpoints/batch", body);
    ASSERT_EQ(r.status, 422) << r.raw;
    EXPECT_EQ(r.body.at("detail").at(0).at("loc"), c.loc);
    EXPECT_EQ(r.body.at("detail").at(0).at("type"), c.type);
  }
  auto unknown = Post("/checkpoints/batch", json::object{{"ops", json::array{json::object{
                                                 {"op", "delete-thread"}, {"body", json::object{{"thread_id", "t"}}}}}}});
  ASSERT_EQ(unknown.status, 422) << unknown.raw;
  EXPECT_EQ(unknown.body.at("detail").at(0).at("msg"), "Input should be 'put', 'put-writes', 'get-tuple' or 'list'");
  EXPECT_EQ(unknown.body.at("detail").at(0).at("ctx"),
            (json::object{{"expected", "'put', 'put-writes', 'get-tuple' or 'list'"}}));
  auto missing = Post("/checkpoints/batch", json::object{});
  EXPECT_EQ(missing.status, 422);
  EXPECT_EQ(GetTuple("t", "").raw, "null") << "a refused batch applied a write";
}

}  // namespace
}  // namespace ckptd
