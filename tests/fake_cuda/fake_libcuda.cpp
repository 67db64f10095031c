// Fake CUDA driver, built as libcuda.so.1: cuInit, cuDriverGetVersion and the
// cuCheckpointProcess* entry points with the driver's C signatures, backed by
// the file-based per-PID state machine of fake_cuda_state.h.
//
// Built twice: normally, and with FAKE_CUDA_NO_CHECKPOINT_API (only cuInit and
// cuDriverGetVersion, like a pre-570 driver) to exercise the tool fallback.
//
// Environment:
//   CKPTD_FAKE_CUDA_STATE_DIR       state dir (see fake_cuda_state.h)
//   CKPTD_FAKE_CUDA_DRIVER_VERSION  what cuDriverGetVersion reports (13000)
//   CKPTD_FAKE_CUDA_INIT_ERROR      a CUresult for cuInit to return
//   CKPTD_FAKE_CUDA_NO_REGISTER     set: loading the library does not mark
//                                   this process as a CUDA process
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fake_cuda_state.h"
#include "gpu/cuda_abi.h"

using namespace ckptd::gpu::cuabi;

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

std::atomic<bool> g_initialized{false};

// A process that loads the driver is a CUDA process (as after cuInit +
// context creation in the real one).
__attribute__((constructor)) void RegisterSelf() {
  if (std::getenv("CKPTD_FAKE_CUDA_NO_REGISTER") == nullptr) fakecuda::Register(getpid());
}

[[maybe_unused]] bool AllZero(const void* p, size_t n) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i)
    if (b[i]) return false;
  return true;
}

[[maybe_unused]] std::string UuidText(const CUuuid& u) {
  char buf[48];
  const unsigned char* b = reinterpret_cast<const unsigned char*>(u.bytes);
  std::snprintf(buf, sizeof buf, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return buf;
}

}  // namespace

FAKE_EXPORT CUresult cuInit(unsigned int flags) {
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (const char* e = std::getenv("CKPTD_FAKE_CUDA_INIT_ERROR")) return std::atoi(e);
  g_initialized = true;
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDriverGetVersion(int* version) {
  if (!version) return CUDA_ERROR_INVALID_VALUE;
  const char* v = std::getenv("CKPTD_FAKE_CUDA_DRIVER_VERSION");
  *version = v ? std::atoi(v) : 13000;
  return CUDA_SUCCESS;
}

#ifndef FAKE_CUDA_NO_CHECKPOINT_API

FAKE_EXPORT CUresult cuCheckpointProcessGetState(int pid, CUprocessState* state) {
  if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (!state) return CUDA_ERROR_INVALID_VALUE;
  int s = 0;
  int r = fakecuda::GetState(pid, &s);
  if (r == CUDA_SUCCESS) *state = static_cast<CUprocessState>(s);
  return r;
}

FAKE_EXPORT CUresult cuCheckpointProcessGetRestoreThreadId(int pid, int* tid) {
  if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (!tid) return CUDA_ERROR_INVALID_VALUE;
  int s;
  int r = fakecuda::GetState(pid, &s);
  if (r == CUDA_SUCCESS) *tid = pid;
  return r;
}

FAKE_EXPORT CUresult cuCheckpointProcessLock(int pid, CUcheckpointLockArgs* args) {
  if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (args && (args->reserved0 != 0 || !AllZero(args->reserved1, sizeof args->reserved1))) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  return fakecuda::Lock(pid, args ? args->timeoutMs : 0);
}

FAKE_EXPORT CUresult cuCheckpointProcessCheckpoint(int pid, CUcheckpointCheckpointArgs* args) {
  if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (args && !AllZero(args, sizeof *args)) return CUDA_ERROR_INVALID_VALUE;
  return fakecuda::Checkpoint(pid);
}

FAKE_EXPORT CUresult cuCheckpointProcessRestore(int pid, CUcheckpointRestoreArgs* args) {
  if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
  std::string map;
  if (args) {
    if (!AllZero(args->reserved, sizeof args->reserved) || args->reserved1 != 0) return CUDA_ERROR_INVALID_VALUE;
    if (args->gpuPairsCount > 0 && !args->gpuPairs) return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < args->gpuPairsCount; ++i) {
      if (!map.empty()) map += ",";
      map += UuidText(args->gpuPairs[i].oldUuid) + "=" + UuidText(args->gpuPairs[i].newUuid);
    }
  }
  return fakecuda::Restore(pid, map);
}

FAKE_EXPORT CUresult cuCheckpointProcessUnlock(int pid, CUcheckpointUnlockArgs* args) {
  if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (args && !AllZero(args, sizeof *args)) return CUDA_ERROR_INVALID_VALUE;
  return fakecuda::Unlock(pid);
}

#endif  // FAKE_CUDA_NO_CHECKPOINT_API
