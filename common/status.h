// Status and Result<T>: the one error type shared by every module.
//
// Contract: a Status is either OK or carries a Code plus a human-readable
// message. Errors gain context as they travel up (WithContext prepends
// "what we were doing: "), so a 500 reads like
//   "checkpoint 3f2a…: criu dump: …: <CRIU log excerpt>".
// Result<T> holds a value or a non-OK Status. Both are [[nodiscard]]: an
// ignored error is a compile warning (an error with -Werror).
// Thread safety: value types, no shared state.
#pragma once

#include <cassert>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace ckptd {

enum class Code {
  kOk = 0,
  kInvalidArgument,    // malformed input from a caller (HTTP 400)
  kUnauthenticated,    // missing or wrong credentials (401)
  kNotFound,           // unknown id, path or process (404)
  kConflict,           // illegal state transition, busy resource (409)
  kAlreadyExists,      // create of an existing key (409)
  kTooLarge,           // body or resource over a limit (413)
  kResourceExhausted,  // a bounded queue is full: retry later (429)
  kUnavailable,        // a dependency (CRIU, GPU driver, S3) is not usable (503)
  kDeadlineExceeded,   // a step ran past its deadline (504)
  kCancelled,          // the operation was cancelled (shutdown)
  kCorruption,         // stored data failed verification
  kIOError,            // the OS or a storage backend failed (500)
  kInternal,           // a bug or an unexpected condition (500)
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "context: message"; an OK status stays OK.
  Status WithContext(std::string_view context) const;
  // "CodeName: message" for logs.
  std::string ToString() const;

  // Explicitly drop a status that is not needed (best-effort cleanup).
  void IgnoreError() const {}

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status Unauthenticated(std::string m) { return {Code::kUnauthenticated, std::move(m)}; }
inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status Conflict(std::string m) { return {Code::kConflict, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
inline Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {Code::kResourceExhausted, std::move(m)}; }
inline Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) { return {Code::kDeadlineExceeded, std::move(m)}; }
inline Status Cancelled(std::string m) { return {Code::kCancelled, std::move(m)}; }
inline Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
inline Status IOError(std::string m) { return {Code::kIOError, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
// IOError with strerror(errnum) appended: "what: strerror".
Status ErrnoError(std::string_view what, int errnum);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    // A Result built from OK status has no value: a broken invariant.
    if (std::get<Status>(v_).ok()) std::abort();
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace ckptd

// Return early with the status of an expression that yields a Status.
#define CKPTD_RETURN_IF_ERROR(expr) CKPTD_RETURN_IF_ERROR_IMPL(CKPTD_CONCAT(_st_, __LINE__), expr)
#define CKPTD_RETURN_IF_ERROR_IMPL(st, expr) \
  do {                                       \
    ::ckptd::Status st = (expr);             \
    if (!st.ok()) return st;                 \
  } while (0)

#define CKPTD_CONCAT_INNER(a, b) a##b
#define CKPTD_CONCAT(a, b) CKPTD_CONCAT_INNER(a, b)
// CKPTD_ASSIGN_OR_RETURN(auto x, Foo()); returns Foo()'s status on error.
#define CKPTD_ASSIGN_OR_RETURN(lhs, rexpr) CKPTD_ASSIGN_OR_RETURN_IMPL(CKPTD_CONCAT(_res_, __LINE__), lhs, rexpr)
#define CKPTD_ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
