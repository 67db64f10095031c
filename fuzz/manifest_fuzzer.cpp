// Fuzz target (c): a checkpoint's manifest.json as a restore reads it from
// an object store it does not control (images/manifest.h Manifest::Parse).
// Checks: whatever parses serializes, parses again to the same manifest,
// and names only safe files.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_util.h"
#include "images/manifest.h"

namespace ckptd::fuzz {
namespace {

bool SameFiles(const Manifest& a, const Manifest& b) {
  if (a.files.size() != b.files.size()) return false;
  for (size_t i = 0; i < a.files.size(); ++i) {
    const auto& x = a.files[i];
    const auto& y = b.files[i];
    if (x.name != y.name || x.size != y.size || x.stored_size != y.stored_size || x.hash != y.hash ||
        x.digest != y.digest || x.codec != y.codec)
      return false;
  }
  return true;
}

}  // namespace
}  // namespace ckptd::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ckptd::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ckptd;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto m = Manifest::Parse(in);
  if (!m.ok()) {
    if (m.status().code() != Code::kCorruption)
      fuzz::Fail("Parse failed with a code other than Corruption", m.status().ToString());
    return 0;
  }
  for (const auto& f : m->files) {
    if (f.name.empty() || f.name == "." || f.name == ".." || f.name.find('/') != std::string::npos ||
        f.name.find('\0') != std::string::npos)
      fuzz::Fail("manifest accepted an unsafe file name", f.name);
  }
  (void)m->TotalSize();
  std::string text = m->Serialize();
  auto again = Manifest::Parse(text);
  if (!again.ok())
    fuzz::Fail("a parsed manifest does not parse again once serialized", again.status().ToString() + "\n" + text);
  if (again->version != m->version || again->checkpoint_id != m->checkpoint_id || again->pid != m->pid ||
      again->criu_version != m->criu_version || again->codec != m->codec || again->created_at_ms != m->created_at_ms ||
      again->options != m->options || again->gpu_pids != m->gpu_pids || again->gpu_ns_pids != m->gpu_ns_pids ||
      again->gpu_platform != m->gpu_platform ||
      !fuzz::SameFiles(*m, *again))
    fuzz::Fail("manifest round trip changed it", text);
  return 0;
}
