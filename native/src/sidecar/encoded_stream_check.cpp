#include "encoded_stream_check.h"

#include "annexb.h"

namespace cloudphone {
namespace {

// Reads the bits of a NAL unit's payload, dropping emulation prevention bytes (00 00 03 -> 00 00). Reading
// past the end yields zeros and sets failed(), so a cut-short parameter set is refused, never over-read.
class RbspReader {
 public:
  RbspReader(const uint8_t* data, std::size_t length) : data_(data), length_(length) {}

  bool failed() const { return failed_; }

  uint32_t bit() {
    if (bits_left_ == 0 && !next_byte()) {
      failed_ = true;
      return 0;
    }
    bits_left_--;
    return (current_ >> bits_left_) & 1u;
  }

  uint32_t bits(int count) {
    uint32_t value = 0;
    for (int i = 0; i < count; i++) value = value << 1 | bit();
    return value;
  }

  // Exp-Golomb ue(v): at most 31 leading zeros, so the value fits 32 bits.
  uint32_t ue() {
    int zeros = 0;
    while (bit() == 0) {
      if (failed_ || ++zeros > 31) {
        failed_ = true;
        return 0;
      }
    }
    if (failed_) return 0;
    uint64_t value = (uint64_t{1} << zeros) - 1 + bits(zeros);
    return static_cast<uint32_t>(value);
  }

  // Exp-Golomb se(v), in 64 bits so that no ue(v) can overflow it.
  int64_t se() {
    uint32_t k = ue();
    return (k & 1u) ? static_cast<int64_t>((uint64_t{k} + 1) / 2) : -static_cast<int64_t>(k / 2);
  }

 private:
  bool next_byte() {
    if (pos_ < length_ && zeros_ >= 2 && data_[pos_] == 3) {
      pos_++;
      zeros_ = 0;
    }
    if (pos_ >= length_) return false;
    current_ = data_[pos_++];
    zeros_ = current_ == 0 ? zeros_ + 1 : 0;
    bits_left_ = 8;
    return true;
  }

