// One encoded picture as the pipeline hands it to its outputs.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cloudphone {

// H.264 Annex-B, one access unit; valid only during the call it is handed to.
struct EncodedUnit {
  const uint8_t* data = nullptr;
  std::size_t size = 0;
  int64_t pts_90khz = 0;
  int64_t capture_time_ns = 0;
  bool keyframe = false;
  uint32_t width = 0, height = 0;  // the encoded picture's
};

}  // namespace cloudphone
