// Helpers shared by tests: temporary directories that clean up after
// themselves.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace ckptd::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& tag = "ckptd-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (tag + ".XXXXXX")).string();
    if (!mkdtemp(tmpl.data())) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace ckptd::testing
