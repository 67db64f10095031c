// Fuzz target (f): the TOML configuration file (daemon/config.h
// ApplyConfigFile, which takes a path: the input is written to a file in
// tmpfs first), then what the daemon does with a loaded configuration:
// DescribeConfig (--check-config), FileRoots, the reload diff
// (ChangedSettings, ApplyReload) and PageServerOn.
// Checks: a refused file is InvalidArgument; a loaded one describes itself
// and reloading it onto itself changes nothing.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "daemon/config.h"
#include "daemon/reload.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ckptd::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ckptd;
  static const std::string path = fuzz::ScratchDir() + "/ckptd.toml";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fuzz::Fail("cannot write the config file");
  for (size_t off = 0; off < size;) {
    ssize_t n = ::write(fd, data + off, size - off);
    if (n <= 0) fuzz::Fail("cannot write the config file");
    off += static_cast<size_t>(n);
  }
  ::close(fd);

  Config config;
  Status st = ApplyConfigFile(path, &config);
  if (!st.ok()) {
    if (st.code() != Code::kInvalidArgument) fuzz::Fail("config refused with another code", st.ToString());
    return 0;
  }
  (void)DescribeConfig(config);
  (void)config.FileRoots();
  (void)config.ImagesUri();
  (void)config.StagingDir();
  (void)PageServerOn(config.page_server, 2);
  (void)ChangedSettings(Config{}, config);
  Config running = config;
  ReloadOutcome out = ApplyReload(config, &running);
  fuzz::QuietLogs();  // ApplyReload applied the file's log_level
  if (!out.applied.empty() || !out.need_restart.empty()) fuzz::Fail("reloading a configuration onto itself changed it");
  return 0;
}
