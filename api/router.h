// Routes (method, path pattern) to handlers.
//
// Patterns are literal segments and `{name}` captures, e.g.
// "/v2/checkpoints/info/{id}". Find() answers the route, or 404 when no
// pattern matches the path, or 405 (with the allowed methods) when the path
// matches under other methods only.
// Thread safety: routes are added before the server starts; afterwards the
// router is read-only and Find() may run on many threads.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "api/http_types.h"

namespace ckptd::api {

using Handler = std::function<Response(const Request&)>;

struct RouteOptions {
  bool auth = true;              // require the bearer token
  size_t body_limit = 1 << 20;   // bytes; larger bodies are answered 413
};

struct Route {
  std::string method;
  std::string pattern;
  std::vector<std::string> segments;
  Handler handler;
  RouteOptions options;
};

class Router {
 public:
  void Add(std::string method, std::string pattern, Handler handler, RouteOptions options = {});

  struct Match {
    const Route* route = nullptr;  // set when found
    std::map<std::string, std::string> params;
    int status = 200;        // 404 or 405 when route is null
    std::string allow;       // for 405: "GET, POST"
  };
  Match Find(const std::string& method, const std::string& path) const;

  const std::vector<Route>& routes() const { return routes_; }
  // The largest body limit of any route (the parser's ceiling).
  size_t MaxBodyLimit() const;

 private:
  std::vector<Route> routes_;
};

}  // namespace ckptd::api
