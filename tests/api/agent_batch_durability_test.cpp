// A batch request whose writes' WAL sync fails: its puts and put-writes (one
// RocksDB write, one wait for the sync) each answer the 500 of a write that
// could not be made durable, and its reads answer as they did. The routes are
// called as the server calls them, on a store whose disk fails syncs.
#include <future>
#include <memory>
#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <rocksdb/env.h>

#include "api/agent_handlers.h"
#include "api/router.h"
#include "store/agent_store.h"
#include "store/db.h"
#include "tests/testing/gated_sync_fs.h"
#include "tests/testing/test_util.h"

namespace ckptd::api {
namespace {

namespace json = boost::json;

TEST(AgentBatchDurabilityTest, WritesWhoseSyncFailsAnswer500AndReadsAnswerAsBefore) {
  testing::TempDir dir;
  auto fs = std::make_shared<testing::GatedSyncFs>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  DbOptions opts;
  opts.env = env.get();
  auto db = Db::Open(dir.File("db"), opts);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  AgentStore store(db->get());
  ASSERT_TRUE(store.SetDefaultRetention({}).ok());
  Router router;
  RegisterAgentRoutes(&router, &store, 1 << 20);
  auto match = router.Find("POST", "/checkpoints/batch");
  ASSERT_NE(match.route, nullptr);

  json::object put{{"thread_id", "t"},
                   {"checkpoint_id", "c1"},
                   {"checkpoint", json::object{{"v", 1}, {"id", "c1"}, {"channel_versions", json::object{}}}},
                   {"metadata", json::object{}}};
  json::object writes{{"thread_id", "t"},
                      {"checkpoint_id", "c1"},
                      {"writes", json::array{json::object{
                                     {"task_id", "task"}, {"idx", 0}, {"channel", "x"}, {"type", "json"}, {"blob", "MQ=="}}}}};
  json::array ops{json::object{{"op", "put"}, {"body", put}},
                  json::object{{"op", "get-tuple"}, {"body", json::object{{"thread_id", "t"}}}},
                  json::object{{"op", "put-writes"}, {"body", writes}}};
  Request req;
  req.method = "POST";
  req.path = "/checkpoints/batch";
  req.body = json::serialize(json::object{{"ops", ops}});

  fs->fail = true;
  Response res = match.route->handler(req);
  ASSERT_TRUE(res.deferred) << "the writes' answer waits for their sync";
  std::promise<Response> answered;
  res.deferred([&](Response r) { answered.set_value(std::move(r)); });
  auto done = answered.get_future();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  Response batch = done.get();
  ASSERT_EQ(batch.status, 200) << batch.body;
  json::value answer = json::parse(batch.body);
  const json::array& results = answer.at("results").as_array();
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].at("status"), 500);
  EXPECT_NE(json::serialize(results[0].at("body")).find("could not be made durable"), std::string::npos);
  EXPECT_EQ(results[1].at("status"), 200);  // the read saw the put, as reads do before its sync
  EXPECT_EQ(results[1].at("body").at("checkpoint_id"), "c1");
  EXPECT_EQ(results[2].at("status"), 500);
  fs->fail = false;
}

}  // namespace
}  // namespace ckptd::api
