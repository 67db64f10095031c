// A process that "uses the GPU" for the gpu/ tests: it dlopens the (fake)
// CUDA driver so that libcuda.so.1 shows in its maps, prints "ready <pid>"
// and sleeps until killed.
//   gpu_user [--gpu-lib PATH] [--tree]
// --tree: before loading the library, fork a child that does not load it and
// that forks a grandchild which does: root(gpu) -> child(no gpu) -> grandchild(gpu).
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace {

void Ready() {
  std::printf("ready %d\n", getpid());
  std::fflush(stdout);
}

void LoadLib(const std::string& lib) {
  if (lib.empty()) return;
  if (!dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL)) {
    std::fprintf(stderr, "dlopen %s: %s\n", lib.c_str(), dlerror());
    _exit(2);
  }
}

[[noreturn]] void SleepForever() {
  for (;;) pause();
}

}  // namespace

int main(int argc, char** argv) {
  std::string lib;
  bool tree = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--gpu-lib") && i + 1 < argc) lib = argv[++i];
    else if (!std::strcmp(argv[i], "--tree")) tree = true;
  }
  if (tree) {
    pid_t child = fork();
    if (child == 0) {
      pid_t grandchild = fork();
      if (grandchild == 0) {
        LoadLib(lib);
        Ready();
        SleepForever();
      }
      Ready();
      SleepForever();
    }
  }
  LoadLib(lib);
  Ready();
  SleepForever();
}
