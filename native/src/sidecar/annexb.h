// Walking the NAL units of an Annex-B H.264 byte stream, for the readers of phone-encoded access units.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cloudphone {

// Calls visit(nal, length) for each non-empty NAL unit (header byte first), in order. Each unit runs to the next
// start code (00 00 01) or the end; zeros before a start code belong to it (a 4-byte start code), not the unit.
// Bytes before the first start code are skipped.
template <typename Visit>
void for_each_nal_unit(const uint8_t* data, std::size_t length, Visit visit) {
  auto next_start = [&](std::size_t from) {
    for (std::size_t k = from; k + 3 <= length; k++)
      if (data[k] == 0 && data[k + 1] == 0 && data[k + 2] == 1) return k;
    return length;
  };
  for (std::size_t i = next_start(0); i < length;) {
    std::size_t nal = i + 3;
    std::size_t end = next_start(nal);
    std::size_t stop = end;
    while (stop > nal && data[stop - 1] == 0) stop--;
    i = end;
    if (nal < stop) visit(data + nal, stop - nal);
  }
}

}  // namespace cloudphone
