// Upload and download of whole image files between a local directory and
// an object store: the part of a checkpoint that is not streamed while CRIU
// writes (dump-then-upload, files CRIU wrote after the streamer, recovery
// finishing a dump from staging) and the whole of a restore's download.
//
// Contract
// - UploadFile stores `file` under `key` through an EncodingWriter (codec,
//   checksum of the uncompressed bytes) and fills the manifest entry; the
//   object is committed only when every byte was read and the file's size
//   did not change meanwhile.
// - DownloadAll fetches every manifest file into `dir` with up to
//   `parallelism` threads (largest first), decoding each and checking its
//   size and checksum against the manifest before it returns OK; the first
//   error stops the others at their next chunk and is returned. Files are
//   created new (O_EXCL) with mode 0600. An uncompressed page image
//   (pages-*.img) the store can share with `dir`'s filesystem
//   (ObjectStore::CanLinkFrom) is linked instead and read once to verify
//   it: CRIU only reads those, and the object must stay unwritten.
// - `progress` is called with every chunk's uncompressed byte count; an
//   error from it stops the transfer with that error.
// Memory: one 1 MiB buffer per file in flight plus its codec's window.
// Thread safety: free functions; the store must be safe for concurrent use.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "images/manifest.h"
#include "store/codec.h"
#include "store/object_store.h"

namespace ckptd {

using ProgressFn = std::function<Status(uint64_t bytes)>;

// `dir` empty and present (created with its parents; what was in it goes):
// a job's fresh images directory.
Status ResetDir(const std::filesystem::path& dir);

Status UploadFile(ObjectStore* store, const std::string& key, const std::filesystem::path& file,
                  const CodecOptions& codec, HashAlg hash, const ProgressFn& progress, ManifestFile* out);

// Every regular file of `dir` (sorted by name) under "<prefix><name>",
// appended to `out`; other entries are skipped with a warning.
Status UploadDir(ObjectStore* store, const std::string& prefix, const std::filesystem::path& dir,
                 const CodecOptions& codec, HashAlg hash, const ProgressFn& progress, std::vector<ManifestFile>* out);

// *linked_files (when given): how many were linked, not copied.
Status DownloadAll(ObjectStore* store, const std::vector<ManifestFile>& files, const std::filesystem::path& dir,
                   int parallelism, const ProgressFn& progress, int* linked_files = nullptr);

}  // namespace ckptd
