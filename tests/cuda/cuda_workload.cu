// A real CUDA process for the `gpu` tests (tests/gpu/real_gpu_test.cpp), the
// real-GPU benchmark and scripts/gpu-check.sh. Built with nvcc when the
// toolkit is present (tests/cuda/CMakeLists.txt, or scripts/gpu-check.sh on
// a GPU machine); nothing else in the project needs it.
//
//   ckptd_cuda_workload --out FILE [--mib N] [--fork] [--spin-ms MS] [--step-ms MS]
//
// It fills N MiB (default 64) of device memory with a pattern, then loops:
// a kernel adds one to a counter kept in device memory, which is copied back
// and written to FILE in ckptd_workload's progress format (one 25-byte line,
// "%020llu ok \n", or "... bad\n" once something is wrong); every 16 steps a
// kernel checks the whole pattern. A checkpoint and restore must keep the
// counter going up from where it was and the pattern intact.
//   --fork      fork first: parent and child each create their own context
//               (the child writes FILE.child): a two-process GPU tree.
//   --spin-ms   every step's kernel spins that long (a long-running kernel:
//               a lock with a shorter timeout times out).
//   --step-ms   pause between steps (default 50).
// When its context and memory are ready each process prints
//   ready <pid> <GPU uuid> d2h_gbps=<device-to-host GB/s of its N MiB>
// on stdout (the bandwidth is the workload's own figure for the benchmark).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include <cuda_runtime.h>

namespace {

__device__ uint32_t PatternWord(size_t i) { return static_cast<uint32_t>(i * 2654435761u) ^ 0x5bd1e995u; }

__global__ void Fill(uint32_t* words, size_t n) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += size_t(blockDim.x) * gridDim.x)
    words[i] = PatternWord(i);
}

__global__ void Check(const uint32_t* words, size_t n, unsigned long long* bad) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += size_t(blockDim.x) * gridDim.x)
    if (words[i] != PatternWord(i)) atomicAdd(bad, 1ull);
}

__global__ void Step(unsigned long long* counter, long long spin_cycles) {
  long long t0 = clock64();
  while (spin_cycles > 0 && clock64() - t0 < spin_cycles) {
  }
  *counter += 1;
}

struct Args {
  std::string out;
  size_t mib = 64;
  bool fork_child = false;
  long spin_ms = 0;
  long step_ms = 50;
};

void Die(const char* what, cudaError_t e) {
  std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
  std::exit(3);
}
#define CHECK(call)                       \
  do {                                    \
    cudaError_t e_ = (call);              \
    if (e_ != cudaSuccess) Die(#call, e_); \
  } while (0)

void WriteProgress(int fd, unsigned long long n, bool ok) {
  char line[32];
  int len = std::snprintf(line, sizeof line, "%020llu %s\n", n, ok ? "ok " : "bad");
  if (pwrite(fd, line, len, 0) != len) std::exit(4);
}

std::string UuidText(const cudaUUID_t& u) {
  const auto* b = reinterpret_cast<const unsigned char*>(u.bytes);
  char s[64];
  std::snprintf(s, sizeof s, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return s;
}

[[noreturn]] void Run(const Args& a, const std::string& out) {
  int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) std::exit(2);
  CHECK(cudaSetDevice(0));
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, 0));
  const size_t words = a.mib * (1u << 20) / sizeof(uint32_t);
  uint32_t* pattern = nullptr;
  unsigned long long *counter = nullptr, *bad = nullptr;
  CHECK(cudaMalloc(&pattern, words * sizeof(uint32_t)));
  CHECK(cudaMalloc(&counter, sizeof *counter));
  CHECK(cudaMalloc(&bad, sizeof *bad));
  CHECK(cudaMemset(counter, 0, sizeof *counter));
  Fill<<<1024, 256>>>(pattern, words);
  CHECK(cudaDeviceSynchronize());

  // The workload's own device-to-host bandwidth, for the benchmark.
  void* host = nullptr;
  CHECK(cudaMallocHost(&host, words * sizeof(uint32_t)));
  auto t0 = std::chrono::steady_clock::now();
  CHECK(cudaMemcpy(host, pattern, words * sizeof(uint32_t), cudaMemcpyDeviceToHost));
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(cudaFreeHost(host));
  std::printf("ready %d %s d2h_gbps=%.2f\n", getpid(), UuidText(prop.uuid).c_str(),
              static_cast<double>(words * sizeof(uint32_t)) / s / 1e9);
  std::fflush(stdout);

  int khz = 0;
  CHECK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0));
  const long long spin_cycles = static_cast<long long>(a.spin_ms) * khz;
  bool ok = true;
  for (unsigned long long step = 0;; ++step) {
    Step<<<1, 1>>>(counter, spin_cycles);
    unsigned long long n = 0, nbad = 0;
    CHECK(cudaMemcpy(&n, counter, sizeof n, cudaMemcpyDeviceToHost));
    if (step % 16 == 0) {
      CHECK(cudaMemset(bad, 0, sizeof *bad));
      Check<<<1024, 256>>>(pattern, words, bad);
      CHECK(cudaMemcpy(&nbad, bad, sizeof nbad, cudaMemcpyDeviceToHost));
      if (nbad != 0) ok = false;
    }
    WriteProgress(fd, n, ok);
    std::this_thread::sleep_for(std::chrono::milliseconds(a.step_ms));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (k == "--fork") a.fork_child = true;
    else if (k == "--out" && v) a.out = argv[++i];
    else if (k == "--mib" && v) a.mib = std::strtoull(argv[++i], nullptr, 10);
    else if (k == "--spin-ms" && v) a.spin_ms = std::atol(argv[++i]);
    else if (k == "--step-ms" && v) a.step_ms = std::atol(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s --out FILE [--mib N] [--fork] [--spin-ms MS] [--step-ms MS]\n", argv[0]);
      return 1;
    }
  }
  if (a.out.empty() || a.mib == 0) {
    std::fprintf(stderr, "--out FILE is required and --mib must be positive\n");
    return 1;
  }
  // Fork before any CUDA call: a context does not survive fork.
  if (a.fork_child && fork() == 0) Run(a, a.out + ".child");
  Run(a, a.out);
}
