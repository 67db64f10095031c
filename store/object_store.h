// ObjectStore: the one seam for image storage (local directory, S3).
//
// Contract
// - Keys are relative, '/'-separated, non-empty, at most 1024 bytes, without
//   NUL, without "." or ".." segments, not starting with '/'. A store may
//   have a key prefix of its own (from its URI); keys given here are
//   relative to it and keys returned by List are too.
// - Writes are all-or-nothing: an object becomes visible only when
//   ObjectWriter::Commit() returns OK; Abort(), a failed Commit() or
//   destroying an uncommitted writer leaves no object (and no partial
//   object) visible under the key. An existing object under the same key
//   stays as it was until a Commit replaces it whole.
// - Errors: NotFound for a missing object (Head, NewReader, Get);
//   Unavailable when the backend cannot be reached after retries;
//   Unauthenticated for rejected credentials/signatures; IOError otherwise.
//   Messages carry the key and the backend's own error (errno text, S3
//   Code and Message).
// - Delete of a missing object is OK (idempotent, as in S3).
// - Memory is bounded: readers and writers stream; List is paged.
//
// Thread safety: an ObjectStore is shared by many jobs: every method may be
// called from any number of threads at once. An ObjectWriter or
// ObjectReader belongs to one thread at a time (no concurrent calls on the
// same one); it must not outlive the store that made it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ckptd {

struct ObjectInfo {
  std::string key;  // relative to the store's prefix
  uint64_t size = 0;
  std::string etag;  // backend's version tag (S3 ETag without quotes; local: size-mtime)
};

struct ListPage {
  std::vector<ObjectInfo> objects;  // sorted by key (byte order)
  std::string next_token;           // empty: this was the last page
};

struct WriteOptions {
  // Expected total size when known: S3 picks a part size that keeps the
  // object within 10,000 parts. Unknown: parts grow as they are numbered.
  std::optional<uint64_t> expected_size;
};

struct ReadOptions {
  uint64_t offset = 0;             // first byte to read
  std::optional<uint64_t> length;  // bytes to read; unset: to the end
};

// Push chunks, then Commit() or Abort(). Not thread-safe (one owner).
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;  // uncommitted: aborts
  // Appends data. May block while earlier data is being uploaded (bounded
  // memory). After an error the writer is failed: only Abort() is useful.
  virtual Status Write(std::string_view data) = 0;
  // Makes the object visible. After an error nothing is visible.
  virtual Status Commit() = 0;
  // Discards everything written; best effort, never fails loudly.
  virtual void Abort() = 0;
  virtual uint64_t bytes_written() const = 0;
};

// Pull chunks. Not thread-safe (one owner).
class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  // Reads up to buf.size() bytes; 0 means end of object (or of the range).
  virtual Result<size_t> Read(std::span<char> buf) = 0;
  // Size of the whole object (not of the range).
  virtual uint64_t size() const = 0;
};

// Receives chunks in order; a non-OK status stops the transfer.
using ChunkSink = std::function<Status(std::string_view chunk)>;

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  virtual Result<std::unique_ptr<ObjectWriter>> NewWriter(std::string_view key, const WriteOptions& opts = {}) = 0;
  virtual Result<std::unique_ptr<ObjectReader>> NewReader(std::string_view key, const ReadOptions& opts = {}) = 0;
  // Streams the object (or range) into sink, chunk by chunk.
  virtual Status Get(std::string_view key, const ChunkSink& sink, const ReadOptions& opts = {});
  virtual Result<ObjectInfo> Head(std::string_view key) = 0;
  // One page of objects whose key starts with prefix; page_token is "" for
  // the first page, then the previous page's next_token. max_keys is capped
  // at 1000.
  virtual Result<ListPage> List(std::string_view prefix, std::string_view page_token = {}, int max_keys = 1000) = 0;
  virtual Status Delete(std::string_view key) = 0;
  // Deletes every object under prefix, page by page. An empty prefix is
  // refused (InvalidArgument) so a bug cannot wipe a whole store.
  virtual Status DeletePrefix(std::string_view prefix);
  // Removes what uploads under `prefix` ("" or ending in '/') left behind
  // when their writer died with its process: never visible as objects, but
  // holding space (the local store's hidden temporary files). Only for
  // prefixes no writer is using now. Backends with nothing of the kind to
  // find (S3: incomplete multipart uploads expire by the bucket's
  // lifecycle rules) do nothing.
  virtual Status RemoveIncomplete(std::string_view prefix) { return Status::Ok(); }
  // "file:///var/lib/ckptd/images/" or "s3://bucket/prefix/" for messages.
  virtual std::string Describe() const = 0;

  // Zero copies. CanLinkFrom: whether files in the local directory `dir`
  // and objects can share their bytes instead of copying them, through
  // LinkFile and LinkObjectAs (the local store on the same filesystem).
  // Default: no (remote stores copy).
  virtual bool CanLinkFrom(const std::filesystem::path& dir) const { return false; }
  // Makes the complete regular file `path` (in a directory CanLinkFrom
  // accepted) the object `key`, durably, replacing any object there: the
  // file is fsynced and hard-linked into place. `path` keeps its name too:
  // nobody may write the file afterwards. The caller has checksummed it.
  // Stores that cannot: Internal.
  virtual Status LinkFile(std::string_view key, const std::filesystem::path& path);
  // The reverse: the object `key` also becomes the new file `dest` (in a
  // directory CanLinkFrom accepted; AlreadyExists when it is there). Nobody
  // may write `dest`: it is the object. Stores that cannot: Internal.
  virtual Status LinkObjectAs(std::string_view key, const std::filesystem::path& dest);

  // Convenience wrappers for small objects (manifests, tests).
  Status PutBytes(std::string_view key, std::string_view data);
  Result<std::string> GetBytes(std::string_view key);
};

// Checks the key rules above; InvalidArgument naming the key otherwise.
Status ValidateKey(std::string_view key);
// Like ValidateKey but allows "" and a trailing '/' (for List/DeletePrefix).
Status ValidatePrefix(std::string_view prefix);

}  // namespace ckptd
