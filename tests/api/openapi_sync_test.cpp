// /openapi.json describes exactly the routes the daemon registers.
#include <set>

#include <boost/json.hpp>

#include "api/meta_handlers.h"
#include "tests/testing/daemon_fixture.h"

namespace ckptd {
namespace {

namespace json = boost::json;
using testing::DaemonFixture;

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class OpenApiTest : public DaemonFixture {};

TEST_F(OpenApiTest, DocumentMatchesTheRouter) {
  auto r = Client()->Send("GET", "/openapi.json");
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->body, api::OpenApiDocument());
  auto doc = json::parse(r->body).as_object();
  EXPECT_EQ(doc.at("openapi").as_string(), "3.1.0");

  std::set<std::string> documented, registered;
  for (const auto& [path, item] : doc.at("paths").as_object()) {
    for (const auto& [method, op] : item.as_object()) {
      documented.insert(Lower(std::string(method)) + " " + std::string(path));
      ASSERT_TRUE(op.as_object().contains("responses")) << path;
    }
  }
  for (const auto& route : daemon_->router().routes()) {
    registered.insert(Lower(route.method) + " " + route.pattern);
  }
  for (const auto& d : documented) EXPECT_TRUE(registered.count(d)) << "documented but not served: " << d;
  for (const auto& g : registered) EXPECT_TRUE(documented.count(g)) << "served but not documented: " << g;
}

TEST_F(OpenApiTest, OnlyHealthSkipsAuth) {
  auto doc = json::parse(api::OpenApiDocument()).as_object();
  for (const auto& route : daemon_->router().routes()) {
    const auto& op = doc.at("paths").at(route.pattern).at(Lower(route.method)).as_object();
    bool documented_open = op.contains("security") && op.at("security").as_array().empty();
    EXPECT_EQ(documented_open, !route.options.auth) << route.method << " " << route.pattern;
  }
}

}  // namespace
}  // namespace ckptd
