#include "images/manifest.h"

#include <boost/json.hpp>
#include <fmt/format.h>

#include "common/clock.h"

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
  return json::serialize(o);
}

namespace {
bool SafeName(const std::string& n) {
  return !n.empty() && n != "." && n != ".." && n.find('/') == std::string::npos &&
         n.find('\0') == std::string::npos && n.size() < 256;
}
}  // namespace

Result<Manifest> Manifest::Parse(std::string_view bytes) {
  try {
    json::value v = json::parse(bytes);
    const auto& o = v.as_object();
    Manifest m;
    m.version = static_cast<int>(o.at("version").to_number<int64_t>());
    if (m.version != 1) return Corruption(fmt::format("manifest version {} is not supported", m.version));
    m.checkpoint_id = std::string(o.at("checkpoint_id").as_string());
    m.pid = static_cast<int>(o.at("pid").to_number<int64_t>());
    m.criu_version = std::string(o.at("criu_version").as_string());
    m.codec = std::string(o.at("codec").as_string());
    m.created_at_ms = o.at("created_at_ms").to_number<int64_t>();
    if (auto* opt = o.if_contains("options")) m.options = *opt;
    if (auto* g = o.if_contains("gpu_pids"))
      for (const auto& p : g->as_array()) m.gpu_pids.push_back(static_cast<int>(p.to_number<int64_t>()));
    for (const auto& fv : o.at("files").as_array()) {
      const auto& f = fv.as_object();
      ManifestFile mf;
      mf.name = std::string(f.at("name").as_string());
      mf.size = f.at("size").to_number<uint64_t>();
      mf.stored_size = f.at("stored_size").to_number<uint64_t>();
      if (auto* b = f.if_contains("blake3")) {
        mf.hash = HashAlg::kBlake3;
        mf.digest = std::string(b->as_string());
      } else if (auto* h = f.if_contains("sha256")) {
        mf.hash = HashAlg::kSha256;
        mf.digest = std::string(h->as_string());
      } else {
        return Corruption(fmt::format("manifest: no checksum (blake3 or sha256) for '{}'", mf.name));
      }
      mf.codec = std::string(f.at("codec").as_string());
      if (!SafeName(mf.name)) return Corruption(fmt::format("manifest names an unsafe file '{}'", mf.name));
      if (mf.digest.size() != 64 ||
          mf.digest.find_first_not_of("0123456789abcdef") != std::string::npos)
        return Corruption(fmt::format("manifest: bad {} for '{}'", HashAlgName(mf.hash), mf.name));
      m.files.push_back(std::move(mf));
    }
    if (m.files.empty()) return Corruption("manifest lists no image files");
    return m;
  } catch (const std::exception& e) {
    return Corruption(fmt::format("manifest is malformed: {}", e.what()));
  }
}

}  // namespace ckptd
