#include "jobs/cleanup.h"

#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

namespace ckptd {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

// The store that holds a checkpoint's objects under "<id>/", derived from a
// restore_path of the form <store>/<id>/. nullopt when the path is not one
// of ours (a client may set any restore_path; we only delete what ends in
// the checkpoint's own id).
std::optional<ObjectUri> ParentStoreOf(const std::string& restore_path, const std::string& id) {
  auto uri = ObjectUri::Parse(restore_path);
  if (!uri.ok()) return std::nullopt;
  ObjectUri parent = *uri;
  if (parent.scheme == ObjectUri::Scheme::kFile) {
    fs::path p(parent.path);
    if (p.filename() != id || !p.has_parent_path()) return std::nullopt;
    parent.path = p.parent_path().string();
  } else {
    std::string suffix = id + "/";
    const std::string& pre = parent.prefix;
    if (pre.size() < suffix.size() || pre.compare(pre.size() - suffix.size(), suffix.size(), suffix) != 0)
      return std::nullopt;
    // The id must be a whole segment: "x<id>/" is someone else's.
    if (pre.size() > suffix.size() && pre[pre.size() - suffix.size() - 1] != '/') return std::nullopt;
    parent.prefix = pre.substr(0, pre.size() - suffix.size());
  }
  return parent;
}

}  // namespace

Cleaner::Cleaner(CleanerOptions opts, Catalog* catalog, ObjectStore* images, CheckpointReaders* readers,
                 const Clock* clock)
    : opts_(std::move(opts)),
      catalog_(catalog),
      images_(images),
      readers_(readers),
      clock_(clock),
      interval_(opts_.interval),
      retention_s_(opts_.retention.count()) {}

Cleaner::~Cleaner() { Stop(); }

void Cleaner::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void Cleaner::Stop() {
  stopping_ = true;
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Cleaner::set_interval(std::chrono::seconds interval) {
  {
    MutexLock lock(mu_);
    interval_ = interval;
    ++interval_changes_;
  }
  cv_.notify_all();
}

std::chrono::seconds Cleaner::interval() const {
  MutexLock lock(mu_);
  return interval_;
}

void Cleaner::set_retention(std::chrono::seconds retention) { retention_s_ = retention.count(); }

void Cleaner::Loop() {
  UniqueLock lock(mu_);
  for (;;) {
    const auto interval = interval_;
    const uint64_t changes = interval_changes_;
    auto changed = [&]() REQUIRES(mu_) { return stop_ || interval_changes_ != changes; };
    if (interval.count() <= 0) {
      // Paused: wait for Stop() or a new interval.
      cv_.wait(lock, changed);
    } else {
      cv_.wait_for(lock, interval, changed);
    }
    if (stop_) return;
    // A new interval (SIGHUP) counts from now, not from the last round.
    if (interval_changes_ != changes) {
      spdlog::debug("cleanup: interval is now {} s", interval_.count());
      continue;
    }
    lock.unlock();
    auto r = RunOnce();
    if (!r.ok()) {
      spdlog::warn("cleanup: round failed: {}", r.status().ToString());
    } else if (r->cleaned || r->removed || !r->errors.empty()) {
      spdlog::info("cleanup: cleaned {}, removed {}, skipped {}, {} errors", r->cleaned, r->removed, r->skipped,
                   r->errors.size());
    }
    lock.lock();
  }
}

Status Cleaner::DeleteObjects(const CheckpointRecord& rec) {
  const std::string prefix = rec.id + "/";
  if (rec.restore_path) {
    auto parent = ParentStoreOf(*rec.restore_path, rec.id);
    if (!parent) {
      spdlog::info("cleanup: checkpoint {}: restore_path {} is not <store>/{}/; its objects are left alone", rec.id,
                   *rec.restore_path, rec.id);
    } else if (!opts_.file_roots.empty() && !CheckFileUriWithin(*parent, opts_.file_roots).ok()) {
      spdlog::warn("cleanup: checkpoint {}: restore_path {} is outside file_roots; its objects are left alone", rec.id,
                   *rec.restore_path);
    } else if (parent->scheme == ObjectUri::Scheme::kFile && !fs::exists(parent->path)) {
      // Nothing there (and opening the store would create the directory).
    } else {
      CKPTD_ASSIGN_OR_RETURN(auto store, OpenObjectStore(parent->ToString(), opts_.store_config));
      CKPTD_RETURN_IF_ERROR(store->DeletePrefix(prefix).WithContext(store->Describe()));
      CKPTD_RETURN_IF_ERROR(store->RemoveIncomplete(prefix).WithContext(store->Describe()));
    }
  }
  // Failed jobs may have left partial uploads without a restore_path.
  if (images_) {
    CKPTD_RETURN_IF_ERROR(images_->DeletePrefix(prefix).WithContext(images_->Describe()));
    CKPTD_RETURN_IF_ERROR(images_->RemoveIncomplete(prefix).WithContext(images_->Describe()));
  }
  return Status::Ok();
}

void Cleaner::SweepOrphans(api::CleanupReport* report) {
  if (opts_.images_root.empty() || !images_) return;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(opts_.images_root, ec)) {
    if (stopping_) return;
    const std::string id = e.path().filename().string();
    if (!IsUuid(id) || e.is_symlink() || !e.is_directory()) continue;
    auto rec = catalog_->Get(id);
    if (rec.ok() || rec.status().code() != Code::kNotFound) continue;
    Status st = images_->DeletePrefix(id + "/");
    if (st.ok()) st = images_->RemoveIncomplete(id + "/");
    if (!st.ok()) {
      report->errors.push_back(fmt::format("{}: orphaned images: {}", id, st.message()));
      continue;
    }
    spdlog::info("cleanup: {}: image directory without a catalog record deleted", id);
    ++report->orphans;
  }
}

