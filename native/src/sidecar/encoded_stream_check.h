// Checks H.264 that a phone encoded itself before a viewer or receiver gets any of it: the sidecar does not
// re-encode these pictures, so whatever the phone's encoder (or an attacker in the phone) wrote would reach
// every browser's decoder. An access unit passes when
//   - every NAL unit has the forbidden bit clear and a type a WebRTC or MPEG-TS receiver decodes (slices, IDR
//     slices, SEI, SPS, PPS, delimiters, end of sequence or stream, filler); SVC, MVC, 3D, data partitions,
//     auxiliary pictures and reserved types are refused;
//   - it holds a picture: slices, all IDR or none;
//   - each SPS is Baseline, Main or High, 4:2:0, 8 bits, progressive, at most level 5.2, with a picture the
//     size of the announced surface (which video.maxSize has already limited); each PPS names an SPS the phone
//     sent; an IDR picture brings its SPS and PPS with it, so a receiver can start there.
// After a refusal, and at a new surface, pictures are dropped until an IDR passes: the pictures in between
// refer to what was refused. Reading allocates nothing; a refusal builds its reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace cloudphone {

class EncodedStreamCheck {
 public:
  enum class Verdict { Pass, Refused, WaitingForKeyframe };

  // A new surface of this size: nothing passes until an IDR does.
  void reset(uint32_t width, uint32_t height);
  // Checks one Annex-B access unit. Refused sets *why. Pass sets *keyframe (the unit holds an IDR picture).
  Verdict check(const uint8_t* data, std::size_t length, bool* keyframe, std::string* why);

 private:
  // What one access unit held, NAL unit by NAL unit.
  struct UnitSummary {
    int slices = 0, idr_slices = 0;
    bool sps = false, pps = false;
    uint32_t sps_ids = 0;  // bit i: an SPS with id i passed
  };
  // Why this NAL unit (header byte first) is refused, or empty; what it is goes into *unit.
  std::string check_nal_unit(const uint8_t* nal, std::size_t size, UnitSummary* unit) const;
  // Why this SPS payload (after the NAL header) is refused, or empty; *id is its seq_parameter_set_id.
  std::string check_sps(const uint8_t* payload, std::size_t length, uint32_t* id) const;

  uint32_t width_ = 0, height_ = 0;
  uint32_t known_sps_ = 0;  // bit i: an SPS with id i passed
  bool waiting_for_keyframe_ = true;
};

}  // namespace cloudphone
