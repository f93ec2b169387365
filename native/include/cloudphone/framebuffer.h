/*
 * cloudphone shared framebuffer: the memory layout a phone (the producer) and the streaming sidecar (the
 * consumer) share. Plain C, no dependency beyond libc. doc/protocol.md describes it to the byte.
 *
 * One mapping per surface generation:
 *
 *   offset 0                       struct cp_fb_header (geometry, then one cp_fb_slot per frame slot)
 *   offset CP_FB_HEADER_SIZE       slot 0 pixels, slot_size bytes
 *   offset CP_FB_HEADER_SIZE + i * slot_size   slot i pixels
 *
 * Each slot is guarded by a seqlock: the producer makes `sequence` odd before it writes the slot and even
 * again when the frame is complete, so a consumer that sees the same even value before and after reading
 * knows it read a whole frame. The consumer takes the stable slot with the highest frame_number (latest frame
 * wins); with at least three slots the producer writing round-robin never waits for the consumer.
 *
 * The consumer treats every byte here as untrusted: it copies the geometry once, checks it against the
 * Surface control message and the real size of the mapping, and never reads geometry from shared memory again.
 */
#ifndef CLOUDPHONE_FRAMEBUFFER_H
#define CLOUDPHONE_FRAMEBUFFER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "CPFB" read as a little-endian uint32. */
#define CP_FB_MAGIC 0x42465043u
#define CP_FB_VERSION 1u
/* Fewer than three slots would make the producer wait for the consumer. */
#define CP_FB_MIN_SLOTS 3u
#define CP_FB_MAX_SLOTS 8u
#define CP_FB_MAX_DIMENSION 8192u
/* The header takes one page, so slot pixels start page-aligned (SIMD conversion, huge pages). */
#define CP_FB_HEADER_SIZE 4096u
#define CP_FB_SLOT_ALIGN 4096u

/* The same numbers as cloudphone.control.PixelFormat in schemas/fbs/control.fbs. Byte order in memory:
 * RGBA8888 is R,G,B,A (Android's default), RGBX8888 is R,G,B,unused, BGRA8888 is B,G,R,A; NV12 is a Y plane
 * of stride * height bytes followed by an interleaved U,V plane of stride * height / 2 bytes. */
enum cp_pixel_format {
  CP_PIXEL_UNKNOWN = 0,
  CP_PIXEL_RGBA8888 = 1,
  CP_PIXEL_RGBX8888 = 2,
  CP_PIXEL_BGRA8888 = 3,
  CP_PIXEL_NV12 = 4
};

struct cp_fb_slot {
  /* Seqlock: odd while the producer writes this slot, even when it holds a complete frame. */
  uint64_t sequence;
  /* Counts frames over the whole generation, starting at 1; 0 means the slot never held a frame. */
  uint64_t frame_number;
  /* CLOCK_MONOTONIC time the frame was composed, in nanoseconds. */
  int64_t capture_time_ns;
  /* Part of the screen that changed since the previous frame; damage_width == 0 means all of it. */
  uint32_t damage_x;
  uint32_t damage_y;
  uint32_t damage_width;
  uint32_t damage_height;
  uint8_t reserved[24];
};

struct cp_fb_header {
  uint32_t magic;
  uint16_t version;
  /* Always CP_FB_HEADER_SIZE in version 1. */
  uint16_t header_size;
  uint32_t generation;
  uint32_t width;
  uint32_t height;
  /* enum cp_pixel_format */
  uint32_t format;
  /* Bytes per row of the first plane. */
  uint32_t stride;
  uint32_t slot_count;
  /* Bytes per slot: at least the frame size, a multiple of CP_FB_SLOT_ALIGN. */
  uint64_t slot_size;
  /* Size of the whole mapping: CP_FB_HEADER_SIZE + slot_count * slot_size. */
  uint64_t total_size;
  uint8_t reserved[80];
  struct cp_fb_slot slots[CP_FB_MAX_SLOTS];
};

/* Bytes per pixel of the first plane. */
static inline uint32_t cp_fb_bytes_per_pixel(uint32_t format) {
  switch (format) {
    case CP_PIXEL_RGBA8888:
    case CP_PIXEL_RGBX8888:
    case CP_PIXEL_BGRA8888:
      return 4;
    case CP_PIXEL_NV12:
      return 1;
    default:
      return 0;
  }
}

/* Bytes one frame takes in a slot, or 0 for an unknown format. Fits in 64 bits for any 32-bit inputs. */
static inline uint64_t cp_fb_frame_size(uint32_t format, uint32_t stride, uint32_t height) {
  uint64_t plane = (uint64_t)stride * height;
  if (format == CP_PIXEL_NV12) return plane + (uint64_t)stride * ((height + 1) / 2);
  return cp_fb_bytes_per_pixel(format) ? plane : 0;
}

#ifdef __cplusplus
} /* extern "C" */
#define CP_FB_STATIC_ASSERT static_assert
#else
#define CP_FB_STATIC_ASSERT _Static_assert
#endif

CP_FB_STATIC_ASSERT(sizeof(struct cp_fb_slot) == 64, "slot record is 64 bytes");
CP_FB_STATIC_ASSERT(sizeof(struct cp_fb_header) == 128 + 64 * CP_FB_MAX_SLOTS, "header layout is fixed");

#endif /* CLOUDPHONE_FRAMEBUFFER_H */
