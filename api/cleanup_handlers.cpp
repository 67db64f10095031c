#include "api/cleanup_handlers.h"

#include <boost/json.hpp>

namespace ckptd::api {

namespace json = boost::json;

void RegisterCleanupRoutes(Router* router, CleanupService* cleanup) {
  router->Add("POST", "/v2/cleanup", [cleanup](const Request&) -> Response {
    auto r = cleanup->RunOnce();
    if (!r.ok()) return Error(r.status());
    json::array errors;
    for (const auto& e : r->errors) errors.emplace_back(e);
    return Json(200, json::object{{"cleaned", r->cleaned},
                                  {"removed", r->removed},
                                  {"skipped", r->skipped},
                                  {"orphans", r->orphans},
                                  {"errors", std::move(errors)}});
  });
}

}  // namespace ckptd::api
