// POST /threads/{thread_id}/state/checkpoint: LangGraph's ThreadState at a
// stored checkpoint, rebuilt without the graph:
// - values: the checkpoint's inline channel_values plus the channel blobs it
//   names; `json` blobs are parsed, other types come back as
//   {"type", "blob": base64}; LangGraph's internal channels ("__*",
//   "branch:*", "start:*") are not state and are left out.
// - next: nodes whose trigger channel ("branch:to:<node>", or "__start__")
//   has a newer version than the node has seen (versions_seen).
// - tasks: one per task with pending writes, in task_id order; its name from
//   the task path ("~__pregel_pull, <name>"), its error from an "__error__"
//   write, its interrupts from "__interrupt__" writes; interrupts: all of them.
#include <boost/json.hpp>

#include "api/agent_handlers.h"
#include "api/agent_validation.h"

namespace ckptd::api::agent {

namespace json = boost::json;

namespace {

bool InternalChannel(std::string_view ch) {
  return ch.starts_with("__") || ch.starts_with("branch:") || ch.starts_with("start:");
}

// A value of serialization type `type` as state: parsed JSON, or base64.
json::value Decoded(std::string_view type, const std::string& data) {
  if (type == "json") {
    json::error_code ec;
    json::value v = json::parse(data, ec);
    if (!ec) return v;
  }
  return json::object{{"type", type}, {"blob", EncodeBase64(data)}};
}

// Channel versions compare as numbers when both are numbers, else as the
// strings LangGraph's savers produce (zero-padded, so lexical order works).
bool Newer(const json::value& version, const json::value* seen) {
  if (!seen || seen->is_null()) return true;
  if (version.is_number() && seen->is_number()) return version.to_number<double>() > seen->to_number<double>();
  return VersionString(version) > VersionString(*seen);
}

json::value ConfigJson(const std::string& thread, const std::string& ns, const std::string& id) {
  return json::object{
      {"thread_id", thread}, {"checkpoint_ns", ns}, {"checkpoint_id", id}, {"checkpoint_map", json::object{}}};
}

std::string TaskName(std::string_view path) {
  if (path.starts_with("~")) path.remove_prefix(1);
  constexpr std::string_view kPull = "__pregel_pull, ";
  if (!path.starts_with(kPull)) return "";
  path.remove_prefix(kPull.size());
  return std::string(path.substr(0, path.find(", ")));
}

void AddInterrupts(const AgentWrite& w, json::array* out) {
  json::value v = Decoded(w.type.value_or(""), w.data);
  auto one = [&](const json::value& x) {
    if (x.is_object() && x.get_object().contains("value")) {
      const json::value* id = x.get_object().if_contains("id");
      out->push_back(json::object{{"value", x.get_object().at("value")}, {"id", id ? *id : json::value(nullptr)}});
    } else {
      out->push_back(json::object{{"value", x}, {"id", nullptr}});
    }
  };
  if (v.is_array()) {
    for (const auto& x : v.get_array()) one(x);
  } else {
    one(v);
  }
}

}  // namespace

Response ThreadStateAtCheckpoint(AgentStore* store, const Request& req) {
  std::string thread = req.params.count("thread_id") ? req.params.at("thread_id") : "";
  BodyValidator v(req);
  if (!v.ok()) return v.ErrorResponse();
  const json::array body_loc{"body"};
  auto cfg = v.Object(v.body(), body_loc, "checkpoint", true);
  v.Bool(v.body(), body_loc, "subgraphs", false);
  std::optional<std::string> ns;
  std::optional<std::optional<std::string>> id;
  if (cfg) {
    json::array loc = BodyValidator::At(body_loc, "checkpoint");
    ns = v.String(*cfg, loc, "checkpoint_ns", std::string());
    id = v.NullableString(*cfg, loc, "checkpoint_id");
    v.NullableString(*cfg, loc, "thread_id");  // type-checked; the path names the thread
  }
  if (!v.ok()) return v.ErrorResponse();

  auto exists = store->ThreadExists(thread);
  if (!exists.ok()) return DetailFor(exists.status());
  if (!*exists) return Detail(404, "Thread " + thread + " not found");
  auto tuple = store->GetTuple(thread, *ns, *id);
  if (!tuple.ok()) return DetailFor(tuple.status());
  if (!*tuple) return Detail(404, "Checkpoint " + id->value_or("(latest)") + " of thread " + thread + " not found");
  const AgentTuple& t = **tuple;
  const AgentCheckpoint& c = t.checkpoint;

  json::error_code ec;
  json::value cp = json::parse(c.checkpoint_json, ec);
  json::value meta = json::parse(c.metadata_json, ec);
  const json::object empty;
  const json::object& cpo = cp.is_object() ? cp.get_object() : empty;

  json::object values;
  if (const json::value* inline_values = cpo.if_contains("channel_values"); inline_values && inline_values->is_object())
    for (const auto& kv : inline_values->get_object())
      if (!InternalChannel(kv.key())) values[kv.key()] = kv.value();
  for (const auto& b : t.blobs) {
    if (InternalChannel(b.channel) || !b.data || b.type == "empty") continue;
    values[b.channel] = Decoded(b.type, *b.data);
  }

  json::array next;
  const json::value* versions = cpo.if_contains("channel_versions");
  const json::value* seen_all = cpo.if_contains("versions_seen");
  if (versions && versions->is_object()) {
    for (const auto& kv : versions->get_object()) {
      std::string_view ch = kv.key();
      std::string node;
      if (ch == "__start__")
        node = "__start__";
      else if (ch.starts_with("branch:to:"))
        node = ch.substr(10);
      else
        continue;
      const json::value* seen = nullptr;
      if (seen_all && seen_all->is_object())
        if (const json::value* s = seen_all->get_object().if_contains(node); s && s->is_object())
          seen = s->get_object().if_contains(ch);
      if (Newer(kv.value(), seen)) next.push_back(json::string(node));
    }
  }

  json::array tasks, interrupts;
  for (size_t i = 0; i < t.pending_writes.size();) {
    const std::string& task_id = t.pending_writes[i].task_id;
    json::value error = nullptr;
    json::array task_interrupts;
    std::string name;
    for (; i < t.pending_writes.size() && t.pending_writes[i].task_id == task_id; ++i) {
      const AgentWrite& w = t.pending_writes[i];
      if (name.empty()) name = TaskName(w.task_path);
      if (w.channel == "__error__") {
        json::value e = Decoded(w.type.value_or(""), w.data);
        error = e.is_string() ? e : json::value(json::serialize(e));
      } else if (w.channel == "__interrupt__") {
        AddInterrupts(w, &task_interrupts);
      }
    }
    for (const auto& x : task_interrupts) interrupts.push_back(x);
    tasks.push_back(json::object{{"id", task_id},
                                 {"name", name},
                                 {"error", error},
                                 {"interrupts", std::move(task_interrupts)},
                                 {"checkpoint", nullptr},
                                 {"state", nullptr}});
  }

  const json::value* ts = cpo.if_contains("ts");
  json::object out{
      {"values", std::move(values)},
      {"next", std::move(next)},
      {"checkpoint", ConfigJson(c.thread_id, c.checkpoint_ns, c.checkpoint_id)},
      {"metadata", meta.is_object() ? meta : json::value(json::object{})},
      {"created_at", ts && ts->is_string() ? *ts : json::value(nullptr)},
      {"parent_checkpoint", c.parent_checkpoint_id ? ConfigJson(c.thread_id, c.checkpoint_ns, *c.parent_checkpoint_id)
                                                   : json::value(nullptr)},
      {"tasks", std::move(tasks)},
      {"interrupts", std::move(interrupts)},
  };
  return Json(200, out);
}

}  // namespace ckptd::api::agent
