// LocalObjectStore: objects are regular files under a root directory.
//
// A key "a/b/c" is the file <root>/a/b/c. Writes go to a hidden temporary
// file in the target's directory (".ckptd-tmp-*", never listed), are
// fsync'ed, renamed over the target and the directory fsync'ed, so a crash
// or a full disk never leaves a partial object under the key. Keys never
// escape the root (see ValidateKey). Files are created 0600: checkpoint
// images hold process memory.
//
// Thread safety: as ObjectStore (the store holds no mutable state).
#pragma once

#include <memory>
#include <string>

#include "store/object_store.h"

namespace ckptd {

class LocalObjectStore final : public ObjectStore {
 public:
  // root: absolute directory, created (with parents) when missing.
  static Result<std::unique_ptr<LocalObjectStore>> Open(std::string root);

  Result<std::unique_ptr<ObjectWriter>> NewWriter(std::string_view key,
                                                  const WriteOptions& opts = {}) override;
  Result<std::unique_ptr<ObjectReader>> NewReader(std::string_view key,
                                                  const ReadOptions& opts = {}) override;
  Result<ObjectInfo> Head(std::string_view key) override;
  Result<ListPage> List(std::string_view prefix, std::string_view page_token = {},
                        int max_keys = 1000) override;
  Status Delete(std::string_view key) override;
  std::string Describe() const override;

  const std::string& root() const { return root_; }

 private:
  explicit LocalObjectStore(std::string root) : root_(std::move(root)) {}
  std::string PathOf(std::string_view key) const { return root_ + "/" + std::string(key); }

  std::string root_;  // absolute, no trailing '/'
};

}  // namespace ckptd
