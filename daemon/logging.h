// spdlog set-up: stderr, text (no timestamp under systemd, which adds its
// own) or JSON lines.
#pragma once

#include "daemon/config.h"

namespace ckptd {

void SetupLogging(const Config& config);

}  // namespace ckptd
