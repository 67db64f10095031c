// Our own declaration of the slice of the CUDA driver ABI that ckptd uses:
// the process checkpoint API (CUDA 12.8+/13.0) and cuDriverGetVersion/cuInit.
//
// Contract: production code never includes cuda.h nor links libcuda; it loads
// the driver with dlopen (gpu/cuda_driver.h) and calls these entry points
// through the function-pointer types below. Every struct here must match
// cuda.h byte for byte (size, field order, reserved fields): the driver reads
// them through a pointer. tests/gpu/cuda_abi_test.cpp checks that with
// static_asserts against /usr/local/cuda/include/cuda.h when it exists.
// The fake driver (tests/fake_cuda) implements the same signatures from this
// header, so keep it C-compatible (no C++ types in the structs).
#pragma once

#include <cstdint>

namespace ckptd::gpu::cuabi {

// CUresult is a C enum (int-sized). We keep it an int so unknown codes from a
// newer driver survive intact.
using CUresult = int;

inline constexpr CUresult CUDA_SUCCESS = 0;
inline constexpr CUresult CUDA_ERROR_INVALID_VALUE = 1;
inline constexpr CUresult CUDA_ERROR_OUT_OF_MEMORY = 2;
inline constexpr CUresult CUDA_ERROR_NOT_INITIALIZED = 3;
inline constexpr CUresult CUDA_ERROR_DEINITIALIZED = 4;
inline constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;
inline constexpr CUresult CUDA_ERROR_OPERATING_SYSTEM = 304;
inline constexpr CUresult CUDA_ERROR_ILLEGAL_STATE = 401;
inline constexpr CUresult CUDA_ERROR_NOT_FOUND = 500;
inline constexpr CUresult CUDA_ERROR_NOT_READY = 600;
inline constexpr CUresult CUDA_ERROR_NOT_PERMITTED = 800;
inline constexpr CUresult CUDA_ERROR_NOT_SUPPORTED = 801;
inline constexpr CUresult CUDA_ERROR_TIMEOUT = 909;
inline constexpr CUresult CUDA_ERROR_UNKNOWN = 999;

// "CUDA_ERROR_TIMEOUT" for the codes above, "CUDA_ERROR_<n>" otherwise.
const char* CuResultName(CUresult r);

// CUprocessState (a C enum: int-sized).
enum CUprocessState : int {
  CU_PROCESS_STATE_RUNNING = 0,
  CU_PROCESS_STATE_LOCKED = 1,
  CU_PROCESS_STATE_CHECKPOINTED = 2,
  CU_PROCESS_STATE_FAILED = 3,
};

struct CUuuid {
  char bytes[16];
};

struct CUcheckpointLockArgs {
  unsigned int timeoutMs;  // 0: no timeout
  unsigned int reserved0;  // must be zero
  uint64_t reserved1[7];   // must be zeroed
};

struct CUcheckpointCheckpointArgs {
  uint64_t reserved[8];
};

struct CUcheckpointGpuPair {
  CUuuid oldUuid;
  CUuuid newUuid;
};

// CUDA 13 layout: 64 bytes on LP64.
struct CUcheckpointRestoreArgs {
  CUcheckpointGpuPair* gpuPairs;
  unsigned int gpuPairsCount;
  char reserved[52 - sizeof(CUcheckpointGpuPair*)];
  uint64_t reserved1;
};

struct CUcheckpointUnlockArgs {
  uint64_t reserved[8];
};

static_assert(sizeof(CUcheckpointLockArgs) == 64);
static_assert(sizeof(CUcheckpointCheckpointArgs) == 64);
static_assert(sizeof(CUcheckpointRestoreArgs) == 64);
static_assert(sizeof(CUcheckpointUnlockArgs) == 64);
static_assert(sizeof(CUcheckpointGpuPair) == 32);

// Entry-point signatures (CUDAAPI is empty on Linux).
extern "C" {
using PFN_cuInit = CUresult (*)(unsigned int flags);
using PFN_cuDriverGetVersion = CUresult (*)(int* driverVersion);
using CUdevice = int;
using PFN_cuDeviceGetCount = CUresult (*)(int* count);
using PFN_cuDeviceGet = CUresult (*)(CUdevice* device, int ordinal);
using PFN_cuDeviceGetName = CUresult (*)(char* name, int len, CUdevice dev);
// Exported as cuDeviceGetUuid_v2 (cuda.h maps the name to it).
using PFN_cuDeviceGetUuid = CUresult (*)(CUuuid* uuid, CUdevice dev);
using PFN_cuCheckpointProcessGetState = CUresult (*)(int pid, CUprocessState* state);
using PFN_cuCheckpointProcessGetRestoreThreadId = CUresult (*)(int pid, int* tid);
using PFN_cuCheckpointProcessLock = CUresult (*)(int pid, CUcheckpointLockArgs* args);
using PFN_cuCheckpointProcessCheckpoint = CUresult (*)(int pid, CUcheckpointCheckpointArgs* args);
using PFN_cuCheckpointProcessRestore = CUresult (*)(int pid, CUcheckpointRestoreArgs* args);
using PFN_cuCheckpointProcessUnlock = CUresult (*)(int pid, CUcheckpointUnlockArgs* args);
}

}  // namespace ckptd::gpu::cuabi
