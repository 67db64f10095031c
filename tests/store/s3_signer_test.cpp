// Pure unit tests: SigV4 against AWS's published example, XML extraction,
// addressing, URIs and part sizing.
#include <gtest/gtest.h>

#include "store/object_uri.h"
#include "store/s3_config.h"
#include "store/s3_object_store.h"
#include "store/s3_signer.h"
#include "store/s3_xml.h"

namespace ckptd {
namespace {

TEST(SigV4Test, AwsS3GetObjectExample) {
  // The GET example of the S3 SigV4 documentation ("examplebucket", Range).
  SigV4Request r;
  r.method = "GET";
  r.canonical_uri = "/test.txt";
  r.payload_sha256 = kEmptySha256;
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Range", "bytes=0-9"},
               {"x-amz-content-sha256", std::string(kEmptySha256)},
               {"x-amz-date", "20130524T000000Z"}};
  SigV4Credentials c{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1"};
  SigV4Result s = SignV4(r, c, "20130524T000000Z");
  EXPECT_EQ(s.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41") << s.canonical_request;
  EXPECT_EQ(s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  // Any change to what is signed changes the signature.
  r.headers[1].second = "bytes=0-10";
  EXPECT_NE(SignV4(r, c, "20130524T000000Z").signature, s.signature);
}

TEST(SigV4Test, EncodingAndCanonicalQuery) {
  EXPECT_EQ(AwsUriEncode("a b+c/d~e_f.g-h*", true), "a%20b%2Bc/d~e_f.g-h%2A");
  EXPECT_EQ(AwsUriEncode("a/b=", false), "a%2Fb%3D");
  EXPECT_EQ(AwsUriEncode("\xc3\xa9", false), "%C3%A9");
  EXPECT_EQ(CanonicalQuery({{"uploads", ""}}), "uploads=");
  EXPECT_EQ(CanonicalQuery({{"prefix", "a b"}, {"list-type", "2"}, {"continuation-token", "x/y="}}),
            "continuation-token=x%2Fy%3D&list-type=2&prefix=a%20b");
  EXPECT_EQ(AmzDate(1369353600000), "20130524T000000Z");
}

TEST(S3XmlTest, ExtractsElementsAndEntities) {
  std::string xml = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>
<!-- <Contents><Key>comment</Key></Contents> -->
<IsTruncated>true</IsTruncated><NextContinuationToken>tok&amp;en==</NextContinuationToken>
<Contents><Key>a&lt;b&gt; &#233;&#x41;</Key><Size>12</Size><ETag>&quot;abc&quot;</ETag></Contents>
<Contents><Key><![CDATA[x&y]]></Key><Size>0</Size></Contents><Empty/>
</ListBucketResult>)";
  auto contents = XmlElements(xml, "Contents");
  ASSERT_EQ(contents.size(), 2u);
  EXPECT_EQ(XmlText(contents[0], "Key").value(), "a<b> \xc3\xa9" "A");
  EXPECT_EQ(XmlText(contents[0], "ETag").value(), "\"abc\"");
  EXPECT_EQ(XmlText(contents[1], "Key").value(), "x&y");
  EXPECT_EQ(XmlText(xml, "NextContinuationToken").value(), "tok&en==");
  EXPECT_EQ(XmlText(xml, "Empty").value(), "");
  EXPECT_FALSE(XmlText(xml, "Missing").has_value());
  EXPECT_FALSE(XmlText("<Code>unterminated", "Code").has_value());
  std::string err = "<Error><Code>NoSuchKey</Code><Message>The key does not exist</Message></Error>";
  EXPECT_EQ(XmlText(err, "Code").value(), "NoSuchKey");
  EXPECT_EQ(XmlEscape("<a&'\">"), "&lt;a&amp;&apos;&quot;&gt;");
}

TEST(S3AddressTest, PathAndVirtualHostStyle) {
  S3Config c;
  c.bucket = "bkt";
  c.endpoint = "http://127.0.0.1:4568";
  auto a = MakeS3Address(c, "dir/a b");
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->tls);
  EXPECT_EQ(a->connect_host, "127.0.0.1");
  EXPECT_EQ(a->port, "4568");
  EXPECT_EQ(a->host_header, "127.0.0.1:4568");
  EXPECT_EQ(a->path, "/bkt/dir/a%20b");
  EXPECT_EQ(MakeS3Address(c, "")->path, "/bkt");
  c.endpoint.clear();
  c.region = "eu-west-1";
  a = MakeS3Address(c, "k");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->tls);
  EXPECT_EQ(a->host_header, "bkt.s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(a->port, "443");
  EXPECT_EQ(a->path, "/k");
  c.path_style = true;
  EXPECT_EQ(MakeS3Address(c, "k")->path, "/bkt/k");
}

TEST(S3ConfigTest, EnvironmentFillsEmptyFields) {
  ::setenv("AWS_ACCESS_KEY_ID", "envkey", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
  ::setenv("AWS_SESSION_TOKEN", "envtoken", 1);
  ::unsetenv("AWS_REGION");
  ::setenv("AWS_DEFAULT_REGION", "ap-south-1", 1);
  ::setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9", 1);
  S3Config c;
  c.bucket = "b";
  c.access_key = "explicit";
  c.FillFromEnv();
  EXPECT_EQ(c.access_key, "explicit");
  EXPECT_EQ(c.secret_key, "envsecret");
  EXPECT_EQ(c.session_token, "envtoken");
  EXPECT_EQ(c.region, "ap-south-1");
  EXPECT_EQ(c.endpoint, "http://127.0.0.1:9");
  EXPECT_TRUE(c.Validate().ok());
  c.endpoint = "ftp://x";
  EXPECT_EQ(c.Validate().code(), Code::kInvalidArgument);
  for (auto v : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"})
    ::unsetenv(v);
}

TEST(ObjectUriTest, ParsesFileAndS3) {
  auto f = ObjectUri::Parse("file:///var/lib/ckptd/images/");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->scheme, ObjectUri::Scheme::kFile);
  EXPECT_EQ(f->path, "/var/lib/ckptd/images");
  EXPECT_EQ(f->ToString(), "file:///var/lib/ckptd/images/");
  auto s = ObjectUri::Parse("s3://my-bucket/ckpt/node1");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->scheme, ObjectUri::Scheme::kS3);
  EXPECT_EQ(s->bucket, "my-bucket");
  EXPECT_EQ(s->prefix, "ckpt/node1/");
  EXPECT_EQ(s->ToString(), "s3://my-bucket/ckpt/node1/");
  EXPECT_EQ(ObjectUri::Parse("s3://bkt")->prefix, "");
  EXPECT_TRUE(ObjectUri::Parse("s3://my.bucket-1/x").ok());
  EXPECT_TRUE(ObjectUri::Parse("s3://1.2.3.bkt/x").ok());
  for (auto bad : {"relative/path", "file://otherhost/x", "s3:///nobucket", "http://x/y", "s3://bkt/../x",
                   "file:///a/../b", "s3://bkt/x?y=1",
                   // bucket names S3 would refuse
                   "s3://!@$&'()*+,;=/x/", "s3://ab/x", "s3://Bucket/x", "s3://a..b/x", "s3://-bkt/x",
                   "s3://bkt-/x", "s3://1.2.3.4/x", "s3://0%2E1.2.3.4/x",
                   // a host Boost.URL would split into an address and a path
                   "s3://1.2.3.4a/x", "s3://0.1.2.3.4/", "file://127.0.0.1x/a"}) {
    EXPECT_EQ(ObjectUri::Parse(bad).status().code(), Code::kInvalidArgument) << bad;
  }
  // The factory refuses S3 without credentials, with the URI in the message.
  ObjectStoreConfig cfg;
  cfg.s3_from_env = false;
  auto st = OpenObjectStore("s3://bkt/p/", cfg);
  EXPECT_EQ(st.status().code(), Code::kInvalidArgument);
  EXPECT_NE(st.status().message().find("s3://bkt/p/"), std::string::npos);
}

TEST(PartSizeTest, FitsIn10000Parts) {
  S3Config c;  // 8 MiB default
  constexpr uint64_t kGiB = 1ull << 30;
  uint64_t size = 500 * kGiB;
  uint64_t total = 0;
  int parts = 0;
  while (total < size) total += S3ObjectStore::PartSizeFor(c, size, ++parts);
  EXPECT_LE(parts, 10000);
  EXPECT_GE(S3ObjectStore::PartSizeFor(c, size, 1), 5ull << 20);
  // Small objects keep the configured part size.
  EXPECT_EQ(S3ObjectStore::PartSizeFor(c, 100ull << 20, 1), 8ull << 20);
  // Unknown size: growing parts reach 5 TiB within 10,000 parts, none > 5 GiB.
  total = 0;
  uint64_t biggest = 0;
  for (int n = 1; n <= 10000; ++n) {
    uint64_t p = S3ObjectStore::PartSizeFor(c, std::nullopt, n);
    total += p;
    biggest = std::max(biggest, p);
  }
  EXPECT_GE(total, 5ull << 40);
  EXPECT_LE(biggest, 5ull << 30);
  // Below the S3 minimum only when explicitly allowed.
  c.part_size = 1 << 20;
  EXPECT_EQ(S3ObjectStore::PartSizeFor(c, std::nullopt, 1), 5ull << 20);
  c.allow_small_parts = true;
  EXPECT_EQ(S3ObjectStore::PartSizeFor(c, std::nullopt, 1), 1ull << 20);
}

}  // namespace
}  // namespace ckptd
