#include "daemon/reload.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace ckptd {

std::vector<std::string> ChangedSettings(const Config& a, const Config& b) {
  std::vector<std::string> keys;
  for (const auto& s : ConfigSettings())
    if (s.get(a) != s.get(b)) keys.push_back(s.key);
  return keys;
}

ReloadOutcome ApplyReload(const Config& loaded, Config* running, const ApplyReloadableFn& apply) {
  ReloadOutcome out;
  for (const auto& s : ConfigSettings()) {
    std::string value = s.get(loaded);
    if (value == s.get(*running)) continue;
    if (!s.reloadable) {
      out.need_restart.push_back(s.key);
      continue;
    }
    // The value was validated when `loaded` was built; copying it through the
    // setting keeps this code free of per-key knowledge.
    Status st = s.set(*running, value);
    if (!st.ok()) {
      // Cannot happen for a value the same setting produced; keep the old one.
      spdlog::error("SIGHUP: {}: {}", s.key, st.ToString());
      continue;
    }
    out.applied.push_back(s.key);
  }
  // Applied unconditionally: cheap, and it also repairs a level changed by hand.
  spdlog::default_logger()->set_level(spdlog::level::from_str(running->log_level));
  if (apply) apply(*running);
  return out;
}

Result<ReloadOutcome> ReloadConfig(int argc, char** argv, Config* running, const ApplyReloadableFn& apply) {
  // LoadConfig keeps the start-up precedence (flags > env > file): a flag
  // given at start still wins over an edited file, as it did then.
  CKPTD_ASSIGN_OR_RETURN(ConfigLoad load, LoadConfig(argc, argv));
  return ApplyReload(load.config, running, apply);
}

}  // namespace ckptd
