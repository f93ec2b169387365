// Checking UTF-8 that a viewer or a phone sent before it goes on (to the phone, to JavaScript, to viewers):
// well-formed (no overlong forms, no surrogates, nothing above U+10FFFF) and without the control characters
// the receiver would not expect.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cloudphone {

enum class Utf8Controls {
  // Typed text: tab and newline only.
  TabAndNewline,
  // Clipboard text: any but NUL (which ends C strings on the way).
  AllButNul,
};

inline bool well_formed_utf8(const uint8_t* s, std::size_t n, Utf8Controls controls) {
  for (std::size_t i = 0; i < n;) {
    uint8_t c = s[i];
    if (c < 0x80) {
      bool control = c < 0x20 || c == 0x7F;
      if (c == 0) return false;
      if (control && controls == Utf8Controls::TabAndNewline && c != '\t' && c != '\n') return false;
      i++;
      continue;
    }
    std::size_t extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 ? 1 : 0;
    if (extra == 0 || c > 0xF4 || i + extra >= n) return false;
    uint32_t cp = c & (0x3F >> extra);
    for (std::size_t k = 1; k <= extra; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += extra + 1;
  }
  return true;
}

}  // namespace cloudphone
