// dlopen()/dlsym() helpers shared by the libraries gpu/ loads at run time
// (the CUDA driver, NVML): neither is linked, so ckptd runs on nodes
// without NVIDIA's driver.
#pragma once

#include <dlfcn.h>

#include <string>
#include <vector>

namespace ckptd::gpu {

// The last dlerror() text, or "unknown dlerror".
inline std::string DlError() {
  const char* e = dlerror();
  return e ? e : "unknown dlerror";
}

// *out = the symbol `name` of `handle`; false (and `name` appended to
// *missing when given) when the library lacks it.
template <typename Fn>
bool Resolve(void* handle, const char* name, Fn* out, std::vector<std::string>* missing) {
  dlerror();
  void* sym = dlsym(handle, name);
  if (!sym) {
    if (missing) missing->push_back(name);
    return false;
  }
  *out = reinterpret_cast<Fn>(sym);
  return true;
}

}  // namespace ckptd::gpu
