// Fake CUDA driver, built as libcuda.so.1: cuInit, cuDriverGetVersion, the
// device queries (count, name, UUID) and the
// cuCheckpointProcess* entry points with the driver's C signatures, backed by
// the file-based per-PID state machine of fake_cuda_state.h.
//
// Built twice: normally, and with FAKE_CUDA_NO_CHECKPOINT_API (only cuInit and
// cuDriverGetVersion, like a pre-570 driver) to exercise the tool fallback.
//
// Environment:
//   CKPTD_FAKE_CUDA_STATE_DIR       state dir (see fake_cuda_state.h); its
//                                   file "devices" lists the node's GPUs
//                                   ("GPU-<uuid> <name>" a line)
//   CKPTD_FAKE_CUDA_DRIVER_VERSION  what cuDriverGetVersion reports (13000)
//   CKPTD_FAKE_CUDA_INIT_ERROR      a CUresult for cuInit to return
//   CKPTD_FAKE_CUDA_NO_REGISTER     set: loading the library does not mark
//                                   this process as a CUDA process
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

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

// ---- the node's GPUs -------------------------------------------------------
// From <state dir>/devices, one GPU a line: "GPU-<uuid> <name...>"; without
// the file, one GPU: kDefaultDevice.

namespace {

constexpr const char* kDefaultDevice = "GPU-fa4e0000-0000-4000-8000-000000000001 Fake CUDA GPU";

struct FakeDevice {
  unsigned char uuid[16];
  std::string name;
};

bool ParseUuid(const std::string& text, unsigned char out[16]) {
  std::string hex;
  for (char c : text.rfind("GPU-", 0) == 0 ? text.substr(4) : text)
    if (c != '-') hex += c;
  if (hex.size() != 32) return false;
  for (int i = 0; i < 16; ++i) out[i] = static_cast<unsigned char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return true;
}

std::vector<FakeDevice> Devices() {
  std::vector<std::string> lines;
  std::ifstream in(fakecuda::StateDir() + "/devices");
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  if (fakecuda::StateDir().empty() || !in.eof()) lines.clear();
  if (lines.empty()) lines.push_back(kDefaultDevice);
  std::vector<FakeDevice> out;
  for (const auto& line : lines) {
    FakeDevice d{};
    size_t sp = line.find(' ');
    if (!ParseUuid(line.substr(0, sp), d.uuid)) continue;
    d.name = sp == std::string::npos ? "" : line.substr(sp + 1);
    out.push_back(d);
  }
  return out;
}

}  // namespace

FAKE_EXPORT CUresult cuDeviceGetCount(int* count) {
  if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (!count) return CUDA_ERROR_INVALID_VALUE;
  *count = static_cast<int>(Devices().size());
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceGet(CUdevice* device, int ordinal) {
  if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (!device || ordinal < 0 || ordinal >= static_cast<int>(Devices().size())) return CUDA_ERROR_INVALID_VALUE;
  *device = ordinal;
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceGetName(char* name, int len, CUdevice dev) {
  if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
  auto devices = Devices();
  if (!name || len <= 0 || dev < 0 || dev >= static_cast<int>(devices.size())) return CUDA_ERROR_INVALID_VALUE;
  std::snprintf(name, static_cast<size_t>(len), "%s", devices[dev].name.c_str());
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceGetUuid_v2(CUuuid* uuid, CUdevice dev) {
  if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
  auto devices = Devices();
  if (!uuid || dev < 0 || dev >= static_cast<int>(devices.size())) return CUDA_ERROR_INVALID_VALUE;
  std::memcpy(uuid->bytes, devices[dev].uuid, 16);
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