void Cleaner::NoteError(const std::string& id, const std::string& message) {
  auto r = catalog_->Update(id, [&](CheckpointRecord& rec) -> Status {
    if (rec.info.is_null()) rec.info = json::object{};
    if (!rec.info.is_object()) return Status::Ok();
    auto& o = rec.info.as_object();
    if (auto* cur = o.if_contains("cleanup_error"); cur && cur->is_string() && cur->as_string() == message)
      return Status::Ok();
    o["cleanup_error"] = message;
    return Status::Ok();
  });
  if (!r.ok()) spdlog::warn("cleanup: checkpoint {}: recording the error: {}", id, r.status().ToString());
}

Result<api::CleanupReport> Cleaner::RunOnce() {
  MutexLock round(round_mu_);
  if (stopping_) return Unavailable("cleanup: daemon shutting down");
  api::CleanupReport report;
  const int64_t start_ms = clock_->NowMillis();
  const int64_t retention_ms = retention_s_.load() * 1000;
  std::optional<std::string> cursor;
  do {
    CKPTD_ASSIGN_OR_RETURN(Catalog::Page page, catalog_->List(cursor, opts_.page));
    cursor = page.next_cursor;
    for (const CheckpointRecord& rec : page.items) {
      if (stopping_) return report;
      if (rec.status != CheckpointStatus::kDeprecated) continue;
      if (rec.cleaned_at_ms) {
        if (start_ms - *rec.cleaned_at_ms < retention_ms) continue;
        if (Status st = catalog_->Remove(rec.id); !st.ok()) {
          report.errors.push_back(fmt::format("{}: remove record: {}", rec.id, st.message()));
          continue;
        }
        spdlog::info("cleanup: checkpoint {} removed from the catalog (cleaned {} ms ago)", rec.id,
                     start_ms - *rec.cleaned_at_ms);
        ++report.removed;
        continue;
      }
      // A restore that began before the deprecation still reads it; next round.
      if (readers_ && readers_->Readers(rec.id) > 0) {
        ++report.skipped;
        continue;
      }
      if (Status st = DeleteObjects(rec); !st.ok()) {
        spdlog::warn("cleanup: checkpoint {}: {} (retried next round)", rec.id, st.ToString());
        report.errors.push_back(fmt::format("{}: {}", rec.id, st.message()));
        NoteError(rec.id, st.message());
        continue;
      }
      auto u = catalog_->Update(rec.id, [&](CheckpointRecord& r) -> Status {
        if (r.status != CheckpointStatus::kDeprecated)
          return Internal(fmt::format("checkpoint {} is {}, expected deprecated", r.id, StatusName(r.status)));
        r.cleaned_at_ms = clock_->NowMillis();
        if (r.info.is_object()) r.info.as_object().erase("cleanup_error");
        return Status::Ok();
      });
      if (!u.ok()) {
        report.errors.push_back(fmt::format("{}: set cleaned_at: {}", rec.id, u.status().message()));
        continue;
      }
      spdlog::info("cleanup: checkpoint {}: objects deleted", rec.id);
      ++report.cleaned;
    }
  } while (cursor);
  SweepOrphans(&report);
  return report;
}

}  // namespace ckptd
