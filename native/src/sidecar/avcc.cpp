#include "avcc.h"

#include <cstring>

#include "annexb.h"

namespace cloudphone {

std::size_t annexb_to_avcc(const uint8_t* data, std::size_t length, uint8_t* out) {
  std::size_t written = 0;
  for_each_nal_unit(data, length, [&](const uint8_t* nal, std::size_t size) {
    out[written] = static_cast<uint8_t>(size >> 24);
    out[written + 1] = static_cast<uint8_t>(size >> 16);
    out[written + 2] = static_cast<uint8_t>(size >> 8);
    out[written + 3] = static_cast<uint8_t>(size);
    std::memcpy(out + written + 4, nal, size);
    written += 4 + size;
  });
  return written;
}

bool avc_decoder_configuration(const uint8_t* avcc, std::size_t length, std::vector<uint8_t>* record) {
  const uint8_t* sps = nullptr;
  const uint8_t* pps = nullptr;
  std::size_t sps_size = 0, pps_size = 0;
  for_each_avcc_nal_unit(avcc, length, [&](const uint8_t* nal, std::size_t size) {
    int type = nal[0] & 0x1f;
    if (type == 7 && !sps && size >= 4 && size <= 0xffff) sps = nal, sps_size = size;
    if (type == 8 && !pps && size <= 0xffff) pps = nal, pps_size = size;
  });
  if (!sps || !pps) return false;
  record->resize(11 + sps_size + pps_size);
  uint8_t* r = record->data();
  r[0] = 1;        // configurationVersion
  r[1] = sps[1];   // AVCProfileIndication
  r[2] = sps[2];   // profile_compatibility
  r[3] = sps[3];   // AVCLevelIndication
  r[4] = 0xff;     // 6 reserved bits, lengthSizeMinusOne = 3: 4-byte lengths
  r[5] = 0xe1;     // 3 reserved bits, one SPS
  r[6] = static_cast<uint8_t>(sps_size >> 8);
  r[7] = static_cast<uint8_t>(sps_size);
  std::memcpy(r + 8, sps, sps_size);
  r += 8 + sps_size;
  r[0] = 1;  // one PPS
  r[1] = static_cast<uint8_t>(pps_size >> 8);
  r[2] = static_cast<uint8_t>(pps_size);
  std::memcpy(r + 3, pps, pps_size);
  return true;
}

}  // namespace cloudphone
