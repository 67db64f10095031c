// Our CUDA ABI declarations (gpu/cuda_abi.h) against the real cuda.h, when the
// CUDA toolkit is installed (CMake defines CKPTD_HAVE_CUDA_H). The checks are
// static_asserts: a layout mismatch fails the build of this test.
#include <cstddef>

#include <gtest/gtest.h>

#include "gpu/cuda_abi.h"

#ifdef CKPTD_HAVE_CUDA_H
#include <cuda.h>

namespace ours = ckptd::gpu::cuabi;

#define SAME_SIZE(a, b) static_assert(sizeof(a) == sizeof(b), #a " size differs from cuda.h")
#define SAME_OFFSET(a, b, f) static_assert(offsetof(a, f) == offsetof(b, f), #a "." #f " offset differs")

SAME_SIZE(ours::CUresult, CUresult);
SAME_SIZE(ours::CUprocessState, CUprocessState);
SAME_SIZE(ours::CUuuid, CUuuid);
SAME_SIZE(ours::CUcheckpointLockArgs, CUcheckpointLockArgs);
SAME_OFFSET(ours::CUcheckpointLockArgs, CUcheckpointLockArgs, timeoutMs);
SAME_OFFSET(ours::CUcheckpointLockArgs, CUcheckpointLockArgs, reserved0);
SAME_OFFSET(ours::CUcheckpointLockArgs, CUcheckpointLockArgs, reserved1);
SAME_SIZE(ours::CUcheckpointCheckpointArgs, CUcheckpointCheckpointArgs);
SAME_SIZE(ours::CUcheckpointGpuPair, CUcheckpointGpuPair);
SAME_OFFSET(ours::CUcheckpointGpuPair, CUcheckpointGpuPair, oldUuid);
SAME_OFFSET(ours::CUcheckpointGpuPair, CUcheckpointGpuPair, newUuid);
SAME_SIZE(ours::CUcheckpointRestoreArgs, CUcheckpointRestoreArgs);
SAME_OFFSET(ours::CUcheckpointRestoreArgs, CUcheckpointRestoreArgs, gpuPairs);
SAME_OFFSET(ours::CUcheckpointRestoreArgs, CUcheckpointRestoreArgs, gpuPairsCount);
SAME_OFFSET(ours::CUcheckpointRestoreArgs, CUcheckpointRestoreArgs, reserved);
SAME_OFFSET(ours::CUcheckpointRestoreArgs, CUcheckpointRestoreArgs, reserved1);
SAME_SIZE(ours::CUcheckpointUnlockArgs, CUcheckpointUnlockArgs);

static_assert(ours::CU_PROCESS_STATE_RUNNING == static_cast<int>(CU_PROCESS_STATE_RUNNING));
static_assert(ours::CU_PROCESS_STATE_LOCKED == static_cast<int>(CU_PROCESS_STATE_LOCKED));
static_assert(ours::CU_PROCESS_STATE_CHECKPOINTED == static_cast<int>(CU_PROCESS_STATE_CHECKPOINTED));
static_assert(ours::CU_PROCESS_STATE_FAILED == static_cast<int>(CU_PROCESS_STATE_FAILED));
static_assert(ours::CUDA_ERROR_INVALID_VALUE == CUDA_ERROR_INVALID_VALUE);
static_assert(ours::CUDA_ERROR_NOT_INITIALIZED == CUDA_ERROR_NOT_INITIALIZED);
static_assert(ours::CUDA_ERROR_NO_DEVICE == CUDA_ERROR_NO_DEVICE);
static_assert(ours::CUDA_ERROR_ILLEGAL_STATE == CUDA_ERROR_ILLEGAL_STATE);
static_assert(ours::CUDA_ERROR_NOT_READY == CUDA_ERROR_NOT_READY);
static_assert(ours::CUDA_ERROR_NOT_SUPPORTED == CUDA_ERROR_NOT_SUPPORTED);
static_assert(ours::CUDA_ERROR_NOT_PERMITTED == CUDA_ERROR_NOT_PERMITTED);
static_assert(ours::CUDA_ERROR_TIMEOUT == CUDA_ERROR_TIMEOUT);
static_assert(ours::CUDA_ERROR_UNKNOWN == CUDA_ERROR_UNKNOWN);

// The function-pointer types must accept the real declarations unchanged.
static_assert(sizeof(ours::PFN_cuCheckpointProcessLock) == sizeof(&cuCheckpointProcessLock));
template <typename Ours, typename Real>
constexpr bool kSameParams = false;
template <typename R1, typename R2, typename... A1, typename... A2>
constexpr bool kSameParams<R1 (*)(A1...), R2 (*)(A2...)> =
    sizeof...(A1) == sizeof...(A2) && ((sizeof(A1) == sizeof(A2)) && ...);
static_assert(kSameParams<ours::PFN_cuCheckpointProcessGetState, decltype(&cuCheckpointProcessGetState)>);
static_assert(kSameParams<ours::PFN_cuCheckpointProcessLock, decltype(&cuCheckpointProcessLock)>);
static_assert(kSameParams<ours::PFN_cuCheckpointProcessCheckpoint, decltype(&cuCheckpointProcessCheckpoint)>);
static_assert(kSameParams<ours::PFN_cuCheckpointProcessRestore, decltype(&cuCheckpointProcessRestore)>);
static_assert(kSameParams<ours::PFN_cuCheckpointProcessUnlock, decltype(&cuCheckpointProcessUnlock)>);
static_assert(kSameParams<ours::PFN_cuDriverGetVersion, decltype(&cuDriverGetVersion)>);
static_assert(kSameParams<ours::PFN_cuDeviceGetCount, decltype(&cuDeviceGetCount)>);
static_assert(kSameParams<ours::PFN_cuDeviceGet, decltype(&cuDeviceGet)>);
static_assert(kSameParams<ours::PFN_cuDeviceGetName, decltype(&cuDeviceGetName)>);
// cuda.h defines cuDeviceGetUuid as cuDeviceGetUuid_v2, the symbol we load.
static_assert(kSameParams<ours::PFN_cuDeviceGetUuid, decltype(&cuDeviceGetUuid)>);
static_assert(sizeof(ours::CUdevice) == sizeof(CUdevice));
#endif

TEST(CudaAbiTest, MatchesCudaHeader) {
#ifdef CKPTD_HAVE_CUDA_H
  // Everything was checked at compile time; record which header was used.
  RecordProperty("cuda_version", CUDA_VERSION);
  EXPECT_GE(CUDA_VERSION, 12080);
#else
  GTEST_SKIP() << "cuda.h not installed; ABI compared at compile time only where it exists";
#endif
}

TEST(CudaAbiTest, StructSizesAreDriverSizes) {
  EXPECT_EQ(sizeof(ckptd::gpu::cuabi::CUcheckpointRestoreArgs), 64u);
  EXPECT_EQ(offsetof(ckptd::gpu::cuabi::CUcheckpointRestoreArgs, gpuPairsCount), 8u);
  EXPECT_EQ(offsetof(ckptd::gpu::cuabi::CUcheckpointRestoreArgs, reserved1), 56u);
}
