// Key encodings keep the orders the store's scans rely on; JSONB
// containment; the store's List never returns more than `limit`.
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "store/agent_keys.h"
#include "store/agent_store.h"
#include "tests/testing/test_util.h"

namespace ckptd {
namespace {

namespace json = boost::json;
namespace k = agent_keys;

std::vector<std::string> Samples() {
  std::vector<std::string> s = {"", "a", "ab", "abc", "b", std::string("a\0", 2), std::string("a\0b", 3),
                                std::string("\0", 1), "\xff", "\xff\xff", "a\xff", "1ef0", "1ef00", "1ef01"};
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    std::string x(rng() % 6, '\0');
    for (auto& c : x) c = static_cast<char>("\x00\x01a\xfe\xff"[rng() % 5]);
    s.push_back(x);
  }
  return s;
}

TEST(AgentKeysTest, AscAndDescPreserveAndReverseOrderAndRoundTrip) {
  auto samples = Samples();
  for (const auto& a : samples) {
    for (const auto& b : samples) {
      std::string ea, eb, da, db;
      k::AppendAsc(&ea, a);
      k::AppendAsc(&eb, b);
      k::AppendDesc(&da, a);
      k::AppendDesc(&db, b);
      ASSERT_EQ(a < b, ea < eb) << "asc";
      ASSERT_EQ(a < b, da > db) << "desc";
      // Prefix-free: a following component never changes the order.
      ASSERT_EQ(a < b, ea + "\xff\xff" < eb + std::string("\0", 1)) << "prefix-free";
    }
    std::string e, d, out;
    k::AppendAsc(&e, a);
    k::AppendDesc(&d, a);
    std::string_view ev = e, dv = d;
    ASSERT_TRUE(k::ReadAsc(&ev, &out));
    EXPECT_EQ(out, a);
    EXPECT_TRUE(ev.empty());
    ASSERT_TRUE(k::ReadDesc(&dv, &out));
    EXPECT_EQ(out, a);
  }
}

TEST(AgentKeysTest, IntsAscendAcrossZero) {
  std::vector<int64_t> v = {INT64_MIN, -1000, -3, -1, 0, 1, 2, 1 << 20, INT64_MAX};
  for (size_t i = 0; i + 1 < v.size(); ++i) {
    std::string a, b;
    k::AppendInt(&a, v[i]);
    k::AppendInt(&b, v[i + 1]);
    EXPECT_LT(a, b);
    std::string_view av = a;
    int64_t back = 0;
    ASSERT_TRUE(k::ReadInt(&av, &back));
    EXPECT_EQ(back, v[i]);
  }
}

TEST(AgentKeysTest, FieldsRoundTrip) {
  std::string v;
  std::string big(300, 'x');
  k::PutField(&v, "");
  k::PutField(&v, big);
  k::PutField(&v, std::string("\0\1", 2));
  std::string_view in = v, f;
  ASSERT_TRUE(k::GetField(&in, &f));
  EXPECT_EQ(f, "");
  ASSERT_TRUE(k::GetField(&in, &f));
  EXPECT_EQ(f, big);
  ASSERT_TRUE(k::GetField(&in, &f));
  EXPECT_EQ(f, std::string_view("\0\1", 2));
  EXPECT_FALSE(k::GetField(&in, &f));
}

// Insert-hint prefixes: the part of a key its write-order neighbours share,
// for every sample id (escaped zero bytes included).
TEST(AgentKeysTest, InsertHintPrefixesCoverTheSharedParts) {
  auto prefix = [](size_t (*hint)(std::string_view), const std::string& key) {
    size_t n = hint(key);
    EXPECT_GT(n, 0u) << ::testing::PrintToString(key);
    EXPECT_LE(n, key.size());
    return key.substr(0, n);
  };
  for (const auto& t : Samples()) {
    for (const auto& ns : {std::string(), std::string("sub\0", 4)}) {
      for (char tag : {k::kCheckpointTag, k::kThreadIndexTag}) {
        for (const char* id : {"1ef0", "1ef1"}) {
          std::string key = tag == k::kCheckpointTag ? k::CheckpointKey(t, ns, id) : k::ThreadIndexKey(t, id, ns);
          EXPECT_EQ(prefix(k::CheckpointsHintPrefix, key), k::ThreadPrefix(tag, t));
        }
      }
      EXPECT_EQ(prefix(k::CheckpointsHintPrefix, k::ThreadMetaKey(t)), k::ThreadMetaKey(t));
      EXPECT_EQ(prefix(k::CheckpointsHintPrefix, k::TombstoneKey(t)), k::TombstoneKey(t));
      EXPECT_EQ(prefix(k::CheckpointsHintPrefix, k::GlobalIndexKey("1ef0", t, ns)), "g");
      EXPECT_EQ(prefix(k::CheckpointsHintPrefix, k::DueKey(5, t)), "e");

      std::string blob = prefix(k::BlobsHintPrefix, k::BlobKey(t, ns, "messages", "1"));
      EXPECT_EQ(prefix(k::BlobsHintPrefix, k::BlobKey(t, ns, "messages", std::string("2\0", 2))), blob);
      EXPECT_NE(prefix(k::BlobsHintPrefix, k::BlobKey(t, ns, "other", "1")), blob);
      EXPECT_EQ(blob.size() + 2, k::BlobKey(t, ns, "messages", "").size());  // all but Asc("")

      std::string write = prefix(k::WritesHintPrefix, k::WriteKey(t, ns, "1ef0", "task", 0));
      EXPECT_EQ(prefix(k::WritesHintPrefix, k::WriteKey(t, ns, "1ef1", "other", -1)), write);
      EXPECT_EQ(write, k::BlobKey(t, ns, "", "").substr(0, write.size()));
    }
  }
  // No hint: the retention default, and keys that end before their prefix.
  EXPECT_EQ(k::CheckpointsHintPrefix(k::kRetentionDefaultKey), 0u);
  EXPECT_EQ(k::CheckpointsHintPrefix(""), 0u);
  EXPECT_EQ(k::CheckpointsHintPrefix(k::ThreadPrefix('c', "t").substr(0, 3)), 0u);
  EXPECT_EQ(k::BlobsHintPrefix(k::WriteKey("t", "", "1", "x", 0).substr(0, 6)), 0u);
  EXPECT_EQ(k::WritesHintPrefix(std::string("t\0", 2)), 0u);
}

bool C(const char* hay, const char* needle) { return JsonContains(json::parse(hay), json::parse(needle)); }

TEST(AgentJsonContainsTest, PostgresJsonbSemantics) {
  EXPECT_TRUE(C(R"({"a":1,"b":{"c":[1,2,{"d":3}]}})", R"({})"));
  EXPECT_TRUE(C(R"({"a":1,"b":{"c":[1,2,{"d":3}]}})", R"({"b":{"c":[{"d":3}]}})"));
  EXPECT_TRUE(C(R"({"a":1,"b":{"c":[1,2,{"d":3,"e":4}]}})", R"({"b":{"c":[2,{"d":3}]}})"));
  EXPECT_FALSE(C(R"({"a":1,"b":{"c":[1,2]}})", R"({"b":{"c":[3]}})"));
  EXPECT_TRUE(C(R"([1,2,3])", R"([3,1,1])"));
  EXPECT_TRUE(C(R"([1,[2,3]])", R"([[3]])"));
  EXPECT_FALSE(C(R"([1,2,[1,3]])", R"([[1,2]])"));
  EXPECT_TRUE(C(R"(["foo","bar"])", R"("foo")"));      // top-level exception
  EXPECT_FALSE(C(R"({"a":["foo"]})", R"({"a":"foo"})"));  // not nested
  EXPECT_FALSE(C(R"({"a":[[1]]})", R"({"a":[1]})"));
  EXPECT_TRUE(C(R"({"a":1.0})", R"({"a":1})"));
  EXPECT_FALSE(C(R"({"a":"1"})", R"({"a":1})"));
  EXPECT_TRUE(C(R"({"a":null})", R"({"a":null})"));
  EXPECT_FALSE(C(R"({})", R"({"a":null})"));
}

TEST(AgentVersionStringTest, NumbersAsPythonWritesThem) {
  EXPECT_EQ(VersionString(json::value(3)), "3");
  EXPECT_EQ(VersionString(json::value(2.5)), "2.5");
  EXPECT_EQ(VersionString(json::value(2.0)), "2.0");
  EXPECT_EQ(VersionString(json::value("00001.5")), "00001.5");
}

TEST(AgentStoreTest, ListStopsAtTheLimitAndScansWithoutLoadingTheThread) {
  testing::TempDir dir;
  auto db = Db::Open(dir.File("db"));
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  AgentStore store(db->get());
  for (int i = 0; i < 50; ++i) {
    AgentCheckpoint c{"t", i % 2 ? "x" : "", fmt::format("{:03}", i), std::nullopt, "{}", "{\"i\":" + std::to_string(i) + "}"};
    ASSERT_TRUE(store.Put(c, {}).ok());
  }
  AgentListQuery q;
  q.thread_id = "t";
  q.limit = 7;
  auto page = store.List(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 7u);
  EXPECT_EQ(page->front().checkpoint_id, "049");
  EXPECT_EQ(page->back().checkpoint_id, "043");
  json::object f{{"i", 10}};
  q.filter = &f;
  page = store.List(q);
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ(page->front().checkpoint_ns, "");
  EXPECT_TRUE(store.ThreadExists("t").value());
  EXPECT_FALSE(store.ThreadExists("").value());
  ASSERT_TRUE(store.DeleteThread("t").ok());
  EXPECT_FALSE(store.ThreadExists("t").value());
}

// Filtering rules records out on their text before parsing them; the
// answer must be what the full JSONB containment gives, whatever escapes
// the stored text uses.
TEST(AgentStoreTest, AMetadataFilterAnswersAsContainmentWhateverTheTextsEscapes) {
  testing::TempDir dir;
  auto db = Db::Open(dir.File("db"));
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  AgentStore store(db->get());
  const std::vector<std::string> metas = {
      R"({"source":"input","step":1})",
      R"({"source":"\u0069nput","step":2})",     // "input", escaped
      R"({"sour\u0063e":"input"})",             // the key escaped
      R"({"source":"loop","note":"input"})",     // the string, under another key
      R"({"q":"a\"b","source":"input"})",        // a quote in a value
      R"({"q":"a\"b"})",
      R"({"tags":["x","input"],"source":"loop"})",
      R"({"nested":{"source":"input"}})",
      R"({"source" : "input" , "step" : 3})",    // spaces
  };
  for (size_t i = 0; i < metas.size(); ++i) {
    AgentCheckpoint c{"t", "", fmt::format("{:03}", i), std::nullopt, "{}", metas[i]};
    ASSERT_TRUE(store.Put(c, {}).ok());
  }
  const std::vector<json::object> filters = {
      {{"source", "input"}}, {{"q", "a\"b"}}, {{"q", "a\"b"}, {"source", "input"}}, {{"tags", json::array{"input"}}},
      {{"nested", {{"source", "input"}}}}, {{"note", "input"}}, {{"source", "in"}}, {{"step", 2}},
  };
  for (const auto& f : filters) {
    AgentListQuery q;
    q.thread_id = "t";
    q.filter = &f;
    q.limit = 100;
    auto page = store.List(q);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    std::vector<std::string> got, want;
    for (const auto& c : *page) got.push_back(c.checkpoint_id);
    for (size_t i = metas.size(); i-- > 0;)
      if (JsonContains(json::parse(metas[i]), f)) want.push_back(fmt::format("{:03}", i));
    EXPECT_EQ(got, want) << json::serialize(f);
  }
  // The escaped spellings count: the check above would pass on a
  // containment that never matched them.
  EXPECT_TRUE(JsonContains(json::parse(metas[1]), filters[0]));
  EXPECT_TRUE(JsonContains(json::parse(metas[2]), filters[0]));
}

}  // namespace
}  // namespace ckptd
