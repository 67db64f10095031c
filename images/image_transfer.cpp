#include "images/image_transfer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "images/image_upload.h"

namespace ckptd {

namespace fs = std::filesystem;

namespace {

struct FdCloser {
  int fd;
  ~FdCloser() { close(fd); }
};

// Checks what a download produced against the manifest entry.
Status Verify(const ManifestFile& f, uint64_t size, const std::string& digest) {
  if (size != f.size) return Corruption(fmt::format("image {}: {} bytes, manifest says {}", f.name, size, f.size));
  if (digest != f.digest)
    return Corruption(
        fmt::format("image {}: {} {} does not match the manifest's {}", f.name, HashAlgName(f.hash), digest, f.digest));
  return Status::Ok();
}

// An uncompressed page image the store can share with `dest`'s filesystem:
// linked, then read once to verify it. Only pages-*.img: the restore
// opens those read-only (ckptd never asks CRIU to deduplicate them).
bool Linkable(ObjectStore* store, const ManifestFile& f, Codec codec, const fs::path& dest) {
  return codec == Codec::kNone && f.name.starts_with("pages-") && store->CanLinkFrom(dest.parent_path());
}

// Reads the file `path` (no symlink) to its end into `sum`, reporting each
// chunk; *size: the bytes read.
Status ChecksumFile(const fs::path& path, ContentHash* sum, uint64_t* size, const ProgressFn& progress) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + path.string(), errno);
  FdCloser closer{fd};
  *size = 0;
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read " + path.string(), errno);
    if (n == 0) return Status::Ok();
    sum->Update(std::string_view(buf.data(), static_cast<size_t>(n)));
    *size += static_cast<uint64_t>(n);
    CKPTD_RETURN_IF_ERROR(progress(static_cast<uint64_t>(n)));
  }
}

Status LinkAndVerify(ObjectStore* store, const ManifestFile& f, const fs::path& dest, const ProgressFn& progress) {
  CKPTD_RETURN_IF_ERROR(store->LinkObjectAs(f.name, dest).WithContext(fmt::format("image {}", f.name)));
  ContentHash sum(f.hash);
  uint64_t size = 0;
  CKPTD_RETURN_IF_ERROR(ChecksumFile(dest, &sum, &size, progress));
  return Verify(f, size, sum.FinishHex());
}

// UploadFile of an uncompressed file into a store that can share its bytes:
// checksummed, then linked.
Status LinkUpload(ObjectStore* store, const std::string& key, const fs::path& file, HashAlg hash,
                  const ProgressFn& progress, ManifestFile* out) {
  uint64_t size = fs::file_size(file);
  ContentHash sum(hash);
  uint64_t read_bytes = 0;
  CKPTD_RETURN_IF_ERROR(ChecksumFile(file, &sum, &read_bytes, progress));
  if (read_bytes != size || fs::file_size(file) != size)
    return IOError(fmt::format("{} changed while uploading ({} bytes, then {})", file.string(), size, read_bytes));
  CKPTD_RETURN_IF_ERROR(store->LinkFile(key, file).WithContext("upload " + key));
  *out = LinkedFile(file.filename().string(), size, sum);
  return Status::Ok();
}

// Streams one object back, decoding it, into `dest`; verifies size and
// checksum. On failure `dest` may stay behind: the caller resets the dir.
Status DownloadFile(ObjectStore* store, const ManifestFile& f, const fs::path& dest, const ProgressFn& progress,
                    std::atomic<int>* linked) {
  CKPTD_ASSIGN_OR_RETURN(Codec codec, ParseCodec(f.codec));
  if (Linkable(store, f, codec, dest)) {
    ++*linked;
    return LinkAndVerify(store, f, dest, progress);
  }
  auto inner = store->NewReader(f.name);
  if (!inner.ok()) return inner.status().WithContext(fmt::format("image {}", f.name));
  DecodingReader r(std::move(*inner), codec, f.hash);
  int fd = open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("create " + dest.string(), errno);
  FdCloser closer{fd};
  std::string buf(1 << 20, '\0');
  for (;;) {
    auto n = r.Read(std::span<char>(buf.data(), buf.size()));
    if (!n.ok()) return n.status().WithContext(fmt::format("image {}", f.name));
    if (*n == 0) break;
    if (r.bytes_read() > f.size)
      return Corruption(fmt::format("image {}: longer than the manifest's {} bytes", f.name, f.size));
    size_t off = 0;
    while (off < *n) {
      ssize_t w = write(fd, buf.data() + off, *n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return ErrnoError("write " + dest.string(), errno);
      off += static_cast<size_t>(w);
    }
    CKPTD_RETURN_IF_ERROR(progress(*n));
  }
  return Verify(f, r.bytes_read(), r.digest_hex());
}

}  // namespace

