// Minimal XML extraction for S3 responses: finds elements by local name
// and returns their text with entities decoded. Not a general parser: S3's
// answers are flat, namespace-default documents, and we only read leaf
// elements (UploadId, ETag, Key, Size, ...) and a few containers
// (Contents, Error). Thread-safe (pure functions).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ckptd {

// Inner XML (raw, not decoded) of each <tag ...>...</tag> in order; nested
// same-name elements are not supported (S3 does not produce them).
// <tag/> yields "". Comments, CDATA and processing instructions are skipped
// when searching.
std::vector<std::string_view> XmlElements(std::string_view xml, std::string_view tag);
// Decoded text of the first <tag>, or nullopt.
std::optional<std::string> XmlText(std::string_view xml, std::string_view tag);
// Decodes &amp; &lt; &gt; &quot; &apos; &#NN; &#xNN; and CDATA sections.
std::string XmlDecode(std::string_view text);
// Escapes & < > " ' for element text.
std::string XmlEscape(std::string_view text);

}  // namespace ckptd
