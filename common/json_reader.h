// Reading a JSON object's fields without exceptions. Each accessor notes the
// first field that is missing or of the wrong type and returns a neutral
// value; status() then names it:
//
//   JsonReader r(v, "manifest");
//   m.pid = static_cast<int>(r.Int("pid"));
//   m.codec = r.String("codec");
//   for (const auto& f : r.Array("files")) { JsonReader fr(f, "manifest file"); ... }
//   CKPTD_RETURN_IF_ERROR(r.status());
//
// Errors are Corruption by default (stored records, manifests); pass
// Code::kInvalidArgument for request bodies. Values returned by reference
// live as long as the JSON value read.
// Thread safety: one reader per thread. The JSON value must outlive the
// reader: never pass a temporary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "common/status.h"

namespace ckptd {

// False when `v` holds a number that is not finite anywhere inside it.
// Boost.JSON parses an overflowing number (1e400) as infinity and writes it
// back as `Infinity`, which no JSON parser reads: a body with one must be
// refused before it is stored.
bool AllNumbersFinite(const boost::json::value& v);

// Lenient lookups for optional members of records ckptd wrote itself: the
// string member `key` of an object (nullopt when missing or no string; a
// value that is no object has none), and the string elements of its array
// member `key` (others skipped).
std::optional<std::string> StringMember(const boost::json::object& o, std::string_view key);
std::optional<std::string> StringMember(const boost::json::value& v, std::string_view key);
std::vector<std::string> StringElements(const boost::json::object& o, std::string_view key);
std::vector<std::string> StringElements(const boost::json::value& v, std::string_view key);
boost::json::array ToJsonArray(const std::vector<std::string>& strings);

class JsonReader {
 public:
  JsonReader(const boost::json::value& v, std::string what, Code code = Code::kCorruption);
  JsonReader(boost::json::value&&, std::string, Code = Code::kCorruption) = delete;

  bool ok() const { return error_.empty(); }
  // OK, or "<what>: <the first problem>" with the reader's code.
  Status status() const;

  // Required fields: missing or mistyped is an error.
  std::string String(std::string_view key);
  int64_t Int(std::string_view key);
  uint64_t Uint(std::string_view key);
  bool Bool(std::string_view key);
  const boost::json::array& Array(std::string_view key);
  // Optional: absent or null is nullopt / false / nullptr; mistyped is an error.
  std::optional<std::string> OptString(std::string_view key);
  std::optional<int64_t> OptInt(std::string_view key);
  const boost::json::array* OptArray(std::string_view key);
  // Any value, or nullptr when absent.
  const boost::json::value* Find(std::string_view key) const;
  // The object itself; an empty one (and an error) when the value is not an object.
  const boost::json::object& object() const { return *obj_; }

 private:
  const boost::json::value* Field(std::string_view key, bool required);
  void Fail(std::string_view key, std::string_view wanted);

  const boost::json::object* obj_;
  std::string what_;
  Code code_;
  std::string error_;
};

}  // namespace ckptd
