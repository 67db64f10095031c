#include "daemon/logging.h"

#include <cstdlib>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace ckptd {

void SetupLogging(const Config& config) {
  auto logger = spdlog::stderr_logger_mt("ckptd");
  // journald stamps every line itself; JOURNAL_STREAM says stderr goes there.
  bool under_journal = std::getenv("JOURNAL_STREAM") != nullptr;
  if (config.log_format == "json") {
    logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","thread":%t,"msg":"%v"})",
                        spdlog::pattern_time_type::utc);
  } else if (under_journal) {
    logger->set_pattern("%l: %v");
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %l: %v");
  }
  logger->set_level(spdlog::level::from_str(config.log_level));
  spdlog::set_default_logger(logger);
}

}  // namespace ckptd
