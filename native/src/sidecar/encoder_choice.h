// Which H.264 encoder the sidecar uses, from the config's video.encoder (auto, software, vaapi, nvenc).
// This build encodes in software (x264) only: auto picks it and says why, and an explicit hardware choice
// is refused with the reason (no device, or not in this build) rather than silently replaced.
#pragma once

#include <string>

#include "native_error.h"

namespace cloudphone {

struct EncoderChoice {
  std::string name;    // what encodes: "x264"
  std::string reason;  // why, for the log
};

NativeError choose_encoder(const std::string& requested, EncoderChoice* choice);

}  // namespace cloudphone
