// Request validation for the agent-state routes, answered the way FastAPI
// (pydantic v2) answers it: 422 with
//   {"detail": [{"type", "loc": ["body", field, ...], "msg", "input"[, "ctx"]}]}
// Every error of a body is collected, not just the first.
// Also: base64 through OpenSSL (strict RFC 4648 alphabet and padding).
// Thread safety: a BodyValidator belongs to one request.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "api/http_types.h"

namespace ckptd::api::agent {

// A FastAPI-style {"detail": message} error (404, 500 on agent routes).
Response Detail(int status, std::string_view message);
Response DetailFor(const Status& st);

class BodyValidator {
 public:
  // Parses req.body; on failure ok() is false with the FastAPI error set
  // (missing body, json_invalid, model_attributes_type).
  explicit BodyValidator(const Request& req);
  // A body already parsed (a batch's op, say), checked as a request's is.
  explicit BodyValidator(boost::json::value body);

  bool ok() const { return errors_.empty(); }
  // The body once ok(); an empty object before, or when it is not one.
  const boost::json::object& body() const;
  // For moving parts out once they are validated.
  boost::json::object& mutable_body() { return *body_; }
  Response ErrorResponse() const;  // 422

  void Add(boost::json::array loc, std::string_view type, std::string_view msg, const boost::json::value& input,
           const boost::json::value& ctx = nullptr);
  // pydantic's literal_error for an input that is none of `allowed`:
  // "Input should be 'a', 'b' or 'c'".
  void AddLiteralError(boost::json::array loc, const boost::json::value& input,
                       std::initializer_list<std::string_view> allowed);

  // Field readers. `o` is the object holding the field, `loc` its location
  // ("body", ...). Missing required fields and type errors are recorded and
  // answered as nullopt.
  std::optional<std::string> String(const boost::json::object& o, const boost::json::array& loc, std::string_view key,
                                    std::optional<std::string> dflt = std::nullopt);
  // string | null. Missing: the default (null unless given).
  std::optional<std::optional<std::string>> NullableString(const boost::json::object& o, const boost::json::array& loc,
                                                           std::string_view key);
  // The object in `o`, not a copy: nullptr when invalid or missing and
  // required, an empty object when missing and optional.
  const boost::json::object* Object(const boost::json::object& o, const boost::json::array& loc, std::string_view key,
                                    bool required);
  std::optional<std::optional<boost::json::object>> NullableObject(const boost::json::object& o,
                                                                   const boost::json::array& loc, std::string_view key);
  // nullptr when missing-and-optional or invalid.
  const boost::json::array* Array(const boost::json::object& o, const boost::json::array& loc, std::string_view key,
                                  bool required);
  std::optional<int64_t> Int(const boost::json::object& o, const boost::json::array& loc, std::string_view key,
                             std::optional<int64_t> dflt, std::optional<int64_t> ge = std::nullopt,
                             std::optional<int64_t> le = std::nullopt);
  std::optional<bool> Bool(const boost::json::object& o, const boost::json::array& loc, std::string_view key,
                           bool dflt);
  // A list item that must be an object (pydantic model `class_name`): the
  // object, or nullptr with model_type recorded at loc.
  const boost::json::object* Model(const boost::json::value& item, const boost::json::array& loc,
                                   std::string_view class_name);
  // Decodes base64 text; records base64_decode at loc+key when invalid.
  std::optional<std::string> Base64(std::string_view text, const boost::json::array& loc, std::string_view key);

  // loc + key (or index).
  static boost::json::array At(const boost::json::array& loc, std::string_view key);
  static boost::json::array At(const boost::json::array& loc, size_t index);

 private:
  void Accept(boost::json::value v);
  const boost::json::value* Field(const boost::json::object& o, const boost::json::array& loc, std::string_view key,
                                  bool required);

  // Moved in, so that it keeps the memory it was parsed into.
  std::optional<boost::json::object> body_;
  boost::json::array errors_;
};

// Strict base64 (RFC 4648, padded); nullopt with *why on invalid input.
std::optional<std::string> DecodeBase64(std::string_view text, std::string* why);
std::string EncodeBase64(std::string_view bytes);
// Appends the base64 of `bytes` to *out (as a JSON string needs it: the
// alphabet has nothing to escape).
void AppendBase64(std::string* out, std::string_view bytes);
// Whether `bytes` is well-formed UTF-8 (no overlong forms, no surrogates),
// so that it can travel as a JSON string.
bool IsUtf8(std::string_view bytes);

}  // namespace ckptd::api::agent
