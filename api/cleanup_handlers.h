// Our cleanup extension (documented in openapi.json):
//   POST /v2/cleanup  runs a cleanup round now and answers
//   200 {"cleaned": N, "removed": M, "skipped": K, "orphans": O,
//        "errors": ["<id>: <message>", ...]}.
// The work is done by jobs/cleanup.h through the interface below.
#pragma once

#include <string>
#include <vector>

#include "api/router.h"
#include "common/status.h"

namespace ckptd::api {

struct CleanupReport {
  int cleaned = 0;                  // deprecated checkpoints whose objects were deleted this round
  int removed = 0;                  // records removed after their retention
  int skipped = 0;                  // deprecated checkpoints left for a later round (being read)
  int orphans = 0;                  // image directories of checkpoints the catalog no longer has, deleted
  std::vector<std::string> errors;  // "<id>: <message>", retried next round
};

class CleanupService {
 public:
  virtual ~CleanupService() = default;
  // One round, synchronously; rounds never overlap. Errors of single
  // checkpoints are in the report; a non-OK status means the round could not
  // run at all (e.g. the catalog could not be read).
  virtual Result<CleanupReport> RunOnce() = 0;
};

// `cleanup` must outlive the router.
void RegisterCleanupRoutes(Router* router, CleanupService* cleanup);

}  // namespace ckptd::api
