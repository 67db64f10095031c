// The daemon's Prometheus metrics: HTTP requests (count and latency by
// route and status), checkpoints by status (kept current by a catalog
// observer after one scan at start-up), RocksDB size, build info. Job
// metrics are recorded by the job manager through the same registry.
// Thread safety: all methods may be called from any thread.
#pragma once

#include <string>

#include "api/server.h"
#include "common/metrics.h"
#include "store/catalog.h"

namespace ckptd {

class DaemonMetrics final : public CatalogObserver {
 public:
  explicit DaemonMetrics(MetricsRegistry* registry);
  // Counts the catalog's records by status once, then follows changes.
  Status Attach(Catalog* catalog, Db* db);
  api::RequestObserver RequestObserver();

  void AfterWrite(const CheckpointRecord* before, const CheckpointRecord* after) override;

 private:
  MetricsRegistry* registry_;
};

}  // namespace ckptd
