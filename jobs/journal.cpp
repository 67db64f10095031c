#include "jobs/journal.h"

#include <array>
#include <utility>

#include <boost/json.hpp>
#include <fmt/format.h>

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
    case StepOutcome::kIntent: return "intent";
    case StepOutcome::kDone: return "done";
    case StepOutcome::kFailed: return "failed";
  }
  return "intent";
}

json::value RefJson(const ProcRef& p) { return json::object{{"pid", p.pid}, {"start", p.start}}; }

ProcRef RefFrom(const json::value& v) {
  const auto& o = v.as_object();
  return ProcRef{static_cast<int>(o.at("pid").to_number<int64_t>()), o.at("start").to_number<uint64_t>()};
}

json::array RefsJson(const std::vector<ProcRef>& refs) {
  json::array a;
  for (const auto& r : refs) a.push_back(RefJson(r));
  return a;
}

std::vector<ProcRef> RefsFrom(const json::object& o, const char* key) {
  std::vector<ProcRef> out;
  if (auto* v = o.if_contains(key); v && v->is_array())
    for (const auto& e : v->as_array()) out.push_back(RefFrom(e));
  return out;
}

std::optional<ProcRef> OptRef(const json::object& o, const char* key) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::nullopt;
  return RefFrom(*v);
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
  return o;
}

Result<Journal> Journal::FromJson(const json::value& v) {
  try {
    const auto& o = v.as_object();
    Journal j;
    for (const auto& s : o.at("steps").as_array()) {
      const auto& so = s.as_object();
      auto step = ParseStep(so.at("step").as_string());
      if (!step) return Corruption(fmt::format("journal: unknown step '{}'", std::string(so.at("step").as_string())));
      JournalEntry e{*step, StepOutcome::kIntent, so.at("at_ms").to_number<int64_t>(), ""};
      std::string_view outcome = so.at("outcome").as_string();
      e.outcome = outcome == "done" ? StepOutcome::kDone : outcome == "failed" ? StepOutcome::kFailed
                                                                                 : StepOutcome::kIntent;
      if (auto* err = so.if_contains("error"); err && err->is_string()) e.error = std::string(err->as_string());
      j.entries.push_back(std::move(e));
    }
    j.staging = std::string(o.at("staging").as_string());
    j.target = OptRef(o, "target");
    j.tree = RefsFrom(o, "tree");
    j.gpu = RefsFrom(o, "gpu");
    j.criu = OptRef(o, "criu");
    j.images_complete = o.at("images_complete").as_bool();
    if (auto* k = o.if_contains("staging_kept"); k && k->is_bool()) j.staging_kept = k->as_bool();
    if (auto* opts = o.if_contains("options")) j.options = *opts;
    j.dumped_root = static_cast<int>(o.at("dumped_root").to_number<int64_t>());
    j.root_existed = o.at("root_existed").as_bool();
    j.restore_began = o.at("restore_began").to_number<uint64_t>();
    j.restored = OptRef(o, "restored");
    return j;
  } catch (const std::exception& e) {
    return Corruption(fmt::format("journal is malformed: {}", e.what()));
  }
}

}  // namespace ckptd
