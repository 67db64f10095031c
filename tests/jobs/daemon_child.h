// The real ckptd binary as a child process on a data directory, spoken to
// over HTTP with the token it keeps there: for the tests and benches that
// kill it and start it again on the same data (the crash-point matrix, the
// random-kill soak).
#pragma once

#include <cctype>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "api/client.h"
#include "common/proc.h"
#include "tests/systemd/daemon_process.h"

namespace ckptd::testing {

class DaemonChild {
 public:
  // Starts ckptd with `--listen 127.0.0.1:<a free port> --data-dir
  // <data_dir>` and `args`, exactly `env` as its environment and its output
  // in `log`, and waits for /healthz (calling `poll` between tries). Returns
  // the ms from the start until /healthz answered 200, or -1 when the
  // daemon ended or did not answer within `timeout`.
  double Start(const std::string& data_dir, const std::vector<std::string>& args, const std::vector<std::string>& env,
               const std::string& log, std::chrono::milliseconds timeout = std::chrono::seconds(120),
               const std::function<void()>& poll = {}) {
    client_.reset();
    process_.reset();
    port_ = FreePort();
    std::vector<std::string> all = {"--listen", "127.0.0.1:" + std::to_string(port_), "--data-dir", data_dir};
    all.insert(all.end(), args.begin(), args.end());
    auto t0 = std::chrono::steady_clock::now();
    process_ = std::make_unique<DaemonProcess>(all, env, log);
    for (;;) {
      if (HttpGetStatus(port_, "/healthz") == 200) break;
      char st = ProcState(process_->pid());
      if (st == 0 || st == 'Z' || std::chrono::steady_clock::now() - t0 > timeout) {
        process_->Wait(std::chrono::seconds(1));
        return -1;
      }
      if (poll) poll();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::string token = ReadFileText(data_dir + "/token");
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
    auto c = api::HttpClient::Create("http://127.0.0.1:" + std::to_string(port_), token, std::chrono::minutes(10));
    if (!c.ok()) return -1;
    client_ = std::move(c.value());
    return ms;
  }
  // The answer's JSON (its text when it is not JSON; null when the request
  // failed); *status is the HTTP status, or 0 when the request failed.
  boost::json::value Call(const std::string& method, const std::string& target, const boost::json::object& body = {},
                          int* status = nullptr) {
    if (status) *status = 0;
    if (!client_) return nullptr;
    auto r = client_->Send(method, target, body.empty() ? "" : boost::json::serialize(body));
    if (!r.ok()) return nullptr;
    if (status) *status = r->status;
    boost::json::error_code ec;
    boost::json::value v = boost::json::parse(r->body, ec);
    return ec ? boost::json::value(r->body) : v;
  }
  // Null before Start.
  DaemonProcess* process() { return process_.get(); }
  bool has_client() const { return client_ != nullptr; }
  void DropClient() { client_.reset(); }
  uint16_t port() const { return port_; }

 private:
  std::unique_ptr<DaemonProcess> process_;
  std::unique_ptr<api::HttpClient> client_;
  uint16_t port_ = 0;
};

}  // namespace ckptd::testing
