/* Paints the simulated phone screen: scrolling list content, moving boxes, and the stamp (stamp.h). */
#ifndef CLOUDPHONE_PAINTER_H
#define CLOUDPHONE_PAINTER_H

#include <stdint.h>

#include "cloudphone/framebuffer.h"

typedef struct painter {
  uint32_t width, height;
  enum cp_pixel_format format;
  uint8_t *texture;
  uint32_t texture_stride, texture_height;
} painter;

int painter_init(painter *p, uint32_t width, uint32_t height, enum cp_pixel_format format);
void painter_paint(const painter *p, uint8_t *pixels, uint32_t stride, uint64_t frame_number, int64_t capture_time_ns);
void painter_free(painter *p);

#endif
