// /checkpoints/list with our "include" extension: each item carries what
// get-tuple gives for it, so a LangGraph list is one request, not 1 + N.
// Checked against list + get-tuple on a randomized history.
#include <map>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/testing/agent_fixture.h"

namespace ckptd {
namespace {

namespace json = boost::json;
using testing::AgentApiFixture;

class AgentListIncludeTest : public AgentApiFixture {
 protected:
  // Threads t0..t2, namespaces "" and "sub", checkpoints whose channels
  // change at random (unchanged ones keep their version and blob), some
  // with pending writes, metadata {"step": n, "even": bool}.
  void PutRandomHistory(uint32_t seed) {
    std::mt19937 rng(seed);
    const std::vector<std::string> channels{"messages", "counter", "scratch"};
    for (int n = 0; n < 60; ++n) {
      std::string thread = "t" + std::to_string(rng() % 3), ns = rng() % 3 == 0 ? "sub" : "";
      std::string id = fmt::format("{:04}", n);
      json::object versions;
      json::array blobs;
      auto& seen = versions_[thread + "/" + ns];
      for (const auto& ch : channels) {
        if (seen[ch] == 0 || rng() % 2 == 0) {
          ++seen[ch];
          blobs.push_back(Blob(ch, std::to_string(seen[ch]), "json", fmt::format("[{},{}]", n, rng() % 1000)));
        }
        versions[ch] = std::to_string(seen[ch]);
      }
      json::object meta{{"step", n}, {"even", n % 2 == 0}};
      ASSERT_EQ(Put(thread, ns, id, CheckpointJson(id, versions), meta, blobs).status, 200);
      if (rng() % 2 == 0) {
        json::array writes;
        for (uint32_t w = 0, k = 1 + rng() % 3; w < k; ++w)
          writes.push_back(Write("task" + std::to_string(rng() % 2), static_cast<int64_t>(w), "messages", "json",
                                 std::to_string(rng())));
        ASSERT_EQ(PutWrites(thread, ns, id, std::move(writes)).status, 204);
      }
    }
  }

  // The list answer with "include", against the plain list answer plus a
  // get-tuple per item: same items, same order, same blobs and writes.
  void ExpectSameAsListPlusGetTuple(json::object query) {
    SCOPED_TRACE(json::serialize(query));
    auto plain = Post("/checkpoints/list", query);
    ASSERT_EQ(plain.status, 200) << plain.raw;
    query["include"] = json::array{"values", "pending_writes"};
    auto full = Post("/checkpoints/list", query);
    ASSERT_EQ(full.status, 200) << full.raw;
    const json::array& items = full.body.as_array();
    ASSERT_EQ(items.size(), plain.body.as_array().size());
    for (size_t i = 0; i < items.size(); ++i) {
      const json::object& p = plain.body.as_array()[i].as_object();
      EXPECT_FALSE(p.contains("blobs")) << "the answer without include changed";
      auto t = GetTuple(std::string(p.at("thread_id").as_string()), std::string(p.at("checkpoint_ns").as_string()),
                        p.at("checkpoint_id"));
      ASSERT_EQ(t.status, 200);
      EXPECT_EQ(items[i], t.body) << "item " << i;
    }
  }

  std::map<std::string, std::map<std::string, int>> versions_;
};

TEST_F(AgentListIncludeTest, EqualsListPlusGetTupleOnARandomHistory) {
  PutRandomHistory(20261205);
  ExpectSameAsListPlusGetTuple({{"thread_id", "t0"}});
  ExpectSameAsListPlusGetTuple({{"thread_id", "t1"}, {"checkpoint_ns", ""}});
  ExpectSameAsListPlusGetTuple({{"thread_id", "t2"}, {"checkpoint_ns", "sub"}, {"limit", 3}});
  ExpectSameAsListPlusGetTuple({{"thread_id", "t0"}, {"before_checkpoint_id", "0030"}, {"limit", 10}});
  ExpectSameAsListPlusGetTuple({{"thread_id", "t1"}, {"filter_metadata", json::object{{"even", true}}}});
  ExpectSameAsListPlusGetTuple({{"limit", 25}});  // every thread
}

TEST_F(AgentListIncludeTest, EachPartOnItsOwn) {
  ASSERT_EQ(Put("t", "", "c1", CheckpointJson("c1", {{"a", "1"}}), {}, {Blob("a", "1", "json", "[1]")}).status, 200);
  ASSERT_EQ(PutWrites("t", "", "c1", {Write("task", 0, "a", "json", "2")}).status, 204);
  auto values = Post("/checkpoints/list", json::object{{"thread_id", "t"}, {"include", json::array{"values"}}});
  ASSERT_EQ(values.status, 200) << values.raw;
  const json::object& v = values.body.at(0).as_object();
  EXPECT_EQ(v.at("blobs"), (json::array{Blob("a", "1", "json", "[1]")}));
  EXPECT_FALSE(v.contains("pending_writes"));
  auto writes = Post("/checkpoints/list", json::object{{"thread_id", "t"}, {"include", json::array{"pending_writes"}}});
  ASSERT_EQ(writes.status, 200) << writes.raw;
  const json::object& w = writes.body.at(0).as_object();
  EXPECT_FALSE(w.contains("blobs"));
  ASSERT_EQ(w.at("pending_writes").as_array().size(), 1u);
  EXPECT_EQ(w.at("pending_writes").at(0).at("blob"), B64("2"));
  auto none = Post("/checkpoints/list", json::object{{"thread_id", "t"}, {"include", json::array{}}});
  ASSERT_EQ(none.status, 200);
  EXPECT_FALSE(none.body.at(0).as_object().contains("blobs"));
}

TEST_F(AgentListIncludeTest, UnknownIncludesAre422) {
  auto r = Post("/checkpoints/list", json::object{{"thread_id", "t"}, {"include", json::array{"values", "blobz", 3}}});
  ASSERT_EQ(r.status, 422) << r.raw;
  const json::array& detail = r.body.at("detail").as_array();
  ASSERT_EQ(detail.size(), 2u);
  EXPECT_EQ(detail.at(0).at("loc"), (json::array{"body", "include", 1}));
  EXPECT_EQ(detail.at(0).at("type"), "literal_error");
  EXPECT_EQ(detail.at(1).at("loc"), (json::array{"body", "include", 2}));
  auto not_array = Post("/checkpoints/list", json::object{{"thread_id", "t"}, {"include", "values"}});
  EXPECT_EQ(not_array.status, 422) << not_array.raw;
}

}  // namespace
}  // namespace ckptd
