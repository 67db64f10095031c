// Our "blob_encoding": "text" extension on get-tuple and list: bytes that are
// UTF-8 come back as a JSON string in "text", others as base64 in "blob",
// and without it the answer is as before.
#include <string>
#include <vector>

#include "tests/testing/agent_fixture.h"

namespace ckptd {
namespace {

namespace json = boost::json;
using testing::AgentApiFixture;

// Serialized values as a saver stores them: JSON text (escapes, multibyte
// characters), and bytes that are not UTF-8 in each way it can fail.
const std::string kJsonText = "{\"say\":\"h\xc3\xa9llo \xe2\x9c\x93 \\\"q\\\"\\n\",\"n\":[1,2]}";
const std::string kEmoji = "\"\xf0\x9f\x98\x80\"";
const std::vector<std::string> kNotUtf8{
    std::string("\xff\xfe\x00\x01", 4),  // bytes no UTF-8 sequence starts with
    "\xc0\xaf",                          // an overlong form of '/'
    "\xed\xa0\x80",                      // a surrogate
    "ab\xe2\x9c",                        // a sequence cut short
    "\xf4\x90\x80\x80",                  // past U+10FFFF
};

class AgentBlobEncodingTest : public AgentApiFixture {
 protected:
  // c1 of thread t: blobs "a" (JSON text), "e" (4-byte character), "n"
  // (null) and one per kNotUtf8 bytes; writes of the same bytes.
  void PutTuple() {
    json::array blobs{Blob("a", "1", "json", kJsonText), Blob("e", "1", "json", kEmoji)};
    blobs.push_back(json::object{{"channel", "n"}, {"version", "1"}, {"type", "empty"}, {"blob", nullptr}});
    json::array writes{Write("task", 0, "a", "json", kJsonText)};
    json::object versions{{"a", "1"}, {"e", "1"}, {"n", "1"}};
    for (size_t i = 0; i < kNotUtf8.size(); ++i) {
      std::string ch = "x" + std::to_string(i);
      blobs.push_back(Blob(ch, "1", "bytes", kNotUtf8[i]));
      versions[ch] = "1";
      writes.push_back(Write("task", static_cast<int64_t>(i + 1), ch, "bytes", kNotUtf8[i]));
    }
    ASSERT_EQ(Put("t", "", "c1", CheckpointJson("c1", versions), {}, blobs).status, 200);
    ASSERT_EQ(PutWrites("t", "", "c1", writes).status, 204);
  }

  // A blob or write of a text answer: `text` for UTF-8 bytes, else base64.
  static void ExpectEncoded(const json::object& o, const std::string& bytes, bool utf8) {
    SCOPED_TRACE(json::serialize(o));
    if (utf8) {
      EXPECT_EQ(o.at("text"), json::value(bytes));
      EXPECT_FALSE(o.contains("blob"));
    } else {
      EXPECT_EQ(o.at("blob"), B64(bytes));
      EXPECT_FALSE(o.contains("text"));
    }
  }

  static void ExpectTextTuple(const json::object& t) {
    const json::array& blobs = t.at("blobs").as_array();
    ASSERT_EQ(blobs.size(), 3 + kNotUtf8.size());
    auto blob = [&](const std::string& ch) -> const json::object& {
      for (const auto& b : blobs)
        if (b.at("channel").as_string() == ch) return b.as_object();
      ADD_FAILURE() << "no blob " << ch;
      return blobs.at(0).as_object();
    };
    ExpectEncoded(blob("a"), kJsonText, true);
    ExpectEncoded(blob("e"), kEmoji, true);
    EXPECT_TRUE(blob("n").at("blob").is_null());
    EXPECT_FALSE(blob("n").contains("text"));
    const json::array& writes = t.at("pending_writes").as_array();
    ASSERT_EQ(writes.size(), 1 + kNotUtf8.size());
    ExpectEncoded(writes.at(0).as_object(), kJsonText, true);
    for (size_t i = 0; i < kNotUtf8.size(); ++i) {
      ExpectEncoded(blob("x" + std::to_string(i)), kNotUtf8[i], false);
      ExpectEncoded(writes.at(i + 1).as_object(), kNotUtf8[i], false);
    }
  }
};

TEST_F(AgentBlobEncodingTest, GetTupleAnswersUtf8AsTextAndOtherBytesAsBase64) {
  PutTuple();
  auto text = Post("/checkpoints/get-tuple", json::object{{"thread_id", "t"}, {"blob_encoding", "text"}});
  ASSERT_EQ(text.status, 200) << text.raw;
  ExpectTextTuple(text.body.as_object());
  // The default, and "base64" said outright: every blob in base64.
  auto plain = GetTuple("t", "");
  ASSERT_EQ(plain.status, 200);
  auto b64 = Post("/checkpoints/get-tuple", json::object{{"thread_id", "t"}, {"blob_encoding", "base64"}});
  EXPECT_EQ(b64.body, plain.body);
  for (const auto& b : plain.body.at("blobs").as_array()) EXPECT_FALSE(b.as_object().contains("text"));
  EXPECT_EQ(plain.body.at("pending_writes").at(0).at("blob"), B64(kJsonText));
}

TEST_F(AgentBlobEncodingTest, ListWithIncludeAnswersAsGetTupleDoes) {
  PutTuple();
  json::object query{{"thread_id", "t"}, {"include", json::array{"values", "pending_writes"}}, {"blob_encoding", "text"}};
  auto list = Post("/checkpoints/list", query);
  ASSERT_EQ(list.status, 200) << list.raw;
  ASSERT_EQ(list.body.as_array().size(), 1u);
  ExpectTextTuple(list.body.at(0).as_object());
  auto tuple = Post("/checkpoints/get-tuple", json::object{{"thread_id", "t"}, {"blob_encoding", "text"}});
  EXPECT_EQ(list.body.at(0), tuple.body);
  // Through a batch, each op with its own encoding.
  auto batch = Post("/checkpoints/batch",
                    json::object{{"ops", json::array{json::object{{"op", "list"}, {"body", query}},
                                                      json::object{{"op", "get-tuple"}, {"body", {{"thread_id", "t"}}}}}}});
  ASSERT_EQ(batch.status, 200) << batch.raw;
  EXPECT_EQ(batch.body.at("results").at(0).at("body"), list.body);
  EXPECT_EQ(batch.body.at("results").at(1).at("body"), GetTuple("t", "").body);
}

TEST_F(AgentBlobEncodingTest, AnUnknownEncodingIs422) {
  PutTuple();
  for (const char* route : {"/checkpoints/get-tuple", "/checkpoints/list"}) {
    auto bad = Post(route, json::object{{"thread_id", "t"}, {"blob_encoding", "hex"}});
    ASSERT_EQ(bad.status, 422) << route << bad.raw;
    EXPECT_EQ(bad.body.at("detail").at(0).at("loc"), (json::array{"body", "blob_encoding"}));
    EXPECT_EQ(bad.body.at("detail").at(0).at("type"), "literal_error");
    EXPECT_EQ(bad.body.at("detail").at(0).at("msg"), "Input should be 'base64' or 'text'");
    EXPECT_EQ(bad.body.at("detail").at(0).at("ctx"), (json::object{{"expected", "'base64' or 'text'"}}));
    EXPECT_EQ(bad.body.at("detail").at(0).at("input"), "hex");
    auto not_string = Post(route, json::object{{"thread_id", "t"}, {"blob_encoding", 3}});
    EXPECT_EQ(not_string.status, 422) << route << not_string.raw;
  }
}

}  // namespace
}  // namespace ckptd
