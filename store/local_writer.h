// Internal to the local object store (local_object_store.h): the writer of
// one object. Thread safety: an ObjectWriter belongs to one thread.
#pragma once

#include <filesystem>
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

// LocalObjectStore::LinkFile: `path` (a regular file, not a symlink) is
// fsynced, hard-linked as a hidden temporary file in the key's directory,
// renamed over the key, and the directory fsynced. A failure leaves no
// temporary name behind.
Status LinkLocalFile(int root, std::string_view key, const std::filesystem::path& path, const std::string& where);

}  // namespace ckptd
