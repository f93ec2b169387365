#include "mp4_fragments.h"

#include <cstring>

namespace cloudphone {
namespace {

struct Box {
  char type[4];
  uint64_t size;  // header included
};

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// The box header at offset, when the whole box lies within size.
bool box_at(uint64_t offset, uint64_t size, const ReadAt& read, Box* box) {
  uint8_t header[16];
  if (size - offset < 8 || !read(offset, header, 8)) return false;
  std::memcpy(box->type, header + 4, 4);
  uint64_t length = be32(header);
  uint64_t header_length = 8;
  if (length == 1) {  // a 64-bit size follows the type
    if (size - offset < 16 || !read(offset + 8, header + 8, 8)) return false;
    length = (uint64_t{be32(header + 8)} << 32) | be32(header + 12);
    header_length = 16;
  }
  // 0 means "to the end of the file": a box still being written, never a whole one here.
  if (length < header_length || length > size - offset) return false;
  box->size = length;
  return true;
}

bool is(const Box& box, const char* type) { return std::memcmp(box.type, type, 4) == 0; }

}  // namespace

uint64_t complete_fragments_length(uint64_t size, const ReadAt& read) {
  uint64_t offset = 0, whole = 0;
  Box box;
  if (!box_at(offset, size, read, &box) || !is(box, "ftyp")) return 0;
  offset += box.size;
  if (!box_at(offset, size, read, &box) || !is(box, "moov")) return 0;
  offset += box.size;
  bool in_fragment = false;  // a moof seen, its mdat not yet
  while (box_at(offset, size, read, &box)) {
    offset += box.size;
    if (is(box, "moof")) {
      in_fragment = true;
    } else if (is(box, "mdat") && in_fragment) {
      in_fragment = false;
      whole = offset;
    } else if (!in_fragment && (is(box, "mfra") || is(box, "free") || is(box, "skip"))) {
      whole = offset;  // the end of a segment closed cleanly, or padding between fragments
    }
  }
  return whole;
}

}  // namespace cloudphone
