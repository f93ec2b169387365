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

enum class ControlKind { Invalid, Hello, Surface, FrameReady, EncodedFrame, Goodbye, Input, Other };
enum class SurfaceMemory { SharedFile, PassedFd, EncodedH264, Unknown };

struct ControlMessage {
  ControlKind kind = ControlKind::Invalid;
  uint16_t protocol_version = 0;  // Hello
  std::string producer;           // Hello, at most 128 bytes
  SurfaceGeometry geometry;       // Surface (generation also for FrameReady)
  SurfaceMemory memory = SurfaceMemory::Unknown;
  std::string path;    // Surface, SharedFile
  std::string reason;  // Goodbye, at most 256 bytes
  EncodedFragment fragment;  // EncodedFrame; its data points into the message
};

// True when the bytes are a well-formed cloudphone.control Message (depth and table count bounded).
bool verify_control_message(const uint8_t* data, std::size_t length);

// Verifies and reads a message; kind is Invalid when it failed verification.
ControlMessage read_control_message(const uint8_t* data, std::size_t length);

// A file name the producer may name inside the shared volume: no separators, no dot names, short.
bool safe_file_name(const std::string& name);

}  // namespace cloudphone
