// S3ObjectStore: ObjectStore on an S3-compatible bucket (+ key prefix).
//
// Writes: objects up to one part are sent with PutObject at Commit();
// larger ones with a multipart upload started when the first part is full:
// parts upload in parallel, at most S3Config::max_in_flight at once per
// writer (memory: part_size x (max_in_flight + 1)). Part size: at least
// S3Config::part_size (>= 5 MiB unless allow_small_parts); with
// WriteOptions::expected_size, large enough that the object fits in 10,000
// parts (500 GiB -> ~52 MiB parts); without it, parts double every 1,000
// parts (capped at 5 GiB), so 10,000 parts reach S3's 5 TiB limit. Any
// failure (after retries) aborts the multipart upload; Commit never reports
// success unless CompleteMultipartUpload accepted every part.
// Reads: GetObject streamed, with Range for offset/length; a connection lost
// mid-body is resumed with a Range request pinned to the ETag (If-Match).
// List: ListObjectsV2 pages. DeletePrefix: DeleteObjects in batches of
// up to 1000 keys, then AbortMultipartUpload for every incomplete upload
// under the prefix (ListMultipartUploads): a writer whose abort could not
// reach the store (it was away) leaves parts no object listing shows. A
// server without ListMultipartUploads (501 NotImplemented) skips that step.
//
// Thread safety: as ObjectStore.
#pragma once

#include <memory>

#include "common/clock.h"
#include "store/object_store.h"
#include "store/s3_config.h"

namespace ckptd {

class S3Client;

class S3ObjectStore final : public ObjectStore {
 public:
  // Validates cfg (S3Config::Validate). Does not contact the server.
  static Result<std::unique_ptr<S3ObjectStore>> Open(S3Config cfg, const Clock* clock = SystemClock::Default());
  ~S3ObjectStore() override;

  Result<std::unique_ptr<ObjectWriter>> NewWriter(std::string_view key, const WriteOptions& opts = {}) override;
  Result<std::unique_ptr<ObjectReader>> NewReader(std::string_view key, const ReadOptions& opts = {}) override;
  Result<ObjectInfo> Head(std::string_view key) override;
  Result<ListPage> List(std::string_view prefix, std::string_view page_token = {}, int max_keys = 1000) override;
  Status Delete(std::string_view key) override;
  Status DeletePrefix(std::string_view prefix) override;
  std::string Describe() const override;

  // Part size of part number n (1-based) for a given plan; exposed for tests.
  static uint64_t PartSizeFor(const S3Config& cfg, std::optional<uint64_t> expected_size, int n);

 private:
  explicit S3ObjectStore(std::shared_ptr<S3Client> client);
  // Aborts the incomplete multipart uploads whose keys start with prefix.
  Status AbortUploads(std::string_view prefix);
  std::shared_ptr<S3Client> client_;
};

}  // namespace ckptd
