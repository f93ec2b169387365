// Finds how much of a fragmented MP4 is whole: a recording segment cut short (the sidecar killed, the volume
// full) ends in a fragment half written. Everything before that fragment plays, so the segment is kept up to
// there instead of being lost.
#pragma once

#include <cstdint>
#include <functional>

namespace cloudphone {

// read(offset, out, length) reads exactly length bytes at offset into out, or returns false.
using ReadAt = std::function<bool(uint64_t offset, uint8_t* out, uint64_t length)>;

// The length of the longest prefix of a size-byte file that is an ftyp and a moov box followed by whole
// moof+mdat fragments (at least one); 0 when there is no such prefix. Reads only box headers, and never past
// size, whatever sizes the boxes claim.
uint64_t complete_fragments_length(uint64_t size, const ReadAt& read);

}  // namespace cloudphone
