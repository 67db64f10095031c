// Failpoints armed from the environment, so tests can kill the daemon (or
// fail a step) at a named instant of a job and check what a restart finds.
//
//   CKPTD_CRASH_AT=<point>[,<point>...]  the process _exit()s with
//                                        kCrashExitCode on reaching a point
//   CKPTD_FAIL_AT=<point>[,<point>...]   FailPoint(<point>) returns an error
//
// Points are "<step>:before" (the step's intent is journaled, nothing done
// yet) and "<step>:after" (done, its outcome not yet journaled) for every
// journaled step (jobs/journal.h), plus instants inside steps:
// "<step>:criu-started" (dump, rollback, criu-restore: CRIU's pid is
// journaled), "dump:images-written" (CRIU's post-dump: every image is
// written, the tree not yet resumed or ended), "dump:criu-paused" (the
// image streamer stopped CRIU for backpressure), "<step>:root-known"
// (rollback, criu-restore: CRIU named the restored root). With nothing
// set both are a lookup in an empty list. The variables are read once, at
// the first call.
// Thread safety: any thread.
#pragma once

#include <string_view>

#include "common/status.h"

namespace ckptd {

inline constexpr int kCrashExitCode = 86;

// _exit(kCrashExitCode) when `point` is armed in CKPTD_CRASH_AT (no
// destructors, no flush: as close to kill -9 as a process can do to itself).
void CrashPoint(std::string_view point);
// Internal("failpoint <point>") when `point` is armed in CKPTD_FAIL_AT.
Status FailPoint(std::string_view point);
// The armed points, for a warning at start-up ("" when none).
std::string ArmedFailpoints();

}  // namespace ckptd
