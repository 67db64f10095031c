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
  // A write published its sequence number before Write() returned.
  rocksdb::SequenceNumber seq = db_->GetLatestSequenceNumber();
  {
    MutexLock lock(mu_);
    pending_.push_back(Waiter{seq, std::move(done)});
  }
  cv_.notify_one();
}

void WalSyncer::Loop() {
  rocksdb::SequenceNumber synced = 0;  // every write up to it is durable
  for (;;) {
    std::vector<Waiter> round;
    {
      UniqueLock lock(mu_);
      cv_.wait(lock, [&]() REQUIRES(mu_) { return stop_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, nothing left
      round.swap(pending_);
    }
    // Callers whose writes an earlier sync covered need no other.
    std::vector<Done> waiting;
    for (auto& w : round) {
      if (w.seq <= synced) {
        w.done(Status::Ok());
      } else {
        waiting.push_back(std::move(w.done));
      }
    }
    if (waiting.empty()) continue;
    rocksdb::SequenceNumber through = db_->GetLatestSequenceNumber();
    Status st = FromRocks(db_->SyncWAL(), "sync the write-ahead log");
    if (st.ok()) synced = through;
    for (auto& done : waiting) done(st);
  }
}

}  // namespace ckptd
