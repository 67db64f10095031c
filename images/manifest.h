// The manifest of a checkpoint's images: written last under
// "<checkpoint id>/manifest.json"; the catalog's checksum is the SHA-256 of
// its bytes. Each file carries the checksum of its uncompressed bytes under
// the algorithm's name ("blake3": hex, or "sha256": hex in manifests written
// with image_checksum = "sha256" or before BLAKE3). Restore checks every
// file's size and checksum before CRIU runs, and restores with the dump's
// options.
// Thread safety: value types.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "common/status.h"
#include "store/digest.h"

namespace ckptd {

struct ManifestFile {
  std::string name;          // plain file name inside the images dir
  uint64_t size = 0;         // uncompressed bytes
  uint64_t stored_size = 0;  // bytes in the object store
  HashAlg hash = HashAlg::kBlake3;
  std::string digest;  // `hash` of the uncompressed bytes, lower-case hex
  std::string codec;   // zstd | lz4 | none
};

struct Manifest {
  int version = 1;
  std::string checkpoint_id;
  int pid = 0;
  std::string criu_version;
  std::string codec;
  int64_t created_at_ms = 0;
  // The dump options restore must mirror; "restore_root" ("/") and
  // "auto_ext_mounts" (true) when the target had a mount namespace of its
  // own (criu::RestoreRootFor, criu::CommonOptions::auto_ext_mounts).
  boost::json::value options;
  // PIDs of the GPU processes that were checkpointed with the driver (they
  // come back CHECKPOINTED after CRIU restore); "gpu_pids", written only when
  // non-empty so older manifests and readers are unchanged.
  std::vector<int> gpu_pids;
  // The same processes' pids in the tree root's PID namespace, which the
  // restore keeps (a container's restore gives them new host pids);
  // "gpu_ns_pids", written only when non-empty, then as long as gpu_pids.
  std::vector<int> gpu_ns_pids;
  // The checkpoint's node as the GPU driver saw it (gpu::GpuPlatform JSON:
  // driver version, GPU UUIDs and models), for the restore's compatibility
  // check; "gpu_platform", written only when set (an object when present).
  boost::json::value gpu_platform;
  std::vector<ManifestFile> files;

  uint64_t TotalSize() const;
  std::string Serialize() const;
  // Corruption for anything malformed, including unsafe file names.
  static Result<Manifest> Parse(std::string_view bytes);
};

inline constexpr const char* kManifestName = "manifest.json";

}  // namespace ckptd
