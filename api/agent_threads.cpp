// Thread-wide agent-state operations: delete-thread, and our extensions
// prune, copy-thread, retention and sweep (api/agent_handlers.h).
#include <fmt/format.h>
#include <boost/json.hpp>

#include "api/agent_handlers.h"
#include "api/agent_validation.h"
#include "common/clock.h"

namespace ckptd::api::agent {

namespace json = boost::json;

namespace {

constexpr size_t kMaxPruneThreads = 1000;          // thread ids in one prune request
constexpr int64_t kMaxTtlS = 100ll * 365 * 86400;  // a century
const json::array kBody{"body"};

std::optional<AgentPruneStrategy> ReadStrategy(BodyValidator* v, const json::value& value) {
  if (value == "keep_latest") return AgentPruneStrategy::kKeepLatest;
  if (value == "delete") return AgentPruneStrategy::kDelete;
  v->AddLiteralError(BodyValidator::At(kBody, "strategy"), value, {"keep_latest", "delete"});
  return std::nullopt;
}

const char* StrategyName(AgentPruneStrategy s) { return s == AgentPruneStrategy::kDelete ? "delete" : "keep_latest"; }

json::object Counts(const AgentPruneResult& r) {
  return json::object{{"checkpoints", r.checkpoints}, {"writes", r.writes}, {"blobs", r.blobs}};
}

// The thread ids of a prune request: 1 to kMaxPruneThreads strings.
std::vector<std::string> ThreadIds(BodyValidator* v) {
  std::vector<std::string> threads;
  const json::array* arr = v->Array(v->body(), kBody, "thread_ids", true);
  if (!arr) return threads;
  const json::array loc = BodyValidator::At(kBody, "thread_ids");
  if (arr->empty()) {
    v->Add(loc, "too_short", "List should have at least 1 item after validation, not 0", *arr,
           json::object{{"field_type", "List"}, {"min_length", 1}, {"actual_length", 0}});
  } else if (arr->size() > kMaxPruneThreads) {
    v->Add(loc, "too_long",
           fmt::format("List should have at most {} items after validation, not {}", kMaxPruneThreads, arr->size()),
           *arr,
           json::object{{"field_type", "List"}, {"max_length", kMaxPruneThreads}, {"actual_length", arr->size()}});
  }
  for (size_t i = 0; i < arr->size(); ++i) {
    if ((*arr)[i].is_string()) {
      threads.emplace_back((*arr)[i].get_string());
    } else {
      v->Add(BodyValidator::At(loc, i), "string_type", "Input should be a valid string", (*arr)[i]);
    }
  }
  return threads;
}

json::value OptionalInt(const std::optional<int64_t>& v) { return v ? json::value(*v) : json::value(nullptr); }

}  // namespace

Response DeleteThread(AgentStore* store, const Request& req) {
  BodyValidator v(req);
  if (!v.ok()) return v.ErrorResponse();
  auto thread = v.String(v.body(), kBody, "thread_id");
  if (!v.ok()) return v.ErrorResponse();
  if (Status st = store->DeleteThread(*thread); !st.ok()) return DetailFor(st);
  return NoContent();
}

// {"thread_ids": [...], "strategy": "keep_latest"|"delete", "before": id|null}
// -> {"removed": {"checkpoints", "writes", "blobs"}}.
Response Prune(AgentStore* store, const Request& req) {
  BodyValidator v(req);
  if (!v.ok()) return v.ErrorResponse();
  std::vector<std::string> threads = ThreadIds(&v);
  std::optional<AgentPruneStrategy> strategy = AgentPruneStrategy::kKeepLatest;
  if (const json::value* s = v.body().if_contains("strategy")) strategy = ReadStrategy(&v, *s);
  auto before = v.NullableString(v.body(), kBody, "before");
  if (!v.ok()) return v.ErrorResponse();
  auto removed = store->Prune(threads, *strategy, *before);
  if (!removed.ok()) return DetailFor(removed.status());
  return Json(200, json::object{{"removed", Counts(*removed)}});
}

// {"source_thread_id", "target_thread_id"} -> {"copied": n}; 404 for a
// source without checkpoints, 409 for a target with some.
Response CopyThread(AgentStore* store, const Request& req) {
  BodyValidator v(req);
  if (!v.ok()) return v.ErrorResponse();
  auto source = v.String(v.body(), kBody, "source_thread_id");
  auto target = v.String(v.body(), kBody, "target_thread_id");
  if (!v.ok()) return v.ErrorResponse();
  auto copied = store->CopyThread(*source, *target);
  if (!copied.ok()) return DetailFor(copied.status());
  return Json(200, json::object{{"copied", *copied}});
}

// {"thread_id", "ttl_s": n|null, "strategy": "delete"|"keep_latest"|null}
// -> {"thread_id", "ttl_s", "strategy", "own": {"ttl_s", "strategy"},
//     "last_write_at", "expires_at"}. null or absent: the daemon default.
Response ThreadRetention(AgentStore* store, const Request& req) {
  BodyValidator v(req);
  if (!v.ok()) return v.ErrorResponse();
  const json::object& b = v.body();
  auto thread = v.String(b, kBody, "thread_id");
  AgentThreadRetention own;
  if (const json::value* t = b.if_contains("ttl_s"); t && !t->is_null()) {
    own.ttl_s = v.Int(b, kBody, "ttl_s", std::nullopt, 0, kMaxTtlS);
  }
  if (const json::value* s = b.if_contains("strategy"); s && !s->is_null()) own.strategy = ReadStrategy(&v, *s);
  if (!v.ok()) return v.ErrorResponse();
  auto state = store->SetThreadRetention(*thread, own);
  if (!state.ok()) return DetailFor(state.status());
  json::object out{
      {"thread_id", *thread},
      {"ttl_s", state->effective.ttl_s},
      {"strategy", StrategyName(state->effective.strategy)},
      {"own",
       {{"ttl_s", OptionalInt(state->own.ttl_s)},
        {"strategy", state->own.strategy ? json::value(StrategyName(*state->own.strategy)) : json::value(nullptr)}}},
      {"last_write_at", FormatTimestamp(state->last_write_ms)},
      {"expires_at",
       state->expires_at_ms ? json::value(FormatTimestamp(*state->expires_at_ms)) : json::value(nullptr)}};
  return Json(200, out);
}

// Applies retention now: {"threads": n, "removed": {...}}.
Response Sweep(AgentStore* store, const Request&) {
  auto swept = store->Sweep();
  if (!swept.ok()) return DetailFor(swept.status());
  return Json(200, json::object{{"threads", swept->threads}, {"removed", Counts(swept->removed)}});
}

}  // namespace ckptd::api::agent
