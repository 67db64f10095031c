// Federation: mirrors each checkpoint's lifecycle to an upstream
// Cedana-compatible /v2/checkpoints service (another ckptd, or Cedana's).
//
// How it works:
// - As a CatalogObserver, OnWrite turns a local change into outbox events
//   (create, info, uploaded, deprecate) and adds them to the change's own
//   WriteBatch, so an event is durable exactly when the change is: a crash
//   never loses one, and a failed change enqueues nothing. Only changes of
//   status, gpu/platform/info or restore_path make events; setting the
//   upstream link, cleanup marks and removals do not.
// - One sender thread delivers the rows strictly in outbox order (a global
//   sequence, so per checkpoint too), one row in memory at a time. A row is
//   deleted only after the upstream answered 2xx, or a definitive 4xx
//   (logged). Connection errors, timeouts, 401/403, 408, 429 and 5xx are
//   retried with exponential backoff (250 ms doubling up to
//   upstream_retry_max_s); the row stays at the head meanwhile.
// - create answers the upstream id; it is stored in the outbox column family
//   (l/<local id>, what the sender uses) and in the record's `upstream_id`
//   (in the same batch) before the create row is deleted. Later events use
//   the upstream id in their path. A non-create event for a record with no
//   link (created before federation was turned on, or whose create was
//   refused) first creates it upstream.
//
// Idempotence after a crash between "upstream applied" and "row deleted":
// info is a refresh upstream (200 again); uploaded answers 409 (already
// ready) and deprecate is idempotent, both treated as applied; a create whose
// link was stored is skipped. Residual risk: a crash after the upstream
// created a checkpoint but before the link was stored creates it again on
// restart (the /v2 API has no idempotency key); an in-flight marker
// (f/<local id>) makes such a retry log a warning naming the local id, and
// the first upstream copy stays `initializing`, an orphan for the upstream's
// admins.
//
// Outbox column family keys: q/<8-byte big-endian seq> -> row JSON
// {"id","event","payload","at"}; l/<local id> -> upstream id; f/<local id>
// -> "" while a create is in flight.
//
// Not mirrored (the /v2 API has no call for them): possibly_uploaded on its
// own (the upstream goes to ready through it on `uploaded`), info changed by
// a deprecate once past updated_info (e.g. a failed job's info.error), and
// record removal.
//
// Thread safety: OnWrite/AfterWrite run on the catalog's callers' threads;
// Health() from any thread. Start()/Stop() from one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/value.hpp>

#include "common/mutex.h"
#include "common/status.h"
#include "store/catalog.h"
#include "store/db.h"

namespace ckptd {

namespace api {
class HttpClient;
}

// The upstream_* settings of the daemon's config.
struct UpstreamOptions {
  std::string url;         // http://host:port[/prefix]; empty: federation off
  std::string token;       // bearer token, inline
  std::string token_file;  // or a file holding it
  int64_t retry_max_s = 60;
  int64_t timeout_s = 10;
};

class UpstreamMirror : public CatalogObserver {
 public:
  // Null (and nothing registered) when options.url is empty.
  // Otherwise validates the URL, reads the token, registers itself as an
  // observer of `catalog` (call before the catalog is shared) and counts the
  // rows left by an earlier run. The sender starts with Start().
  static Result<std::unique_ptr<UpstreamMirror>> Create(const UpstreamOptions& options, Db* db, Catalog* catalog);
  ~UpstreamMirror() override;  // Stop()s

  void Start();
  // Stops the sender; an in-flight request finishes or times out first
  // (upstream_timeout_s). Rows not yet delivered stay in the outbox.
  void Stop();

  Status OnWrite(const CheckpointRecord* before, const CheckpointRecord* after, rocksdb::WriteBatch* batch) override;
  void AfterWrite(const CheckpointRecord* before, const CheckpointRecord* after) override;

  // {enabled, url, pending, last_error}
  boost::json::value Health() const;
  int64_t pending() const { return pending_.load(); }

  struct Event {
    std::string kind;  // create | info | uploaded | deprecate
    boost::json::value payload;
  };
  // The events a change makes, in order (exposed for tests).
  static std::vector<Event> EventsFor(const CheckpointRecord* before, const CheckpointRecord* after);

 private:
  UpstreamMirror(const UpstreamOptions& options, Db* db, Catalog* catalog);
  void Run();
  struct Row {
    std::string key;
    std::string id;
    std::string event;
    boost::json::value payload;
  };
  // The first row of the outbox, if any.
  Result<std::optional<Row>> FirstRow() const;
  enum class Outcome { kDone, kRetry };
  Outcome Deliver(const Row& row);
  // POSTs a create and stores the link; kRetry on a transient failure.
  Outcome CreateUpstream(const std::string& id, const boost::json::value& payload,
                         std::optional<std::string>* upstream_id);
  Status StoreLink(const std::string& id, const std::string& upstream_id);
  Result<std::optional<std::string>> Link(const std::string& id) const;
  Status Finish(const Row& row);
  void SetError(std::string e);
  std::string Target(const std::string& suffix) const;
  bool WaitFor(std::chrono::milliseconds d);  // false when stopping

  UpstreamOptions config_;
  Db* db_;
  Catalog* catalog_;
  std::string base_url_;  // scheme://host:port
  std::string prefix_;    // path before /v2/checkpoints, no trailing '/'
  std::string token_;
  std::unique_ptr<api::HttpClient> client_;  // sender thread only
  std::atomic<uint64_t> next_seq_{1};
  std::atomic<int64_t> pending_{0};

  mutable Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  bool wake_ GUARDED_BY(mu_) = false;
  std::string last_error_ GUARDED_BY(mu_);
  std::thread thread_;
};

// The `upstream` object of /healthz; {enabled:false,...} when mirror is null.
boost::json::value UpstreamHealth(const UpstreamMirror* mirror);

}  // namespace ckptd
