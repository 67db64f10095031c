#include "api/agent_validation.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <boost/locale/utf.hpp>
#include <boost/json.hpp>

#include "common/json_reader.h"

namespace ckptd::api::agent {

namespace json = boost::json;

Response Detail(int status, std::string_view message) { return Json(status, json::object{{"detail", message}}); }

Response DetailFor(const Status& st) { return Detail(HttpStatusFor(st.code()), st.message()); }

BodyValidator::BodyValidator(const Request& req) {
  if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) {
    Add(json::array{"body"}, "missing", "Field required", nullptr);
    return;
  }
  // The body lives as long as the request: its values come from blocks
  // freed together, not one allocation each.
  json::error_code ec;
  json::value v = json::parse(req.body, ec, json::make_shared_resource<json::monotonic_resource>());
  if (ec) {
    // FastAPI reports the decoder's position; Boost.JSON does not give one
    // for every error, so the location is the body itself at offset 0.
    Add(json::array{"body", 0}, "json_invalid", "JSON decode error", json::object{},
        json::object{{"error", ec.message()}});
    return;
  }
  Accept(std::move(v));
}

BodyValidator::BodyValidator(json::value body) { Accept(std::move(body)); }

void BodyValidator::Accept(json::value v) {
  if (!AllNumbersFinite(v)) {
    // Pydantic's answer to an infinite float; the location is the body.
    Add(json::array{"body"}, "finite_number", "Input should be a finite number", nullptr);
    return;
  }
  if (!v.is_object()) {
    Add(json::array{"body"}, "model_attributes_type",
        "Input should be a valid dictionary or object to extract fields from", v);
    return;
  }
  body_.emplace(std::move(v.as_object()));
}

const json::object& BodyValidator::body() const {
  static const json::object kNone;
  return body_ ? *body_ : kNone;
}

Response BodyValidator::ErrorResponse() const { return Json(422, json::object{{"detail", errors_}}); }

void BodyValidator::Add(json::array loc, std::string_view type, std::string_view msg, const json::value& input,
                        const json::value& ctx) {
  json::object e{{"type", type}, {"loc", std::move(loc)}, {"msg", msg}, {"input", input}};
  if (!ctx.is_null()) e["ctx"] = ctx;
  errors_.push_back(std::move(e));
}

void BodyValidator::AddLiteralError(json::array loc, const json::value& input,
                                    std::initializer_list<std::string_view> allowed) {
  std::string expected;
  size_t n = 0;
  for (std::string_view a : allowed) {
    if (n > 0) expected += n + 1 == allowed.size() ? " or " : ", ";
    expected += fmt::format("'{}'", a);
    ++n;
  }
  Add(std::move(loc), "literal_error", "Input should be " + expected, input, json::object{{"expected", expected}});
}

json::array BodyValidator::At(const json::array& loc, std::string_view key) {
  json::array a = loc;
  a.push_back(json::string(key));
  return a;
}

json::array BodyValidator::At(const json::array& loc, size_t index) {
  json::array a = loc;
  a.push_back(static_cast<int64_t>(index));
  return a;
}

const json::value* BodyValidator::Field(const json::object& o, const json::array& loc, std::string_view key,
                                        bool required) {
  const json::value* v = o.if_contains(key);
  if (!v && required) Add(At(loc, key), "missing", "Field required", o);
  return v;
}

std::optional<std::string> BodyValidator::String(const json::object& o, const json::array& loc, std::string_view key,
                                                 std::optional<std::string> dflt) {
  const json::value* v = Field(o, loc, key, !dflt);
  if (!v) return dflt;
  if (!v->is_string()) {
    Add(At(loc, key), "string_type", "Input should be a valid string", *v);
    return std::nullopt;
  }
  return std::string(v->get_string());
}

std::optional<std::optional<std::string>> BodyValidator::NullableString(const json::object& o, const json::array& loc,
                                                                        std::string_view key) {
  const json::value* v = Field(o, loc, key, false);
  if (!v || v->is_null()) return std::optional<std::string>();
  if (!v->is_string()) {
    Add(At(loc, key), "string_type", "Input should be a valid string", *v);
    return std::nullopt;
  }
  return std::optional<std::string>(std::string(v->get_string()));
}

const json::object* BodyValidator::Object(const json::object& o, const json::array& loc, std::string_view key,
                                          bool required) {
  static const json::object kEmpty;
  const json::value* v = Field(o, loc, key, required);
  if (!v) return required ? nullptr : &kEmpty;
  if (!v->is_object()) {
    Add(At(loc, key), "dict_type", "Input should be a valid dictionary", *v);
    return nullptr;
  }
  return &v->get_object();
}

std::optional<std::optional<json::object>> BodyValidator::NullableObject(const json::object& o, const json::array& loc,
                                                                         std::string_view key) {
  const json::value* v = Field(o, loc, key, false);
  if (!v || v->is_null()) return std::optional<json::object>();
  if (!v->is_object()) {
    Add(At(loc, key), "dict_type", "Input should be a valid dictionary", *v);
    return std::nullopt;
  }
  return std::optional<json::object>(v->get_object());
}

const json::array* BodyValidator::Array(const json::object& o, const json::array& loc, std::string_view key,
                                        bool required) {
  const json::value* v = Field(o, loc, key, required);
  if (!v) return nullptr;
  if (!v->is_array()) {
    Add(At(loc, key), "list_type", "Input should be a valid list", *v);
    return nullptr;
  }
  return &v->get_array();
}

