// H.264 in the form FLV and MP4 carry it ("AVCC"): each NAL unit after a 4-byte big-endian length instead of a
// start code, and the SPS and PPS in an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1) that the
// container keeps apart. Handing libavformat's FLV or MP4 muxer pictures already in this form, with the record
// as extradata, is what keeps it from converting each picture into a buffer it allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cloudphone {

// The most bytes annexb_to_avcc writes for an Annex-B unit of this size: a 3-byte start code before a 1-byte
// NAL unit is the worst case (4 bytes become 5).
constexpr std::size_t avcc_max_size(std::size_t annexb_size) { return annexb_size + annexb_size / 4 + 4; }

// Writes the NAL units of an Annex-B access unit as AVCC to out (room for avcc_max_size(length)); returns the
// bytes written. Copies each unit once; allocates nothing.
std::size_t annexb_to_avcc(const uint8_t* data, std::size_t length, uint8_t* out);

// Calls visit(nal, size) for each NAL unit of an AVCC access unit, stopping at a length that overruns it.
template <typename Visit>
void for_each_avcc_nal_unit(const uint8_t* data, std::size_t length, Visit visit) {
  std::size_t at = 0;
  while (at + 4 <= length) {
    std::size_t size = (std::size_t{data[at]} << 24) | (std::size_t{data[at + 1]} << 16) |
                       (std::size_t{data[at + 2]} << 8) | std::size_t{data[at + 3]};
    at += 4;
    if (size == 0 || size > length - at) return;
    visit(data + at, size);
    at += size;
  }
}

// The AVCDecoderConfigurationRecord of an AVCC keyframe's first SPS and PPS, into *record (which allocates only
// when it grows). False when the unit lacks either.
bool avc_decoder_configuration(const uint8_t* avcc, std::size_t length, std::vector<uint8_t>* record);

}  // namespace cloudphone
