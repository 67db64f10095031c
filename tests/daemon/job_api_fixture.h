// Base fixture for tests that drive an in-process daemon's job API over
// real HTTP on loopback: start the daemon, send requests, run checkpoint and
// restore jobs synchronously (wait=true), read catalog records.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "api/client.h"
#include "daemon/config.h"
#include "daemon/daemon.h"

namespace ckptd::testing {

class JobApiTest : public ::testing::Test {
 protected:
  struct Reply {
    int status = 0;
    boost::json::value body;  // the parsed body, or the raw text if it is not JSON
  };

  // Starts `config` as the in-process daemon and connects client_ to it.
  void StartDaemonWith(Config config) {
    daemon_ = std::make_unique<Daemon>(std::move(config));
    auto st = daemon_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    client_ = api::HttpClient::Create("http://127.0.0.1:" + std::to_string(daemon_->port()), daemon_->token(),
                                      std::chrono::minutes(5))
                  .value();
  }
  Reply Send(const std::string& method, const std::string& target, const std::string& body = "") {
    auto r = client_->Send(method, target, body);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    Reply out{r->status, nullptr};
    try {
      out.body = boost::json::parse(r->body);
    } catch (...) {
      out.body = boost::json::value(r->body);
    }
    return out;
  }
  Reply Post(const std::string& target, const boost::json::object& body) {
    return Send("POST", target, boost::json::serialize(body));
  }
  // A job with wait=true; returns the finished job (expects 200).
  boost::json::object Checkpoint(pid_t pid, boost::json::object extra = {}) {
    extra["pid"] = pid;
    return WaitedJob("/v2/jobs/checkpoint", std::move(extra));
  }
  boost::json::object Restore(const std::string& checkpoint_id, boost::json::object extra = {}) {
    extra["checkpoint_id"] = checkpoint_id;
    return WaitedJob("/v2/jobs/restore", std::move(extra));
  }
  boost::json::object GetCheckpoint(const std::string& id) {
    auto r = Send("GET", "/v2/checkpoints/" + id);
    EXPECT_EQ(r.status, 200) << boost::json::serialize(r.body);
    return r.body.is_object() ? r.body.as_object() : boost::json::object{};
  }
  static std::string Str(const boost::json::object& o, const char* k) {
    auto* v = o.if_contains(k);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  }

  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<api::HttpClient> client_;

 private:
  boost::json::object WaitedJob(const std::string& route, boost::json::object body) {
    body["wait"] = true;
    auto r = Post(route, body);
    EXPECT_EQ(r.status, 200) << boost::json::serialize(r.body);
    return r.body.is_object() ? r.body.as_object() : boost::json::object{};
  }
};

}  // namespace ckptd::testing
