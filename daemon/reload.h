// SIGHUP: re-read the configuration (same argv, same environment, the file
// again) and apply what can change at run time; report the rest.
//
// Contract: a configuration that fails to load leaves everything as it was
// and returns the error (the caller logs it and keeps running). Settings
// marked `reloadable` in ConfigSettings() are applied (today: log_level); any
// other changed setting is listed in `need_restart` and not applied.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "daemon/config.h"

namespace ckptd {

struct ReloadOutcome {
  std::vector<std::string> applied;       // reloadable keys that changed
  std::vector<std::string> need_restart;  // other keys that changed
};

// Keys of ConfigSettings() whose values differ between `a` and `b`.
std::vector<std::string> ChangedSettings(const Config& a, const Config& b);

// Loads the configuration again from argc/argv and the environment, applies
// the reloadable changes to the process (the log level) and to `*running`
// (so the next reload compares against what is in effect).
Result<ReloadOutcome> ReloadConfig(int argc, char** argv, Config* running);

}  // namespace ckptd
