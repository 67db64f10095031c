// The agent-state API tests' fixture: an in-process daemon (DaemonFixture)
// and the LangGraph checkpointer's requests as JSON POSTs over loopback.
#pragma once

#include <string>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "api/agent_validation.h"
#include "tests/testing/daemon_fixture.h"

namespace ckptd::testing {

namespace json = boost::json;

struct JsonReply {
  int status = 0;
  json::value body;  // null for an empty body
  std::string raw;
};

class AgentApiFixture : public DaemonFixture {
 protected:
  void Restart() { RestartDaemon(); }

  JsonReply PostRaw(const std::string& path, const std::string& body) {
    JsonReply out;
    auto r = client_->Send("POST", path, body);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return out;
    out.status = r->status;
    out.raw = r->body;
    if (!r->body.empty()) {
      json::error_code ec;
      out.body = json::parse(r->body, ec);
      EXPECT_FALSE(ec) << "not JSON: " << r->body;
    }
    return out;
  }
  JsonReply Post(const std::string& path, const json::value& body) { return PostRaw(path, json::serialize(body)); }

  static json::value B64(std::string_view s) { return json::value(api::agent::EncodeBase64(s)); }

  // A LangGraph-like checkpoint body; channel_versions as given.
  static json::object CheckpointJson(const std::string& id, json::object versions, json::object seen = {}) {
    return json::object{{"v", 4},
                        {"id", id},
                        {"ts", "2025-01-01T00:00:00+00:00"},
                        {"channel_versions", std::move(versions)},
                        {"versions_seen", std::move(seen)},
                        {"channel_values", json::object{}}};
  }

  JsonReply Put(const std::string& thread, const std::string& ns, const std::string& id, json::object checkpoint,
                json::object metadata = {}, json::array blobs = {}, json::value parent = nullptr) {
    return Post("/checkpoints/put", json::object{{"thread_id", thread},
                                                 {"checkpoint_ns", ns},
                                                 {"checkpoint_id", id},
                                                 {"parent_checkpoint_id", parent},
                                                 {"checkpoint", std::move(checkpoint)},
                                                 {"metadata", std::move(metadata)},
                                                 {"blobs", std::move(blobs)}});
  }
  // A checkpoint with no channels.
  JsonReply PutSimple(const std::string& thread, const std::string& ns, const std::string& id,
                      json::object metadata = {}) {
    return Put(thread, ns, id, CheckpointJson(id, {}), std::move(metadata));
  }
  static json::object Blob(const std::string& channel, const std::string& version, const std::string& type,
                           const std::string& data) {
    return json::object{{"channel", channel}, {"version", version}, {"type", type}, {"blob", B64(data)}};
  }
  static json::object Write(const std::string& task, int64_t idx, const std::string& channel, const std::string& type,
                            const std::string& data) {
    return json::object{{"task_id", task}, {"idx", idx}, {"channel", channel}, {"type", type}, {"blob", B64(data)}};
  }
  JsonReply PutWrites(const std::string& thread, const std::string& ns, const std::string& id, json::array writes,
                      bool upsert = false) {
    return Post("/checkpoints/put-writes", json::object{{"thread_id", thread},
                                                        {"checkpoint_ns", ns},
                                                        {"checkpoint_id", id},
                                                        {"writes", std::move(writes)},
                                                        {"upsert", upsert}});
  }
  JsonReply GetTuple(const std::string& thread, const std::string& ns, json::value id = nullptr) {
    return Post("/checkpoints/get-tuple",
                json::object{{"thread_id", thread}, {"checkpoint_ns", ns}, {"checkpoint_id", id}});
  }
  // The checkpoint ids of a list reply, in order.
  std::vector<std::string> ListIds(const json::object& query) {
    auto r = Post("/checkpoints/list", query);
    EXPECT_EQ(r.status, 200) << r.raw;
    std::vector<std::string> ids;
    if (!r.body.is_array()) return ids;
    for (const auto& item : r.body.as_array()) ids.emplace_back(item.at("checkpoint_id").as_string());
    return ids;
  }
};

}  // namespace ckptd::testing
