// JsonReader: fields read without exceptions, the first problem named.
#include <limits>

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/json_reader.h"

namespace ckptd {
namespace {

namespace json = boost::json;

TEST(JsonReaderTest, ReadsFieldsAndNamesTheFirstProblem) {
  json::value v = json::parse(R"({"s":"x","i":-3,"u":7,"b":true,"a":[1],"n":null,"bad":"seven"})");
  JsonReader r(v, "record");
  EXPECT_EQ(r.String("s"), "x");
  EXPECT_EQ(r.Int("i"), -3);
  EXPECT_EQ(r.Uint("u"), 7u);
  EXPECT_TRUE(r.Bool("b"));
  EXPECT_EQ(r.Array("a").size(), 1u);
  EXPECT_FALSE(r.OptString("n"));
  EXPECT_FALSE(r.OptInt("absent"));
  EXPECT_EQ(r.OptArray("absent"), nullptr);
  EXPECT_TRUE(r.ok()) << r.status().ToString();

  EXPECT_EQ(r.Int("bad"), 0);
  EXPECT_EQ(r.String("missing"), "");  // a later problem does not replace the first
  Status st = r.status();
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_EQ(st.message(), "record: field 'bad' must be an integer");
}

TEST(JsonReaderTest, MissingFieldsAndNonObjects) {
  json::value v = json::parse(R"({"a":1})");
  JsonReader r(v, "body", Code::kInvalidArgument);
  r.String("name");
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "body: field 'name' is missing");
  json::value arr = json::parse("[1,2]");
  JsonReader not_object(arr, "manifest");
  EXPECT_EQ(not_object.status().message(), "manifest: not a JSON object");
  EXPECT_EQ(not_object.Uint("x"), 0u);
  EXPECT_TRUE(not_object.object().empty());
}

}  // namespace
}  // namespace ckptd

namespace ckptd {
namespace {

TEST(AllNumbersFiniteTest, FindsInfinityAnywhere) {
  boost::json::error_code ec;
  EXPECT_TRUE(AllNumbersFinite(boost::json::parse(R"({"a":[1,2.5,{"b":-3e300}],"c":"1e999"})", ec)));
  // Boost.JSON reads an overflowing number as infinity and would write it
  // back as `Infinity`, which is not JSON.
  EXPECT_FALSE(AllNumbersFinite(boost::json::parse(R"({"a":{"b":[0,1e400]}})", ec)));
  EXPECT_FALSE(AllNumbersFinite(boost::json::parse("-1e3081", ec)));
  EXPECT_FALSE(AllNumbersFinite(boost::json::value(std::numeric_limits<double>::quiet_NaN())));
}

}  // namespace
}  // namespace ckptd
