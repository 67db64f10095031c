#include "store/agent_tuple_cache.h"

#include <algorithm>
#include <functional>

namespace ckptd {

namespace {

// What a tuple holds in memory, near enough: its strings and a word or so
// for each string's header.
size_t SizeOf(const AgentTuple& t) {
  constexpr size_t kPerString = 32;
  const AgentCheckpoint& c = t.checkpoint;
  size_t n = sizeof(AgentTuple) + c.thread_id.size() + c.checkpoint_ns.size() + c.checkpoint_id.size() +
             c.parent_checkpoint_id.value_or("").size() + c.checkpoint_json.size() + c.metadata_json.size();
  for (const auto& b : t.blobs)
    n += sizeof(AgentBlob) + b.channel.size() + b.version.size() + b.type.size() + b.data.value_or("").size();
  for (const auto& w : t.pending_writes)
    n += sizeof(AgentWrite) + w.task_id.size() + w.channel.size() + w.type.value_or("").size() + w.data.size() +
         w.task_path.size();
  return n + kPerString * (6 + 4 * t.blobs.size() + 5 * t.pending_writes.size());
}

}  // namespace

size_t AgentTupleCache::StripeOf(std::string_view thread_id) {
  return std::hash<std::string_view>{}(thread_id) % kStripes;
}

AgentTupleCache::Ticket AgentTupleCache::Take(std::string_view thread_id) {
  Ticket ticket;
  if (capacity_ == 0) return ticket;
  ticket.stripe = StripeOf(thread_id);
  Stripe& s = stripes_[ticket.stripe];
  std::lock_guard lock(s.mu);
  ticket.generation = s.generation;
  ticket.usable = s.writing == 0;
  return ticket;
}

std::optional<AgentTuple> AgentTupleCache::Find(const Ticket& ticket, std::string_view thread_id,
                                                std::string_view ns,
                                                const std::optional<std::string>& checkpoint_id) {
  if (capacity_ == 0) return std::nullopt;
  std::shared_ptr<const AgentTuple> found = Held(ticket, thread_id, ns, checkpoint_id);
  (found ? hits_ : misses_).fetch_add(1, std::memory_order_relaxed);
  if (!found) return std::nullopt;
  return *found;  // copied outside the lock: the entry is immutable
}

std::shared_ptr<const AgentTuple> AgentTupleCache::Held(const Ticket& ticket, std::string_view thread_id,
                                                        std::string_view ns,
                                                        const std::optional<std::string>& checkpoint_id) {
  Stripe& s = stripes_[ticket.stripe];
  std::lock_guard lock(s.mu);
  if (!Current(s, ticket)) return nullptr;
  auto it = s.threads.find(thread_id);
  if (it == s.threads.end()) return nullptr;
  for (const auto& e : it->second) {
    const AgentCheckpoint& c = e.tuple->checkpoint;
    if (c.checkpoint_ns == ns && (checkpoint_id ? c.checkpoint_id == *checkpoint_id : e.newest)) return e.tuple;
  }
  return nullptr;
}

void AgentTupleCache::Insert(const Ticket& ticket, const AgentTuple& tuple, bool newest) {
  if (!ticket.usable) return;
  size_t size = SizeOf(tuple);
  if (size > capacity_ / 8) return;
  auto kept = std::make_shared<const AgentTuple>(tuple);
  if (!MakeRoom(size)) return;
  const AgentCheckpoint& c = tuple.checkpoint;
  Stripe& s = stripes_[ticket.stripe];
  std::lock_guard lock(s.mu);
  if (!Current(s, ticket)) return;  // a write came between
  auto& entries = s.threads[c.thread_id];
  std::erase_if(entries, [&](const Entry& e) {
    const AgentCheckpoint& held = e.tuple->checkpoint;
    bool drop = held.checkpoint_ns == c.checkpoint_ns && held.checkpoint_id == c.checkpoint_id;
    if (drop) bytes_.fetch_sub(e.bytes, std::memory_order_relaxed);
    return drop;
  });
  if (entries.size() >= kPerThread) {  // the oldest kept goes
    bytes_.fetch_sub(entries.front().bytes, std::memory_order_relaxed);
    entries.erase(entries.begin());
  }
  entries.push_back(Entry{std::move(kept), newest, size});
  bytes_.fetch_add(size, std::memory_order_relaxed);
}

bool AgentTupleCache::MakeRoom(size_t need) {
  for (size_t tries = 0; bytes_.load(std::memory_order_relaxed) + need > capacity_; ++tries) {
    if (tries == kStripes) return false;
    Stripe& s = stripes_[evict_next_.fetch_add(1, std::memory_order_relaxed) % kStripes];
    std::lock_guard lock(s.mu);
    for (auto& [thread, entries] : s.threads)
      for (const auto& e : entries) bytes_.fetch_sub(e.bytes, std::memory_order_relaxed);
    s.threads.clear();
  }
  return true;
}

void AgentTupleCache::DropLocked(Stripe& s, const std::string& thread) {
  auto it = s.threads.find(thread);
  if (it == s.threads.end()) return;
  for (const auto& e : it->second) bytes_.fetch_sub(e.bytes, std::memory_order_relaxed);
  s.threads.erase(it);
}

void AgentTupleCache::BeginWrite(std::span<const std::string> threads) {
  if (capacity_ == 0) return;
  for (const auto& thread : threads) {
    Stripe& s = stripes_[StripeOf(thread)];
    std::lock_guard lock(s.mu);
    ++s.writing;
    ++s.generation;
    DropLocked(s, thread);
  }
}

void AgentTupleCache::EndWrite(std::span<const std::string> threads) {
  if (capacity_ == 0) return;
  for (const auto& thread : threads) {
    Stripe& s = stripes_[StripeOf(thread)];
    std::lock_guard lock(s.mu);
    --s.writing;
    ++s.generation;
    DropLocked(s, thread);
  }
}

}  // namespace ckptd
