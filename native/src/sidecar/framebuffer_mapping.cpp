#include "framebuffer_mapping.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "sigbus_guard.h"

namespace cloudphone {

NativeError check_geometry(const SurfaceGeometry& g, uint64_t* slot_size) {
  if (g.width == 0 || g.height == 0 || g.width > CP_FB_MAX_DIMENSION || g.height > CP_FB_MAX_DIMENSION)
    return error("ProducerError", "surface size " + std::to_string(g.width) + "x" + std::to_string(g.height) +
                                      " is outside 1..8192");
  if ((g.width | g.height) & 1) return error("ProducerError", "surface width and height must be even");
  uint32_t bpp = cp_fb_bytes_per_pixel(g.format);
  if (bpp == 0) return error("ProducerError", "unknown pixel format " + std::to_string(g.format));
  if (g.stride < uint64_t{g.width} * bpp || g.stride > uint64_t{CP_FB_MAX_DIMENSION} * 4)
    return error("ProducerError", "stride " + std::to_string(g.stride) + " does not fit width " + std::to_string(g.width));
  if (g.slot_count < CP_FB_MIN_SLOTS || g.slot_count > CP_FB_MAX_SLOTS)
    return error("ProducerError", "slot count " + std::to_string(g.slot_count) + " is outside 3..8");
  // Every factor is bounded above, so none of these products overflows 64 bits.
  uint64_t frame = cp_fb_frame_size(g.format, g.stride, g.height);
  if (g.total_size <= CP_FB_HEADER_SIZE || (g.total_size - CP_FB_HEADER_SIZE) % g.slot_count)
    return error("ProducerError", "surface size does not divide into its slots");
  uint64_t slot = (g.total_size - CP_FB_HEADER_SIZE) / g.slot_count;
  if (slot < frame || slot % CP_FB_SLOT_ALIGN || slot > frame + CP_FB_SLOT_ALIGN)
    return error("ProducerError", "slot size " + std::to_string(slot) + " does not match a frame of " +
                                      std::to_string(frame) + " bytes");
  *slot_size = slot;
  return {};
}

std::unique_ptr<FramebufferMapping> FramebufferMapping::open(int fd, const SurfaceGeometry& announced,
                                                             NativeError* failure) {
  struct FdCloser {
    int fd;
    ~FdCloser() { if (fd >= 0) ::close(fd); }
  } closer{fd};

  uint64_t slot_size = 0;
  if ((*failure = check_geometry(announced, &slot_size))) return nullptr;
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *failure = error("ProducerError", "framebuffer memory is not a regular file or memfd");
    return nullptr;
  }
  if (static_cast<uint64_t>(st.st_size) < announced.total_size) {
    *failure = error("ProducerError", "framebuffer memory holds " + std::to_string(st.st_size) +
                                          " bytes, the surface announced " + std::to_string(announced.total_size));
    return nullptr;
  }
  void* mapping = mmap(nullptr, announced.total_size, PROT_READ, MAP_SHARED, fd, 0);
  if (mapping == MAP_FAILED) {
    *failure = error("ProducerError", "cannot map the framebuffer");
    return nullptr;
  }
  std::unique_ptr<FramebufferMapping> result(
      new FramebufferMapping(static_cast<const uint8_t*>(mapping), announced.total_size, announced, slot_size));

  // The header must repeat what the announcement said; it is read once, here, and never trusted again.
  SigbusGuard guard(mapping, announced.total_size);
  cp_fb_header h = *result->header();
  if (guard.faulted()) {
    *failure = error("ProducerError", "framebuffer memory shrank while it was being read");
    return nullptr;
  }
  if (h.magic != CP_FB_MAGIC || h.version != CP_FB_VERSION || h.header_size != CP_FB_HEADER_SIZE) {
    *failure = error("ProducerError", "framebuffer header has a wrong magic, version or size");
    return nullptr;
  }
  if (h.generation != announced.generation || h.width != announced.width || h.height != announced.height ||
      h.format != announced.format || h.stride != announced.stride || h.slot_count != announced.slot_count ||
      h.slot_size != slot_size || h.total_size != announced.total_size) {
    *failure = error("ProducerError", "framebuffer header disagrees with the Surface message");
    return nullptr;
  }
  return result;
}

FramebufferMapping::~FramebufferMapping() { munmap(const_cast<uint8_t*>(base_), length_); }

bool FramebufferMapping::newest(uint64_t after, FrameRef* frame) const {
  bool found = false;
  for (uint32_t i = 0; i < geometry_.slot_count; i++) {
    const cp_fb_slot* slot = &header()->slots[i];
    uint64_t before = __atomic_load_n(&slot->sequence, __ATOMIC_ACQUIRE);
    if (before == 0 || (before & 1)) continue;
    uint64_t number = __atomic_load_n(&slot->frame_number, __ATOMIC_RELAXED);
    int64_t capture = __atomic_load_n(&slot->capture_time_ns, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&slot->sequence, __ATOMIC_RELAXED) != before) continue;
    if (number <= after || (found && number <= frame->frame_number)) continue;
    found = true;
    frame->slot = i;
    frame->sequence = before;
    frame->frame_number = number;
    frame->capture_time_ns = capture;
    frame->pixels = base_ + CP_FB_HEADER_SIZE + uint64_t{i} * slot_size_;
  }
  return found;
}

bool FramebufferMapping::unchanged(const FrameRef& frame) const {
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  return __atomic_load_n(&header()->slots[frame.slot].sequence, __ATOMIC_RELAXED) == frame.sequence;
}

}  // namespace cloudphone
