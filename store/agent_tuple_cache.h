// The newest tuple (checkpoint, blobs, pending writes) of recently read
// (thread, namespace) pairs, as AgentStore::GetTuple assembled them, so a
// LangGraph client resuming a thread reads it from memory instead of four
// RocksDB lookups.
//
// Contract:
// - A hit is what a read of the database would return at that moment, for
//   any write that has finished (EndWrite): every write of a thread is
//   bracketed by BeginWrite/EndWrite, which drop the thread's entries; while
//   a write of a thread in the same stripe is under way Find misses; and a
//   reader inserts only when no write of its stripe began or ended since its
//   Find (the ticket's generation), so a tuple read before a write never
//   lands after it.
// - At most `capacity_bytes` of tuples (by their strings' sizes) are held;
//   a tuple over an eighth of that is not kept. When full, whole stripes
//   are emptied, round robin. 0: off (nothing is kept, Find always misses).
// Thread safety: all methods may be called concurrently; each takes one
// stripe's mutex at a time, briefly, and does no I/O.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/agent_store_types.h"

namespace ckptd {

class AgentTupleCache {
 public:
  explicit AgentTupleCache(size_t capacity_bytes) : capacity_(capacity_bytes) {}
  AgentTupleCache(const AgentTupleCache&) = delete;
  AgentTupleCache& operator=(const AgentTupleCache&) = delete;

  // What a missed Find hands to Insert: where, and as of which write.
  struct Ticket {
    size_t stripe = 0;
    uint64_t generation = 0;
    bool fillable = false;  // no write of the stripe was under way
  };

  // The thread's newest tuple in `ns`, when held; with `checkpoint_id`,
  // only when the held tuple is that checkpoint.
  std::optional<AgentTuple> Find(std::string_view thread_id, std::string_view ns,
                                 const std::optional<std::string>& checkpoint_id, Ticket* ticket);
  // Keeps `tuple` as its thread's newest in its namespace, read after the
  // Find that gave `ticket` missed; dropped when a write came between.
  void Insert(const Ticket& ticket, const AgentTuple& tuple);

  // Around every write of the threads' checkpoints, blobs or writes (the
  // same `threads` to both). Each thread's entries go.
  void BeginWrite(std::span<const std::string> threads);
  void EndWrite(std::span<const std::string> threads);

  bool enabled() const { return capacity_ != 0; }
  size_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    std::string ns;
    std::shared_ptr<const AgentTuple> tuple;
    size_t bytes;
  };
  // Heterogeneous lookup: Find looks up by string_view.
  struct Hash : std::hash<std::string_view> {
    using is_transparent = void;
  };
  struct Stripe {
    std::mutex mu;
    uint64_t generation = 0;  // writes begun or ended
    uint32_t writing = 0;     // writes under way
    std::unordered_map<std::string, std::vector<Entry>, Hash, std::equal_to<>> threads;
  };
  static constexpr size_t kStripes = 256;
  static size_t StripeOf(std::string_view thread_id);
  // Under the stripe's mutex: drops the thread's entries.
  void DropLocked(Stripe& s, const std::string& thread);
  // Empties other stripes until `need` more bytes fit; false when they do not.
  bool MakeRoom(size_t need);

  const size_t capacity_;
  std::atomic<size_t> bytes_{0};
  std::atomic<size_t> evict_next_{0};
  std::array<Stripe, kStripes> stripes_;
};

}  // namespace ckptd
