// Internal to the local object store (local_object_store.h): the writer of
// one object. Thread safety: an ObjectWriter belongs to one thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "store/local_fs.h"
#include "store/local_object_store.h"

namespace ckptd {

// A writer of `key` beneath the store's root descriptor `root`: missing
// directories are created, none is reached through a symlink.
Result<std::unique_ptr<ObjectWriter>> NewLocalWriter(int root, std::string_view key, const std::string& where,
                                                     std::shared_ptr<LocalObjectStore::IoCounters> io);

}  // namespace ckptd
