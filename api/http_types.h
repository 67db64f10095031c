// Request and response as the handlers see them: plain values, no Beast
// types, so handlers and their tests compile without Beast.
//
// Errors are answered with the Cedana ApiError shape
//   {"message": "...", "code": "404", "details": ...}
// and the HTTP status that matches the Status code (see HttpStatusFor).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>

#include "common/status.h"

namespace ckptd::api {

struct Request {
  std::string method;                          // "GET", "POST", ...
  std::string target;                          // raw request target
  std::string path;                            // decoded path without the query
  std::map<std::string, std::string> query;    // decoded query parameters
  std::map<std::string, std::string> headers;  // lower-case names
  std::map<std::string, std::string> params;   // path parameters, e.g. {id}
  std::string body;
  std::string remote;  // peer address, for logs

  std::optional<std::string> Header(std::string_view lower_name) const;
  std::optional<std::string> Query(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is streamed with chunked encoding: the producer is
  // called repeatedly (off the I/O threads) and returns the next piece, an
  // empty optional at the end, or an error (the connection is then closed,
  // since a status can no longer be sent).
  std::function<Result<std::optional<std::string>>()> stream;
  // When set, the answer comes later and holds no handler thread while it
  // waits: the session calls `deferred` with a `done` callback, which the
  // producer calls exactly once, from any thread, with the real response.
  using Done = std::function<void(Response)>;
  std::function<void(Done)> deferred;
};

// A 429 (a full queue) tells the client when to try again.
inline constexpr int kRetryAfterSeconds = 5;

// `res`, answered once `after_sync` reports durable the writes the handler
// applied with Sync::kDeferred (store/db.h); a 500 when that sync failed.
// No thread waits meanwhile.
using AfterSyncFn = std::function<void(std::function<void(Status)>)>;
Response WhenDurable(AfterSyncFn after_sync, Response res);
// The 500 of a write whose sync failed (`st`), logged.
Response NotDurable(const Status& st);
// The same through a store's AfterSync() (Catalog, AgentStore).
template <typename Store>
Response WhenDurable(Store* store, Response res) {
  return WhenDurable([store](std::function<void(Status)> done) { store->AfterSync(std::move(done)); }, std::move(res));
}

Response Json(int status, const boost::json::value& body);
Response Text(int status, std::string body);
Response NoContent();
// ApiError body with the status that matches st.code().
Response Error(const Status& st, const boost::json::value& details = nullptr);
Response Error(int status, std::string message, const boost::json::value& details = nullptr);
int HttpStatusFor(Code code);

// Parses the body as JSON; InvalidArgument("request body is not valid JSON: ...").
Result<boost::json::value> ParseJsonBody(const Request& req);

}  // namespace ckptd::api
