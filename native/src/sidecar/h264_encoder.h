// H.264 with libx264, tuned for interactive screens: zerolatency (no B-frames, no lookahead, sliced
// threads), AUD and SPS/PPS before every IDR so any receiver can start at a keyframe, and live control of
// bitrate and keyframes without reopening. Input is I420 (our own picture, converted from RGB) or NV12 (an
// NV12 phone's shared mapping itself); x264 takes either per picture.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "native_error.h"

extern "C" {
#include <x264.h>
}

namespace cloudphone {

struct EncoderSettings {
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t fps = 30;
  uint32_t bitrate_kbps = 4000;
  // 0: keyframes only on request.
  uint32_t keyframe_interval_frames = 60;
  bool intra_refresh = false;
  // "ultrafast" or "superfast".
  const char* preset = "ultrafast";
};

struct InputPlanes {
  bool nv12 = false;  // else I420
  const uint8_t* plane[3] = {nullptr, nullptr, nullptr};
  uint32_t stride[3] = {0, 0, 0};
};

struct EncodedPicture {
  const uint8_t* data = nullptr;
  std::size_t size = 0;
  bool keyframe = false;
  int64_t pts = 0;
};

class H264Encoder {
 public:
  ~H264Encoder();
  NativeError open(const EncoderSettings& settings);
  void close();
  bool is_open() const { return encoder_ != nullptr; }
  const EncoderSettings& settings() const { return settings_; }

  // Encodes one picture; *out points into the encoder's memory until the next call. Returns false on an
  // encoder failure; an encode that produced nothing (rate control) sets out->size = 0.
  bool encode(const InputPlanes& input, int64_t pts, bool force_keyframe, EncodedPicture* out);
  bool set_bitrate(uint32_t kbps);
  // SPS and PPS in Annex-B, for receivers that join between keyframes.
  const std::vector<uint8_t>& parameter_sets() const { return parameter_sets_; }
  const char* name() const { return "x264"; }

 private:
  x264_t* encoder_ = nullptr;
  x264_param_t param_{};
  x264_picture_t input_{};
  x264_picture_t output_{};
  EncoderSettings settings_;
  std::vector<uint8_t> parameter_sets_;
};

}  // namespace cloudphone
