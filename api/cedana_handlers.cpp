#include "api/cedana_handlers.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

namespace ckptd::api {

namespace json = boost::json;

namespace {

constexpr size_t kMaxPageLimit = 1000;
constexpr size_t kStreamPage = 256;

json::value OptString(const std::optional<std::string>& s) { return s ? json::value(*s) : json::value(nullptr); }

Status CheckId(const std::string& id) {
  if (!IsUuid(id)) return InvalidArgument(fmt::format("invalid UUID '{}'", id));
  return Status::Ok();
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The body as a JSON object (required = an empty body is an error).
Result<json::object> BodyObject(const Request& req, bool required) {
  if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) {
    if (required) return InvalidArgument("request body is required");
    return json::object{};
  }
  CKPTD_ASSIGN_OR_RETURN(json::value v, ParseJsonBody(req));
  if (!v.is_object()) return InvalidArgument("request body must be a JSON object");
  return std::move(v.as_object());
}

Result<std::optional<std::string>> OptionalStringField(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::optional<std::string>();
  if (!it->value().is_string()) return InvalidArgument(fmt::format("'{}' must be a string or null", key));
  return std::optional<std::string>(std::string(it->value().as_string()));
}

Result<std::string> RequiredStringField(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end()) return InvalidArgument(fmt::format("'{}' is required", key));
  if (!it->value().is_string()) return InvalidArgument(fmt::format("'{}' must be a string", key));
  return std::string(it->value().as_string());
}

Result<std::vector<std::string>> ParseIds(const std::string& raw) {
  std::vector<std::string> ids;
  size_t start = 0;
  while (start <= raw.size()) {
    size_t end = raw.find(',', start);
    if (end == std::string::npos) end = raw.size();
    std::string id = raw.substr(start, end - start);
    id.erase(0, id.find_first_not_of(' '));
    id.erase(id.find_last_not_of(' ') + 1);
    if (id.empty()) return InvalidArgument("'ids' contains an empty entry");
    CKPTD_RETURN_IF_ERROR(CheckId(id));
    ids.push_back(Lower(id));
    start = end + 1;
  }
  return ids;
}

Response ListHandler(Catalog* catalog, const Request& req) {
  if (auto ids_raw = req.Query("ids")) {
    auto ids = ParseIds(*ids_raw);
    if (!ids.ok()) return Error(ids.status());
    auto records = catalog->GetMany(*ids);
    if (!records.ok()) return Error(records.status());
    json::array out;
    for (const auto& r : *records) out.push_back(CheckpointToJson(r));
    return Json(200, out);
  }
  std::optional<std::string> cursor = req.Query("cursor");
  if (auto limit_raw = req.Query("limit")) {
    size_t limit = 0;
    if (limit_raw->empty() || limit_raw->size() > 4 ||
        limit_raw->find_first_not_of("0123456789") != std::string::npos || (limit = std::stoul(*limit_raw)) < 1 ||
        limit > kMaxPageLimit) {
      return Error(400, fmt::format("'limit' must be an integer from 1 to {}", kMaxPageLimit));
    }
    auto page = catalog->List(cursor, limit);
    if (!page.ok()) return Error(page.status());
    json::array out;
    for (const auto& r : page->items) out.push_back(CheckpointToJson(r));
    Response res = Json(200, out);
    if (page->next_cursor) res.headers.emplace_back("X-Next-Cursor", *page->next_cursor);
    return res;
  }
  // Everything: streamed a page at a time, so the catalog's size never
  // decides the daemon's memory.
  if (cursor) {
    auto probe = catalog->List(cursor, 1);
    if (!probe.ok()) return Error(probe.status());
  }
  struct State {
    std::optional<std::string> cursor;
    bool started = false, done = false, first = true;
  };
  auto state = std::make_shared<State>();
  state->cursor = cursor;
  Response res;
  res.status = 200;
  res.stream = [catalog, state]() -> Result<std::optional<std::string>> {
    if (state->done) return std::optional<std::string>();
    std::string out = state->started ? "" : "[";
    state->started = true;
    CKPTD_ASSIGN_OR_RETURN(auto page, catalog->List(state->cursor, kStreamPage));
    for (const auto& r : page.items) {
      if (!state->first) out += ',';
      state->first = false;
      out += json::serialize(CheckpointToJson(r));
    }
    state->cursor = page.next_cursor;
    if (!page.next_cursor) {
      out += ']';
      state->done = true;
    }
    return std::optional<std::string>(std::move(out));
  };
  return res;
}

Response GetHandler(Catalog* catalog, const Request& req) {
  const std::string& id = req.params.at("id");
  if (auto st = CheckId(id); !st.ok()) return Error(st);
  auto r = catalog->Get(Lower(id));
  if (!r.ok()) return Error(r.status());
  return Json(200, CheckpointToJson(*r));
}

// Create, info and uploaded are group-committed: applied at once and
// answered once a WAL sync shared with concurrent writers made them durable.
Response CreateHandler(Catalog* catalog, const Request& req) {
  auto body = BodyObject(req, false);
  if (!body.ok()) return Error(body.status());
  auto name = OptionalStringField(*body, "name");
  if (!name.ok()) return Error(name.status());
  if (*name && (*name)->size() > kMaxNameBytes)
    return Error(400, fmt::format("'name' is longer than {} bytes", kMaxNameBytes));
  auto r = catalog->Create(std::move(name).value(), {}, Sync::kDeferred);
  if (!r.ok()) return Error(r.status());
  return WhenDurable(catalog, Text(200, r->id));
}

// Deprecated first, then wait: a restore that takes its hold after this
// write sees `deprecated` and reads nothing, one that took it before is
// waited for (jobs/checkpoint_readers.h).
Response DeprecateHandler(Catalog* catalog, CheckpointGuard* guard, std::chrono::milliseconds wait,
                          const Request& req) {
  const std::string& id = req.params.at("id");
  if (auto st = CheckId(id); !st.ok()) return Error(st);
  auto r = catalog->Deprecate(Lower(id));
  if (!r.ok()) return Error(r.status());
  if (guard) {
    if (Status w = guard->WaitForReaders(r->id, wait); !w.ok())
      spdlog::warn("deprecate {}: answering while a restore still reads it: {}", r->id, w.message());
  }
  return Text(200, r->id);
}

Response InfoHandler(Catalog* catalog, const Request& req) {
  const std::string& id = req.params.at("id");
  if (auto st = CheckId(id); !st.ok()) return Error(st);
  auto body = BodyObject(req, true);
  if (!body.ok()) return Error(body.status());
  auto gpu = RequiredStringField(*body, "gpu");
  if (!gpu.ok()) return Error(gpu.status());
  auto platform = RequiredStringField(*body, "platform");
  if (!platform.ok()) return Error(platform.status());
  json::value info = nullptr;
  if (auto it = body->find("info"); it != body->end()) info = it->value();
  auto r = catalog->SetInfo(Lower(id), std::move(gpu).value(), std::move(platform).value(), std::move(info),
                            Sync::kDeferred);
  if (!r.ok()) return Error(r.status());
  return WhenDurable(catalog, Text(200, r->id));
}

Response UploadedHandler(Catalog* catalog, const Request& req) {
  const std::string& id = req.params.at("id");
  if (auto st = CheckId(id); !st.ok()) return Error(st);
  auto body = BodyObject(req, true);
  if (!body.ok()) return Error(body.status());
  auto restore_path = OptionalStringField(*body, "restore_path");
  if (!restore_path.ok()) return Error(restore_path.status());
  auto checksum = OptionalStringField(*body, "checksum");
  if (!checksum.ok()) return Error(checksum.status());
  auto r =
      catalog->MarkReady(Lower(id), std::move(restore_path).value(), std::move(checksum).value(), {}, Sync::kDeferred);
  if (!r.ok()) return Error(r.status());
  return WhenDurable(catalog, Text(200, r->id));
}

}  // namespace

