// UTF-8 validity (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF). What arrives percent-encoded in a request target is decoded to
// bytes that may be anything; JSON answers that echo it must stay JSON.
// Thread safety: pure function.
#pragma once

#include <string_view>

namespace ckptd {

bool IsValidUtf8(std::string_view s);

}  // namespace ckptd
