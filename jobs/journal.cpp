#include "jobs/journal.h"

#include <array>
#include <utility>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "common/json_reader.h"

namespace ckptd {

namespace json = boost::json;

namespace {

constexpr std::array<std::pair<Step, std::string_view>, 15> kSteps{{
    {Step::kCreate, "create"},
    {Step::kDescribe, "describe"},
    {Step::kGpuLock, "gpu-lock"},
    {Step::kGpuCheckpoint, "gpu-checkpoint"},
    {Step::kDump, "dump"},
    {Step::kGpuResume, "gpu-resume"},
    {Step::kUpload, "upload"},
    {Step::kManifest, "manifest"},
    {Step::kReady, "ready"},
    {Step::kRollback, "rollback"},
    {Step::kReadManifest, "read-manifest"},
    {Step::kDownload, "download"},
    {Step::kCriuRestore, "criu-restore"},
    {Step::kGpuRestore, "gpu-restore"},
    {Step::kRecover, "recover"},
}};

std::string_view OutcomeName(StepOutcome o) {
  switch (o) {
    case StepOutcome::kIntent:
      return "intent";
    case StepOutcome::kDone:
      return "done";
    case StepOutcome::kFailed:
      return "failed";
  }
  return "intent";
}

json::value RefJson(const ProcRef& p) { return json::object{{"pid", p.pid}, {"start", p.start}}; }

Result<ProcRef> RefFrom(const json::value& v) {
  JsonReader r(v, "journal process");
  ProcRef p{static_cast<int>(r.Int("pid")), r.Uint("start")};
  CKPTD_RETURN_IF_ERROR(r.status());
  return p;
}

json::array RefsJson(const std::vector<ProcRef>& refs) {
  json::array a;
  for (const auto& r : refs) a.push_back(RefJson(r));
  return a;
}

Result<std::vector<ProcRef>> RefsFrom(JsonReader& r, const char* key) {
  std::vector<ProcRef> out;
  if (const auto* a = r.OptArray(key)) {
    for (const auto& e : *a) {
      CKPTD_ASSIGN_OR_RETURN(ProcRef p, RefFrom(e));
      out.push_back(p);
    }
  }
  return out;
}

Result<std::optional<ProcRef>> OptRef(JsonReader& r, const char* key) {
  const json::value* v = r.Find(key);
  if (!v || v->is_null()) return std::optional<ProcRef>();
  CKPTD_ASSIGN_OR_RETURN(ProcRef p, RefFrom(*v));
  return std::optional<ProcRef>(p);
}

Result<JournalEntry> EntryFrom(const json::value& v) {
  JsonReader r(v, "journal step");
  std::string name = r.String("step");
  std::string outcome = r.String("outcome");
  JournalEntry e{Step::kCreate, StepOutcome::kIntent, r.Int("at_ms"), r.OptString("error").value_or("")};
  CKPTD_RETURN_IF_ERROR(r.status());
  auto step = ParseStep(name);
  if (!step) return Corruption(fmt::format("journal: unknown step '{}'", name));
  e.step = *step;
  e.outcome = outcome == "done"     ? StepOutcome::kDone
              : outcome == "failed" ? StepOutcome::kFailed
                                    : StepOutcome::kIntent;
  return e;
}

}  // namespace

std::string_view StepName(Step s) {
  for (const auto& [step, name] : kSteps)
    if (step == s) return name;
  return "?";
}

std::optional<Step> ParseStep(std::string_view name) {
  for (const auto& [step, n] : kSteps)
    if (n == name) return step;
  return std::nullopt;
}

bool Journal::Began(Step s) const {
  for (const auto& e : entries)
    if (e.step == s) return true;
  return false;
}

bool Journal::Done(Step s) const {
  for (const auto& e : entries)
    if (e.step == s && e.outcome == StepOutcome::kDone) return true;
  return false;
}

std::optional<Step> Journal::Open() const {
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (it->outcome != StepOutcome::kIntent) continue;
    bool ended = false;
    for (auto later = it.base(); later != entries.end(); ++later)
      ended |= later->step == it->step && later->outcome != StepOutcome::kIntent;
    if (!ended) return it->step;
  }
  return std::nullopt;
}

std::string Journal::Last() const {
  if (entries.empty()) return "nothing journaled";
  const auto& e = entries.back();
  return fmt::format("{} ({})", StepName(e.step), OutcomeName(e.outcome));
}

json::value Journal::ToJson() const {
  json::array steps;
  for (const auto& e : entries) {
    json::object o{{"step", StepName(e.step)}, {"outcome", OutcomeName(e.outcome)}, {"at_ms", e.at_ms}};
    if (!e.error.empty()) o["error"] = e.error;
    steps.push_back(std::move(o));
  }
  json::object o{{"steps", std::move(steps)},
                 {"staging", staging},
                 {"target", target ? RefJson(*target) : json::value(nullptr)},
                 {"tree", RefsJson(tree)},
                 {"gpu", RefsJson(gpu)},
                 {"criu", criu ? RefJson(*criu) : json::value(nullptr)},
                 {"images_complete", images_complete},
                 {"staging_kept", staging_kept},
                 {"options", options},
                 {"dumped_root", dumped_root},
                 {"root_existed", root_existed},
                 {"restore_began", restore_began},
                 {"restored", restored ? RefJson(*restored) : json::value(nullptr)}};
  if (!gpu_device_map.is_null()) o["gpu_device_map"] = gpu_device_map;
  if (!gpu_ns.empty()) o["gpu_ns"] = json::array(gpu_ns.begin(), gpu_ns.end());
  return o;
}

Result<Journal> Journal::FromJson(const json::value& v) {
  JsonReader r(v, "journal");
  Journal j;
  for (const auto& e : r.Array("steps")) {
    CKPTD_ASSIGN_OR_RETURN(JournalEntry entry, EntryFrom(e));
    j.entries.push_back(std::move(entry));
  }
  j.staging = r.String("staging");
  CKPTD_ASSIGN_OR_RETURN(j.target, OptRef(r, "target"));
  CKPTD_ASSIGN_OR_RETURN(j.tree, RefsFrom(r, "tree"));
  CKPTD_ASSIGN_OR_RETURN(j.gpu, RefsFrom(r, "gpu"));
  CKPTD_ASSIGN_OR_RETURN(j.criu, OptRef(r, "criu"));
  j.images_complete = r.Bool("images_complete");
  if (r.Find("staging_kept")) j.staging_kept = r.Bool("staging_kept");
  if (const auto* opts = r.Find("options")) j.options = *opts;
  j.dumped_root = static_cast<int>(r.Int("dumped_root"));
  j.root_existed = r.Bool("root_existed");
  j.restore_began = r.Uint("restore_began");
  CKPTD_ASSIGN_OR_RETURN(j.restored, OptRef(r, "restored"));
  if (const auto* map = r.Find("gpu_device_map")) j.gpu_device_map = *map;
  if (const auto* ns = r.OptArray("gpu_ns")) {
    for (const auto& p : *ns) {
      if (!p.is_int64()) return Corruption("journal: gpu_ns must be integers");
      j.gpu_ns.push_back(static_cast<int>(p.as_int64()));
    }
  }
  CKPTD_RETURN_IF_ERROR(r.status());
  return j;
}

}  // namespace ckptd
