// Group commit for writes applied without a sync: a thread that fsyncs the
// RocksDB WAL on behalf of every caller waiting for durability, so that
// concurrent writers share one sync and none of them holds a thread while
// it waits.
//
// Contract: AfterSync(done) calls done(status) once every write applied
// before the call is durable (status Ok) or the sync that was to make it so
// failed (its error). A sync covers the writes applied before it began (by
// RocksDB's sequence numbers): a caller that arrives while a sync runs is
// answered when it ends if that sync covers its writes (the usual case
// for the last of several writes that went to the log together), else it
// shares the next one. `done` runs on the syncer's thread and must not
// block. The destructor completes every pending call (after a last sync)
// before it returns.
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
  // A caller and the newest write it waits for.
  struct Waiter {
    rocksdb::SequenceNumber seq;
    Done done;
  };
  void Loop();

  rocksdb::DB* db_;
  Mutex mu_;
  CondVar cv_;
  std::vector<Waiter> pending_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace ckptd
