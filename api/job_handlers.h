// Our job endpoints (documented in openapi.json):
//   POST /v2/jobs/checkpoint, POST /v2/jobs/restore, GET /v2/jobs/{id}, GET /v2/jobs
#pragma once

#include "api/job_service.h"
#include "api/router.h"

namespace ckptd::api {

// `jobs` must outlive the router.
void RegisterJobRoutes(Router* router, JobService* jobs);

}  // namespace ckptd::api
