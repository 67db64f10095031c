// Object store URIs and the factory that opens a store from one.
//
//   file:///var/lib/ckptd/images/   -> LocalObjectStore rooted there
//   s3://bucket/some/prefix/        -> S3ObjectStore on bucket, keys under
//                                      "some/prefix/" (endpoint, region,
//                                      credentials from the config / env)
// Value types; OpenObjectStore is thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "store/object_store.h"
#include "store/s3_config.h"

namespace ckptd {

struct ObjectUri {
  enum class Scheme { kFile, kS3 };
  Scheme scheme = Scheme::kFile;
  std::string path;    // file: absolute directory, no trailing '/' (except "/")
  std::string bucket;  // s3
  std::string prefix;  // s3: "" or ending in '/'

  // InvalidArgument for anything else (relative paths, other schemes,
  // file://otherhost/, s3:// without a bucket, ".." segments).
  static Result<ObjectUri> Parse(std::string_view uri);
  std::string ToString() const;  // canonical form, ends in '/'
};

// S3's bucket naming rules; InvalidArgument naming the bucket otherwise.
Status ValidateBucket(std::string_view bucket);

// For a file:// URI: OK when its directory (symlinks resolved as far as it
// exists) lies under one of `roots`, else InvalidArgument naming them; URIs
// of other schemes are always OK. Keeps paths that arrive in requests inside
// the directories the operator configured.
Status CheckFileUriWithin(const ObjectUri& uri, const std::vector<std::string>& roots);

struct ObjectStoreConfig {
  // Endpoint, region, credentials, part size... bucket and prefix come from
  // the URI and override these fields.
  S3Config s3;
  // Fill empty S3 fields from AWS_* environment variables.
  bool s3_from_env = true;
};

Result<std::unique_ptr<ObjectStore>> OpenObjectStore(std::string_view uri, const ObjectStoreConfig& config = {},
                                                     const Clock* clock = SystemClock::Default());

}  // namespace ckptd
