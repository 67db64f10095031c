// Shared by the fuzz targets: a RocksDB catalog and agent store in a tmpfs
// directory, opened once per process, and a crash helper.
//
// The database lives under /dev/shm (falling back to $TMPDIR or /tmp) in a
// directory of its own per process, removed at exit. It is wiped and opened
// again every kResetEvery inputs: records pile up otherwise (a fuzzer creates
// checkpoints by the million), and GET /v2/checkpoints, which streams them
// all, would slow every later input down. A finding that needs the state of
// earlier inputs may therefore not reproduce from its input alone.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "store/agent_store.h"
#include "store/catalog.h"
#include "store/db.h"

namespace ckptd::fuzz {

// Aborts with a message: a finding (libFuzzer saves the input).
[[noreturn]] inline void Fail(std::string_view what, std::string_view detail = {}) {
  std::fprintf(stderr, "FUZZ FINDING: %.*s\n%.*s\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(detail.size() > 4000 ? 4000 : detail.size()), detail.data());
  std::abort();
}

// Logs go nowhere: handlers log refusals, and printing them would cost more
// than the handling.
inline void QuietLogs() { spdlog::set_level(spdlog::level::off); }

// A scratch directory of this process on tmpfs, removed at exit.
inline const std::string& ScratchDir() {
  // Never destroyed: the exit handler below runs after static destructors.
  static const std::string& dir = *new std::string([] {
    std::string base = "/dev/shm";
    if (!std::filesystem::is_directory(base)) {
      const char* t = std::getenv("TMPDIR");
      base = t && *t ? t : "/tmp";
    }
    std::string d = base + "/ckptd-fuzz-" + std::to_string(::getpid());
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(ScratchDir(), ec);
    });
    return d;
  }());
  return dir;
}

// The catalog and agent store over one RocksDB in ScratchDir()/db.
class Stores {
 public:
  static constexpr uint64_t kResetEvery = 20000;

  Stores() { Open(); }

  // Call once per input; reopens an empty database every kResetEvery calls.
  // Returns true when it did (callers rebuild what points into the stores).
  bool Tick() {
    if (++inputs_ % kResetEvery != 0) return false;
    Close();
    Open();
    return true;
  }

  Catalog* catalog() const { return catalog_.get(); }
  AgentStore* agents() const { return agents_.get(); }

 private:
  void Open() {
    std::string dir = ScratchDir() + "/db";
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    auto db = Db::Open(dir);
    if (!db.ok()) Fail("cannot open the fuzz database", db.status().ToString());
    db_ = std::move(db).value();
    catalog_ = std::make_unique<Catalog>(db_.get(), SystemClock::Default());
    if (Status st = catalog_->Init(); !st.ok()) Fail("catalog init", st.ToString());
    agents_ = std::make_unique<AgentStore>(db_.get());
  }
  void Close() {
    agents_.reset();
    catalog_.reset();
    db_.reset();
  }

  uint64_t inputs_ = 0;
  std::unique_ptr<Db> db_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<AgentStore> agents_;
};

}  // namespace ckptd::fuzz
