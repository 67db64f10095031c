// SIGHUP: re-read the configuration (same argv, same environment, the file
// again) and apply what can change at run time; report the rest.
//
// Contract: a configuration that fails to load leaves everything as it was
// and returns the error (the caller logs it and keeps running). Settings
// marked `reloadable` in ConfigSettings() are applied:
//   log_level                         at once, process-wide;
//   max_body_bytes, header_limit_bytes, read_timeout_s, idle_timeout_s,
//   max_connections                   to connections and requests that begin
//                                     afterwards (api/server.h);
//   cleanup_interval_s                the cleaner's wait restarts with it;
//   cleanup_retention_s               from the next cleanup round.
// Any other changed setting is listed in `need_restart` and not applied
// (`*running` keeps its old value, so it is reported again at every reload
// until the daemon restarts).
#pragma once

#include <functional>
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

// Applies the reloadable settings of a configuration to the running daemon
// (Daemon::ApplyReloadable).
using ApplyReloadableFn = std::function<void(const Config&)>;

// Loads the configuration again from argc/argv and the environment, copies
// the reloadable changes into `*running` (so the next reload compares
// against what is in effect), applies the log level, then calls `apply`
// (when set) with `*running`, whether or not anything changed: applying is
// idempotent, and it also repairs a value changed behind its back.
Result<ReloadOutcome> ReloadConfig(int argc, char** argv, Config* running, const ApplyReloadableFn& apply = {});

// The same from an already loaded configuration (tests, and the part of
// ReloadConfig after loading).
ReloadOutcome ApplyReload(const Config& loaded, Config* running, const ApplyReloadableFn& apply = {});

}  // namespace ckptd
