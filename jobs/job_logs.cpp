#include "jobs/job_logs.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <vector>

#include <fcntl.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/fd.h"

namespace ckptd {

namespace fs = std::filesystem;

namespace {

Status ValidateJobId(const std::string& id) {
  bool ok = !id.empty() && id.size() <= 64 &&
            std::all_of(id.begin(), id.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; });
  return ok ? Status::Ok() : InvalidArgument(fmt::format("'{}' is not a job id", id));
}

bool IsToolLog(const fs::path& p) {
  const std::string name = p.filename().string();
  return name.ends_with(".log") || name.ends_with(".log.stderr");
}

// The last `max` bytes of `from` into `to`, after a note of what was cut.
Status CopyTail(const fs::path& from, const fs::path& to, uint64_t max) {
  std::ifstream in(from, std::ios::binary);
  if (!in) return IOError(fmt::format("open {}", from.string()));
  in.seekg(0, std::ios::end);
  const uint64_t size = static_cast<uint64_t>(std::max<std::streamoff>(0, in.tellg()));
  const uint64_t skip = size > max ? size - max : 0;
  in.seekg(static_cast<std::streamoff>(skip));
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  if (!out) return IOError(fmt::format("create {}", to.string()));
  if (skip > 0) out << fmt::format("[ckptd: the first {} bytes of this log are cut]\n", skip);
  out << in.rdbuf();
  return out.good() || size == 0 ? Status::Ok() : IOError(fmt::format("write {}", to.string()));
}

// Appends the file at `p` to *out, or a note of why it could not be read;
// never follows a symlink (one put there after the listing).
void AppendLog(const fs::path& p, std::string* out) {
  const size_t before = out->size();
  if (ReadFileTo(p.string(), out, O_NOFOLLOW)) return;
  const int err = errno;
  out->resize(before);
  *out += fmt::format("[ckptd: this log could not be read: {}]\n", std::strerror(err));
}

}  // namespace

Result<int> KeepJobLogs(const fs::path& staging, const fs::path& root, const std::string& job_id) {
  CKPTD_RETURN_IF_ERROR(ValidateJobId(job_id));
  const fs::path dest = root / job_id;
  int kept = 0;
  Status last;
  for (const char* sub : {"", "work", "rollback-work"}) {
    const fs::path dir = *sub ? staging / sub : staging;
    std::error_code ec;
    if (!fs::is_directory(fs::symlink_status(dir, ec))) continue;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (!e.is_regular_file(ec) || e.is_symlink(ec) || !IsToolLog(e.path())) continue;
      const fs::path rel = *sub ? fs::path(sub) / e.path().filename() : e.path().filename();
      fs::create_directories((dest / rel).parent_path(), ec);
      Status st = CopyTail(e.path(), dest / rel, kMaxKeptLogBytes);
      if (st.ok()) {
        ++kept;
      } else {
        last = st;
        spdlog::warn("job {}: keeping {}: {}", job_id, e.path().string(), st.ToString());
      }
    }
  }
  if (kept == 0 && !last.ok()) return last;
  return kept;
}

std::string KeptLogPaths(std::string message, const fs::path& staging, const fs::path& root, const std::string& job_id) {
  const std::string from = staging.string() + "/", to = (root / job_id).string() + "/";
  for (size_t at = message.find(from); at != std::string::npos;) {
    // A kept file is named by its copy; anything else of staging (the
    // images directory) is gone: it keeps only its name inside staging.
    const size_t name_at = at + from.size();
    const size_t end = message.find_first_of(" :;,)'\"\n\r\t", name_at);
    const std::string rel = message.substr(name_at, end == std::string::npos ? std::string::npos : end - name_at);
    std::error_code ec;
    const std::string& by = !rel.empty() && fs::is_regular_file(fs::path(to) / rel, ec) ? to : std::string();
    message.replace(at, from.size(), by);
    at = message.find(from, at + by.size());
  }
  return message;
}

Result<std::string> ReadJobLogs(const fs::path& root, const std::string& job_id) {
  CKPTD_RETURN_IF_ERROR(ValidateJobId(job_id));
  const fs::path dir = root / job_id;
  std::vector<fs::path> files;
  std::error_code ec;
  if (fs::is_directory(fs::symlink_status(dir, ec))) {
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->is_regular_file(ec) && !it->is_symlink(ec)) files.push_back(fs::relative(it->path(), dir, ec));
    }
  }
  if (files.empty()) return NotFound(fmt::format("job {} kept no log", job_id));
  std::sort(files.begin(), files.end());
  std::string out;
  for (const auto& rel : files) {
    out += fmt::format("==> {} <==\n", rel.string());
    AppendLog(dir / rel, &out);
    if (!out.empty() && out.back() != '\n') out += '\n';
  }
  return out;
}

void PruneJobLogs(const fs::path& root, const std::function<bool(const std::string& job_id)>& keep) {
  std::error_code ec;
  std::vector<fs::path> gone;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string id = e.path().filename().string();
    if (!ValidateJobId(id).ok() || !keep(id)) gone.push_back(e.path());
  }
  for (const auto& p : gone) {
    fs::remove_all(p, ec);
    if (ec) spdlog::warn("removing old job logs {}: {}", p.string(), ec.message());
  }
}

Status KeepLogsOf(const Status& outcome, bool keep_always, const fs::path& staging, const fs::path& root,
                  const std::string& job_id) {
  if (root.empty() || (outcome.ok() && !keep_always)) return outcome;
  auto kept = KeepJobLogs(staging, root, job_id);
  if (!kept.ok()) spdlog::warn("job {}: logs not kept: {}", job_id, kept.status().ToString());
  if (outcome.ok() || !kept.ok() || *kept == 0) return outcome;
  return Status(outcome.code(), KeptLogPaths(outcome.message(), staging, root, job_id));
}

}  // namespace ckptd
