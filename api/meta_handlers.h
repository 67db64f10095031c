// /healthz (no token), /openapi.json and /metrics.
#pragma once

#include <functional>
#include <string_view>

#include <boost/json/value.hpp>

#include "api/router.h"

namespace ckptd::api {

// The OpenAPI 3.1 document of everything the daemon serves (api/openapi.json,
// embedded at build time).
std::string_view OpenApiDocument();

// `health` builds the /healthz body; its "status" field decides the code:
// "ok" answers 200, anything else 503.
void RegisterMetaRoutes(Router* router, std::function<boost::json::value()> health);

// GET /metrics: `render` returns the Prometheus text exposition.
void RegisterMetricsRoute(Router* router, std::function<std::string()> render);

}  // namespace ckptd::api
