// Reading one message a WebRTC viewer sent on its data channel. Viewers are untrusted: the FlatBuffers
// Verifier runs first (the JavaScript FlatBuffers runtime has none), then every field is bounds-checked, and
// an input event is re-encoded as the cloudphone.control Message the phone reads, so nothing the viewer
// wrote beyond the checked values reaches the phone. No state, no I/O: the fuzzer drives exactly this code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cloudphone {

enum class ViewerKind { Invalid, KeyframeRequest, Pong, RenderReport, Stats, Input };

struct ViewerStats {
  uint32_t frames_decoded = 0;
  uint32_t frames_dropped = 0;
  uint32_t packets_lost = 0;
  float fps = 0;
  float jitter_ms = 0;
  float rtt_ms = 0;
  float bitrate_kbps = 0;
};

struct ViewerMessage {
  ViewerKind kind = ViewerKind::Invalid;
  std::string reason;  // Invalid: why, for the viewer's error count and a debug log; never echoes the bytes
  uint32_t id = 0;            // Pong
  uint64_t sent_us = 0;       // Pong
  double viewer_time_us = 0;  // Pong
  uint32_t rtp_timestamp = 0;  // RenderReport
  double rendered_at_us = 0;   // RenderReport
  ViewerStats stats;           // Stats
  std::vector<uint8_t> control;  // Input: a verified cloudphone.control Message for the phone
  bool release = false;          // Input: a finger lifted or cancelled, or a key let go
  bool rotate = false;           // Input: a request to turn the phone's screen (the phone reallocates: rare)
};

// The largest message a viewer may send; the player's largest (a 255-byte Text) is far below it.
constexpr std::size_t kViewerMessageMax = 1024;
// Android's highest KEYCODE_* (KEYCODE_MACRO_4 in API 34); anything above is not a key the phone knows.
constexpr uint32_t kLastAndroidKeycode = 316;
// The longest text the phone takes whole (cp_input_event holds 255 bytes and a NUL).
constexpr std::size_t kViewerTextMax = 255;

ViewerMessage read_viewer_message(const uint8_t* data, std::size_t length);

}  // namespace cloudphone
