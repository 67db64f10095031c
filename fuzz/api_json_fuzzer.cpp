// Fuzz target (b): the JSON bodies of the Cedana and agent-state routes,
// straight into the real handlers (no HTTP), over a real Catalog and
// AgentStore on RocksDB in tmpfs.
//
// Input: up to 8 requests separated by NUL bytes; each is a letter that
// picks the route, then the body:
//   c  POST /v2/checkpoints                 i  PUT /v2/checkpoints/info/{id}
//   u  POST /v2/checkpoints/uploaded/{id}   p  POST /checkpoints/put
//   w  POST /checkpoints/put-writes         l  POST /checkpoints/list
//   g  POST /checkpoints/get-tuple          d  POST /checkpoints/delete-thread
//   s  POST /threads/{thread_id}/state/checkpoint: "s<thread_id>\n<body>"
//   b  the base64 codec of the agent routes (api/agent_validation.h)
// {id} is the checkpoint the input created last (one is created when there
// is none yet), so `c`, `i`, `u` walk the lifecycle. Any other letter picks
// a route by its value.
//
// Checks: no handler throws, nothing is answered 5xx, every JSON answer
// parses (the agent routes splice stored JSON text), and base64 round-trips.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "api/agent_handlers.h"
#include "api/agent_validation.h"
#include "api/cedana_handlers.h"
#include "api/router.h"
#include "common/utf8.h"
#include "daemon/config.h"
#include "fuzz/fuzz_util.h"

namespace ckptd::fuzz {
namespace {

constexpr int kMaxRequests = 8;
constexpr std::string_view kLetters = "ciupwlgdsb";

struct World {
  Stores stores;
  std::unique_ptr<api::Router> router;
  World() { Build(); }
  void Build() {
    router = std::make_unique<api::Router>();
    api::RegisterCedanaRoutes(router.get(), stores.catalog());
    api::RegisterAgentRoutes(router.get(), stores.agents(), static_cast<size_t>(Config{}.max_body_bytes));
  }
};

World& TheWorld() {
  static World* w = new World();
  return *w;
}

void Base64Checks(std::string_view text) {
  std::string why;
  auto bytes = api::agent::DecodeBase64(text, &why);
  if (bytes) {
    // Whatever decodes encodes to something that decodes the same.
    std::string again = api::agent::EncodeBase64(*bytes);
    auto back = api::agent::DecodeBase64(again, &why);
    if (!back || *back != *bytes) Fail("base64: decode(encode(decode(x))) != decode(x)", std::string(text));
  } else if (why.empty()) {
    Fail("base64: refused without a reason", std::string(text));
  }
  // Any bytes encode to text that decodes to them.
  std::string enc = api::agent::EncodeBase64(text);
  auto dec = api::agent::DecodeBase64(enc, &why);
  if (!dec || *dec != text) Fail("base64: decode(encode(x)) != x", std::string(text));
}

void Check(const api::Request& req, const api::Response& res) {
  if (res.status >= 500) Fail(fmt::format("{} {} answered {}", req.method, req.path, res.status), res.body);
  if (res.content_type == "application/json" && !res.body.empty()) {
    boost::json::error_code ec;
    boost::json::parse(res.body, ec);
    if (ec) Fail(fmt::format("{} {}: answer is not JSON", req.method, req.path), res.body);
  }
}

api::Response Call(World& w, api::Request& req) {
  api::Router::Match m = w.router->Find(req.method, req.path);
  if (!m.route) Fail("route not found", req.method + " " + req.path);
  req.params = m.params;
  try {
    api::Response res = m.route->handler(req);
    Check(req, res);
    return res;
  } catch (const std::exception& e) {
    Fail(fmt::format("{} {} threw", req.method, req.path), e.what());
  }
}

void One(World& w, std::string_view part, std::string* last_id) {
  if (part.empty()) return;
  char letter = part[0];
  if (kLetters.find(letter) == std::string_view::npos)
    letter = kLetters[static_cast<unsigned char>(letter) % kLetters.size()];
  std::string_view body = part.substr(1);
  if (letter == 'b') return Base64Checks(body);

  api::Request req;
  req.method = "POST";
  auto need_id = [&] {
    if (last_id->empty()) {
      auto r = w.stores.catalog()->Create(std::nullopt);
      if (!r.ok()) Fail("create", r.status().ToString());
      *last_id = r->id;
    }
    return *last_id;
  };
  switch (letter) {
    case 'c':
      req.path = "/v2/checkpoints";
      break;
    case 'i':
      req.method = "PUT";
      req.path = "/v2/checkpoints/info/" + need_id();
      break;
    case 'u':
      req.path = "/v2/checkpoints/uploaded/" + need_id();
      break;
    case 'p':
      req.path = "/checkpoints/put";
      break;
    case 'w':
      req.path = "/checkpoints/put-writes";
      break;
    case 'l':
      req.path = "/checkpoints/list";
      break;
    case 'g':
      req.path = "/checkpoints/get-tuple";
      break;
    case 'd':
      req.path = "/checkpoints/delete-thread";
      break;
    case 's': {
      size_t nl = body.find('\n');
      std::string thread(body.substr(0, nl));
      body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
      // A path segment: no '/', not empty (Router::Find would not match).
      for (auto& c : thread)
        if (c == '/') c = '_';
      if (thread.empty()) thread = "t";
      // The session refuses a target that is not UTF-8 once decoded.
      if (!IsValidUtf8(thread)) return;
      req.path = "/threads/" + thread + "/state/checkpoint";
      break;
    }
  }
  req.target = req.path;
  req.headers["content-type"] = "application/json";
  req.body = std::string(body);
  api::Response res = Call(w, req);
  if (letter == 'c' && res.status == 200) *last_id = res.body;
}

}  // namespace
}  // namespace ckptd::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ckptd::fuzz::QuietLogs();
  ckptd::fuzz::TheWorld();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& w = ckptd::fuzz::TheWorld();
  if (w.stores.Tick()) w.Build();
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string last_id;
  for (int n = 0; n < ckptd::fuzz::kMaxRequests && !in.empty(); ++n) {
    size_t nul = in.find('\0');
    ckptd::fuzz::One(w, in.substr(0, nul), &last_id);
    in = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  }
  return 0;
}
