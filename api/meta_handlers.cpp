#include "api/meta_handlers.h"

#include <boost/json.hpp>

#include "api/openapi_document.h"

namespace ckptd::api {

namespace json = boost::json;

std::string_view OpenApiDocument() { return kOpenApiDocument; }

void RegisterMetaRoutes(Router* router, std::function<json::value()> health) {
  router->Add(
      "GET", "/healthz",
      [health = std::move(health)](const Request&) {
        json::value body = health();
        const auto* status = body.is_object() ? body.as_object().if_contains("status") : nullptr;
        bool ok = status && status->is_string() && status->as_string() == "ok";
        return Json(ok ? 200 : 503, body);
      },
      RouteOptions{.auth = false, .inline_handler = true});
  router->Add("GET", "/openapi.json", [](const Request&) {
    Response r;
    r.body = std::string(kOpenApiDocument);
    return r;
  });
}

void RegisterMetricsRoute(Router* router, std::function<std::string()> render) {
  router->Add(
      "GET", "/metrics",
      [render = std::move(render)](const Request&) {
        Response r;
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = render();
        return r;
      },
      RouteOptions{.inline_handler = true});
}

}  // namespace ckptd::api
