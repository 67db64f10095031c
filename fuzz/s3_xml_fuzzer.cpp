// Fuzz target (d): S3 response bodies as store/s3_xml.h reads them (the
// answers of an S3 endpoint we do not control: listings, multipart
// uploads, errors). Every tag the S3 client and object store look up is
// extracted, as they do, from the whole document and from each container.
// Checks: extracted elements lie inside the document, and
// XmlDecode(XmlEscape(x)) == x.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_util.h"
#include "store/s3_xml.h"

namespace {

// The tags store/s3_client.cpp and store/s3_object_store.cpp read.
constexpr std::string_view kLeaves[] = {"Code", "Message", "Key",         "UploadId",
                                        "Size", "ETag",    "IsTruncated", "NextContinuationToken"};
constexpr std::string_view kContainers[] = {"Error", "Contents", "Upload"};

void CheckInside(std::string_view doc, std::string_view el) {
  if (el.empty()) return;
  if (el.data() < doc.data() || el.data() + el.size() > doc.data() + doc.size())
    ckptd::fuzz::Fail("XmlElements returned a view outside the document");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ckptd;
  std::string_view xml(reinterpret_cast<const char*>(data), size);
  for (auto c : kContainers) {
    for (std::string_view el : XmlElements(xml, c)) {
      CheckInside(xml, el);
      for (auto leaf : kLeaves) {
        for (std::string_view inner : XmlElements(el, leaf)) CheckInside(el, inner);
        (void)XmlText(el, leaf);
      }
    }
  }
  for (auto leaf : kLeaves) (void)XmlText(xml, leaf);
  (void)XmlDecode(xml);
  std::string escaped = XmlEscape(xml);
  if (XmlDecode(escaped) != xml) fuzz::Fail("XmlDecode(XmlEscape(x)) != x", std::string(xml));
  return 0;
}