std::optional<int64_t> BodyValidator::Int(const json::object& o, const json::array& loc, std::string_view key,
                                          std::optional<int64_t> dflt, std::optional<int64_t> ge,
                                          std::optional<int64_t> le) {
  const json::value* v = Field(o, loc, key, !dflt);
  if (!v) return dflt;
  std::optional<int64_t> n;
  // pydantic's lax mode: integral floats and numeric strings are integers.
  if (v->is_int64()) {
    n = v->get_int64();
  } else if (v->is_uint64()) {
    if (v->get_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      n = static_cast<int64_t>(v->get_uint64());
  } else if (v->is_double()) {
    double d = v->get_double();
    if (std::isfinite(d) && d != std::floor(d)) {
      Add(At(loc, key), "int_from_float", "Input should be a valid integer, got a number with a fractional part", *v);
      return std::nullopt;
    }
    if (std::isfinite(d) && std::fabs(d) < 9.2e18) n = static_cast<int64_t>(d);
  } else if (v->is_string()) {
    std::string_view s = v->get_string();
    size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    if (s.size() > i && s.size() - i <= 18 && s.find_first_not_of("0123456789", i) == std::string_view::npos) {
      n = std::stoll(std::string(s));
    } else {
      Add(At(loc, key), "int_parsing", "Input should be a valid integer, unable to parse string as an integer", *v);
      return std::nullopt;
    }
  }
  if (!n) {
    Add(At(loc, key), "int_type", "Input should be a valid integer", *v);
    return std::nullopt;
  }
  if (ge && *n < *ge) {
    Add(At(loc, key), "greater_than_equal", fmt::format("Input should be greater than or equal to {}", *ge), *v,
        json::object{{"ge", *ge}});
    return std::nullopt;
  }
  if (le && *n > *le) {
    Add(At(loc, key), "less_than_equal", fmt::format("Input should be less than or equal to {}", *le), *v,
        json::object{{"le", *le}});
    return std::nullopt;
  }
  return n;
}

std::optional<bool> BodyValidator::Bool(const json::object& o, const json::array& loc, std::string_view key,
                                        bool dflt) {
  const json::value* v = Field(o, loc, key, false);
  if (!v) return dflt;
  if (v->is_bool()) return v->get_bool();
  if ((v->is_int64() || v->is_uint64()) && (v->to_number<int64_t>() == 0 || v->to_number<int64_t>() == 1))
    return v->to_number<int64_t>() == 1;
  if (v->is_string()) {
    std::string s(v->get_string());
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const char* t : {"true", "1", "yes", "on", "t", "y"})
      if (s == t) return true;
    for (const char* f : {"false", "0", "no", "off", "f", "n"})
      if (s == f) return false;
    Add(At(loc, key), "bool_parsing", "Input should be a valid boolean, unable to interpret input", *v);
    return std::nullopt;
  }
  Add(At(loc, key), "bool_type", "Input should be a valid boolean", *v);
  return std::nullopt;
}

const json::object* BodyValidator::Model(const json::value& item, const json::array& loc, std::string_view class_name) {
  if (item.is_object()) return &item.get_object();
  Add(loc, "model_type", fmt::format("Input should be a valid dictionary or instance of {}", class_name), item,
      json::object{{"class_name", class_name}});
  return nullptr;
}

std::optional<std::string> BodyValidator::Base64(std::string_view text, const json::array& loc, std::string_view key) {
  std::string why;
  auto bytes = DecodeBase64(text, &why);
  if (!bytes) {
    Add(At(loc, key), "base64_decode", fmt::format("Base64 decoding error: '{}'", why), json::string(text));
  }
  return bytes;
}

std::optional<std::string> DecodeBase64(std::string_view text, std::string* why) {
  if (text.size() % 4 != 0) {
    *why = "Incorrect padding";
    return std::nullopt;
  }
  size_t pad = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (c == '=') {
      if (i + 2 < text.size()) {  // '=' only in the last two places
        *why = "Invalid base64-encoded string: '=' before the end";
        return std::nullopt;
      }
      ++pad;
    } else if (!alpha || pad > 0) {
      *why = "Invalid base64-encoded string: character outside the base64 alphabet";
      return std::nullopt;
    }
  }
  std::string out(text.size() / 4 * 3, '\0');
  if (text.empty()) return out;
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) {
    *why = "Invalid base64-encoded string";
    return std::nullopt;
  }
  // EVP_DecodeBlock counts the padding as zero bytes.
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

void AppendBase64(std::string* out, std::string_view bytes) {
  size_t at = out->size();
  out->resize(at + 4 * ((bytes.size() + 2) / 3) + 1);
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out->data() + at),
                          reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out->resize(at + static_cast<size_t>(n));
}

bool IsUtf8(std::string_view bytes) {
  using Utf8 = boost::locale::utf::utf_traits<char>;
  const char* p = bytes.data();
  const char* end = p + bytes.size();
  while (p != end) {
    if (static_cast<unsigned char>(*p) < 0x80) {
      ++p;
      continue;
    }
    boost::locale::utf::code_point c = Utf8::decode(p, end);
    if (c == boost::locale::utf::illegal || c == boost::locale::utf::incomplete) return false;
  }
  return true;
}

std::string EncodeBase64(std::string_view bytes) {
  std::string out;
  AppendBase64(&out, bytes);
  return out;
}

}  // namespace ckptd::api::agent
