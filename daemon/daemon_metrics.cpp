#include "daemon/daemon_metrics.h"

namespace ckptd {

namespace {

constexpr char kCheckpoints[] = "ckptd_checkpoints";
constexpr char kCheckpointsHelp[] = "Checkpoints in the catalog by lifecycle status";

}  // namespace

DaemonMetrics::DaemonMetrics(MetricsRegistry* registry) : registry_(registry) {
  registry_->GetGauge("ckptd_build_info", "Build information (always 1)", {{"version", CKPTD_VERSION}})->Set(1);
}

Status DaemonMetrics::Attach(Catalog* catalog, Db* db) {
  std::map<CheckpointStatus, double> counts;
  for (auto s : kAllStatuses) counts[s] = 0;
  CKPTD_RETURN_IF_ERROR(catalog->ForEach([&](const CheckpointRecord& r) {
    counts[r.status]++;
    return true;
  }));
  for (auto [s, n] : counts)
    registry_->GetGauge(kCheckpoints, kCheckpointsHelp, {{"status", std::string(StatusName(s))}})->Set(n);
  catalog->AddObserver(this);
  registry_->AddCollector([this, db] {
    registry_->GetGauge("ckptd_rocksdb_size_bytes", "Approximate size of the RocksDB database")
        ->Set(static_cast<double>(db->ApproximateSizeBytes()));
  });
  return Status::Ok();
}

void DaemonMetrics::AfterWrite(const CheckpointRecord* before, const CheckpointRecord* after) {
  if (before && after && before->status == after->status) return;
  if (before)
    registry_->GetGauge(kCheckpoints, kCheckpointsHelp, {{"status", std::string(StatusName(before->status))}})->Add(-1);
  if (after)
    registry_->GetGauge(kCheckpoints, kCheckpointsHelp, {{"status", std::string(StatusName(after->status))}})->Add(1);
}

api::RequestObserver DaemonMetrics::RequestObserver() {
  return [this](const std::string& method, const std::string& route, int status, double seconds) {
    std::string r = route.empty() ? "unmatched" : route;
    registry_
        ->GetCounter("ckptd_http_requests_total", "HTTP requests by method, route and status",
                     {{"method", method}, {"route", r}, {"status", std::to_string(status)}})
        ->Inc();
    registry_
        ->GetHistogram("ckptd_http_request_duration_seconds", "HTTP request latency by method and route",
                       {{"method", method}, {"route", r}})
        ->Observe(seconds);
  };
}

}  // namespace ckptd
