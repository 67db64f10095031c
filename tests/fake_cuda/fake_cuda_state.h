// Shared core of the fake CUDA driver (libcuda.so.1) and the fake
// cuda-checkpoint tool: a per-PID checkpoint state machine kept in files so
// that the daemon (which loads the library), the "GPU process" and the test
// all see the same state.
//
// State directory: $CKPTD_FAKE_CUDA_STATE_DIR (required for the checkpoint
// calls; without it they return CUDA_ERROR_NOT_SUPPORTED).
//   <pid>.state       first line: running | locked | checkpointed | failed;
//                     ("id-<v>.state" for a process whose environment has
//                     CKPTD_FAKE_CUDA_ID=<v>: the record follows it through
//                     a restore into a new PID namespace, where its pid
//                     changes, as the real driver's state does)
//                     then key=value lines (device_map=old=new,...). Replaced
//                     atomically (write temp + rename). A process becomes a
//                     "CUDA process" when the library is loaded into it
//                     (constructor writes "running"), or a test writes the file.
//   calls.log         one line per checkpoint call: "<op> pid=<pid> [...] -> <code>"
//   .lock             flock() serializing read-modify-write across processes
// Fault injection (files in the state dir; "<name>.<pid>" overrides "<name>"):
//   lock_busy_ms      content N: the process holds CUDA for N ms; lock waits
//                     that long, or fails with CUDA_ERROR_TIMEOUT after its
//                     timeout when the timeout is shorter (state stays running).
//   slow_ms           content N: every lock/checkpoint/restore/unlock sleeps N ms.
//   fail_<op>         op = lock|checkpoint|restore|unlock; content
//                     "[code=N] [count=N]": fail with code N (default 999,
//                     CUDA_ERROR_UNKNOWN) the next count calls (default: all);
//                     the state does not change. count is decremented in place.
//   fail_state        content "failed": the failing op leaves state "failed".
//   ranks             content "pid pid ...": the ranks of one job (NCCL-like).
//                     A rank's lock succeeds only once every rank is being
//                     locked too (arrived.<pid> files) or is locked already;
//                     else it fails with CUDA_ERROR_TIMEOUT after its timeout
//                     (0: 60 s) and stays running. Locking the ranks one
//                     after the other therefore always times out.
// Device memory (for the fake NVML, fake_libnvml.cpp): a process registered
// with CKPTD_FAKE_CUDA_DEVICE_MEMORY=<bytes> in its environment gets the line
// device_memory=<bytes>; it uses that much while running or locked (a
// checkpointed process has released its device memory).
// Transitions: lock running->locked, checkpoint locked->checkpointed,
// restore checkpointed->locked, unlock locked->running; any other ->
// CUDA_ERROR_ILLEGAL_STATE. Unknown or dead PID -> CUDA_ERROR_INVALID_VALUE.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace fakecuda {

inline constexpr const char* kStateDirEnv = "CKPTD_FAKE_CUDA_STATE_DIR";
inline constexpr const char* kIdEnv = "CKPTD_FAKE_CUDA_ID";
inline constexpr const char* kDeviceMemoryEnv = "CKPTD_FAKE_CUDA_DEVICE_MEMORY";

enum : int {
  kSuccess = 0,
  kInvalidValue = 1,
  kNotInitialized = 3,
  kIllegalState = 401,
  kNotSupported = 801,
  kTimeout = 909,
  kUnknown = 999,
};

enum State : int { kRunning = 0, kLocked = 1, kCheckpointed = 2, kFailed = 3 };

const char* StateWord(int state);
// cuGetErrorString-like text ("invalid argument", "the operation timed out").
const char* ErrorString(int code);

// Empty when the env var is unset.
std::string StateDir();

// Marks `pid` as a CUDA process in state running (no-op without a state dir).
void Register(int pid);

int GetState(int pid, int* state);
int Lock(int pid, unsigned timeout_ms);
int Checkpoint(int pid);
int Restore(int pid, const std::string& device_map);
int Unlock(int pid);

// (pid, bytes) of the live processes holding device memory now (running or
// locked, with a device_memory line), by pid; records named by pid only.
std::vector<std::pair<int, unsigned long long>> DeviceMemory();

}  // namespace fakecuda
