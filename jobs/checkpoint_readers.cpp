#include "jobs/checkpoint_readers.h"

#include <fmt/format.h>

namespace ckptd {

CheckpointReaders::Hold& CheckpointReaders::Hold::operator=(Hold&& o) noexcept {
  if (this != &o) {
    Release();
    owner_ = o.owner_;
    id_ = std::move(o.id_);
    o.owner_ = nullptr;
  }
  return *this;
}

void CheckpointReaders::Hold::Release() {
  if (owner_) owner_->Release(id_);
  owner_ = nullptr;
}

CheckpointReaders::Hold CheckpointReaders::Acquire(std::string_view id) {
  MutexLock lock(mu_);
  auto it = readers_.find(id);
  if (it == readers_.end()) it = readers_.emplace(std::string(id), 0).first;
  ++it->second;
  return Hold(this, std::string(id));
}

void CheckpointReaders::Release(const std::string& id) {
  {
    MutexLock lock(mu_);
    auto it = readers_.find(id);
    if (it == readers_.end()) return;
    // Entries go with their last hold, so the map stays as small as the set
    // of checkpoints being read.
    if (--it->second <= 0) readers_.erase(it);
  }
  released_.notify_all();
}

int CheckpointReaders::Readers(std::string_view id) const {
  MutexLock lock(mu_);
  auto it = readers_.find(id);
  return it == readers_.end() ? 0 : it->second;
}

Status CheckpointReaders::WaitForReaders(std::string_view id, std::chrono::milliseconds timeout) {
  UniqueLock lock(mu_);
  bool free = released_.wait_for(lock, timeout, [&]() REQUIRES(mu_) { return readers_.find(id) == readers_.end(); });
  if (free) return Status::Ok();
  return DeadlineExceeded(fmt::format("checkpoint {} is still being read after {} ms", id, timeout.count()));
}

Result<CheckpointReaders::Hold> HoldForRead(CheckpointReaders* readers, const Catalog& catalog, std::string_view id) {
  if (id.empty()) return CheckpointReaders::Hold();
  CheckpointReaders::Hold hold = readers ? readers->Acquire(id) : CheckpointReaders::Hold();
  CKPTD_ASSIGN_OR_RETURN(CheckpointRecord rec, catalog.Get(id));
  if (rec.status == CheckpointStatus::kDeprecated) return Conflict(fmt::format("checkpoint {} was deprecated", id));
  return hold;
}

}  // namespace ckptd
