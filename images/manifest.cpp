#include "images/manifest.h"

#include <algorithm>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "common/clock.h"
#include "common/json_reader.h"

namespace ckptd {

namespace json = boost::json;

uint64_t Manifest::TotalSize() const {
  uint64_t t = 0;
  for (const auto& f : files) t += f.size;
  return t;
}

std::string Manifest::Serialize() const {
  json::array fs;
  for (const auto& f : files) {
    fs.push_back(json::object{{"name", f.name},
                              {"size", f.size},
                              {"stored_size", f.stored_size},
                              {HashAlgName(f.hash), f.digest},
                              {"codec", f.codec}});
  }
  json::object o{{"version", version},
                 {"checkpoint_id", checkpoint_id},
                 {"pid", pid},
                 {"criu_version", criu_version},
                 {"codec", codec},
                 {"created_at", FormatTimestamp(created_at_ms)},
                 {"created_at_ms", created_at_ms},
                 {"total_size", TotalSize()},
                 {"options", options},
                 {"files", std::move(fs)}};
  if (!gpu_pids.empty()) {
    json::array g;
    for (int p : gpu_pids) g.push_back(p);
    o["gpu_pids"] = std::move(g);
  }
  if (!gpu_ns_pids.empty()) o["gpu_ns_pids"] = json::array(gpu_ns_pids.begin(), gpu_ns_pids.end());
  if (!gpu_platform.is_null()) o["gpu_platform"] = gpu_platform;
  return json::serialize(o);
}

namespace {
bool SafeName(const std::string& n) {
  return !n.empty() && n != "." && n != ".." && n.find('/') == std::string::npos && n.find('\0') == std::string::npos &&
         n.size() < 256;
}

// The free-form members hold integers, strings and booleans only: ckptd
// writes no fractions there, and a fraction would not survive a round trip
// (Boost.JSON 1.81 parses doubles up to an ulp off, and a number beyond a
// double's range parses as infinity, which serializes as no reader accepts).
bool NoFractions(const json::value& v) {
  if (v.is_double()) return false;
  if (const auto* a = v.if_array()) return std::all_of(a->begin(), a->end(), NoFractions);
  if (const auto* o = v.if_object()) {
    return std::all_of(o->begin(), o->end(), [](const json::key_value_pair& kv) { return NoFractions(kv.value()); });
  }
  return true;
}
}  // namespace

namespace {

Result<ManifestFile> ParseFile(const json::value& fv) {
  JsonReader f(fv, "manifest file");
  ManifestFile mf;
  mf.name = f.String("name");
  mf.size = f.Uint("size");
  mf.stored_size = f.Uint("stored_size");
  mf.codec = f.String("codec");
  if (f.Find("blake3")) {
    mf.hash = HashAlg::kBlake3;
    mf.digest = f.String("blake3");
  } else if (f.Find("sha256")) {
    mf.hash = HashAlg::kSha256;
    mf.digest = f.String("sha256");
  } else if (f.ok()) {
    return Corruption(fmt::format("manifest: no checksum (blake3 or sha256) for '{}'", mf.name));
  }
  CKPTD_RETURN_IF_ERROR(f.status());
  if (!SafeName(mf.name)) return Corruption(fmt::format("manifest names an unsafe file '{}'", mf.name));
  if (mf.digest.size() != 64 || mf.digest.find_first_not_of("0123456789abcdef") != std::string::npos)
    return Corruption(fmt::format("manifest: bad {} for '{}'", HashAlgName(mf.hash), mf.name));
  return mf;
}

}  // namespace

Result<Manifest> Manifest::Parse(std::string_view bytes) {
  json::error_code ec;
  json::value v = json::parse(bytes, ec);
  if (ec) return Corruption(fmt::format("manifest is malformed: {}", ec.message()));
  JsonReader r(v, "manifest");
  Manifest m;
  m.version = static_cast<int>(r.Int("version"));
  m.checkpoint_id = r.String("checkpoint_id");
  m.pid = static_cast<int>(r.Int("pid"));
  m.criu_version = r.String("criu_version");
  m.codec = r.String("codec");
  m.created_at_ms = r.Int("created_at_ms");
  if (const auto* opt = r.Find("options")) m.options = *opt;
  if (!NoFractions(m.options)) return Corruption("manifest: options hold a number that is not an integer");
  if (const auto* pids = r.OptArray("gpu_pids")) {
    for (const auto& p : *pids) {
      if (!p.is_int64()) return Corruption("manifest: gpu_pids must be integers");
      m.gpu_pids.push_back(static_cast<int>(p.as_int64()));
    }
  }
  if (const auto* pids = r.OptArray("gpu_ns_pids")) {
    for (const auto& p : *pids) {
      if (!p.is_int64()) return Corruption("manifest: gpu_ns_pids must be integers");
      m.gpu_ns_pids.push_back(static_cast<int>(p.as_int64()));
    }
    if (m.gpu_ns_pids.size() != m.gpu_pids.size())
      return Corruption("manifest: gpu_ns_pids and gpu_pids differ in length");
  }
  if (const auto* platform = r.Find("gpu_platform")) {
    if (!platform->is_object() || !NoFractions(*platform))
      return Corruption("manifest: gpu_platform must be an object without fractions");
    m.gpu_platform = *platform;
  }
  const auto& files = r.Array("files");
  CKPTD_RETURN_IF_ERROR(r.status());
  if (m.version != 1) return Corruption(fmt::format("manifest version {} is not supported", m.version));
  for (const auto& fv : files) {
    CKPTD_ASSIGN_OR_RETURN(ManifestFile mf, ParseFile(fv));
    m.files.push_back(std::move(mf));
  }
  if (m.files.empty()) return Corruption("manifest lists no image files");
  return m;
}

}  // namespace ckptd
