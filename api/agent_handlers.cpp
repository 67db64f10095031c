#include "api/agent_handlers.h"

#include <memory>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "api/agent_validation.h"

namespace ckptd::api {

namespace json = boost::json;
using agent::BodyValidator;
using agent::DetailFor;
using agent::AppendBase64;

namespace {

constexpr int64_t kMaxListLimit = 1000;
constexpr int64_t kDefaultListLimit = 100;

const json::array kBody{"body"};

void AppendJsonString(std::string* out, std::string_view s) { *out += json::serialize(s); }

void AppendBase64String(std::string* out, std::string_view bytes) {
  *out += '"';
  AppendBase64(out, bytes);
  *out += '"';
}

// The CheckpointListItem fields, spliced from the stored JSON text.
void AppendItemFields(std::string* out, const AgentCheckpoint& c) {
  *out += "\"thread_id\":";
  AppendJsonString(out, c.thread_id);
  *out += ",\"checkpoint_ns\":";
  AppendJsonString(out, c.checkpoint_ns);
  *out += ",\"checkpoint_id\":";
  AppendJsonString(out, c.checkpoint_id);
  *out += ",\"parent_checkpoint_id\":";
  if (c.parent_checkpoint_id)
    AppendJsonString(out, *c.parent_checkpoint_id);
  else
    *out += "null";
  *out += ",\"checkpoint\":";
  *out += c.checkpoint_json;
  *out += ",\"metadata\":";
  *out += c.metadata_json;
}

// Our extension "blob_encoding": "text" answers bytes that are UTF-8 as a
// JSON string in "text" instead of base64 in "blob": a client of
// JSON-serialized values (LangGraph's) then parses them straight, without
// base64 and a byte decode, from a smaller answer. Other bytes stay in
// "blob".
enum class BlobEncoding { kBase64, kText };

std::optional<BlobEncoding> ReadBlobEncoding(BodyValidator* v, const json::object& b) {
  auto enc = v->String(b, kBody, "blob_encoding", std::string("base64"));
  if (!enc) return std::nullopt;
  if (*enc == "base64") return BlobEncoding::kBase64;
  if (*enc == "text") return BlobEncoding::kText;
  v->AddLiteralError(BodyValidator::At(kBody, "blob_encoding"), json::string(*enc), {"base64", "text"});
  return std::nullopt;
}

// ,"blob":"<base64>" or ,"text":"<the bytes>"
void AppendBytes(std::string* out, std::string_view bytes, BlobEncoding enc) {
  if (enc == BlobEncoding::kText && agent::IsUtf8(bytes)) {
    *out += ",\"text\":";
    AppendJsonString(out, bytes);
  } else {
    *out += ",\"blob\":";
    AppendBase64String(out, bytes);
  }
}

// ,"blobs":[{channel, version, type, blob (base64 or null) or text}, ...]
void AppendBlobs(std::string* out, const std::vector<AgentBlob>& blobs, BlobEncoding enc) {
  *out += ",\"blobs\":[";
  for (size_t i = 0; i < blobs.size(); ++i) {
    const AgentBlob& bl = blobs[i];
    if (i) *out += ',';
    *out += "{\"channel\":";
    AppendJsonString(out, bl.channel);
    *out += ",\"version\":";
    AppendJsonString(out, bl.version);
    *out += ",\"type\":";
    AppendJsonString(out, bl.type);
    if (bl.data)
      AppendBytes(out, *bl.data, enc);
    else
      *out += ",\"blob\":null";
    *out += '}';
  }
  *out += ']';
}

// ,"pending_writes":[{task_id, idx, channel, type, blob (base64) or text, task_path}, ...]
void AppendWrites(std::string* out, const std::vector<AgentWrite>& writes, BlobEncoding enc) {
  *out += ",\"pending_writes\":[";
  for (size_t i = 0; i < writes.size(); ++i) {
    const AgentWrite& w = writes[i];
    if (i) *out += ',';
    *out += "{\"task_id\":";
    AppendJsonString(out, w.task_id);
    *out += fmt::format(",\"idx\":{},\"channel\":", w.idx);
    AppendJsonString(out, w.channel);
    *out += ",\"type\":";
    if (w.type)
      AppendJsonString(out, *w.type);
    else
      *out += "null";
    AppendBytes(out, w.data, enc);
    *out += ",\"task_path\":";
    AppendJsonString(out, w.task_path);
    *out += '}';
  }
  *out += ']';
}

Response RawJson(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// Puts and put-writes are group-committed: applied at once (under the
// thread's lock, so the thread's next request sees them) and answered once a
// WAL sync shared with concurrent writers has made them durable. In a batch
// (`group` set) they are applied with the batch's other writes, and the
// batch answers them once that write is durable.
Response PutOp(AgentStore* store, BodyValidator& v, AgentWriteGroup* group) {
  const json::object& b = v.body();
  AgentCheckpoint c;
  auto thread = v.String(b, kBody, "thread_id");
  auto ns = v.String(b, kBody, "checkpoint_ns", std::string());
  auto id = v.String(b, kBody, "checkpoint_id");
  auto parent = v.NullableString(b, kBody, "parent_checkpoint_id");
  auto checkpoint = v.Object(b, kBody, "checkpoint", true);
  auto metadata = v.Object(b, kBody, "metadata", false);
  std::vector<AgentBlob> blobs;
  if (const json::array* arr = v.Array(b, kBody, "blobs", false)) {
    json::array bloc = BodyValidator::At(kBody, "blobs");
    for (size_t i = 0; i < arr->size(); ++i) {
      json::array loc = BodyValidator::At(bloc, i);
      const json::object* item = v.Model((*arr)[i], loc, "BlobData");
      if (!item) continue;
      const json::object& o = *item;
      auto channel = v.String(o, loc, "channel");
      auto version = v.String(o, loc, "version");
      auto type = v.String(o, loc, "type");
      auto blob = v.NullableString(o, loc, "blob");
      std::optional<std::string> data;
      if (blob && *blob) {
        data = v.Base64(**blob, loc, "blob");
        if (!data) continue;
      }
      if (!channel || !version || !type || !blob) continue;
      blobs.push_back(AgentBlob{std::move(*channel), std::move(*version), std::move(*type), std::move(data)});
    }
  }
  if (!v.ok()) return v.ErrorResponse();
  c.thread_id = std::move(*thread);
  c.checkpoint_ns = std::move(*ns);
  c.checkpoint_id = std::move(*id);
  c.parent_checkpoint_id = std::move(*parent);
  c.checkpoint_json = json::serialize(*checkpoint);
  c.metadata_json = json::serialize(*metadata);
  if (Status st = store->Put(c, blobs, Sync::kDeferred, group); !st.ok()) return DetailFor(st);
  Response answer = Json(
      200, json::object{{"thread_id", c.thread_id}, {"checkpoint_ns", c.checkpoint_ns}, {"checkpoint_id", c.checkpoint_id}});
  return group ? answer : WhenDurable(store, std::move(answer));
}

Response PutWritesOp(AgentStore* store, BodyValidator& v, AgentWriteGroup* group) {
  const json::object& b = v.body();
  auto thread = v.String(b, kBody, "thread_id");
  auto ns = v.String(b, kBody, "checkpoint_ns", std::string());
  auto id = v.String(b, kBody, "checkpoint_id");
  auto upsert = v.Bool(b, kBody, "upsert", false);
  std::vector<AgentWrite> writes;
  if (const json::array* arr = v.Array(b, kBody, "writes", true)) {
    json::array wloc = BodyValidator::At(kBody, "writes");
    for (size_t i = 0; i < arr->size(); ++i) {
      json::array loc = BodyValidator::At(wloc, i);
      const json::object* item = v.Model((*arr)[i], loc, "WriteData");
      if (!item) continue;
      const json::object& o = *item;
      auto task_id = v.String(o, loc, "task_id");
      auto idx = v.Int(o, loc, "idx", std::nullopt);
      auto channel = v.String(o, loc, "channel");
      auto type = v.NullableString(o, loc, "type");
      auto blob = v.String(o, loc, "blob");
      auto task_path = v.String(o, loc, "task_path", std::string());
      std::optional<std::string> data;
      if (blob) data = v.Base64(*blob, loc, "blob");
      if (!task_id || !idx || !channel || !type || !data || !task_path) continue;
      writes.push_back(AgentWrite{std::move(*task_id), *idx, std::move(*channel), std::move(*type), std::move(*data),
                                  std::move(*task_path)});
    }
  }
  if (!v.ok()) return v.ErrorResponse();
  if (Status st = store->PutWrites(*thread, *ns, *id, writes, *upsert, Sync::kDeferred, group); !st.ok())
    return DetailFor(st);
  return group ? NoContent() : WhenDurable(store, NoContent());
}

// Our extension "include": ["values", "pending_writes"]: each item also
// carries what get-tuple gives for it ("blobs", "pending_writes").
struct ListIncludes {
  bool values = false, writes = false;
};

ListIncludes ReadIncludes(BodyValidator* v, const json::object& b) {
  ListIncludes inc;
  const json::array* arr = v->Array(b, kBody, "include", false);
  if (!arr) return inc;
  const json::array loc = BodyValidator::At(kBody, "include");
  for (size_t i = 0; i < arr->size(); ++i) {
    const json::value& e = (*arr)[i];
    if (e.is_string() && e.get_string() == "values") {
      inc.values = true;
    } else if (e.is_string() && e.get_string() == "pending_writes") {
      inc.writes = true;
    } else {
      v->AddLiteralError(BodyValidator::At(loc, i), e, {"values", "pending_writes"});
    }
  }
  return inc;
}

Response ListOp(AgentStore* store, BodyValidator& v, AgentWriteGroup* /*reads take no group*/) {
  const json::object& b = v.body();
  // Extension: a missing or null thread_id searches every thread.
  auto thread = v.NullableString(b, kBody, "thread_id");
  auto ns = v.NullableString(b, kBody, "checkpoint_ns");
  auto before = v.NullableString(b, kBody, "before_checkpoint_id");
  auto filter = v.NullableObject(b, kBody, "filter_metadata");
  auto limit = v.Int(b, kBody, "limit", kDefaultListLimit, 1, kMaxListLimit);
  ListIncludes inc = ReadIncludes(&v, b);
  auto enc = ReadBlobEncoding(&v, b);
  if (!v.ok()) return v.ErrorResponse();
  AgentListQuery q;
  q.thread_id = *thread;
  q.checkpoint_ns = *ns;
  q.before = *before;
  q.filter = *filter ? &**filter : nullptr;
  q.limit = static_cast<size_t>(*limit);
  auto items = store->ListTuples(q, inc.values, inc.writes);
  if (!items.ok()) return DetailFor(items.status());
  std::string out = "[";
  for (size_t i = 0; i < items->size(); ++i) {
    const AgentTuple& t = (*items)[i];
    if (i) out += ',';
    out += '{';
    AppendItemFields(&out, t.checkpoint);
    if (inc.values) AppendBlobs(&out, t.blobs, *enc);
    if (inc.writes) AppendWrites(&out, t.pending_writes, *enc);
    out += '}';
  }
  out += ']';
  return RawJson(200, std::move(out));
}

Response GetTupleOp(AgentStore* store, BodyValidator& v, AgentWriteGroup* /*reads take no group*/) {
  const json::object& b = v.body();
  auto thread = v.String(b, kBody, "thread_id");
  auto ns = v.String(b, kBody, "checkpoint_ns", std::string());
  auto id = v.NullableString(b, kBody, "checkpoint_id");
  auto enc = ReadBlobEncoding(&v, b);
  if (!v.ok()) return v.ErrorResponse();
  auto tuple = store->GetTuple(*thread, *ns, *id);
  if (!tuple.ok()) return DetailFor(tuple.status());
  if (!*tuple) return RawJson(200, "null");
  std::string out = "{";
  AppendItemFields(&out, (**tuple).checkpoint);
  AppendBlobs(&out, (**tuple).blobs, *enc);
  AppendWrites(&out, (**tuple).pending_writes, *enc);
  out += '}';
  return RawJson(200, std::move(out));
}

// --- POST /checkpoints/batch (our extension)
// {"ops": [{"op": "put"|"put-writes"|"get-tuple"|"list", "body": {...}}]}
// -> {"results": [{"status": n, "body": that route's answer (null for 204)}]}
// Each op is exactly what its own route does, run in order (a later op sees
// an earlier one's write), each with its own status. The answer comes once
// every write of the batch is durable, from one shared sync: a client that
// coalesces its concurrent calls pays one round trip and one sync for all.
constexpr size_t kMaxBatchOps = 256;

// A route's work on its validated body: the route parses the request's, the
// batch hands each op the body it already parsed, and its writes' group.
using AgentOp = Response (*)(AgentStore*, BodyValidator&, AgentWriteGroup*);

template <AgentOp op>
Response FromRequest(AgentStore* store, const Request& req) {
  BodyValidator v(req);
  if (!v.ok()) return v.ErrorResponse();
  return op(store, v, nullptr);
}

AgentOp BatchOp(std::string_view op) {
  if (op == "put") return PutOp;
  if (op == "put-writes") return PutWritesOp;
  if (op == "get-tuple") return GetTupleOp;
  if (op == "list") return ListOp;
  return nullptr;
}

// {"status": n, "body": ...}; a body that is not JSON travels as a string.
void AppendResult(std::string* out, const Response& r) {
  *out += fmt::format("{{\"status\":{},\"body\":", r.status);
  if (r.body.empty())
    *out += "null";
  else if (r.content_type.starts_with("application/json"))
    *out += r.body;
  else
    AppendJsonString(out, r.body);
  *out += '}';
}

Response BatchAnswer(const std::vector<Response>& results) {
  std::string out = "{\"results\":[";
  for (size_t i = 0; i < results.size(); ++i) {
    if (i) out += ',';
    AppendResult(&out, results[i]);
  }
  out += "]}";
  return RawJson(200, std::move(out));
}

// The results, answered once the writes among them (`writes`, answered Ok
// when made) are durable: one wait for the batch. A write whose sync failed
// answers its route's 500.
Response WhenBatchDurable(AgentStore* store, std::vector<Response> results, std::vector<size_t> writes) {
  if (writes.empty()) return BatchAnswer(results);
  Response out;
  out.deferred = [store, results = std::move(results), writes = std::move(writes)](Response::Done done) mutable {
    store->AfterSync([results = std::move(results), writes = std::move(writes), done = std::move(done)](Status st) mutable {
      if (!st.ok()) {
        Response failed = NotDurable(st);
        for (size_t j : writes) results[j] = failed;
      }
      done(BatchAnswer(results));
    });
  };
  return out;
}

Response BatchHandler(AgentStore* store, const Request& req) {
  BodyValidator v(req);
  if (!v.ok()) return v.ErrorResponse();
  const json::array* ops = v.Array(v.body(), kBody, "ops", true);
  if (!v.ok()) return v.ErrorResponse();
  const json::array oloc = BodyValidator::At(kBody, "ops");
  if (ops->size() > kMaxBatchOps)
    v.Add(oloc, "too_long",
          fmt::format("List should have at most {} items after validation, not {}", kMaxBatchOps, ops->size()), nullptr,
          json::object{{"field_type", "List"}, {"max_length", kMaxBatchOps}, {"actual_length", ops->size()}});
  // Each op's work and where its body is in the batch's.
  std::vector<std::pair<AgentOp, size_t>> calls;
  for (size_t i = 0; i < ops->size(); ++i) {
    json::array loc = BodyValidator::At(oloc, i);
    const json::object* item = v.Model((*ops)[i], loc, "BatchOp");
    if (!item) continue;
    auto op = v.String(*item, loc, "op");
    const json::object* body = v.Object(*item, loc, "body", true);
    AgentOp fn = op ? BatchOp(*op) : nullptr;
    if (op && !fn)
      v.AddLiteralError(BodyValidator::At(loc, "op"), json::string(*op), {"put", "put-writes", "get-tuple", "list"});
    if (fn && body) calls.emplace_back(fn, i);
  }
  if (!v.ok()) return v.ErrorResponse();
  json::array& valid_ops = v.mutable_body()["ops"].as_array();
  std::vector<Response> results;
  results.reserve(calls.size());
  // The batch's puts and put-writes go to RocksDB together; a read sees
  // the writes before it, so the group is written before each read.
  AgentWriteGroup group(store);
  std::vector<size_t> grouped;  // the writes answered Ok so far
  for (auto [fn, i] : calls) {
    bool writes = fn == PutOp || fn == PutWritesOp;
    if (!writes) group.Flush().IgnoreError();  // first_error() has it
    BodyValidator sub(std::move(valid_ops[i].as_object()["body"]));
    results.push_back(sub.ok() ? fn(store, sub, &group) : sub.ErrorResponse());
    if (writes && results.back().status < 300) grouped.push_back(results.size() - 1);
  }
  group.Flush().IgnoreError();
  // A failed write of the group: its writes were not made, and earlier ones
  // may not have been; each write answers the error (retrying is safe, as
  // puts and put-writes are idempotent).
  if (!group.first_error().ok()) {
    for (size_t j : grouped) results[j] = DetailFor(group.first_error());
    grouped.clear();
  }
  return WhenBatchDurable(store, std::move(results), std::move(grouped));
}

}  // namespace

void RegisterAgentRoutes(Router* router, AgentStore* store, size_t body_limit) {
  auto add = [&](const char* pattern, Response (*fn)(AgentStore*, const Request&), bool try_inline = false) {
    RouteOptions opts{.auth = true, .body_limit = body_limit, .try_inline = try_inline};
    router->Add(
        "POST", pattern, [store, fn](const Request& req) { return fn(store, req); }, opts);
  };
  // Work that memory usually serves (AgentStore bounds a list's scan there),
  // tried on the I/O thread first.
  add("/checkpoints/put", FromRequest<PutOp>, true);
  add("/checkpoints/put-writes", FromRequest<PutWritesOp>, true);
  add("/checkpoints/list", FromRequest<ListOp>, true);
  add("/checkpoints/get-tuple", FromRequest<GetTupleOp>, true);
  add("/checkpoints/delete-thread", agent::DeleteThread);
  add("/checkpoints/prune", agent::Prune);
  add("/checkpoints/copy-thread", agent::CopyThread);
  add("/checkpoints/retention", agent::ThreadRetention);
  add("/checkpoints/sweep", agent::Sweep);
  add("/checkpoints/batch", BatchHandler, true);
  add("/threads/{thread_id}/state/checkpoint", agent::ThreadStateAtCheckpoint);
}

}  // namespace ckptd::api
