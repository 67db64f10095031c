#include "store/object_store.h"

#include <array>

namespace ckptd {
namespace {

// Segment rules shared by keys and prefixes.
Status CheckSegments(std::string_view s, std::string_view what) {
  if (s.size() > 1024) return InvalidArgument(std::string(what) + " longer than 1024 bytes");
  if (s.find('\0') != std::string_view::npos) return InvalidArgument(std::string(what) + " contains NUL");
  if (!s.empty() && s.front() == '/')
    return InvalidArgument(std::string(what) + " '" + std::string(s) + "' is absolute");
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find('/', start);
    if (end == std::string_view::npos) end = s.size();
    std::string_view seg = s.substr(start, end - start);
    if (seg == "." || seg == "..")
      return InvalidArgument(std::string(what) + " '" + std::string(s) + "' has a '" + std::string(seg) + "' segment");
    start = end + 1;
  }
  return Status::Ok();
}

}  // namespace

Status ValidateKey(std::string_view key) {
  if (key.empty()) return InvalidArgument("empty object key");
  CKPTD_RETURN_IF_ERROR(CheckSegments(key, "object key"));
  if (key.back() == '/') return InvalidArgument("object key '" + std::string(key) + "' ends with '/'");
  if (key.find("//") != std::string_view::npos)
    return InvalidArgument("object key '" + std::string(key) + "' has an empty segment");
  return Status::Ok();
}

Status ValidatePrefix(std::string_view prefix) { return CheckSegments(prefix, "object prefix"); }

Status ObjectStore::Get(std::string_view key, const ChunkSink& sink, const ReadOptions& opts) {
  CKPTD_ASSIGN_OR_RETURN(auto reader, NewReader(key, opts));
  std::vector<char> buf(1 << 20);
  for (;;) {
    CKPTD_ASSIGN_OR_RETURN(size_t n, reader->Read(buf));
    if (n == 0) return Status::Ok();
    CKPTD_RETURN_IF_ERROR(sink(std::string_view(buf.data(), n)));
  }
}

Status ObjectStore::DeletePrefix(std::string_view prefix) {
  if (prefix.empty()) return InvalidArgument("DeletePrefix with an empty prefix refused");
  CKPTD_RETURN_IF_ERROR(ValidatePrefix(prefix));
  // Deleting while paging would shift continuation tokens on some backends;
  // always restart from the first page instead, which makes progress because
  // every listed object is deleted before the next List.
  for (;;) {
    CKPTD_ASSIGN_OR_RETURN(ListPage page, List(prefix, {}, 1000));
    if (page.objects.empty()) return Status::Ok();
    for (const ObjectInfo& o : page.objects) {
      CKPTD_RETURN_IF_ERROR(Delete(o.key).WithContext("delete prefix " + std::string(prefix)));
    }
  }
}

Status ObjectStore::PutBytes(std::string_view key, std::string_view data) {
  WriteOptions opts;
  opts.expected_size = data.size();
  CKPTD_ASSIGN_OR_RETURN(auto writer, NewWriter(key, opts));
  Status st = writer->Write(data);
  if (!st.ok()) {
    writer->Abort();
    return st;
  }
  return writer->Commit();
}

Result<std::string> ObjectStore::GetBytes(std::string_view key) {
  std::string out;
  CKPTD_RETURN_IF_ERROR(Get(key, [&](std::string_view c) {
    out.append(c);
    return Status::Ok();
  }));
  return out;
}

Status ObjectStore::LinkFile(std::string_view key, const std::filesystem::path&) {
  return Internal(Describe() + ": cannot link a file as '" + std::string(key) + "'");
}

Status ObjectStore::LinkObjectAs(std::string_view key, const std::filesystem::path&) {
  return Internal(Describe() + ": cannot link the object '" + std::string(key) + "' as a file");
}

}  // namespace ckptd
