// LocalObjectStore: objects are regular files under a root directory.
//
// A key "a/b/c" is the file <root>/a/b/c, reached from the root's
// descriptor one directory at a time with O_NOFOLLOW: a symlink anywhere
// under the root (a checkpoint directory replaced by a link, a link in
// place of an image) is never followed, so nothing outside the root is read,
// listed or deleted through the store. Writes go to a hidden temporary
// file in the target's directory (".ckptd-tmp-*", never listed), are
// fsync'ed, renamed over the target and the directory fsync'ed, so a crash
// or a full disk never leaves a partial object under the key. Keys never
// escape the root (see ValidateKey). Files are created 0600: checkpoint
// images hold process memory.
//
// Large objects: past kDirectAfter bytes a writer copies into a ring of
// kDirectBuffers aligned buffers of kDirectBuffer bytes, and its own I/O
// thread writes them with O_DIRECT (no page cache), so the caller waits for
// the disk only when every buffer is in flight. Small objects stay buffered
// and cost no thread and no extra memory. A filesystem that refuses
// O_DIRECT gets buffered writes instead, silently (counted).
//
// Thread safety: as ObjectStore (the store's only mutable state is atomic
// counters).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "common/fd.h"
#include "store/object_store.h"

namespace ckptd {

class LocalObjectStore final : public ObjectStore {
 public:
  // root: absolute directory, created (with parents) when missing.
  static Result<std::unique_ptr<LocalObjectStore>> Open(std::string root);
  ~LocalObjectStore() override;

  Result<std::unique_ptr<ObjectWriter>> NewWriter(std::string_view key, const WriteOptions& opts = {}) override;
  Result<std::unique_ptr<ObjectReader>> NewReader(std::string_view key, const ReadOptions& opts = {}) override;
  Result<ObjectInfo> Head(std::string_view key) override;
  Result<ListPage> List(std::string_view prefix, std::string_view page_token = {}, int max_keys = 1000) override;
  Status Delete(std::string_view key) override;
  // Unlinks the hidden temporary files under the prefix's directory (walked
  // with openat and O_NOFOLLOW: a symlink is never followed out of the
  // root) and removes the directories that leaves empty.
  Status RemoveIncomplete(std::string_view prefix) override;
  std::string Describe() const override;
  // Same filesystem as the root: a hard link into a hidden temporary name
  // beneath the root (never following a symlink there), then a rename into
  // place and an fsync of the directory, as a writer's Commit.
  bool CanLinkFrom(const std::filesystem::path& dir) const override;
  Status LinkFile(std::string_view key, const std::filesystem::path& path) override;
  // The object is opened beneath the root as a reader would (no symlink
  // followed) and that inode is linked as `dest`.
  Status LinkObjectAs(std::string_view key, const std::filesystem::path& dest) override;

  const std::string& root() const { return root_; }

  static constexpr uint64_t kDirectAfter = 8 << 20;  // written buffered up to here (block aligned)
  static constexpr size_t kDirectBuffer = 4 << 20;   // one direct pwrite()
  static constexpr size_t kDirectBuffers = 3;        // the ring: per large object being written

  // Since Open, for logs and tests.
  struct IoCounters {
    std::atomic<uint64_t> direct_bytes{0};    // written with O_DIRECT
    std::atomic<uint64_t> direct_refused{0};  // large objects (partly) written buffered: no O_DIRECT here
  };
  const IoCounters& io_counters() const { return *io_; }

 private:
  LocalObjectStore(std::string root, int root_fd) : root_(std::move(root)), root_fd_(root_fd) {}
  // The object's file, read-only, reached beneath the root without
  // following a symlink; NotFound unless it is a regular file.
  Result<UniqueFd> OpenObject(std::string_view key, uint64_t* size) const;

  std::string root_;  // absolute, no trailing '/'
  // Every key is reached from here one component at a time with
  // O_NOFOLLOW (store/local_fs.h): no symlink under the root is followed.
  int root_fd_;
  // Shared with this store's writers, which may outlive it.
  std::shared_ptr<IoCounters> io_ = std::make_shared<IoCounters>();
};

}  // namespace ckptd
