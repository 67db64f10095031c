// Key and value encodings of the agent-state (Agentex/LangGraph) store.
//
// Keys are concatenations of order-preserving, prefix-free components so a
// RocksDB prefix scan walks them in the order a query needs:
//   Asc(s):  every 0x00 byte becomes 0x00 0xFF, then the terminator 0x00 0x01.
//            Bytewise order of Asc(a), Asc(b) is the order of a, b, and no
//            Asc(a) is a proper prefix of another.
//   Desc(s): Asc(s) with every byte inverted: the reverse order, still
//            prefix-free. Checkpoint ids (time-ordered strings) use it so a
//            forward scan lists newest first.
//   Int(i):  int64 big-endian with the sign bit flipped (ascending).
//
// Layout (column family: key -> value):
//   agent_checkpoints:
//     'c' Asc(thread) Asc(ns) Desc(id)   -> checkpoint record (EncodeCheckpoint)
//     'n' Asc(thread) Desc(id) Asc(ns)   -> ""  (a thread's checkpoints, all namespaces)
//     'g' Desc(id) Asc(thread) Asc(ns)   -> ""  (every thread, newest first)
//     't' Asc(thread)                    -> the newest checkpoint id a
//                                           delete-thread removed (tombstone)
//     'u' Asc(thread)                    -> the thread's retention record:
//                                           last write, TTL overrides, due hint
//     'e' Int(due_ms) Asc(thread)        -> ""  (retention due hints, soonest
//                                           first; a hint is never later than
//                                           the thread's true due time)
//     'o'                                -> Int(default TTL s) the hints were
//                                           computed with
//   agent_blobs:  Asc(thread) Asc(ns) Asc(channel) Asc(version) -> blob
//   agent_writes: Asc(thread) Asc(ns) Asc(checkpoint_id) Asc(task_id) Int(idx) -> write
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ckptd::agent_keys {

void AppendAsc(std::string* out, std::string_view s);
void AppendDesc(std::string* out, std::string_view s);
void AppendInt(std::string* out, int64_t v);

// Readers advance *in past the component; false on malformed input.
bool ReadAsc(std::string_view* in, std::string* out);
bool ReadDesc(std::string_view* in, std::string* out);
bool ReadInt(std::string_view* in, int64_t* out);

// The smallest key greater than every key that starts with `prefix`
// (prefix must not be all 0xFF bytes; our prefixes never are).
std::string PrefixEnd(std::string_view prefix);

inline constexpr char kCheckpointTag = 'c';
inline constexpr char kThreadIndexTag = 'n';
inline constexpr char kGlobalIndexTag = 'g';
inline constexpr char kTombstoneTag = 't';
inline constexpr char kThreadMetaTag = 'u';
inline constexpr char kDueTag = 'e';
inline constexpr char kRetentionDefaultKey[] = "o";

std::string CheckpointKey(std::string_view thread, std::string_view ns, std::string_view id);
std::string ThreadIndexKey(std::string_view thread, std::string_view id, std::string_view ns);
std::string GlobalIndexKey(std::string_view id, std::string_view thread, std::string_view ns);
std::string TombstoneKey(std::string_view thread);
std::string ThreadMetaKey(std::string_view thread);
std::string DueKey(int64_t due_ms, std::string_view thread);
// `tag` followed by Asc(thread): where a thread's keys of that kind begin.
std::string ThreadPrefix(char tag, std::string_view thread);
std::string BlobKey(std::string_view thread, std::string_view ns, std::string_view channel, std::string_view version);
std::string WriteKey(std::string_view thread, std::string_view ns, std::string_view checkpoint_id,
                     std::string_view task_id, int64_t idx);

// Insert hints (RocksDB's memtable_insert_with_hint_prefix_extractor): the
// length of the part of a key that the key's neighbours in write order
// share, or 0 for none. A memtable remembers where the last key with a
// prefix went and searches for the next one from there, not from the top of
// its skiplist: a thread's new checkpoint sorts right before its previous one
// (Desc ids), a channel's new blob version right after its previous one, a
// new checkpoint's writes after the previous checkpoint's.
//   agent_checkpoints: the tag and the thread ('c', 'n', 'u', 't'), the tag
//                      alone for 'g' and 'e' (new entries go to one end);
//   agent_blobs:       thread, namespace and channel;
//   agent_writes:      thread and namespace.
size_t CheckpointsHintPrefix(std::string_view key);
size_t BlobsHintPrefix(std::string_view key);
size_t WritesHintPrefix(std::string_view key);

// Length-prefixed fields for values.
void PutField(std::string* out, std::string_view s);
bool GetField(std::string_view* in, std::string_view* out);

}  // namespace ckptd::agent_keys
