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

Result<ReloadOutcome> ReloadConfig(int argc, char** argv, Config* running) {
  // LoadConfig keeps the start-up precedence (flags > env > file): a flag
  // given at start still wins over an edited file, as it did then.
  CKPTD_ASSIGN_OR_RETURN(ConfigLoad load, LoadConfig(argc, argv));
  ReloadOutcome out;
  for (const auto& key : ChangedSettings(*running, load.config)) {
    const ConfigSetting* setting = nullptr;
    for (const auto& s : ConfigSettings())
      if (s.key == key) setting = &s;
    if (setting->reloadable) {
      // The value was validated by LoadConfig; copying it through the
      // setting keeps this code free of per-key knowledge.
      CKPTD_RETURN_IF_ERROR(setting->set(*running, setting->get(load.config)));
      out.applied.push_back(key);
    } else {
      out.need_restart.push_back(key);
    }
  }
  // Today log_level is the one reloadable setting; apply it unconditionally
  // (cheap, and it also repairs a level changed by hand).
  spdlog::default_logger()->set_level(spdlog::level::from_str(running->log_level));
  return out;
}

}  // namespace ckptd
