#include "store/s3_xml.h"

#include <cstdint>
#include <cstdlib>

namespace ckptd {
namespace {

bool IsNameEnd(char c) { return c == '>' || c == '/' || c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Skips "<!-- -->", "<![CDATA[ ]]>", "<? ?>" starting at pos; returns the
// position after it, or pos when there is none.
size_t SkipSpecial(std::string_view xml, size_t pos) {
  auto skip_to = [&](std::string_view open, std::string_view close) -> size_t {
    if (xml.substr(pos, open.size()) != open) return std::string_view::npos;
    size_t e = xml.find(close, pos + open.size());
    return e == std::string_view::npos ? xml.size() : e + close.size();
  };
  for (auto [o, c] : {std::pair<std::string_view, std::string_view>{"<!--", "-->"},
                      {"<![CDATA[", "]]>"},
                      {"<?", "?>"},
                      {"<!", ">"}}) {
    size_t e = skip_to(o, c);
    if (e != std::string_view::npos) return e;
  }
  return pos;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x110000) {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

std::vector<std::string_view> XmlElements(std::string_view xml, std::string_view tag) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < xml.size()) {
    size_t lt = xml.find('<', pos);
    if (lt == std::string_view::npos) break;
    size_t after = SkipSpecial(xml, lt);
    if (after != lt) {
      pos = after;
      continue;
    }
    // Opening tag with this exact name (optionally namespace-prefixed "s3:").
    size_t name_start = lt + 1;
    size_t name_end = name_start;
    while (name_end < xml.size() && !IsNameEnd(xml[name_end])) ++name_end;
    std::string_view name = xml.substr(name_start, name_end - name_start);
    if (size_t colon = name.find(':'); colon != std::string_view::npos) name = name.substr(colon + 1);
    size_t gt = xml.find('>', name_end);
    if (gt == std::string_view::npos) break;
    if (name != tag || xml[name_start] == '/') {
      pos = gt + 1;
      continue;
    }
    if (xml[gt - 1] == '/') {  // <tag/>
      out.emplace_back();
      pos = gt + 1;
      continue;
    }
    // Find the matching close tag, skipping CDATA/comments inside.
    std::string_view full_name = xml.substr(name_start, name_end - name_start);
    std::string close = "</" + std::string(full_name);
    size_t p = gt + 1;
    size_t end = std::string_view::npos;
    while (p < xml.size()) {
      size_t l = xml.find('<', p);
      if (l == std::string_view::npos) break;
      size_t a = SkipSpecial(xml, l);
      if (a != l) {
        p = a;
        continue;
      }
      if (xml.substr(l, close.size()) == close && l + close.size() < xml.size() &&
          (xml[l + close.size()] == '>' || IsNameEnd(xml[l + close.size()]))) {
        end = l;
        break;
      }
      p = l + 1;
    }
    if (end == std::string_view::npos) break;  // unterminated: ignore the rest
    out.push_back(xml.substr(gt + 1, end - gt - 1));
    pos = xml.find('>', end);
    if (pos == std::string_view::npos) break;
    ++pos;
  }
  return out;
}

std::optional<std::string> XmlText(std::string_view xml, std::string_view tag) {
  auto els = XmlElements(xml, tag);
  if (els.empty()) return std::nullopt;
  return XmlDecode(els.front());
}

std::string XmlDecode(std::string_view t) {
  std::string out;
  out.reserve(t.size());
  for (size_t i = 0; i < t.size();) {
    if (t.substr(i, 9) == "<![CDATA[") {
      size_t e = t.find("]]>", i + 9);
      if (e == std::string_view::npos) e = t.size();
      out.append(t.substr(i + 9, e - i - 9));
      i = e + 3;
      continue;
    }
    if (t[i] != '&') {
      out.push_back(t[i++]);
      continue;
    }
    size_t semi = t.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) {
      out.push_back(t[i++]);
      continue;
    }
    std::string_view ent = t.substr(i + 1, semi - i - 1);
    if (ent == "amp")
      out.push_back('&');
    else if (ent == "lt")
      out.push_back('<');
    else if (ent == "gt")
      out.push_back('>');
    else if (ent == "quot")
      out.push_back('"');
    else if (ent == "apos")
      out.push_back('\'');
    else if (ent.size() > 1 && ent[0] == '#') {
      bool hex = ent[1] == 'x' || ent[1] == 'X';
      std::string digits(ent.substr(hex ? 2 : 1));
      char* endp = nullptr;
      unsigned long cp = std::strtoul(digits.c_str(), &endp, hex ? 16 : 10);
      if (digits.empty() || *endp != '\0') {
        out.append(t.substr(i, semi - i + 1));
      } else {
        AppendUtf8(static_cast<uint32_t>(cp), &out);
      }
    } else {
      out.append(t.substr(i, semi - i + 1));  // unknown entity: keep as is
    }
    i = semi + 1;
  }
  return out;
}

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

}  // namespace ckptd
