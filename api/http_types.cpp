#include "api/http_types.h"

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "common/json_reader.h"

namespace ckptd::api {

namespace json = boost::json;

std::optional<std::string> Request::Header(std::string_view lower_name) const {
  auto it = headers.find(std::string(lower_name));
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Request::Query(std::string_view name) const {
  auto it = query.find(std::string(name));
  if (it == query.end()) return std::nullopt;
  return it->second;
}

Response WhenDurable(AfterSyncFn after_sync, Response res) {
  Response out;
  out.deferred = [after_sync = std::move(after_sync), res = std::move(res)](Response::Done done) mutable {
    after_sync([done = std::move(done), res = std::move(res)](Status st) mutable {
      done(st.ok() ? std::move(res) : NotDurable(st));
    });
  };
  return out;
}

Response NotDurable(const Status& st) {
  spdlog::error("a write could not be made durable: {}", st.ToString());
  return Error(500, "the write could not be made durable: " + st.message());
}

Response Json(int status, const json::value& body) {
  Response r;
  r.status = status;
  r.body = json::serialize(body);
  return r;
}

Response Text(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

Response NoContent() {
  Response r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

int HttpStatusFor(Code code) {
  switch (code) {
    case Code::kOk:
      return 200;
    case Code::kInvalidArgument:
      return 400;
    case Code::kUnauthenticated:
      return 401;
    case Code::kNotFound:
      return 404;
    case Code::kConflict:
    case Code::kAlreadyExists:
      return 409;
    case Code::kTooLarge:
      return 413;
    case Code::kResourceExhausted:
      return 429;
    case Code::kUnavailable:
      return 503;
    case Code::kDeadlineExceeded:
      return 504;
    case Code::kCancelled:
      return 503;
    case Code::kCorruption:
    case Code::kIOError:
    case Code::kInternal:
      return 500;
  }
  return 500;
}

Response Error(int status, std::string message, const json::value& details) {
  return Json(status,
              json::object{{"message", std::move(message)}, {"code", std::to_string(status)}, {"details", details}});
}

Response Error(const Status& st, const json::value& details) {
  Response r = Error(HttpStatusFor(st.code()), st.message(), details);
  if (st.code() == Code::kResourceExhausted) r.headers.emplace_back("Retry-After", std::to_string(kRetryAfterSeconds));
  return r;
}

Result<json::value> ParseJsonBody(const Request& req) {
  json::error_code ec;
  json::value v = json::parse(req.body, ec);
  if (ec) return InvalidArgument("request body is not valid JSON: " + ec.message());
  if (!AllNumbersFinite(v)) return InvalidArgument("request body has a number out of range (not a finite double)");
  return v;
}

}  // namespace ckptd::api
