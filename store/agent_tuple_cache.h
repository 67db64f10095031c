// Recently read tuples (checkpoint, blobs, pending writes) of threads not
// written since, as AgentStore's GetTuple and ListTuples assembled them,
// so a LangGraph client resuming a thread or listing its history reads
// them from memory instead of RocksDB lookups per checkpoint.
//
// Contract:
// - A reader takes a Ticket for its thread before it takes its RocksDB
//   snapshot. Find hits, and Insert keeps, only while no write of the
//   ticket's stripe has begun or ended since: what the cache answers is
//   what that snapshot holds. Every write of a thread is bracketed by
//   BeginWrite/EndWrite, which drop the thread's entries.
// - Per (thread, namespace) one entry is marked newest: one that a read
//   known to be of the newest checkpoint inserted (a get-tuple without an
//   id, the first item of an unfiltered list from the top). At most
//   kPerThread entries a thread; the oldest kept goes first.
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

  static constexpr size_t kPerThread = 32;

  // Where a thread's entries are, and as of which write.
  struct Ticket {
    size_t stripe = 0;
    uint64_t generation = 0;
    bool usable = false;  // the cache is on and no write of the stripe was under way
  };
  Ticket Take(std::string_view thread_id);

  // The tuple of checkpoint `checkpoint_id` (nullopt: the newest) of the
  // thread in `ns`, when held and `ticket` is still current.
  std::optional<AgentTuple> Find(const Ticket& ticket, std::string_view thread_id, std::string_view ns,
                                 const std::optional<std::string>& checkpoint_id);
  // Keeps `tuple` (read from a snapshot taken after `ticket`), as its
  // namespace's newest when `newest`; nothing when a write came between.
  void Insert(const Ticket& ticket, const AgentTuple& tuple, bool newest);

  // Around every write of the threads' checkpoints, blobs or writes (the
  // same `threads` to both). Each thread's entries go.
  void BeginWrite(std::span<const std::string> threads);
  void EndWrite(std::span<const std::string> threads);

  bool enabled() const { return capacity_ != 0; }
  size_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  // Finds answered and not (with the cache on), since construction.
  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    std::shared_ptr<const AgentTuple> tuple;
    bool newest;
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
  // Under the stripe's mutex: whether `ticket` is current.
  static bool Current(const Stripe& s, const Ticket& ticket) {
    return ticket.usable && s.generation == ticket.generation && s.writing == 0;
  }
  // Find's entry, or null.
  std::shared_ptr<const AgentTuple> Held(const Ticket& ticket, std::string_view thread_id, std::string_view ns,
                                         const std::optional<std::string>& checkpoint_id);
  // Under the stripe's mutex: drops the thread's entries.
  void DropLocked(Stripe& s, const std::string& thread);
  // Empties other stripes until `need` more bytes fit; false when they do not.
  bool MakeRoom(size_t need);

  const size_t capacity_;
  std::atomic<size_t> bytes_{0};
  std::atomic<size_t> evict_next_{0};
  std::atomic<uint64_t> hits_{0}, misses_{0};
  std::array<Stripe, kStripes> stripes_;
};

}  // namespace ckptd
