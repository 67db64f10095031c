// The Cedana /v2/checkpoints endpoints (specs/cedana-v2-checkpoints.md) and
// our documented extensions (GET /v2/checkpoints/{id}; limit/cursor on the
// list; an optional {"name"} body on create; an optional checksum on
// uploaded).
#pragma once

#include <chrono>

#include <boost/json/value.hpp>

#include "api/checkpoint_guard.h"
#include "api/router.h"
#include "store/catalog.h"

namespace ckptd::api {

// The Checkpoint object of the spec plus restore_path, name, created_at,
// updated_at (RFC 3339) and history.
boost::json::value CheckpointToJson(const CheckpointRecord& r);

// Registers the routes; `catalog` (and `guard`) must outlive the router.
// With a guard, PATCH .../deprecate/{id} answers only once no job reads the
// checkpoint any more (at most `deprecate_wait`; after that it answers 200
// anyway, the record being deprecated, and cleanup waits for the reader).
void RegisterCedanaRoutes(Router* router, Catalog* catalog, CheckpointGuard* guard = nullptr,
                          std::chrono::milliseconds deprecate_wait = std::chrono::minutes(5));

}  // namespace ckptd::api
