// The Cedana /v2/checkpoints endpoints (specs/cedana-v2-checkpoints.md) and
// our documented extensions (GET /v2/checkpoints/{id}; limit/cursor on the
// list; an optional {"name"} body on create; an optional checksum on
// uploaded).
#pragma once

#include <boost/json/value.hpp>

#include "api/router.h"
#include "store/catalog.h"

namespace ckptd::api {

// The Checkpoint object of the spec plus restore_path, name, created_at,
// updated_at (RFC 3339) and history.
boost::json::value CheckpointToJson(const CheckpointRecord& r);

// Registers the routes; `catalog` must outlive the router.
void RegisterCedanaRoutes(Router* router, Catalog* catalog);

}  // namespace ckptd::api
