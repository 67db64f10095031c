#include "tests/testing/daemon_fixture.h"

#include <sys/socket.h>
#include <unistd.h>

namespace ckptd::testing {

namespace json = boost::json;

std::string RawExchange(uint16_t port, const std::string& request, std::chrono::seconds wait) {
  int fd = ConnectLoopback(port);
  if (fd < 0) return "";
  timeval tv{static_cast<time_t>(wait.count()), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  size_t off = 0;
  while (off < request.size()) {
    ssize_t n = send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer and stop reading early
    off += static_cast<size_t>(n);
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

Config TestConfig(const std::string& data_dir) {
  Config c;
  c.listen = "127.0.0.1:0";
  c.data_dir = data_dir;
  c.log_level = "warn";
  return c;
}

std::string InProcessDaemon::Str(const json::object& o, const char* k) {
  auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::string InProcessDaemon::Str(const json::value& v, const char* k) {
  return v.is_object() ? Str(v.as_object(), k) : "";
}

bool InProcessDaemon::Start(Config config) {
  Stop();
  daemon_ = std::make_unique<Daemon>(std::move(config));
  auto st = daemon_->Start();
  EXPECT_TRUE(st.ok()) << st.ToString();
  if (!st.ok()) return false;
  auto c = api::HttpClient::Create(BaseUrl(), daemon_->token(), std::chrono::minutes(5));
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  if (!c.ok()) return false;
  client_ = std::move(c).value();
  return true;
}

void InProcessDaemon::Stop() {
  client_.reset();
  daemon_.reset();
}

std::string InProcessDaemon::BaseUrl() const { return "http://127.0.0.1:" + std::to_string(daemon_->port()); }

InProcessDaemon::Reply InProcessDaemon::Send(const std::string& method, const std::string& target,
                                             const std::string& body) {
  if (!client_) {
    ADD_FAILURE() << "no daemon started for " << method << " " << target;
    return {};
  }
  auto r = client_->Send(method, target, body);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return {};
  Reply out{r->status, nullptr};
  json::error_code ec;
  out.body = json::parse(r->body, ec);
  if (ec) out.body = json::value(r->body);
  return out;
}

InProcessDaemon::Reply InProcessDaemon::Post(const std::string& target, const json::object& body) {
  return Send("POST", target, json::serialize(body));
}

json::object InProcessDaemon::Checkpoint(pid_t pid, json::object extra) {
  extra["pid"] = pid;
  return WaitedJob("/v2/jobs/checkpoint", std::move(extra));
}

json::object InProcessDaemon::Restore(const std::string& checkpoint_id, json::object extra) {
  extra["checkpoint_id"] = checkpoint_id;
  return WaitedJob("/v2/jobs/restore", std::move(extra));
}

json::object InProcessDaemon::GetCheckpoint(const std::string& id) {
  auto r = Send("GET", "/v2/checkpoints/" + id);
  EXPECT_EQ(r.status, 200) << json::serialize(r.body);
  return r.body.is_object() ? r.body.as_object() : json::object{};
}

json::object InProcessDaemon::WaitedJob(const std::string& route, json::object body) {
  body["wait"] = true;
  auto r = Post(route, body);
  EXPECT_EQ(r.status, 200) << json::serialize(r.body);
  return r.body.is_object() ? r.body.as_object() : json::object{};
}

std::unique_ptr<api::HttpClient> DaemonFixture::Client(std::string token) const {
  auto c = api::HttpClient::Create(BaseUrl(), std::move(token));
  EXPECT_TRUE(c.ok());
  return std::move(c).value();
}

}  // namespace ckptd::testing