Status ResetDir(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return IOError(fmt::format("create {}: {}", dir.string(), ec.message()));
  return Status::Ok();
}

Status UploadFile(ObjectStore* store, const std::string& key, const fs::path& file, const CodecOptions& co,
                  HashAlg hash, const ProgressFn& progress, ManifestFile* out) {
  if (co.codec == Codec::kNone && store->CanLinkFrom(file.parent_path()))
    return LinkUpload(store, key, file, hash, progress, out);
  int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + file.string(), errno);
  FdCloser closer{fd};
  uint64_t size = fs::file_size(file);
  CKPTD_ASSIGN_OR_RETURN(auto inner, store->NewWriter(key, WriteOptions{size}));
  EncodingOptions eo;
  eo.hash = hash;
  CKPTD_ASSIGN_OR_RETURN(auto w, EncodingWriter::Create(std::move(inner), co, eo));
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      w->Abort();
      return ErrnoError("read " + file.string(), errno);
    }
    if (n == 0) break;
    Status st = w->Write(std::string_view(buf.data(), static_cast<size_t>(n))).WithContext("upload " + key);
    if (st.ok()) st = progress(static_cast<uint64_t>(n));
    if (!st.ok()) {
      w->Abort();
      return st;
    }
  }
  CKPTD_RETURN_IF_ERROR(w->Commit().WithContext("upload " + key));
  *out = CommittedFile(file.filename().string(), *w);
  if (out->size != size)
    return IOError(fmt::format("{} changed while uploading ({} bytes, then {})", file.string(), size, out->size));
  return Status::Ok();
}

Status UploadDir(ObjectStore* store, const std::string& prefix, const fs::path& dir, const CodecOptions& codec,
                 HashAlg hash, const ProgressFn& progress, std::vector<ManifestFile>* out) {
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && !e.is_symlink())
      files.push_back(e.path());
    else
      spdlog::warn("{}: skipping non-regular image entry {}", prefix, e.path().string());
  }
  if (ec) return IOError(fmt::format("list {}: {}", dir.string(), ec.message()));
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    ManifestFile mf;
    CKPTD_RETURN_IF_ERROR(UploadFile(store, prefix + f.filename().string(), f, codec, hash, progress, &mf));
    out->push_back(std::move(mf));
  }
  return Status::Ok();
}

Status DownloadAll(ObjectStore* store, const std::vector<ManifestFile>& files, const fs::path& dir, int parallelism,
                   const ProgressFn& progress, int* linked_files) {
  std::atomic<int> linked{0};
  std::vector<const ManifestFile*> order;
  for (const auto& f : files) order.push_back(&f);
  std::stable_sort(order.begin(), order.end(),
                   [](const ManifestFile* a, const ManifestFile* b) { return a->size > b->size; });
  std::mutex mu;
  size_t next = 0;
  Status first_error;
  auto locked_progress = [&](uint64_t n) -> Status {
    std::lock_guard lock(mu);
    if (!first_error.ok()) return Cancelled("another image failed");
    return progress(n);
  };
  auto worker = [&] {
    for (;;) {
      const ManifestFile* f;
      {
        std::lock_guard lock(mu);
        if (next >= order.size() || !first_error.ok()) return;
        f = order[next++];
      }
      Status st = DownloadFile(store, *f, dir / f->name, locked_progress, &linked);
      if (!st.ok()) {
        std::lock_guard lock(mu);
        if (first_error.ok() || first_error.code() == Code::kCancelled) first_error = st;
        return;
      }
    }
  };
  int n = std::clamp<int>(parallelism, 1, static_cast<int>(std::max<size_t>(order.size(), 1)));
  std::vector<std::thread> threads;
  for (int i = 1; i < n; ++i) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (linked_files) *linked_files = linked.load();
  return first_error;
}

}  // namespace ckptd