  const uint8_t* data_;
  std::size_t length_;
  std::size_t pos_ = 0;
  int zeros_ = 0;
  uint8_t current_ = 0;
  int bits_left_ = 0;
  bool failed_ = false;
};

const char* nal_type_name(int type) {
  switch (type) {
    case 2:
    case 3:
    case 4:
      return "a slice data partition, Extended profile only";
    case 13:
      return "an SPS extension";
    case 14:
      return "an SVC prefix";
    case 15:
      return "a subset SPS, for SVC or MVC";
    case 19:
      return "an auxiliary picture";
    case 20:
      return "an SVC or MVC slice";
    case 21:
      return "a 3D-AVC slice";
    default:
      return type == 0 || type >= 24 ? "unspecified" : "reserved";
  }
}

const char* profile_name(uint32_t profile) {
  switch (profile) {
    case 44:
      return "CAVLC 4:4:4 Intra";
    case 88:
      return "Extended";
    case 110:
      return "High 10";
    case 122:
      return "High 4:2:2";
    case 244:
      return "High 4:4:4 Predictive";
    case 83:
    case 86:
      return "Scalable";
    case 118:
    case 128:
      return "Multiview";
    default:
      return "unknown";
  }
}

// Skips one scaling_list() of an SPS (H.264 7.3.2.1.1.1); false when a delta is out of range.
bool skip_scaling_list(RbspReader& r, int size) {
  int64_t last = 8, next = 8;
  for (int j = 0; j < size && !r.failed(); j++) {
    if (next != 0) {
      int64_t delta = r.se();
      if (delta < -128 || delta > 127) return false;
      next = (last + delta + 256) % 256;
    }
    if (next != 0) last = next;
  }
  return true;
}

uint32_t round_up_to_macroblock(uint32_t size) { return (size + 15) / 16 * 16; }

constexpr int kNalSlice = 1, kNalIdrSlice = 5, kNalSps = 7, kNalPps = 8;
constexpr uint32_t kHighestLevel = 52;  // 5.2: the highest level browsers' decoders take

}  // namespace

void EncodedStreamCheck::reset(uint32_t width, uint32_t height) {
  width_ = width;
  height_ = height;
  known_sps_ = 0;
  waiting_for_keyframe_ = true;
}

EncodedStreamCheck::Verdict EncodedStreamCheck::check(const uint8_t* data, std::size_t length, bool* keyframe,
                                                      std::string* why) {
  UnitSummary unit;
  std::string problem;
  for_each_nal_unit(data, length, [&](const uint8_t* nal, std::size_t size) {
    if (problem.empty()) problem = check_nal_unit(nal, size, &unit);
  });
  if (problem.empty() && unit.slices == 0) problem = "an access unit holds no picture (no slice)";
  if (problem.empty() && unit.idr_slices != 0 && unit.idr_slices != unit.slices)
    problem = "an access unit mixes IDR and other slices";
  if (problem.empty() && unit.idr_slices && (!unit.sps || !unit.pps))
    problem = "an IDR picture must bring its SPS and PPS: a receiver starts decoding there";
  if (!problem.empty()) {
    *why = std::move(problem);
    waiting_for_keyframe_ = true;
    return Verdict::Refused;
  }
  if (waiting_for_keyframe_ && unit.idr_slices == 0) return Verdict::WaitingForKeyframe;
  waiting_for_keyframe_ = false;
  known_sps_ |= unit.sps_ids;
  *keyframe = unit.idr_slices != 0;
  return Verdict::Pass;
}

std::string EncodedStreamCheck::check_nal_unit(const uint8_t* nal, std::size_t size, UnitSummary* unit) const {
  if (nal[0] & 0x80) return "a NAL unit has its forbidden bit set";
  int type = nal[0] & 0x1f;
  switch (type) {
    case kNalSlice:
      unit->slices++;
      return {};
    case kNalIdrSlice:
      unit->slices++;
      unit->idr_slices++;
      return {};
    case 6:   // SEI
    case 9:   // access unit delimiter
    case 10:  // end of sequence
    case 11:  // end of stream
    case 12:  // filler
      return {};
    case kNalSps: {
      uint32_t id = 0;
      std::string problem = check_sps(nal + 1, size - 1, &id);
      if (problem.empty()) {
        unit->sps_ids |= 1u << id;
        unit->sps = true;
      }
      return problem;
    }
    case kNalPps: {
      RbspReader reader(nal + 1, size - 1);
      uint32_t pps = reader.ue(), sps = reader.ue();
      if (reader.failed() || pps > 255 || sps > 31) return "a PPS cannot be read";
      if (((known_sps_ | unit->sps_ids) & (1u << sps)) == 0)
        return "PPS " + std::to_string(pps) + " refers to SPS " + std::to_string(sps) + ", which the phone has not sent";
      unit->pps = true;
      return {};
    }
    default:
      return "NAL unit type " + std::to_string(type) + " (" + nal_type_name(type) + ") is not one a viewer decodes";
  }
}

std::string EncodedStreamCheck::check_sps(const uint8_t* payload, std::size_t length, uint32_t* id) const {
  RbspReader r(payload, length);
  uint32_t profile = r.bits(8);
  r.bits(8);  // constraint flags
  uint32_t level = r.bits(8);
  *id = r.ue();
  if (r.failed()) return "an SPS is cut short";
  if (*id > 31) return "an SPS has id " + std::to_string(*id) + ", above 31";
  if (profile != 66 && profile != 77 && profile != 100)
    return "SPS profile " + std::to_string(profile) + " (" + profile_name(profile) +
           ") is not one every viewer decodes: Baseline (66), Main (77) or High (100)";
  if (level > kHighestLevel) return "SPS level " + std::to_string(level) + " is above 5.2 (52)";
  if (profile == 100) {
    uint32_t chroma = r.ue();
    if (chroma != 1) return "SPS chroma format " + std::to_string(chroma) + " is not 4:2:0 (1)";
    uint32_t luma_depth = r.ue(), chroma_depth = r.ue();
    if (luma_depth != 0 || chroma_depth != 0) return "SPS bit depth is not 8";
    r.bit();  // qpprime_y_zero_transform_bypass
    if (r.bit()) {
      for (int i = 0; i < 8; i++)
        if (r.bit() && !skip_scaling_list(r, i < 6 ? 16 : 64)) return "an SPS has a scaling list out of range";
    }
  }
  if (r.ue() > 12) return "an SPS has log2_max_frame_num above 16";
  uint32_t order_type = r.ue();
  if (order_type == 0) {
    if (r.ue() > 12) return "an SPS has log2_max_pic_order_cnt_lsb above 16";
  } else if (order_type == 1) {
    r.bit();
    r.se();
    r.se();
    uint32_t cycle = r.ue();
    if (cycle > 255) return "an SPS has more than 255 reference frames in its picture order cycle";
    for (uint32_t i = 0; i < cycle && !r.failed(); i++) r.se();
  } else if (order_type != 2) {
    return "an SPS has picture order count type " + std::to_string(order_type) + ", above 2";
  }
  if (r.ue() > 16) return "an SPS has more than 16 reference frames";
  r.bit();  // gaps_in_frame_num_value_allowed
  uint32_t width_mbs = r.ue(), height_mbs = r.ue();
  if (width_mbs > 1023 || height_mbs > 1023) return "an SPS describes a picture over 16384 pixels on a side";
  if (!r.bit()) return "an SPS describes interlaced video, which viewers do not take";
  r.bit();  // direct_8x8_inference
  uint64_t crop[4] = {0, 0, 0, 0};
  if (r.bit())
    for (uint64_t& side : crop) side = r.ue();
  if (r.failed()) return "an SPS is cut short";
  // 4:2:0 progressive: cropping counts in units of two pixels each way.
  uint64_t coded_width = (uint64_t{width_mbs} + 1) * 16, coded_height = (uint64_t{height_mbs} + 1) * 16;
  if (2 * (crop[0] + crop[1]) >= coded_width || 2 * (crop[2] + crop[3]) >= coded_height)
    return "an SPS crops away its whole picture";
  uint64_t width = coded_width - 2 * (crop[0] + crop[1]), height = coded_height - 2 * (crop[2] + crop[3]);
  // The announced size, or (an encoder that does not crop) that size rounded up to whole macroblocks.
  if (width < width_ || height < height_ || width > round_up_to_macroblock(width_) ||
      height > round_up_to_macroblock(height_))
    return "SPS picture " + std::to_string(width) + "x" + std::to_string(height) + " is not the announced surface " +
           std::to_string(width_) + "x" + std::to_string(height_);
  return {};
}

}  // namespace cloudphone
