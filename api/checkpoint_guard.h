// What the API needs to know about jobs reading a checkpoint's objects, so
// that PATCH /v2/checkpoints/deprecate/{id} can answer only once no restore
// reads the checkpoint any more. Implemented in daemon/ (CheckpointReaders).
// Thread safety: implementations are safe from any thread.
#pragma once

#include <chrono>
#include <string_view>

#include "common/status.h"

namespace ckptd::api {

class CheckpointGuard {
 public:
  virtual ~CheckpointGuard() = default;
  // Blocks until no job holds checkpoint `id` for reading. OK when none does
  // (or all released in time); DeadlineExceeded after `timeout`.
  virtual Status WaitForReaders(std::string_view id, std::chrono::milliseconds timeout) = 0;
};

}  // namespace ckptd::api