json::value CheckpointToJson(const CheckpointRecord& r) {
  json::array history;
  for (const auto& t : r.history) {
    history.push_back(
        json::object{{"from", StatusName(t.from)}, {"to", StatusName(t.to)}, {"at", FormatTimestamp(t.at_ms)}});
  }
  return json::object{
      {"id", r.id},
      {"name", OptString(r.name)},
      {"status", StatusName(r.status)},
      {"gpu", r.gpu},
      {"platform", r.platform},
      {"info", r.info},
      {"checksum", OptString(r.checksum)},
      {"restore_path", OptString(r.restore_path)},
      {"created_at", FormatTimestamp(r.created_at_ms)},
      {"updated_at", FormatTimestamp(r.updated_at_ms)},
      {"cleaned_at", r.cleaned_at_ms ? json::value(FormatTimestamp(*r.cleaned_at_ms)) : json::value(nullptr)},
      {"history", std::move(history)},
  };
}

void RegisterCedanaRoutes(Router* router, Catalog* catalog, CheckpointGuard* guard,
                          std::chrono::milliseconds deprecate_wait) {
  auto bind = [catalog](Response (*fn)(Catalog*, const Request&)) {
    return [catalog, fn](const Request& req) { return fn(catalog, req); };
  };
  router->Add("GET", "/v2/checkpoints", bind(ListHandler));
  router->Add("POST", "/v2/checkpoints", bind(CreateHandler));
  router->Add("GET", "/v2/checkpoints/{id}", bind(GetHandler));
  router->Add("PATCH", "/v2/checkpoints/deprecate/{id}", [catalog, guard, deprecate_wait](const Request& req) {
    return DeprecateHandler(catalog, guard, deprecate_wait, req);
  });
  router->Add("PUT", "/v2/checkpoints/info/{id}", bind(InfoHandler));
  router->Add("POST", "/v2/checkpoints/uploaded/{id}", bind(UploadedHandler));
}

}  // namespace ckptd::api
