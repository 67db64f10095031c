// Group commit for writes applied without a sync: a thread that fsyncs the
// RocksDB WAL on behalf of every caller waiting for durability, so that
// concurrent writers share one sync and none of them holds a thread while
// it waits.
//
// Contract: AfterSync(done) calls done(status) once a WAL sync that began
// after the call has finished: every write applied before the call is then
// durable (status Ok) or the sync failed (its error). Callers that arrive
// while a sync runs share the next one. `done` runs on the syncer's thread
// and must not block. The destructor completes every pending call (after a
// last sync) before it returns.
// Thread safety: AfterSync() from any thread.
#pragma once

#include <functional>
#include <thread>
#include <vector>

#include <rocksdb/db.h>

#include "common/mutex.h"
#include "common/status.h"

namespace ckptd {

class WalSyncer {
 public:
  using Done = std::function<void(Status)>;

  explicit WalSyncer(rocksdb::DB* db);
  ~WalSyncer();
  WalSyncer(const WalSyncer&) = delete;
  WalSyncer& operator=(const WalSyncer&) = delete;

  void AfterSync(Done done);

 private:
  void Loop();

  rocksdb::DB* db_;
  Mutex mu_;
  CondVar cv_;
  std::vector<Done> pending_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace ckptd
