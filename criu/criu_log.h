// Excerpts of CRIU's log for error messages.
// Thread safety: stateless functions.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

namespace ckptd::criu {

// An excerpt of CRIU's log at `path` for an error message: its last
// `max_lines` "Error (...)" and "Warn (...)" lines (a warning goes before
// any error when there are more), then " | last lines: " and the log's last
// 3 lines not already shown (where CRIU stopped). CRIU's "(ss.uuuuuu) "
// timestamps and a restored task's "<pid>: " prefix are dropped; lines are
// capped at 400 characters and joined by "; "; only the file's last
// `max_bytes` are read. Empty when the file is missing or has neither
// errors nor warnings.
std::string CriuLogErrors(const std::filesystem::path& path, size_t max_lines = 10, size_t max_bytes = 1 << 20);

// The last `max_lines` non-empty lines of a (small) text file, joined by
// "; "; at most `max_bytes` are read from its end.
std::string FileTail(const std::filesystem::path& path, size_t max_lines, size_t max_bytes = 64 << 10);

}  // namespace ckptd::criu
