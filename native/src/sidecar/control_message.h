// Reading one control message from the producer: the FlatBuffers Verifier first, then the fields the
// pipeline acts on, copied out into plain values. Nothing here trusts the bytes, holds state or touches a
// socket, so the fuzzer (native/test/fuzz_control.cpp) drives exactly the code the pipeline runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "access_unit_assembler.h"
#include "framebuffer_mapping.h"

namespace cloudphone {

enum class ControlKind { Invalid, Hello, Surface, FrameReady, EncodedFrame, Goodbye, Input, Clipboard, Other };
enum class SurfaceMemory { SharedFile, PassedFd, EncodedH264, Unknown };

// One input event on its way to the phone, as plain values (the same numbers as input.fbs).
enum class InputKind : uint8_t { Touch, Key, Text, Scroll, Rotate };
enum TouchActionValue : uint8_t { kTouchDown = 0, kTouchUp = 1, kTouchMove = 2, kTouchCancel = 3 };
enum KeyActionValue : uint8_t { kKeyDown = 0, kKeyUp = 1 };
constexpr std::size_t kInputTextMax = 255;  // what the phone's cp_input_event holds, without its NUL
constexpr uint8_t kRotationMax = 3;          // Android's Surface.ROTATION_270
constexpr std::size_t kClipboardMax = 32768;  // CP_CLIPBOARD_MAX: the longest clipboard text forwarded

struct InputEvent {
  InputKind kind = InputKind::Touch;
  uint8_t action = 0;      // Touch, Key
  uint8_t rotation = 0;    // Rotate
  uint8_t pointer_id = 0;  // Touch
  float x = 0, y = 0;      // Touch, Scroll
  float pressure = 1;      // Touch
  uint32_t keycode = 0, repeat = 0, meta_state = 0;  // Key
  float horizontal = 0, vertical = 0;                 // Scroll
  // Text: the bytes point into the message read, valid only while it is.
  const char* text = nullptr;
  std::size_t text_length = 0;
};

struct ControlMessage {
  ControlKind kind = ControlKind::Invalid;
  uint16_t protocol_version = 0;  // Hello
  std::string producer;           // Hello, at most 128 bytes
  SurfaceGeometry geometry;       // Surface (generation also for FrameReady)
  SurfaceMemory memory = SurfaceMemory::Unknown;
  std::string path;    // Surface, SharedFile
  uint8_t rotation = 0;  // Surface: how the screen is turned (unchecked: the pipeline refuses above kRotationMax)
  std::string reason;  // Goodbye, at most 256 bytes
  EncodedFragment fragment;  // EncodedFrame; its data points into the message
  InputEvent input;          // Input
  // Clipboard: the text as sent (unchecked here; the pipeline checks its length and its UTF-8), pointing
  // into the message read.
  const char* clipboard = nullptr;
  std::size_t clipboard_length = 0;
};

// True when the bytes are a well-formed cloudphone.control Message (depth and table count bounded).
bool verify_control_message(const uint8_t* data, std::size_t length);

// Verifies and reads a message; kind is Invalid when it failed verification.
ControlMessage read_control_message(const uint8_t* data, std::size_t length);

// A file name the producer may name inside the shared volume: no separators, no dot names, short.
bool safe_file_name(const std::string& name);

}  // namespace cloudphone
