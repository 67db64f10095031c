// Routes (method, path pattern) to handlers.
//
// Patterns are literal segments and `{name}` captures, e.g.
// "/v2/checkpoints/info/{id}". Find() answers the route, or 404 when no
// pattern matches the path, or 405 (with the allowed methods) when the path
// matches under other methods only.
// Thread safety: routes are added before the server starts; afterwards the
// route table is read-only and Find() may run on many threads. Body limits
// are the exception: SetBodyLimit() may change them while serving (SIGHUP
// reloads max_body_bytes), and Route::body_limit() reads them atomically.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "api/http_types.h"

namespace ckptd::api {

using Handler = std::function<Response(const Request&)>;

struct RouteOptions {
  bool auth = true;             // require the bearer token
  size_t body_limit = 1 << 20;  // bytes; larger bodies are answered 413
  // A cheap handler that never blocks (health, metrics): it runs on the
  // I/O thread, so it never queues behind slow handlers on the pool.
  bool inline_handler = false;
  // A handler that usually needs neither the disk nor a held lock (agent
  // reads and deferred-sync writes): the I/O thread first runs it itself,
  // under a NonBlockingScope (store/db.h), when the body is at most
  // kTryInlineBodyLimit; if anything in it would have blocked, that answer
  // is dropped and the handler runs again on the pool. Such a handler must
  // be safe to run twice and must bound work that runs long (the scope's
  // Spend()). Saves two thread hand-offs per request.
  bool try_inline = false;
};

inline constexpr size_t kTryInlineBodyLimit = 64 * 1024;

struct Route {
  std::string method;
  std::string pattern;
  std::vector<std::string> segments;
  Handler handler;
  RouteOptions options;  // as registered; options.body_limit is the initial limit
  // The body limit in effect: options.body_limit until Router::SetBodyLimit
  // changes it. Sessions read it once per request, when its header is in.
  size_t body_limit() const { return live_body_limit->load(std::memory_order_relaxed); }
  // Shared so that Route stays copyable; never null for a route in a Router.
  std::shared_ptr<std::atomic<size_t>> live_body_limit;
};

class Router {
 public:
  void Add(std::string method, std::string pattern, Handler handler, RouteOptions options = {});

  struct Match {
    const Route* route = nullptr;  // set when found
    std::map<std::string, std::string> params;
    int status = 200;   // 404 or 405 when route is null
    std::string allow;  // for 405: "GET, POST"
  };
  Match Find(const std::string& method, const std::string& path) const;

  const std::vector<Route>& routes() const { return routes_; }
  // The largest body limit in effect of any route (the parser's ceiling).
  size_t MaxBodyLimit() const;
  // Sets the body limit of routes()[first, last) (clamped to the table);
  // requests whose header arrives afterwards see it, requests being read
  // keep theirs. Safe while serving; the route table itself never changes.
  void SetBodyLimit(size_t first, size_t last, size_t limit);

 private:
  std::vector<Route> routes_;
};

}  // namespace ckptd::api
