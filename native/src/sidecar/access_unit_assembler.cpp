#include "access_unit_assembler.h"

#include <cstring>

#include "annexb.h"

namespace cloudphone {

bool starts_with_start_code(const uint8_t* data, std::size_t length) {
  if (length >= 3 && data[0] == 0 && data[1] == 0 && data[2] == 1) return true;
  return length >= 4 && data[0] == 0 && data[1] == 0 && data[2] == 0 && data[3] == 1;
}

namespace {

// The NAL unit type of the first NAL unit, or -1 (the data starts with a start code, checked before).
int first_nal_type(const uint8_t* data, std::size_t length) {
  std::size_t header = data[2] == 1 ? 3 : 4;
  return length > header ? data[header] & 0x1f : -1;
}

constexpr int kNalAccessUnitDelimiter = 9;

}  // namespace

void AccessUnitAssembler::reset() {
  assembling_ = false;
  received_ = 0;
}

AccessUnitAssembler::Result AccessUnitAssembler::add(const EncodedFragment& f, std::string* why) {
  std::size_t whole = f.frame_size ? f.frame_size : f.length;
  if (f.offset == 0) {
    if (assembling_) abandoned_++;  // the previous frame never finished
    reset();
    if (f.length == 0 || whole > kMaxAccessUnit) {
      *why = "encoded frame of " + std::to_string(whole) + " bytes is empty or over the 4 MiB limit";
      return Result::Refused;
    }
    if (!starts_with_start_code(f.data, f.length)) {
      *why = "encoded frame does not start with an Annex-B start code";
      return Result::Refused;
    }
    if (buffer_.size() < kPrefix + whole) buffer_.resize(kPrefix + whole);  // grows only at a new largest frame
    assembling_ = true;
    generation_ = f.generation;
    capture_time_ns_ = f.capture_time_ns;
    keyframe_ = f.keyframe;
    expected_ = whole;
  } else if (!assembling_ || f.generation != generation_ || f.capture_time_ns != capture_time_ns_ ||
             f.keyframe != keyframe_ || whole != expected_ || f.offset != received_) {
    reset();
    *why = "encoded frame fragment does not continue the frame before it";
    return Result::Refused;
  }
  if (f.length > expected_ - received_) {
    reset();
    *why = "encoded frame fragment runs past the frame's announced size";
    return Result::Refused;
  }
  std::memcpy(buffer_.data() + kPrefix + received_, f.data, f.length);
  received_ += f.length;
  if (received_ < expected_) return Result::Incomplete;

  assembling_ = false;
  const uint8_t* frame = buffer_.data() + kPrefix;
  if (first_nal_type(frame, expected_) == kNalAccessUnitDelimiter) {
    start_ = kPrefix;
  } else {
    static const uint8_t kDelimiter[kPrefix] = {0, 0, 0, 1, kNalAccessUnitDelimiter, 0xf0};
    std::memcpy(buffer_.data(), kDelimiter, kPrefix);
    start_ = 0;
  }
  return Result::Complete;
}

void copy_parameter_sets(const uint8_t* data, std::size_t length, std::vector<uint8_t>* out) {
  std::size_t found = 0;
  for_each_nal_unit(data, length, [&](const uint8_t* nal, std::size_t size) {
    int type = nal[0] & 0x1f;
    if (type != 7 && type != 8) return;
    if (found++ == 0) out->clear();
    static const uint8_t kStartCode[4] = {0, 0, 0, 1};
    out->insert(out->end(), kStartCode, kStartCode + 4);
    out->insert(out->end(), nal, nal + size);
  });
}

}  // namespace cloudphone
