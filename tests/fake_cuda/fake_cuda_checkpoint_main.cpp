// Fake cuda-checkpoint: the CLI of NVIDIA's tool (580 syntax) over the same
// state files as the fake libcuda.so.1 (fake_cuda_state.h).
//   --get-state --pid N
//   --action lock|checkpoint|restore|unlock --pid N [--timeout MS] [--device-map old=new,...]
//   --get-restore-tid --pid N
//   --help
// Errors go to stderr as the real tool words them
// ("Could not restore on process ID 12: \"invalid argument\"") with exit 1.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fake_cuda_state.h"

namespace {

void Usage(FILE* out) {
  std::fprintf(out,
               "CUDA checkpoint and restore utility.\n"
               "Version 580.65.06-fake. ckptd test double.\n\n"
               "Operations:\n"
               "--get-state --pid <pid>\n"
               "--action lock | checkpoint | restore | unlock --pid <pid> [--timeout <ms>] [--device-map <uuids>]\n"
               "--get-restore-tid --pid <pid>\n"
               "--help\n");
}

// Same shape as the real tool's device map check: old=new pairs, comma separated.
bool ValidDeviceMap(const std::string& m) {
  if (m.empty()) return false;
  size_t start = 0;
  while (start <= m.size()) {
    size_t comma = m.find(',', start);
    std::string item = m.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) return false;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string op, action, device_map;
  long pid = -1;
  long timeout = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", a.c_str());
        std::exit(1);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      Usage(stdout);
      return 0;
    } else if (a == "--get-state" || a == "--get-restore-tid" || a == "--toggle") {
      op = a;
    } else if (a == "--action") {
      op = a;
      action = value();
    } else if (a == "--pid" || a == "-p") {
      pid = std::strtol(value(), nullptr, 10);
    } else if (a == "--timeout" || a == "-t") {
      timeout = std::strtol(value(), nullptr, 10);
    } else if (a == "--device-map" || a == "-d") {
      device_map = value();
    } else {
      std::fprintf(stderr, "Unknown argument %s\n", a.c_str());
      Usage(stderr);
      return 1;
    }
  }
  if (op.empty() || pid <= 0) {
    Usage(stderr);
    return 1;
  }
  if (fakecuda::StateDir().empty()) {
    std::fprintf(stderr, "fake cuda-checkpoint: %s is not set\n", fakecuda::kStateDirEnv);
    return 1;
  }
  int p = static_cast<int>(pid);
  int r = 0;
  std::string verb = action;
  if (op == "--get-state" || op == "--get-restore-tid") {
    int state = 0;
    r = fakecuda::GetState(p, &state);
    if (r == 0) {
      if (op == "--get-state") std::printf("%s\n", fakecuda::StateWord(state));
      else std::printf("%d\n", p);
      return 0;
    }
    verb = "get state";
  } else if (op == "--toggle") {
    int state = 0;
    r = fakecuda::GetState(p, &state);
    if (r == 0 && state == fakecuda::kRunning) {
      r = fakecuda::Lock(p, 0);
      if (r == 0) r = fakecuda::Checkpoint(p);
    } else if (r == 0 && state == fakecuda::kCheckpointed) {
      r = fakecuda::Restore(p, "");
      if (r == 0) r = fakecuda::Unlock(p);
    } else if (r == 0) {
      r = fakecuda::kIllegalState;
    }
    verb = "toggle";
  } else if (action == "lock") {
    r = fakecuda::Lock(p, static_cast<unsigned>(timeout < 0 ? 0 : timeout));
  } else if (action == "checkpoint") {
    r = fakecuda::Checkpoint(p);
  } else if (action == "restore") {
    if (!device_map.empty() && !ValidDeviceMap(device_map)) {
      r = fakecuda::kInvalidValue;
    } else {
      r = fakecuda::Restore(p, device_map);
    }
  } else if (action == "unlock") {
    r = fakecuda::Unlock(p);
  } else {
    std::fprintf(stderr, "Unknown action %s\n", action.c_str());
    return 1;
  }
  if (r != 0) {
    std::fprintf(stderr, "Could not %s on process ID %d: \"%s\"\n", verb.c_str(), p, fakecuda::ErrorString(r));
    return 1;
  }
  return 0;
}
