// ckptctl: command-line client for ckptd's API.
//
//   ckptctl [--url URL] [--token T | --token-file F] [--json] list [--limit N]
//   ckptctl get ID
//   ckptctl deprecate ID
//
// URL and token come from flags, then CKPTD_URL / CKPTD_TOKEN /
// CKPTD_TOKEN_FILE, then the defaults (http://127.0.0.1:8080 and the
// daemon's default token file /var/lib/ckptd/token).
// Exit codes: 0 success, 1 the API refused (message printed), 2 usage,
// 3 the daemon could not be reached.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "api/client.h"

namespace json = boost::json;

namespace {

constexpr int kExitApiError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

struct Globals {
  std::string url = "http://127.0.0.1:8080";
  std::string token;
  std::string token_file = "/var/lib/ckptd/token";
  bool json_output = false;
};

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

std::string JsonString(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_null()) return "-";
  return json::serialize(v);
}

// Prints the API's error message and returns the exit code for it.
int ReportFailure(const ckptd::Result<ckptd::api::ClientResponse>& r) {
  if (!r.ok()) {
    std::cerr << "ckptctl: " << r.status().message() << "\n";
    return r.status().code() == ckptd::Code::kInvalidArgument ? kExitUsage : kExitUnreachable;
  }
  std::string message = r->body;
  json::error_code ec;
  auto v = json::parse(r->body, ec);
  if (!ec && v.is_object() && v.as_object().contains("message")) message = JsonString(v.at("message"));
  std::cerr << "ckptctl: HTTP " << r->status << ": " << message << "\n";
  return kExitApiError;
}

void PrintTable(const json::array& items) {
  std::printf("%-36s  %-18s  %-17s  %-10s  %-24s  %s\n", "ID", "NAME", "STATUS", "GPU", "CREATED", "RESTORE_PATH");
  for (const auto& item : items) {
    const auto& o = item.as_object();
    std::string name = JsonString(o.at("name"));
    if (name.size() > 18) name = name.substr(0, 15) + "...";
    std::string gpu = JsonString(o.at("gpu"));
    if (gpu.empty()) gpu = "-";
    std::printf("%-36s  %-18s  %-17s  %-10s  %-24s  %s\n", JsonString(o.at("id")).c_str(), name.c_str(),
                JsonString(o.at("status")).c_str(), gpu.c_str(),
                o.contains("created_at") ? JsonString(o.at("created_at")).c_str() : "-",
                o.contains("restore_path") ? JsonString(o.at("restore_path")).c_str() : "-");
  }
}

void PrintDetails(const json::object& o) {
  for (const char* key : {"id", "name", "status", "gpu", "platform", "checksum", "restore_path", "created_at",
                          "updated_at", "cleaned_at"}) {
    if (o.contains(key)) std::printf("%-13s %s\n", (std::string(key) + ":").c_str(), JsonString(o.at(key)).c_str());
  }
  if (o.contains("info")) std::printf("%-13s %s\n", "info:", json::serialize(o.at("info")).c_str());
  if (o.contains("history")) {
    for (const auto& h : o.at("history").as_array()) {
      std::printf("%-13s %s -> %s at %s\n", "transition:", JsonString(h.at("from")).c_str(),
                  JsonString(h.at("to")).c_str(), JsonString(h.at("at")).c_str());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Globals g;
  g.url = EnvOr("CKPTD_URL", g.url);
  g.token = EnvOr("CKPTD_TOKEN", g.token);
  g.token_file = EnvOr("CKPTD_TOKEN_FILE", g.token_file);

  CLI::App app{"ckptctl: talk to the ckptd checkpoint daemon"};
  app.set_version_flag("--version", std::string("ckptctl ") + CKPTD_VERSION);
  app.add_option("--url", g.url, "daemon URL (env CKPTD_URL)");
  app.add_option("--token", g.token, "API token (env CKPTD_TOKEN)");
  app.add_option("--token-file", g.token_file, "file holding the API token (env CKPTD_TOKEN_FILE)");
  app.add_flag("--json", g.json_output, "print the API's JSON instead of a table");
  app.require_subcommand(1);

  int limit = 0;
  auto* list = app.add_subcommand("list", "list checkpoints in creation order");
  list->add_option("--limit", limit, "at most N checkpoints")->check(CLI::Range(1, 1000));
  std::string id;
  auto* get = app.add_subcommand("get", "show one checkpoint");
  get->add_option("id", id, "checkpoint id")->required();
  auto* deprecate = app.add_subcommand("deprecate", "mark a checkpoint deprecated (cleanup removes its images)");
  deprecate->add_option("id", id, "checkpoint id")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }

  if (g.token.empty()) {
    std::ifstream in(g.token_file);
    if (!in) {
      std::cerr << "ckptctl: no token: pass --token, set CKPTD_TOKEN, or make " << g.token_file
                << " readable (--token-file)\n";
      return kExitUsage;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    g.token = ss.str();
    while (!g.token.empty() && std::isspace(static_cast<unsigned char>(g.token.back()))) g.token.pop_back();
  }
  auto client = ckptd::api::HttpClient::Create(g.url, g.token);
  if (!client.ok()) {
    std::cerr << "ckptctl: " << client.status().message() << "\n";
    return kExitUsage;
  }

  if (*list) {
    std::string target = "/v2/checkpoints" + (limit ? "?limit=" + std::to_string(limit) : std::string());
    auto r = (*client)->Send("GET", target);
    if (!r.ok() || r->status != 200) return ReportFailure(r);
    if (g.json_output) {
      std::cout << r->body << "\n";
    } else {
      PrintTable(json::parse(r->body).as_array());
    }
    return 0;
  }
  if (*get) {
    auto r = (*client)->Send("GET", "/v2/checkpoints/" + id);
    if (!r.ok() || r->status != 200) return ReportFailure(r);
    if (g.json_output) {
      std::cout << r->body << "\n";
    } else {
      PrintDetails(json::parse(r->body).as_object());
    }
    return 0;
  }
  if (*deprecate) {
    auto r = (*client)->Send("PATCH", "/v2/checkpoints/deprecate/" + id);
    if (!r.ok() || r->status != 200) return ReportFailure(r);
    if (g.json_output) {
      std::cout << json::serialize(json::object{{"id", r->body}, {"status", "deprecated"}}) << "\n";
    } else {
      std::cout << "deprecated " << r->body << "\n";
    }
    return 0;
  }
  return kExitUsage;
}
