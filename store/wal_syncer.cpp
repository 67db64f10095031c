#include "store/wal_syncer.h"

#include "store/db.h"

namespace ckptd {

WalSyncer::WalSyncer(rocksdb::DB* db) : db_(db) {
  thread_ = std::thread([this] { Loop(); });
}

WalSyncer::~WalSyncer() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void WalSyncer::AfterSync(Done done) {
  {
    MutexLock lock(mu_);
    pending_.push_back(std::move(done));
  }
  cv_.notify_one();
}

void WalSyncer::Loop() {
  for (;;) {
    std::vector<Done> round;
    {
      UniqueLock lock(mu_);
      cv_.wait(lock, [&]() REQUIRES(mu_) { return stop_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, nothing left
      round.swap(pending_);
    }
    // Every caller in `round` arrived before this sync began.
    Status st = FromRocks(db_->SyncWAL(), "sync the write-ahead log");
    for (auto& done : round) done(st);
  }
}

}  // namespace ckptd
