// The sidecar's view of one surface generation: a read-only mapping of the producer's framebuffer, checked
// against the Surface announcement and the real size of the memory before any pixel is read, and the
// seqlock reads that find the newest complete frame (native/include/cloudphone/framebuffer.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "cloudphone/framebuffer.h"
#include "native_error.h"

namespace cloudphone {

struct SurfaceGeometry {
  uint32_t generation = 0;
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t format = CP_PIXEL_UNKNOWN;
  uint32_t stride = 0;
  uint32_t slot_count = 0;
  uint64_t total_size = 0;
};

struct FrameRef {
  uint32_t slot = 0;
  uint64_t sequence = 0;
  uint64_t frame_number = 0;
  int64_t capture_time_ns = 0;
  const uint8_t* pixels = nullptr;
};

class FramebufferMapping {
 public:
  // Takes ownership of fd (closed in every case). On failure returns null and sets *failure.
  static std::unique_ptr<FramebufferMapping> open(int fd, const SurfaceGeometry& announced, NativeError* failure);
  ~FramebufferMapping();
  FramebufferMapping(const FramebufferMapping&) = delete;
  FramebufferMapping& operator=(const FramebufferMapping&) = delete;

  const SurfaceGeometry& geometry() const { return geometry_; }
  const uint8_t* base() const { return base_; }
  std::size_t length() const { return length_; }

  // The stable slot with the highest frame number above `after`; false when there is none. Call under a
  // SigbusGuard covering the mapping.
  bool newest(uint64_t after, FrameRef* frame) const;
  // True when the slot still holds the frame `frame` was read from (the seqlock did not move).
  bool unchanged(const FrameRef& frame) const;

 private:
  FramebufferMapping(const uint8_t* base, std::size_t length, const SurfaceGeometry& geometry, uint64_t slot_size)
      : base_(base), length_(length), geometry_(geometry), slot_size_(slot_size) {}
  const cp_fb_header* header() const { return reinterpret_cast<const cp_fb_header*>(base_); }

  const uint8_t* base_;
  std::size_t length_;
  SurfaceGeometry geometry_;
  uint64_t slot_size_;
};

// Checks an announced geometry on its own (before any memory is touched); empty error when acceptable.
NativeError check_geometry(const SurfaceGeometry& geometry, uint64_t* slot_size);

}  // namespace cloudphone
