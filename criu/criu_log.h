// Excerpts of CRIU's log for error messages.
// Thread safety: stateless functions.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

namespace ckptd::criu {

// The last `max_lines` "Error (...)" lines of CRIU's log at `path` (only the
// file's last `max_bytes` are read, each line capped at 400 characters), with
// CRIU's "(ss.uuuuuu) " timestamps dropped, joined by "; ". Empty when the
// file is missing or has no error lines.
std::string CriuLogErrors(const std::filesystem::path& path, size_t max_lines = 10, size_t max_bytes = 1 << 20);

// The last `max_lines` non-empty lines of a (small) text file, joined by
// "; "; at most `max_bytes` are read from its end.
std::string FileTail(const std::filesystem::path& path, size_t max_lines, size_t max_bytes = 64 << 10);

}  // namespace ckptd::criu
