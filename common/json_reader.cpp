#include "common/json_reader.h"

#include <cmath>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace ckptd {

namespace json = boost::json;

namespace {
const json::object kEmptyObject;
const json::array kEmptyArray;
}  // namespace

JsonReader::JsonReader(const json::value& v, std::string what, Code code)
    : obj_(v.if_object() ? v.if_object() : &kEmptyObject), what_(std::move(what)), code_(code) {
  if (!v.is_object()) error_ = "not a JSON object";
}

Status JsonReader::status() const {
  if (ok()) return Status::Ok();
  return Status(code_, fmt::format("{}: {}", what_, error_));
}

void JsonReader::Fail(std::string_view key, std::string_view wanted) {
  if (!error_.empty()) return;
  error_ = obj_->contains(key) ? fmt::format("field '{}' must be {}", key, wanted)
                               : fmt::format("field '{}' is missing", key);
}

const json::value* JsonReader::Field(std::string_view key, bool required) {
  const json::value* v = obj_->if_contains(key);
  if ((!v || v->is_null()) && required) Fail(key, "present");
  return v && !v->is_null() ? v : nullptr;
}

std::string JsonReader::String(std::string_view key) {
  const json::value* v = Field(key, true);
  if (v && v->is_string()) return std::string(v->as_string());
  if (v) Fail(key, "a string");
  return {};
}

int64_t JsonReader::Int(std::string_view key) {
  const json::value* v = Field(key, true);
  if (!v) return 0;
  json::error_code ec;
  int64_t n = v->to_number<int64_t>(ec);
  if (ec) Fail(key, "an integer");
  return ec ? 0 : n;
}

uint64_t JsonReader::Uint(std::string_view key) {
  const json::value* v = Field(key, true);
  if (!v) return 0;
  json::error_code ec;
  uint64_t n = v->to_number<uint64_t>(ec);
  if (ec) Fail(key, "a non-negative integer");
  return ec ? 0 : n;
}

bool JsonReader::Bool(std::string_view key) {
  const json::value* v = Field(key, true);
  if (v && v->is_bool()) return v->as_bool();
  if (v) Fail(key, "a boolean");
  return false;
}

const json::array& JsonReader::Array(std::string_view key) {
  const json::value* v = Field(key, true);
  if (v && v->is_array()) return v->as_array();
  if (v) Fail(key, "an array");
  return kEmptyArray;
}

std::optional<std::string> JsonReader::OptString(std::string_view key) {
  const json::value* v = Field(key, false);
  if (!v) return std::nullopt;
  if (v->is_string()) return std::string(v->as_string());
  Fail(key, "a string");
  return std::nullopt;
}

std::optional<int64_t> JsonReader::OptInt(std::string_view key) {
  const json::value* v = Field(key, false);
  if (!v) return std::nullopt;
  json::error_code ec;
  int64_t n = v->to_number<int64_t>(ec);
  if (!ec) return n;
  Fail(key, "an integer");
  return std::nullopt;
}

const json::array* JsonReader::OptArray(std::string_view key) {
  const json::value* v = Field(key, false);
  if (!v) return nullptr;
  if (v->is_array()) return &v->as_array();
  Fail(key, "an array");
  return nullptr;
}

const json::value* JsonReader::Find(std::string_view key) const { return obj_->if_contains(key); }

bool AllNumbersFinite(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::double_:
      return std::isfinite(v.get_double());
    case boost::json::kind::array:
      for (const auto& e : v.get_array())
        if (!AllNumbersFinite(e)) return false;
      return true;
    case boost::json::kind::object:
      for (const auto& kv : v.get_object())
        if (!AllNumbersFinite(kv.value())) return false;
      return true;
    default:
      return true;
  }
}

std::optional<std::string> StringMember(const boost::json::object& o, std::string_view key) {
  const auto* m = o.if_contains(key);
  if (!m || !m->is_string()) return std::nullopt;
  return std::string(m->as_string());
}

std::optional<std::string> StringMember(const boost::json::value& v, std::string_view key) {
  return v.is_object() ? StringMember(v.get_object(), key) : std::nullopt;
}

std::vector<std::string> StringElements(const boost::json::object& o, std::string_view key) {
  std::vector<std::string> out;
  const auto* m = o.if_contains(key);
  if (m && m->is_array())
    for (const auto& e : m->as_array())
      if (e.is_string()) out.emplace_back(e.as_string());
  return out;
}

std::vector<std::string> StringElements(const boost::json::value& v, std::string_view key) {
  return v.is_object() ? StringElements(v.get_object(), key) : std::vector<std::string>{};
}

boost::json::array ToJsonArray(const std::vector<std::string>& strings) {
  boost::json::array a;
  for (const auto& e : strings) a.emplace_back(e);
  return a;
}

}  // namespace ckptd
