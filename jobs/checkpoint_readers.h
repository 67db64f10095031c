// Per-checkpoint reader holds: a restore job holds its checkpoint while it
// reads the checkpoint's objects (manifest and images); deprecating waits
// for the holds to go (WaitForReaders) and cleanup skips held checkpoints.
//
// Contract: Acquire() never blocks and never fails; a Hold releases on
// Release() or destruction (movable, not copyable) and must not outlive the
// registry. Ordering: a job acquires its hold *before* it re-reads the
// catalog, and deprecation writes the catalog *before* it waits, so either
// the job sees `deprecated` (and reads nothing) or the deprecation waits for
// it.
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>

#include "api/checkpoint_guard.h"
#include "common/mutex.h"
#include "store/catalog.h"

namespace ckptd {

class CheckpointReaders final : public api::CheckpointGuard {
 public:
  class Hold {
   public:
    Hold() = default;
    Hold(Hold&& o) noexcept : owner_(o.owner_), id_(std::move(o.id_)) { o.owner_ = nullptr; }
    Hold& operator=(Hold&& o) noexcept;
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    ~Hold() { Release(); }
    void Release();
    bool held() const { return owner_ != nullptr; }

   private:
    friend class CheckpointReaders;
    Hold(CheckpointReaders* owner, std::string id) : owner_(owner), id_(std::move(id)) {}
    CheckpointReaders* owner_ = nullptr;
    std::string id_;
  };

  Hold Acquire(std::string_view id);
  // Number of holds on `id` now.
  int Readers(std::string_view id) const;
  Status WaitForReaders(std::string_view id, std::chrono::milliseconds timeout) override;

 private:
  void Release(const std::string& id);

  mutable Mutex mu_;
  CondVar released_;
  std::map<std::string, int, std::less<>> readers_ GUARDED_BY(mu_);
};

// For a job about to read checkpoint `id`: takes the hold, then re-reads the
// record; Conflict (hold released) when it is deprecated by now. An empty
// id (a restore by restore_path) or null `readers` takes no hold.
Result<CheckpointReaders::Hold> HoldForRead(CheckpointReaders* readers, const Catalog& catalog, std::string_view id);

}  // namespace ckptd
