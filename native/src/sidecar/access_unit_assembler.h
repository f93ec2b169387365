// Puts a phone's encoded H.264 access unit back together from its EncodedFrame fragments (a frame larger
// than one control message comes in pieces, in order). Every fragment is checked against the one before:
// same generation, size and capture time, the next offset, nothing past the announced size, and the whole
// under a hard cap. A frame left unfinished when the next one begins is dropped and counted. The buffer
// grows only at a new largest frame, so steady state allocates nothing.
//
// The MPEG-TS muxer wants an access unit delimiter first (without one it copies every frame to add it);
// phones' encoders rarely write one, so the assembler keeps room for it in front and fills it in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cloudphone {

struct EncodedFragment {
  uint32_t generation = 0;
  int64_t capture_time_ns = 0;
  bool keyframe = false;
  const uint8_t* data = nullptr;
  std::size_t length = 0;
  uint32_t offset = 0;
  uint32_t frame_size = 0;  // 0: this fragment is the whole access unit
};

class AccessUnitAssembler {
 public:
  static constexpr std::size_t kMaxAccessUnit = 4u * 1024u * 1024u;  // CP_ENCODED_FRAME_MAX
  enum class Result { Incomplete, Complete, Refused };

  // Adds one fragment. Refused sets *why; Complete means data()/size() hold a whole access unit until the
  // next call.
  Result add(const EncodedFragment& fragment, std::string* why);
  void reset();

  const uint8_t* data() const { return buffer_.data() + start_; }
  std::size_t size() const { return kPrefix + received_ - start_; }
  int64_t capture_time_ns() const { return capture_time_ns_; }
  uint64_t abandoned() const { return abandoned_; }

 private:
  static constexpr std::size_t kPrefix = 6;  // 00 00 00 01 09 F0: an access unit delimiter

  std::vector<uint8_t> buffer_;
  bool assembling_ = false;
  uint32_t generation_ = 0;
  int64_t capture_time_ns_ = 0;
  bool keyframe_ = false;
  std::size_t expected_ = 0;
  std::size_t received_ = 0;
  std::size_t start_ = kPrefix;
  uint64_t abandoned_ = 0;
};

// True when the bytes begin with an Annex-B start code (00 00 01 or 00 00 00 01).
bool starts_with_start_code(const uint8_t* data, std::size_t length);

// Replaces *out with the SPS and PPS NAL units of an Annex-B access unit (each behind a 4-byte start code);
// leaves it alone when there are none. Reuses *out's capacity.
void copy_parameter_sets(const uint8_t* data, std::size_t length, std::vector<uint8_t>* out);

}  // namespace cloudphone
