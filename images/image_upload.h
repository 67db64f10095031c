// What the two ways a checkpoint's images reach the store share: the image
// streamer (files CRIU writes into staging, image_streamer.h) and the page
// uploader (the memory over CRIU's page-server socket, page_uploader.h)
// store objects under the same prefix, with the same codec and checksum,
// and report to the same job.
#pragma once

#include <functional>
#include <string>

#include "common/status.h"
#include "images/manifest.h"
#include "store/codec.h"
#include "store/object_store.h"

namespace ckptd {

struct ImageUploadOptions {
  ObjectStore* store = nullptr;  // must outlive the uploader
  std::string key_prefix;        // "<checkpoint id>/"
  std::string log_tag;           // "job <id> checkpoint <id>", leads its log lines
  CodecOptions codec;
  EncodingOptions encoding;  // pipelining of large objects, checksum
  // Before the first byte goes to the store (possibly_uploaded). With both
  // uploaders running it may come from either's thread: the caller makes
  // it run once.
  std::function<Status()> on_first_byte;
  // After every chunk taken in (uncompressed bytes); an error stops the upload.
  std::function<Status(uint64_t)> progress;
};

// The manifest entry of the object `name`, written through `w` and committed.
inline ManifestFile CommittedFile(std::string name, const EncodingWriter& w) {
  ManifestFile mf;
  mf.name = std::move(name);
  mf.size = w.bytes_written();
  mf.stored_size = w.compressed_bytes();
  mf.hash = w.hash_alg();
  mf.digest = w.digest_hex();
  mf.codec = std::string(CodecName(w.codec()));
  return mf;
}

// The manifest entry of the uncompressed file `name` of `size` bytes,
// linked into the store (ObjectStore::LinkFile) after `sum` took in every
// byte; finishes `sum`.
inline ManifestFile LinkedFile(std::string name, uint64_t size, ContentHash& sum) {
  ManifestFile mf;
  mf.name = std::move(name);
  mf.size = mf.stored_size = size;
  mf.hash = sum.alg();
  mf.digest = sum.FinishHex();
  mf.codec = std::string(CodecName(Codec::kNone));
  return mf;
}

}  // namespace ckptd
