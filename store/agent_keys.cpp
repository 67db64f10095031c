#include "store/agent_keys.h"

namespace ckptd::agent_keys {

void AppendAsc(std::string* out, std::string_view s) {
  for (char c : s) {
    out->push_back(c);
    if (c == '\0') out->push_back('\xff');
  }
  out->push_back('\0');
  out->push_back('\x01');
}

void AppendDesc(std::string* out, std::string_view s) {
  size_t start = out->size();
  AppendAsc(out, s);
  for (size_t i = start; i < out->size(); ++i) (*out)[i] = static_cast<char>(~(*out)[i]);
}

void AppendInt(std::string* out, int64_t v) {
  uint64_t u = static_cast<uint64_t>(v) ^ (uint64_t{1} << 63);
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>((u >> shift) & 0xff));
}

namespace {
// Reads an Asc component whose bytes were XORed with `flip` (0 or 0xff).
bool ReadEscaped(std::string_view* in, std::string* out, unsigned char flip) {
  out->clear();
  size_t i = 0;
  while (i < in->size()) {
    unsigned char c = static_cast<unsigned char>((*in)[i]) ^ flip;
    if (c != 0) {
      out->push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (i + 1 >= in->size()) return false;
    unsigned char next = static_cast<unsigned char>((*in)[i + 1]) ^ flip;
    if (next == 0xff) {
      out->push_back('\0');
      i += 2;
    } else if (next == 0x01) {
      in->remove_prefix(i + 2);
      return true;
    } else {
      return false;
    }
  }
  return false;
}

// The length of `key`'s first `from` bytes and the `n` Asc components after
// them, or 0 if the key ends first.
size_t AfterAsc(std::string_view key, size_t from, int n) {
  size_t i = from;
  while (n > 0) {
    size_t zero = key.find('\0', i);
    if (zero == std::string_view::npos || zero + 1 >= key.size()) return 0;
    i = zero + 2;
    if (key[zero + 1] == '\x01') --n;  // a terminator, not an escaped 0x00
  }
  return i;
}
}  // namespace

size_t CheckpointsHintPrefix(std::string_view key) {
  if (key.empty()) return 0;
  switch (key[0]) {
    case kGlobalIndexTag:
    case kDueTag:
      return 1;
    case kCheckpointTag:
    case kThreadIndexTag:
    case kThreadMetaTag:
    case kTombstoneTag:
      return AfterAsc(key, 1, 1);
    default:
      return 0;
  }
}

size_t BlobsHintPrefix(std::string_view key) { return AfterAsc(key, 0, 3); }
size_t WritesHintPrefix(std::string_view key) { return AfterAsc(key, 0, 2); }

bool ReadAsc(std::string_view* in, std::string* out) { return ReadEscaped(in, out, 0); }
bool ReadDesc(std::string_view* in, std::string* out) { return ReadEscaped(in, out, 0xff); }

bool ReadInt(std::string_view* in, int64_t* out) {
  if (in->size() < 8) return false;
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<unsigned char>((*in)[i]);
  *out = static_cast<int64_t>(u ^ (uint64_t{1} << 63));
  in->remove_prefix(8);
  return true;
}

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

std::string CheckpointKey(std::string_view thread, std::string_view ns, std::string_view id) {
  std::string k(1, kCheckpointTag);
  AppendAsc(&k, thread);
  AppendAsc(&k, ns);
  AppendDesc(&k, id);
  return k;
}

std::string ThreadIndexKey(std::string_view thread, std::string_view id, std::string_view ns) {
  std::string k(1, kThreadIndexTag);
  AppendAsc(&k, thread);
  AppendDesc(&k, id);
  AppendAsc(&k, ns);
  return k;
}

std::string GlobalIndexKey(std::string_view id, std::string_view thread, std::string_view ns) {
  std::string k(1, kGlobalIndexTag);
  AppendDesc(&k, id);
  AppendAsc(&k, thread);
  AppendAsc(&k, ns);
  return k;
}

std::string ThreadPrefix(char tag, std::string_view thread) {
  std::string k(1, tag);
  AppendAsc(&k, thread);
  return k;
}

std::string TombstoneKey(std::string_view thread) { return ThreadPrefix(kTombstoneTag, thread); }
std::string ThreadMetaKey(std::string_view thread) { return ThreadPrefix(kThreadMetaTag, thread); }

std::string DueKey(int64_t due_ms, std::string_view thread) {
  std::string k(1, kDueTag);
  AppendInt(&k, due_ms);
  AppendAsc(&k, thread);
  return k;
}

std::string BlobKey(std::string_view thread, std::string_view ns, std::string_view channel, std::string_view version) {
  std::string k;
  AppendAsc(&k, thread);
  AppendAsc(&k, ns);
  AppendAsc(&k, channel);
  AppendAsc(&k, version);
  return k;
}

std::string WriteKey(std::string_view thread, std::string_view ns, std::string_view checkpoint_id,
                     std::string_view task_id, int64_t idx) {
  std::string k;
  AppendAsc(&k, thread);
  AppendAsc(&k, ns);
  AppendAsc(&k, checkpoint_id);
  AppendAsc(&k, task_id);
  AppendInt(&k, idx);
  return k;
}

void PutField(std::string* out, std::string_view s) {
  uint64_t n = s.size();
  while (n >= 0x80) {
    out->push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  out->push_back(static_cast<char>(n));
  out->append(s);
}

bool GetField(std::string_view* in, std::string_view* out) {
  uint64_t n = 0;
  int shift = 0;
  size_t i = 0;
  for (;; ++i, shift += 7) {
    if (i >= in->size() || shift > 63) return false;
    unsigned char c = static_cast<unsigned char>((*in)[i]);
    n |= uint64_t{c & 0x7fu} << shift;
    if (!(c & 0x80)) break;
  }
  ++i;
  if (in->size() - i < n) return false;
  *out = in->substr(i, n);
  in->remove_prefix(i + n);
  return true;
}

}  // namespace ckptd::agent_keys
